"""Typed records for the children's-broadcast corpus (AI Hub 71502 layout) and its readers.

An Episode is one broadcast excerpt (one WAV + one JSON label with the same stem); a Sentence is one labelled
span in it. Audio is referenced, never loaded, until someone asks (AudioRef.load), so reading 1,000 hours of
labels stays cheap.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..audio import AudioInfo, audio_info, load_audio
from ..constants import SAMPLE_RATE

CATEGORIES = ("미취학 아동 발달 교육", "어린이 교육", "어린이 드라마", "어린이 예능")


@dataclass(frozen=True)
class Speaker:
    id: str
    role: str = "unknown"  # "child" | "adult" | "unknown"
    age_group: str | None = None  # e.g. "4-6", "7-9", "10-12", "adult"
    sex: str | None = None  # "M" | "F"


@dataclass(frozen=True)
class AudioRef:
    """Where an episode's audio lives: a file, or a member of a zip part (read without extracting)."""

    path: str
    member: str | None = None

    def open(self) -> BinaryIO:
        """A seekable binary stream; zip members are decompressed on the fly, never extracted."""
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as zf:
            stream = zf.open(self.member)  # stays readable after the ZipFile object is closed
        stream.name = str(self)
        return stream

    def info(self) -> AudioInfo:
        if self.member is None:
            return audio_info(self.path)
        with self.open() as f:
            return audio_info(f)

    def load(self, sr: int = SAMPLE_RATE) -> np.ndarray:
        if self.member is None:
            return load_audio(self.path, sr)
        with self.open() as f:
            return load_audio(f, sr)

    def __str__(self) -> str:
        return self.path if self.member is None else f"{self.path}!{self.member}"


@dataclass(frozen=True)
class Sentence:
    episode_id: str
    index: int
    text: str  # the label as transcribed, KsponSpeech marks included
    start: float | None  # seconds from the start of the episode; None when the label has no times
    end: float | None
    speaker: Speaker | None = None


@dataclass
class Episode:
    id: str
    audio: AudioRef
    label_path: str
    category: str | None = None
    program: str | None = None
    sentences: list[Sentence] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Reading the distributed layout
# ---------------------------------------------------------------------------------------------------------------

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".m4a", ".mp4", ".pcm"}
TIME_TOLERANCE = 0.05  # label times may overrun the audio by rounding; beyond this the sentence is rejected
ROLE_NAMES = {"아동": "child", "어린이": "child", "유아": "child", "소아": "child", "child": "child",
              "성인": "adult", "어른": "adult", "adult": "adult"}
SEX_NAMES = {"여": "F", "여자": "F", "여성": "F", "f": "F", "female": "F",
             "남": "M", "남자": "M", "남성": "M", "m": "M", "male": "M"}


@dataclass
class ReadIssue:
    """One problem found while reading, with the file and the reason.

    severity "error": the item (a label, an episode or one sentence) was not yielded;
    severity "warning": it was read anyway (e.g. a label encoded in CP949).
    `sentences` is how many sentences the issue removed, so that kept + rejected = read.
    """

    path: str
    reason: str
    episode_id: str | None = None
    sentence_index: int | None = None
    severity: str = "error"
    sentences: int = 0


@dataclass
class ReadReport:
    labels_read: int = 0
    sentences_read: int = 0
    episodes: int = 0
    sentences_kept: int = 0
    issues: list[ReadIssue] = field(default_factory=list)

    def add(self, issue: ReadIssue) -> None:
        self.issues.append(issue)

    @property
    def errors(self) -> list[ReadIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def sentences_rejected(self) -> int:
        return sum(i.sentences for i in self.errors)

    def summary(self) -> str:
        return (f"{self.labels_read} labels, {self.episodes} episodes, {self.sentences_read} sentences read: "
                f"{self.sentences_kept} kept, {self.sentences_rejected} rejected, "
                f"{len(self.errors)} errors, {len(self.issues) - len(self.errors)} warnings")


class LabelError(ValueError):
    """A label file that cannot be used at all."""


def decode_text(raw: bytes) -> tuple[str, str]:
    """Decode label bytes as UTF-8 (BOM tolerated) or CP949; returns (text, encoding)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp949"), "cp949"
    except UnicodeDecodeError as e:
        raise LabelError(f"text is neither UTF-8 nor CP949 (byte {e.start})") from e


def parse_time(value: object) -> float:
    """Seconds from `H:MM:SS.fff`, `HH:MM:SS.fff`, `MM:SS.fff` strings or plain numbers."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        parts = text.split(":")
        if len(parts) > 3 or not all(parts):
            raise ValueError(f"not a time: {value!r}")
        try:
            seconds = 0.0
            for part in parts:
                seconds = seconds * 60 + float(part)
        except ValueError:
            raise ValueError(f"not a time: {value!r}") from None
        if len(parts) > 1 and any(float(p) >= 60 for p in parts[1:]):
            raise ValueError(f"minutes or seconds out of range: {value!r}")
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a valid time: {value!r}")
    return seconds


def checked_times(start: object, end: object, duration: float) -> tuple[float, float, str | None]:
    """Parse a sentence's times and say what is wrong with them, if anything (None when they are usable)."""
    try:
        start_s, end_s = parse_time(start), parse_time(end)
    except ValueError as e:
        return 0.0, 0.0, f"bad time: {e}"
    if end_s <= start_s:
        return start_s, end_s, f"reversed or empty times: start {start_s:.3f} s, end {end_s:.3f} s"
    if end_s > duration + TIME_TOLERANCE:
        return start_s, end_s, f"ends at {end_s:.3f} s, beyond the audio ({duration:.3f} s): truncated audio?"
    return start_s, end_s, None


def is_unsafe_member(name: str) -> bool:
    """Zip members with absolute paths or `..` components are refused, never read."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts


@dataclass(frozen=True)
class _LabelSource:
    name: str  # shown in reports: a path, or "zip!member"
    stem: str
    path: str
    member: str | None = None

    def read_bytes(self) -> bytes:
        if self.member is None:
            with open(self.path, "rb") as f:
                return f.read()
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(self.member)


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _scan(root: Path, report: ReadReport) -> tuple[list[_LabelSource], dict[str, AudioRef]]:
    """Index label files and audio (folders and zip parts) without reading any content."""
    labels: list[_LabelSource] = []
    audio: dict[str, AudioRef] = {}
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".json":
            labels.append(_LabelSource(str(path), path.stem, str(path)))
        elif suffix in AUDIO_SUFFIXES:
            audio.setdefault(path.stem, AudioRef(str(path)))
        elif suffix == ".zip":
            try:
                with zipfile.ZipFile(path) as zf:
                    members = [info for info in zf.infolist() if not info.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                report.add(ReadIssue(str(path), f"unreadable zip part: {e}"))
                continue
            for info in sorted(members, key=lambda i: i.filename):
                name = info.filename
                if is_unsafe_member(name):
                    report.add(ReadIssue(f"{path}!{name}", "refused zip member: absolute path or '..' component"))
                    continue
                msuffix = Path(name).suffix.lower()
                if msuffix == ".json":
                    labels.append(_LabelSource(f"{path}!{name}", _stem(name), str(path), name))
                elif msuffix in AUDIO_SUFFIXES:
                    audio.setdefault(_stem(name), AudioRef(str(path), name))
    return labels, audio


def _speakers(doc: dict) -> dict[str, Speaker]:
    speakers = {}
    for entry in doc.get("speaker_info") or doc.get("speaker_list") or []:
        if isinstance(entry, dict) and entry.get("speaker_id") is not None:
            speakers[str(entry["speaker_id"])] = speaker_from_fields(
                str(entry["speaker_id"]), entry.get("speaker_type") or entry.get("role"),
                entry.get("age_group") or entry.get("age"), entry.get("gender") or entry.get("sex"))
    return speakers


def speaker_from_fields(speaker_id: str, role: object, age: object, sex: object) -> Speaker:
    """A Speaker from loosely-typed corpus fields (Korean or English names, numeric or grouped ages)."""
    role_name = ROLE_NAMES.get(str(role).strip().lower(), "unknown") if role is not None else "unknown"
    age_group = None if age in (None, "") else str(age).strip()
    if age_group and age_group.isdigit():
        years = int(age_group)
        age_group = "adult" if years >= 20 else ("13-19" if years >= 13 else age_group)
        if role_name == "unknown":
            role_name = "child" if years < 13 else "adult"
    sex_name = SEX_NAMES.get(str(sex).strip().lower()) if sex is not None else None
    return Speaker(speaker_id, role_name, age_group, sex_name)


def read_label_file(source: _LabelSource, audio: AudioRef | None, report: ReadReport) -> Episode | None:
    """Parse and validate one 71502 label; problems go to `report`, good sentences are kept."""
    report.labels_read += 1
    try:
        text, encoding = decode_text(source.read_bytes())
    except (LabelError, OSError, zipfile.BadZipFile) as e:
        report.add(ReadIssue(source.name, f"unreadable label: {e}", source.stem))
        return None
    if encoding != "utf-8":
        report.add(ReadIssue(source.name, f"label encoded as {encoding}, not UTF-8; read anyway", source.stem,
                             severity="warning"))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        report.add(ReadIssue(source.name, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}",
                             source.stem))
        return None
    media = doc.get("media_info") if isinstance(doc, dict) else None
    sentences = media.get("sentence_list") if isinstance(media, dict) else None
    if not isinstance(sentences, list):
        report.add(ReadIssue(source.name, "not a 71502 label: no media_info.sentence_list", source.stem))
        return None
    report.sentences_read += len(sentences)
    episode_id = source.stem
    if audio is None:
        named = media.get("file_name")
        hint = f" (the label names {named!r})" if named and _stem(str(named)) != episode_id else ""
        report.add(ReadIssue(source.name, f"no audio file with stem {episode_id!r}{hint}", episode_id,
                             sentences=len(sentences)))
        return None
    try:
        info = audio.info()
    except Exception as e:  # any decoder failure is reported per file, and reading goes on
        report.add(ReadIssue(str(audio), f"unreadable audio: {e}", episode_id, sentences=len(sentences)))
        return None
    if not info.duration > 0:
        report.add(ReadIssue(str(audio), "audio has no samples", episode_id, sentences=len(sentences)))
        return None
    if info.sample_rate != SAMPLE_RATE or info.channels != 1:
        report.add(ReadIssue(str(audio), f"audio is {info.sample_rate} Hz with {info.channels} channel(s), not "
                             f"16 kHz mono; it is converted when loaded", episode_id, severity="warning"))
    speakers = _speakers(doc)
    kept: list[Sentence] = []
    for index, entry in enumerate(sentences):
        reason = None
        if not isinstance(entry, dict):
            reason = "sentence entry is not an object"
        else:
            start, end, reason = checked_times(entry.get("start"), entry.get("end"), info.duration)
            sentence_text = entry.get("sentence") if isinstance(entry, dict) else None
            if reason is None and not isinstance(sentence_text, str):
                reason = "no sentence text"
        if reason is not None:
            report.add(ReadIssue(source.name, reason, episode_id, index, sentences=1))
            continue
        speaker_id = entry.get("speaker_id")
        speaker = speakers.get(str(speaker_id)) if speaker_id is not None else None
        if speaker is None and speaker_id is not None:
            speaker = Speaker(str(speaker_id))
        kept.append(Sentence(episode_id, index, sentence_text, start, end, speaker))
    report.episodes += 1
    report.sentences_kept += len(kept)
    metadata = {k: v for k, v in media.items() if k != "sentence_list"}
    metadata.update({k: v for k, v in doc.items() if k not in ("media_info", "speaker_info")})
    metadata["duration_s"] = info.duration
    metadata["sample_rate"] = info.sample_rate
    metadata["channels"] = info.channels
    return Episode(episode_id, audio, source.name, media.get("category"), media.get("program_name"),
                   kept, metadata)


def read_corpus(root: str | Path, report: ReadReport | None = None) -> Iterator[Episode]:
    """Yield the episodes of a 71502-layout corpus: a folder (any depth), a folder of zip parts, or one zip.

    Labels and audio are paired by stem across folders and zip parts (TL_/TS_, VL_/VS_). Every problem becomes
    a ReadIssue in `report`, naming the file and the reason, and reading goes on.
    """
    root = Path(root)
    report = report if report is not None else ReadReport()
    if not root.exists():
        raise FileNotFoundError(f"{root}: corpus folder or zip not found")
    labels, audio = _scan(root, report)
    label_stems = set()
    for source in labels:
        label_stems.add(source.stem)
        episode = read_label_file(source, audio.get(source.stem), report)
        if episode is not None:
            yield episode
    for stem in sorted(set(audio) - label_stems):
        report.add(ReadIssue(str(audio[stem]), "audio file without a label", stem))
