"""Shared fixtures: the offline whisper-base cache, one tiny generated corpus per test session, that corpus as a
prep output, and a tiny random-initialised Whisper."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_HUB = Path(__file__).resolve().parents[1].parent / "shared" / "hf-cache" / "hub"
if SHARED_HUB.is_dir():
    os.environ.setdefault("HF_HUB_CACHE", str(SHARED_HUB))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WHISPER_BASE = "openai/whisper-base"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A `kidsasr synth --size tiny --seed 0` corpus in the distributed folder layout."""
    from kidsasr.synth.generator import generate

    return generate("tiny", seed=0, out=tmp_path_factory.mktemp("corpus") / "tiny")


@pytest.fixture(scope="session")
def prepared(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny corpus as a `kidsasr prep` output (kidsasr/manifest.py contract), cut at the label times:
    first episode dev, second test, the rest train."""
    import io

    import pandas as pd
    import soundfile as sf

    from kidsasr.constants import SAMPLE_RATE
    from kidsasr.corpus.reader import read_corpus
    from kidsasr.manifest import Utterance
    from kidsasr.textnorm import parse_label

    out = tmp_path_factory.mktemp("prepared")
    episodes = sorted(read_corpus(tiny_corpus), key=lambda e: e.id)
    assert len(episodes) >= 3
    for n, episode in enumerate(episodes):
        split = "dev" if n == 0 else "test" if n == 1 else "train"
        audio = episode.audio.load()
        rows = []
        for s in episode.sentences:
            if s.start is None or s.end is None or s.end - s.start < 0.3:
                continue
            transcript = parse_label(s.text)
            clip = audio[int(s.start * SAMPLE_RATE): int(s.end * SAMPLE_RATE)]
            buf = io.BytesIO()
            sf.write(buf, clip, SAMPLE_RATE, format="FLAC")
            row = Utterance(id=f"{episode.id}_{s.index:04d}", episode_id=episode.id, split=split,
                            audio_source=str(episode.audio), start=s.start, end=s.end, text=transcript.spelling,
                            text_pron=transcript.pronunciation, raw_text=s.text).to_row()
            rows.append({**row, "audio": {"bytes": buf.getvalue(), "path": None}})
        folder = out / "dataset" / split
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(folder / f"{episode.id}.parquet")
    return out


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A random-initialised 2+2-layer Whisper with whisper-base's tokenizer, feature extractor and generation
    config (no download: those come from the offline cache); the GPU check's dry-run model."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    from gpu_check import make_tiny_model

    return Path(make_tiny_model(WHISPER_BASE, tmp_path_factory.mktemp("tiny-whisper")))
