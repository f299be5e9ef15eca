"""Readers for the related AI Hub speech layouts, yielding the same Episode records as `kidsasr.corpus.reader`.

| layout | files | what becomes an Episode |
| --- | --- | --- |
| 71502 children's broadcast | `<stem>.wav` + `<stem>.json` with `media_info.sentence_list` | one excerpt, many sentences |
| 자유대화 (free conversation) | `<stem>.wav` + `<stem>.json` with `발화정보.stt` | one utterance file |
| KsponSpeech | headerless `.pcm` + `.trn` lines `path.pcm :: text` or per-file `.txt` (CP949) | one utterance file |
| 방송 콘텐츠 대화체 (broadcast dialogue) | `<stem>.wav` + `<stem>.json` with `utterance[]` (float times) | one broadcast file |
| review (kidsasr.corpus.reviewed) | `<stem>.<audio/video>` + `<stem>.reviewed.vtt` [+ `<stem>.edits.jsonl`] | one reviewed episode |

`read_any` detects the layout from the first label it finds. Problems are ReadIssues in the shared ReadReport.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from ..textnorm import to_kspon_order
from .reader import (AUDIO_SUFFIXES, AudioRef, Episode, LabelError, ReadIssue, ReadReport, Sentence, checked_times,
                     corpus_files, decode_text, parse_time, read_corpus, speaker_from_fields)

Reader = Callable[[Path, ReadReport], Iterator[Episode]]


def _read_json(path: Path, report: ReadReport) -> dict | None:
    report.labels_read += 1
    try:
        text, encoding = decode_text(path.read_bytes())
        if encoding != "utf-8":
            report.add(ReadIssue(str(path), f"label encoded as {encoding}, not UTF-8; read anyway", path.stem,
                                 severity="warning"))
        doc = json.loads(text)
    except (LabelError, OSError) as e:
        report.add(ReadIssue(str(path), f"unreadable label: {e}", path.stem))
        return None
    except json.JSONDecodeError as e:
        report.add(ReadIssue(str(path), f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}", path.stem))
        return None
    if not isinstance(doc, dict):
        report.add(ReadIssue(str(path), "label is not a JSON object", path.stem))
        return None
    return doc


def _audio_index(files: list[Path]) -> dict[str, Path]:
    return {p.stem: p for p in files if p.suffix.lower() in AUDIO_SUFFIXES}


def _with_suffix(files: list[Path], suffix: str) -> list[Path]:
    return [p for p in files if p.suffix.lower() == suffix]


def _utterance_episode(report: ReadReport, label: str, episode_id: str, audio: Path | None, text: object,
                       speaker=None, metadata: dict | None = None, expected: float | None = None) -> Episode | None:
    """One single-utterance file as an Episode with one sentence spanning the whole audio."""
    report.sentences_read += 1
    if audio is None:
        report.add(ReadIssue(label, f"no audio file with stem {episode_id!r}", episode_id, sentences=1))
        return None
    if not isinstance(text, str) or not text.strip():
        report.add(ReadIssue(label, "empty transcript", episode_id, 0, sentences=1))
        return None
    ref = AudioRef(str(audio))
    try:
        duration = ref.info().duration
    except Exception as e:  # any decoder failure is reported per file, and reading goes on
        report.add(ReadIssue(str(audio), f"unreadable audio: {e}", episode_id, sentences=1))
        return None
    if not duration > 0:
        report.add(ReadIssue(str(audio), "audio has no samples", episode_id, sentences=1))
        return None
    if expected is not None and expected - duration > 0.25:
        report.add(ReadIssue(str(audio), f"truncated audio: {duration:.3f} s, the label says {expected:.3f} s",
                             episode_id, 0, sentences=1))
        return None
    report.episodes += 1
    report.sentences_kept += 1
    return Episode(episode_id, ref, label, sentences=[Sentence(episode_id, 0, text.strip(), 0.0, duration, speaker)],
                   metadata=metadata or {})


def _json_labels(root: Path, report: ReadReport, key: str, kind: type, missing: str
                 ) -> Iterator[tuple[Path, dict, object, dict[str, Path]]]:
    """Each JSON label under root whose `key` holds a `kind`, with the folder's audio index; the rest reported."""
    files = corpus_files(root, report)
    audio = _audio_index(files)
    for path in _with_suffix(files, ".json"):
        doc = _read_json(path, report)
        if doc is None:
            continue
        value = doc.get(key)
        if not isinstance(value, kind):
            report.add(ReadIssue(str(path), missing, path.stem))
            continue
        yield path, doc, value, audio


def read_freetalk(root: Path, report: ReadReport) -> Iterator[Episode]:
    """자유대화 음성: one JSON per utterance (`발화정보`, `녹음자정보`, `대화정보`)."""
    for path, doc, info, audio in _json_labels(root, report, "발화정보", dict, "not a 자유대화 label: no 발화정보"):
        # fileNm sometimes carries typos such as ".wavp": the JSON's own stem is the fallback
        named = Path(str(info.get("fileNm") or "")).stem
        wav = audio.get(named) or audio.get(path.stem)
        recorder = doc.get("녹음자정보") or {}
        speaker = speaker_from_fields(str(recorder.get("recorderId", "unknown")), None, recorder.get("age"),
                                      recorder.get("gender"))
        try:
            expected = parse_time(info["recrdTime"]) if info.get("recrdTime") not in (None, "") else None
        except ValueError:
            expected = None
        metadata = {"dialogue": doc.get("대화정보"), "quality": info.get("recrdQuality"),
                    "script_id": info.get("scriptId")}
        episode = _utterance_episode(report, str(path), path.stem, wav, info.get("stt"), speaker, metadata, expected)
        if episode is not None:
            yield episode


def _kspon_transcripts(files: list[Path], report: ReadReport) -> dict[str, tuple[str, str]]:
    """stem -> (transcript, where it came from), from `.trn` lists and per-file `.txt` (often CP949)."""
    found: dict[str, tuple[str, str]] = {}
    for trn in _with_suffix(files, ".trn"):
        try:
            text, _ = decode_text(trn.read_bytes())
        except LabelError as e:
            report.add(ReadIssue(str(trn), f"unreadable transcript list: {e}"))
            continue
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if " :: " not in line:
                report.add(ReadIssue(f"{trn}:{line_no}", "transcript line without ' :: ' separator"))
                continue
            pcm, transcript = line.split(" :: ", 1)
            found[Path(pcm.strip()).stem] = (transcript.strip(), f"{trn}:{line_no}")
    for txt in _with_suffix(files, ".txt"):
        if txt.stem in found:
            continue
        try:
            text, encoding = decode_text(txt.read_bytes())
        except LabelError as e:
            report.add(ReadIssue(str(txt), f"unreadable transcript: {e}", txt.stem))
            continue
        found[txt.stem] = (text.strip(), str(txt))
    return found


def read_kspon(root: Path, report: ReadReport) -> Iterator[Episode]:
    """KsponSpeech: headerless 16 kHz 16-bit mono `.pcm` with `.trn` or CP949 `.txt` transcripts."""
    files = corpus_files(root, report)
    transcripts = _kspon_transcripts(files, report)
    pcms = {p.stem: p for p in _with_suffix(files, ".pcm")}
    for stem in sorted(transcripts):
        text, where = transcripts[stem]
        report.labels_read += 1
        episode = _utterance_episode(report, where, stem, pcms.get(stem), text)
        if episode is not None:
            yield episode
    for stem in sorted(set(pcms) - set(transcripts)):
        report.add(ReadIssue(str(pcms[stem]), "audio file without a transcript", stem))


def read_broadcast_dialogue(root: Path, report: ReadReport) -> Iterator[Episode]:
    """방송 콘텐츠 대화체: `metadata`, `speaker[]`, `utterance[]` with float-second times."""
    for path, doc, utterances, audio in _json_labels(root, report, "utterance", list,
                                                     "not a broadcast-dialogue label: no utterance list"):
        report.sentences_read += len(utterances)
        wav = audio.get(path.stem)
        if wav is None:
            report.add(ReadIssue(str(path), f"no audio file with stem {path.stem!r}", path.stem,
                                 sentences=len(utterances)))
            continue
        ref = AudioRef(str(wav))
        try:
            duration = ref.info().duration
        except Exception as e:  # any decoder failure is reported per file, and reading goes on
            report.add(ReadIssue(str(wav), f"unreadable audio: {e}", path.stem, sentences=len(utterances)))
            continue
        speakers = {str(s.get("id")): speaker_from_fields(str(s.get("id")), s.get("role"), s.get("age"), s.get("sex"))
                    for s in doc.get("speaker") or [] if isinstance(s, dict)}
        sentences = []
        for index, utt in enumerate(utterances):
            if not isinstance(utt, dict):
                report.add(ReadIssue(str(path), "utterance entry is not an object", path.stem, index, sentences=1))
                continue
            start, end, reason = checked_times(utt.get("start"), utt.get("end"), duration)
            text = utt.get("original_form") or utt.get("form")
            if reason is None and not isinstance(text, str):
                reason = "no transcript"
            if reason is not None:
                report.add(ReadIssue(str(path), reason, path.stem, index, sentences=1))
                continue
            sentences.append(Sentence(path.stem, index, to_kspon_order(text), start, end,
                                      speakers.get(str(utt.get("speaker_id")))))
        metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        report.episodes += 1
        report.sentences_kept += len(sentences)
        yield Episode(path.stem, ref, str(path), metadata.get("category"), metadata.get("title"), sentences,
                      dict(metadata, duration_s=duration))


def read_review(root: Path, report: ReadReport) -> Iterator[Episode]:
    """Episodes with subtitles reviewed in `kidsasr review` (kidsasr.corpus.reviewed)."""
    from .reviewed import read_reviewed

    return read_reviewed(root, report)


READERS: dict[str, Reader] = {
    "71502": read_corpus,
    "freetalk": read_freetalk,
    "kspon": read_kspon,
    "broadcast_dialogue": read_broadcast_dialogue,
    "review": read_review,
}


def detect_format(root: str | Path) -> str:
    """Which layout a folder (or zip) holds, from its first label or audio file."""
    root = Path(root)
    files = corpus_files(root)
    if not files:
        raise ValueError(f"{root}: no labels or audio found")
    if root.is_file() or _with_suffix(files, ".zip"):
        return "71502"
    if _with_suffix(files, ".pcm"):
        return "kspon"
    from .reviewed import looks_like_review

    if looks_like_review(root):
        return "review"
    for path in _with_suffix(files, ".json"):
        try:
            doc = json.loads(decode_text(path.read_bytes())[0])
        except (LabelError, json.JSONDecodeError, OSError):
            continue
        if isinstance(doc, dict):
            if "media_info" in doc:
                return "71502"
            if "발화정보" in doc:
                return "freetalk"
            if "utterance" in doc:
                return "broadcast_dialogue"
    raise ValueError(f"{root}: no recognisable corpus layout (expected 71502, 자유대화, KsponSpeech or "
                     f"broadcast-dialogue labels, or subtitles reviewed with `kidsasr review`)")


def read_any(root: str | Path, report: ReadReport | None = None, layout: str | None = None) -> Iterator[Episode]:
    """Read any supported layout (detected unless `layout` names one of READERS); each episode's
    `metadata["source"]` names the layout it came from."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: corpus folder or zip not found")
    layout = layout or detect_format(root)
    if layout not in READERS:
        raise ValueError(f"unknown corpus layout {layout!r}; expected one of {', '.join(READERS)}")
    for episode in READERS[layout](root, report if report is not None else ReadReport()):
        episode.metadata.setdefault("source", layout)
        yield episode
