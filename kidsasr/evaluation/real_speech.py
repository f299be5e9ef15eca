"""The real read-speech set (`../shared/real-speech/korean-read`) and its fixed tune / report halves.

The set is for evaluation only (CC BY-NC-ND 4.0: never train on it, never copy it into the repository). Anything
chosen by looking at real speech (a checkpoint, an interpolation weight, a threshold) is chosen on the `tune`
half and reported on the `report` half, so no figure is reported on the clips that chose it.

The halves split the distinct sentence texts, not the clips: every clip of a sentence (the same script read in
each room) goes with its sentence. A text is its NFC form, stripped; the distinct texts are ordered by the SHA-256
hex digest of their UTF-8 bytes, the first half (rounded down) is `tune` and the rest `report`; the split depends
on nothing but the texts.

Where the data is: `real_speech_root()`, the `KIDSASR_REAL_SPEECH` environment variable or `../shared/real-speech`
beside the checkout; commands take `--real-speech PATH` over both.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

HALVES = ("tune", "report")
ENV_VAR = "KIDSASR_REAL_SPEECH"
READ_SPEECH_MANIFEST = Path("korean-read") / "manifest.jsonl"
SOURCE_NOTE = ("the Deeply Korean Read Speech Corpus (github.com/deeplyinc/Korean-Read-Speech-Corpus, CC BY-NC-ND "
               "4.0), laid out as in ../shared/real-speech: korean-read/manifest.jsonl with audio paths relative to it")


@dataclass(frozen=True)
class RealClip:
    id: str
    audio: Path  # absolute path of the FLAC file
    text: str  # the script, with punctuation
    room: str
    duration: float


def real_speech_root(path: str | os.PathLike | None = None) -> Path:
    """Where the real-speech sets are: `path`, else $KIDSASR_REAL_SPEECH, else ../shared/real-speech beside the
    checkout."""
    if path:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(__file__).resolve().parents[3] / "shared" / "real-speech"


def read_speech_manifest(path: str | os.PathLike | None = None) -> Path | None:
    """The read-speech manifest under real_speech_root(path), or None when it is not there."""
    manifest = real_speech_root(path) / READ_SPEECH_MANIFEST
    return manifest if manifest.is_file() else None


def skip_message(path: str | os.PathLike | None = None) -> str:
    return (f"real read speech: skipped, {real_speech_root(path) / READ_SPEECH_MANIFEST} not found (get "
            f"{SOURCE_NOTE}; give its folder with --real-speech PATH or ${ENV_VAR})")


def canonical_text(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def text_key(text: str) -> str:
    """The stable hash a sentence is ordered by: SHA-256 hex digest of its canonical form's UTF-8 bytes."""
    return hashlib.sha256(canonical_text(text).encode("utf-8")).hexdigest()


def sentence_halves(texts: list[str]) -> dict[str, str]:
    """Each distinct canonical text -> "tune" or "report" (see the module docstring)."""
    distinct = sorted({canonical_text(t) for t in texts}, key=text_key)
    cut = len(distinct) // 2
    return {text: HALVES[0] if i < cut else HALVES[1] for i, text in enumerate(distinct)}


def read_speech_split(manifest: str | Path) -> dict[str, str]:
    """Clip id -> "tune" or "report" for every clip of a korean-read style manifest.jsonl."""
    clips = load_clips(manifest)
    halves = sentence_halves([c.text for c in clips])
    return {c.id: halves[canonical_text(c.text)] for c in clips}


def load_clips(manifest: str | Path) -> list[RealClip]:
    """Every clip of a manifest.jsonl (or of a folder's manifest.jsonl), audio paths made absolute from the
    manifest's folder; a bad row or a missing file is an error naming it."""
    manifest = Path(manifest)
    if manifest.is_dir():
        manifest = manifest / "manifest.jsonl"
    folder = manifest.parent
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such file (the real read-speech set is not here)")
    clips = []
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            clip = RealClip(str(row["id"]), folder / row["audio"], str(row["text"]), str(row.get("room", "")),
                            float(row.get("duration", 0.0)))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{manifest}:{n}: bad row ({e})") from e
        if not clip.audio.is_file():
            raise FileNotFoundError(f"{manifest}:{n}: audio {clip.audio} not found")
        clips.append(clip)
    return clips


def load_half(manifest: str | Path, half: str) -> list[RealClip]:
    """The clips of one half ("tune" or "report"), in manifest order (`manifest`: the file or its folder)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, not {half!r}")
    split = read_speech_split(manifest)
    return [c for c in load_clips(manifest) if split[c.id] == half]
