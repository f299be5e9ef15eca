"""What `kidsasr eval --data X` can read: labelled audio in any of the forms kidsasr knows.

| X | utterances | audio |
| --- | --- | --- |
| a prep folder (`dataset/<split>/*.parquet`) | the split's rows | the FLAC bytes in the shards |
| a manifest `.jsonl` with `audio` per row (the shared `korean-read/manifest.jsonl` format) | every row (or those of the split, when rows carry one) | `audio`, relative to the manifest's folder; `start`/`end` cut it when present |
| kidsasr's own `manifest.jsonl` (rows with `audio_source`, `start`, `end`) | the split's rows | the span of the episode audio (a file or `zip!member`), relative paths tried from the working folder and the manifest's |
| a corpus folder (71502, 자유대화, KsponSpeech, broadcast dialogue; `kidsasr.related_corpora`) | every timed sentence (or whole utterance file) | the sentence's span |

Every row field that is not an Utterance field and holds a short string or number (`room`, `activity`, ...) is
kept as metadata, so reports can break results down by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..manifest import Utterance
from . import metrics
from .inputs import EvalInputError, read_jsonl_strict

MAX_METADATA_CHARS = 40  # longer strings (texts, paths) are not breakdown fields


@dataclass(frozen=True)
class AudioSpan:
    """Where one utterance's audio is: a file or a zip member, and a span of it (None: the whole file)."""

    path: str
    member: str | None = None
    start: float | None = None
    end: float | None = None

    def cut(self, audio: np.ndarray) -> np.ndarray:
        if self.start is None and self.end is None:
            return audio
        a = int(round((self.start or 0.0) * SAMPLE_RATE))
        b = audio.size if self.end is None else int(round(self.end * SAMPLE_RATE))
        return audio[a:b]


@dataclass
class LabelledSet:
    """Utterances to score, their extra metadata, and how to get each one's audio (None: no audio known)."""

    source: str
    kind: str  # prep | manifest | kidsasr-manifest | corpus:<layout>
    utterances: list[Utterance]
    metadata: list[dict[str, str]]
    audio: list[AudioSpan] | None = None
    prep_dir: Path | None = None  # kind "prep": audio comes from the parquet shards
    split: str = "test"
    notes: list[str] = field(default_factory=list)


def _metadata(row: dict) -> dict[str, str]:
    names = {f for f in Utterance.__dataclass_fields__}
    out = {}
    for key, value in row.items():
        if key in names or key in ("audio", "duration", "quality") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) or (isinstance(value, str) and 0 < len(value) <= MAX_METADATA_CHARS):
            out[key] = str(value)
    return out


def _defaults(row: dict, audio_source: str) -> dict:
    return {"episode_id": row.get("episode_id") or row["id"], "split": row.get("split", ""),
            "audio_source": audio_source, "start": row.get("start") or 0.0, "end": row.get("end") or 0.0,
            "text_pron": row.get("text_pron", ""), "raw_text": row.get("raw_text") or row["text"]}


def _resolve(path: str, base: Path) -> str:
    """A relative audio path as it stands (from the working folder) when it exists, else from `base`."""
    p = Path(path)
    return str(p if p.is_absolute() or p.exists() else base / p)


def from_manifest(path: Path, rows: list[dict], split: str) -> LabelledSet:
    """A JSON-lines manifest: the shared format (`audio` relative to the manifest) or kidsasr's (`audio_source`)."""
    for number, row in enumerate(rows, 1):
        if "id" not in row or "text" not in row:
            raise EvalInputError(f"{path}: row {number} lacks 'id' or 'text'")
    selected = [r for r in rows if r.get("split", split) == split]
    if not selected:
        raise EvalInputError(f"{path}: no utterances with split {split!r}")
    has_audio = all("audio" in r for r in selected)
    has_source = all("audio_source" in r for r in selected)
    utterances, spans = [], []
    for row in selected:
        if has_audio:
            audio = str(path.parent / row["audio"])
            span = AudioSpan(audio, None, row.get("start"), row.get("end"))
        elif has_source:
            file, _, member = str(row["audio_source"]).partition("!")
            audio = _resolve(file, path.parent)
            span = AudioSpan(audio, member or None, row["start"], row["end"])
        else:
            audio, span = "", None
        utterances.append(Utterance.from_row({**_defaults(row, audio), **{k: v for k, v in row.items()
                                                                             if k != "audio"}}))
        spans.append(span)
    kind = "manifest" if has_audio else "kidsasr-manifest" if has_source else "manifest (no audio)"
    return LabelledSet(str(path), kind, utterances, [_metadata(r) for r in selected],
                       spans if (has_audio or has_source) else None, split=split)


def from_corpus(root: Path) -> LabelledSet:
    """Every sentence with usable times (or every whole-utterance file) of a corpus folder in a known layout."""
    from ..corpus.reader import ReadReport
    from ..corpus.related import detect_format, read_any
    from ..textnorm import parse_label

    layout = detect_format(root)
    report = ReadReport()
    utterances, metadata, spans = [], [], []
    for episode in read_any(root, report, layout):
        for sentence in episode.sentences:
            transcript = parse_label(sentence.text)
            if not transcript.spelling:
                continue
            speaker = sentence.speaker
            uid = f"{episode.id}_{sentence.index:04d}"
            utterances.append(Utterance(
                id=uid, episode_id=episode.id, split="", audio_source=str(episode.audio),
                start=sentence.start or 0.0, end=sentence.end or 0.0, text=transcript.spelling,
                text_pron=transcript.pronunciation, raw_text=sentence.text, category=episode.category,
                program=episode.program, speaker_id=speaker.id if speaker else None,
                speaker_role=speaker.role if speaker else None, age_group=speaker.age_group if speaker else None,
                sex=speaker.sex if speaker else None))
            metadata.append(_metadata(episode.metadata))
            spans.append(AudioSpan(episode.audio.path, episode.audio.member, sentence.start, sentence.end))
    if not utterances:
        raise EvalInputError(f"{root}: no labelled sentences found ({layout} layout; {report.summary()})")
    notes = [f"{issue.path}: {issue.reason}" for issue in report.errors]
    return LabelledSet(str(root), f"corpus:{layout}", utterances, metadata, spans, notes=notes)


def from_prep(prep_dir: Path, split: str) -> LabelledSet:
    """A prep folder's split: the rows of its parquet shards (the audio stays in the shards)."""
    from ..manifest import load_split

    ds = load_split(prep_dir, split).remove_columns("audio")
    rows = list(ds)
    return LabelledSet(str(prep_dir), "prep", [Utterance.from_row(r) for r in rows], [_metadata(r) for r in rows],
                       prep_dir=prep_dir, split=split)


def open_labelled(data: str | Path, split: str) -> LabelledSet:
    """The labelled set behind `--data` (see the module docstring), its utterances sorted by id; duplicate ids are
    an error naming them."""
    data = Path(data)
    if data.is_file():
        labelled = from_manifest(data, read_jsonl_strict(data), split)
    elif (data / "dataset").is_dir():
        labelled = from_prep(data, split)
    elif data.is_dir():
        labelled = from_corpus(data)
    else:
        raise EvalInputError(f"{data}: no such file or folder")
    duplicates = _duplicates(u.id for u in labelled.utterances)
    if duplicates:
        raise EvalInputError(f"{data}: duplicate utterance ids: {metrics.preview_ids(duplicates)}")
    order = sorted(range(len(labelled.utterances)), key=lambda k: labelled.utterances[k].id)
    labelled.utterances = [labelled.utterances[k] for k in order]
    labelled.metadata = [labelled.metadata[k] for k in order]
    if labelled.audio is not None:
        labelled.audio = [labelled.audio[k] for k in order]
    return labelled


def _duplicates(ids) -> list[str]:
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    return dup


class SpanLoader:
    """Loads spans' audio, decoding a file once for consecutive spans of it (a corpus episode's sentences)."""

    def __init__(self) -> None:
        self._key: tuple[str, str | None] | None = None
        self._audio = np.zeros(0, dtype=np.float32)

    def __call__(self, span: AudioSpan) -> np.ndarray:
        from ..corpus.reader import AudioRef

        key = (span.path, span.member)
        if key != self._key:
            self._key, self._audio = None, AudioRef(span.path, span.member).load()
            self._key = key
        return span.cut(self._audio)
