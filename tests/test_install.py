"""The installable package: the wheel, installed alone into a fresh virtualenv outside the checkout, subtitles a
clip with the built-in style and a CTranslate2 model, carries no torch, and fits its disk budget."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import write_wav

from conftest import WHISPER_BASE
from test_models import espeak

ROOT = Path(__file__).resolve().parents[1]
CORE_BUDGET_MB = 600  # the core install on disk: kidsasr and its dependencies (the virtualenv holds no pip)

pytestmark = pytest.mark.slow
OUTSIDE = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the checkout leaks in


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, cwd=out)
    (path,) = out.glob("kidsasr-*.whl")
    return path


@pytest.fixture(scope="module")
def core(tmp_path_factory, wheel) -> Path:
    """A fresh virtualenv (no pip of its own) holding the wheel and its core dependencies only."""
    venv = tmp_path_factory.mktemp("core-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=OUTSIDE)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    str(wheel)], check=True, cwd=venv, env=OUTSIDE)
    return venv


def test_wheel_ships_the_files_read_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"kidsasr/subtitles/styles/kids.yaml", "kidsasr/subtitles/styles/adult.yaml",
            "kidsasr/asr/silero/silero_vad_16k_sequence.onnx", "kidsasr/asr/silero/LICENSE",
            "kidsasr/data/sentences_hand.tsv", "kidsasr/data/templates.tsv", "kidsasr/data/vocabulary.json"} <= names


def test_core_install_has_no_torch_and_fits_its_budget(core):
    probe = subprocess.run([str(core / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True,
                           env=OUTSIDE, cwd=core)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    size = sum(f.stat().st_size for f in core.rglob("*") if f.is_file() and not f.is_symlink())
    assert size / 2**20 <= CORE_BUDGET_MB, f"core install is {size / 2**20:.0f} MB"


def test_core_install_subtitles_a_clip_with_a_ct2_model(core, tmp_path):
    from kidsasr.asr.export import export_ct2

    model = export_ct2(WHISPER_BASE, tmp_path / "ct2")  # in the full install
    silence = np.zeros(8000, np.float32)
    clip = tmp_path / "clip.wav"
    write_wav(clip, np.concatenate([silence, espeak("우리 친구들 안녕! 오늘은 토끼와 거북이 이야기를 들려줄게요."),
                                    silence]))
    kidsasr = str(core / "bin" / "kidsasr")
    done = subprocess.run([kidsasr, "subtitle", str(clip), "-o", "clip.vtt", "--model", str(model)],
                          cwd=tmp_path, env=OUTSIDE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    vtt = (tmp_path / "clip.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "-->" in vtt
    assert "style kids" in done.stderr

    refused = subprocess.run([kidsasr, "subtitle", str(clip), "-o", "hf.vtt", "--model", WHISPER_BASE],
                             cwd=tmp_path, env=OUTSIDE, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("kidsasr subtitle:")]
    assert len(errors) == 1 and "kidsasr[all]" in errors[0] and f"kidsasr export {WHISPER_BASE}" in errors[0]
