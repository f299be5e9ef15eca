"""The shared real read-speech set's split into a tuning half and a reporting half (COORD.md's rule, exactly).

Distinct texts (NFC, stripped) are sorted by their SHA-256; the first half (rounded down) is "tune", the rest
"report"; every clip goes with its text's half, so no sentence is both tuned on and reported on.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path


def read_speech_split(manifest: Path) -> dict[str, str]:
    """Clip id -> "tune" | "report" for a real read-speech manifest.jsonl."""
    rows = [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines() if line.strip()]
    text_of = {row["id"]: unicodedata.normalize("NFC", row["text"]).strip() for row in rows}
    texts = sorted(set(text_of.values()), key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
    tune = set(texts[: len(texts) // 2])
    return {clip: "tune" if text in tune else "report" for clip, text in text_of.items()}
