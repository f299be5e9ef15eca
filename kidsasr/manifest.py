"""The prepared-data contract between data prep, training and evaluation.

`kidsasr prep` writes, under its output folder:
  dataset/{train,dev,test}/*.parquet   Hugging Face `datasets` shards, one row per kept utterance: the
                                       Utterance fields below plus `audio` (datasets.Audio, 16 kHz FLAC bytes)
  manifest.jsonl                       the same rows without audio, audio referenced by source + offsets
  rejected.jsonl                       every rejected item with its reason
  report.md / report.json              hours read / kept / rejected, by reason, split and category
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import resample
from .constants import SAMPLE_RATE

SPLITS = ("train", "dev", "test")


@dataclass
class Utterance:
    id: str  # "<episode_id>_<sentence index:04d>"
    episode_id: str
    split: str
    audio_source: str  # episode audio (path, or "zip!member")
    start: float  # refined times, seconds in the episode
    end: float
    text: str  # spelling side: what subtitles show (digits kept)
    text_pron: str  # pronunciation side: numbers spelled in Hangul, for alignment and CTC
    raw_text: str  # the label as distributed
    category: str | None = None
    program: str | None = None
    speaker_id: str | None = None
    speaker_role: str | None = None  # child | adult | unknown
    age_group: str | None = None
    sex: str | None = None
    condition: str | None = None  # clean | music | noise
    confidence: float | None = None  # alignment confidence, 0..1
    label_start: float | None = None  # times as labelled, before refinement
    label_end: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "Utterance":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def split_files(prep_dir: str | Path, split: str) -> list[str]:
    """The split's non-empty parquet shards (a shard with no rows would make `datasets` fail obscurely)."""
    import pyarrow.parquet as pq

    files = sorted(str(p) for p in (Path(prep_dir) / "dataset" / split).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{prep_dir}: no parquet shards for split {split!r} (run `kidsasr prep` first)")
    files = [f for f in files if pq.ParquetFile(f).metadata.num_rows > 0]
    if not files:
        raise ValueError(f"{prep_dir}: split {split!r} is empty (every utterance was rejected?)")
    return files


def load_split(prep_dir: str | Path, split: str):
    """The split as a `datasets.Dataset`; its `audio` column holds undecoded {bytes, path} (see decode_audio).

    datasets' own Audio decoding needs torchcodec, which does not work on CPU-only machines, so clips are
    stored as 16 kHz FLAC bytes and decoded with soundfile.
    """
    import datasets

    ds = datasets.load_dataset("parquet", data_files={split: split_files(prep_dir, split)}, split=split)
    if len(ds) == 0:
        raise ValueError(f"{prep_dir}: split {split!r} is empty (every utterance was rejected?)")
    return ds.cast_column("audio", datasets.Audio(decode=False))


def decode_audio(cell: dict) -> np.ndarray:
    """Decode one `audio` cell ({bytes, path}) to 16 kHz mono float32."""
    data, sr = sf.read(io.BytesIO(cell["bytes"]), dtype="float32", always_2d=False)
    return resample(data.mean(axis=1) if data.ndim == 2 else data, sr, SAMPLE_RATE)
