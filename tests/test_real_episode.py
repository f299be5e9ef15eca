"""kidsasr.evaluation.real_episode on a small manifest in the shared format (made here, so the test needs no real
speech), and the message when the set is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webvtt

from kidsasr.evaluation.real_episode import RealSpeechMissing, build_real_episode

SR = 16000


def fake_read_speech(root: Path, n: int = 6) -> Path:
    folder = root / "korean-read"
    (folder / "Room").mkdir(parents=True)
    rows = []
    for k in range(n):
        audio = (0.1 * np.sin(np.arange(SR * (1 + k % 3)) * 2 * np.pi * 220 / SR)).astype(np.float32)
        sf.write(folder / "Room" / f"c{k}.flac", audio, SR)
        rows.append({"id": f"c{k}", "audio": f"Room/c{k}.flac", "text": f"문장 {k}번이에요.", "duration": audio.size / SR})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                           encoding="utf-8")
    return root


def test_every_clip_once_with_gaps_and_reference_cues(tmp_path):
    root = fake_read_speech(tmp_path / "real-speech")
    episode = build_real_episode(tmp_path / "ep", root, seed=0)
    audio, sr = sf.read(episode.wav, dtype="float32")
    assert sr == SR and abs(audio.size / SR - episode.duration) < 1e-3
    captions = webvtt.read(str(episode.reference))
    assert sorted(c.text for c in captions) == sorted(f"문장 {k}번이에요." for k in range(6))
    spans = episode.spans
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    assert all(0.4 - 1e-3 <= g <= 2.0 + 1e-3 for g in gaps)
    assert [c.start_time.in_milliseconds() / 1000 for c in captions] == [round(s, 3) for s, _ in spans]
    meta = json.loads((tmp_path / "ep" / "spans.json").read_text())
    lo, hi = meta["music"]
    assert 0.3 * episode.duration < lo < hi <= 0.7 * episode.duration  # the bed under about the middle third
    quiet = audio[int(spans[0][1] * SR) + 800:int(spans[1][0] * SR) - 800]
    assert 0 < np.sqrt(np.mean(quiet ** 2)) < 0.01  # light noise in the gaps, no silence, no speech
    again = build_real_episode(tmp_path / "ep2", root, seed=0)
    assert again.spans == spans  # the same order and gaps for the same seed
    assert build_real_episode(tmp_path / "ep3", root, seed=1).spans != spans


def test_absent_set_is_a_clear_error(tmp_path):
    with pytest.raises(RealSpeechMissing, match="manifest is not there.*--real-speech"):
        build_real_episode(tmp_path / "ep", tmp_path / "nowhere")
