"""Shared fixtures: the offline whisper-base cache and one tiny generated corpus per test session."""

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
