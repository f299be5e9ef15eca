"""The real read-speech set (`../shared/real-speech/korean-read`) and its fixed tune / report halves.

The set is for evaluation only (CC BY-NC-ND 4.0: never train on it, never copy it into the repository). Anything
chosen by looking at real speech (a checkpoint, an interpolation weight, a threshold) is chosen on the `tune`
half and reported on the `report` half, so no figure is reported on the clips that chose it.

The halves split the distinct sentence texts, not the clips: every clip of a sentence (the same script read in
each room) goes with its sentence. Texts are ordered by the SHA-256 of their NFC form with whitespace collapsed,
the first half (rounded down) is `tune` and the rest `report`; the split depends on nothing but the texts.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

HALVES = ("tune", "report")


@dataclass(frozen=True)
class RealClip:
    id: str
    audio: Path  # absolute path of the FLAC file
    text: str  # the script, with punctuation
    room: str
    duration: float


def text_key(text: str) -> str:
    """The stable hash a sentence is ordered by: SHA-256 of its NFC form with whitespace collapsed."""
    canonical = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sentence_halves(texts: list[str]) -> dict[str, str]:
    """Each distinct text -> "tune" or "report" (see the module docstring)."""
    distinct = sorted(set(texts), key=lambda t: (text_key(t), t))
    cut = len(distinct) // 2
    return {text: HALVES[0] if i < cut else HALVES[1] for i, text in enumerate(distinct)}


def load_clips(folder: str | Path) -> list[RealClip]:
    """Every clip of `folder/manifest.jsonl`, audio paths made absolute; a missing file is an error naming it."""
    folder = Path(folder)
    manifest = folder / "manifest.jsonl"
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


def load_half(folder: str | Path, half: str) -> list[RealClip]:
    """The clips of one half ("tune" or "report"), in manifest order."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, not {half!r}")
    clips = load_clips(folder)
    halves = sentence_halves([c.text for c in clips])
    return [c for c in clips if halves[c.text] == half]
