"""Typed records for the children's-broadcast corpus (AI Hub 71502 layout) and its readers.

An Episode is one broadcast excerpt (one WAV + one JSON label with the same stem); a Sentence is one labelled
span in it. Audio is referenced, never loaded, until someone asks (AudioRef.load), so reading 1,000 hours of
labels stays cheap.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from .audio import SAMPLE_RATE, AudioInfo, audio_info, load_audio

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
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as zf:
            buf = io.BytesIO(zf.read(self.member))
        buf.name = f"{self.path}!{self.member}"
        return buf

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
