"""The real read-speech set (`../shared/real-speech/korean-read`, CC BY-NC-ND 4.0) and its fixed tune / report halves.

Evaluation only: never train on it, never copy it (or audio made from it) into the repository. Anything chosen by
looking at real speech (a checkpoint, a threshold) is chosen on the "tune" half and reported on the "report" half.

The halves split the distinct sentence texts, not the clips (the same script is read in three rooms): the distinct
texts, NFC-normalised and stripped, are ordered by the SHA-256 of their UTF-8 bytes; the first half (rounded down)
is "tune", the rest "report", and every clip goes with its text's half.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from pathlib import Path

HALVES = ("tune", "report")
READ_SPEECH_MANIFEST = Path("korean-read") / "manifest.jsonl"
ENV_VAR = "KIDSASR_REAL_SPEECH"
SOURCE_NOTE = ("the Deeply Korean Read Speech Corpus (github.com/deeplyinc/Korean-Read-Speech-Corpus, CC BY-NC-ND "
               "4.0), laid out as in ../shared/real-speech: korean-read/manifest.jsonl with audio paths relative to it")


def _canonical(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def read_speech_split(manifest: Path) -> dict[str, str]:
    """Clip id -> "tune" | "report" for every row of the read-speech manifest (rule in the module docstring)."""
    rows = [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = sorted({_canonical(row["text"]) for row in rows}, key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
    tune = set(texts[: len(texts) // 2])
    return {row["id"]: HALVES[0] if _canonical(row["text"]) in tune else HALVES[1] for row in rows}


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
