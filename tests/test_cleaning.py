"""kidsasr.prep.cleaning on real espeak-ng speech: VAD speech ratio, SNR, clipping, condition, normalisation,
decoding."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from test_prep_bad_input import SR, speech

from kidsasr.audio import load_audio
from kidsasr.prep.cleaning import CleaningConfig, analyse, flac_bytes, normalise, segment_quality

CONFIG = CleaningConfig()


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    """1 s silence, a spoken sentence, 1 s silence (speech from 1.0 s to 1.0 + len)."""
    voice = speech("우리 같이 노래를 불러 볼까요") * 0.5
    silence = np.zeros(SR, np.float32)
    return np.concatenate([silence, voice, silence])


def _span(audio: np.ndarray) -> tuple[float, float]:
    return 1.0, audio.size / SR - 1.0


def test_speech_ratio_high_on_speech_and_zero_on_noise(utterance):
    rng = np.random.default_rng(0)
    signal = analyse(utterance + rng.normal(0, 1e-3, utterance.size).astype(np.float32))
    quality = segment_quality(signal, *_span(utterance), CONFIG)
    assert quality.speech_ratio > 0.6
    noise = analyse(rng.normal(0, 0.05, utterance.size).astype(np.float32))
    assert segment_quality(noise, *_span(utterance), CONFIG).speech_ratio < 0.1


def test_snr_estimate_follows_the_noise_level(utterance):
    rng = np.random.default_rng(1)
    white = rng.normal(0, 1, utterance.size).astype(np.float32)
    speech_rms = float(np.sqrt(np.mean(utterance[SR:-SR] ** 2)))
    estimates = []
    for true_snr in (30.0, 15.0, 5.0):
        noisy = utterance + white * speech_rms * 10 ** (-true_snr / 20)
        estimates.append(segment_quality(analyse(noisy), *_span(utterance), CONFIG).snr_db)
    assert estimates[0] > estimates[1] > estimates[2]
    assert abs(estimates[1] - 15.0) < 6.0, estimates


def test_condition_tells_music_from_noise(utterance):
    t = np.arange(utterance.size) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (262.0, 330.0, 392.0)).astype(np.float32) * 0.03
    white = np.random.default_rng(2).normal(0, 0.05, utterance.size).astype(np.float32)
    quiet = np.random.default_rng(3).normal(0, 1e-4, utterance.size).astype(np.float32)
    conditions = [segment_quality(analyse(utterance + bg), *_span(utterance), CONFIG).condition
                  for bg in (chord, white, quiet)]
    assert conditions == ["music", "noise", "clean"]


def test_clipping_is_detected(utterance):
    clipped = np.clip(utterance * 30, -1.0, 1.0)
    assert segment_quality(analyse(clipped), *_span(utterance), CONFIG).clipped_fraction > 0.01
    assert segment_quality(analyse(utterance), *_span(utterance), CONFIG).clipped_fraction == 0.0


def test_normalise_removes_dc_and_reaches_the_target_level(utterance):
    quiet = utterance[SR:-SR] * 0.05 + 0.2  # -26 dB and a large DC offset
    signal = analyse(quiet)
    quality = segment_quality(signal, 0.0, quiet.size / SR, CONFIG)
    clip, gain = normalise(quiet, quality.speech_db, CONFIG)
    assert abs(float(clip.mean())) < 1e-4
    assert gain > 10
    level = 20 * np.log10(np.sqrt(np.mean(clip ** 2)))
    assert abs(level - CONFIG.target_dbfs) < 3.0 or np.abs(clip).max() >= 10 ** (CONFIG.peak_ceiling_dbfs / 20) - 1e-3
    assert np.abs(clip).max() <= 10 ** (CONFIG.peak_ceiling_dbfs / 20) + 1e-4


def test_flac_roundtrip_is_16k_and_lossless_at_16_bit(utterance, tmp_path):
    data = flac_bytes(utterance)
    path = tmp_path / "clip.flac"
    path.write_bytes(data)
    decoded, sr = sf.read(path, dtype="float32")
    assert sr == SR and decoded.size == utterance.size
    assert np.abs(decoded - utterance).max() < 1 / 32768 + 1e-6


@pytest.mark.parametrize("suffix,codec", [(".mp3", "libmp3lame"), (".m4a", "aac"), (".pcm", None)])
def test_compressed_and_raw_inputs_decode_to_16k_mono(utterance, tmp_path, suffix, codec):
    """MP3 / M4A (ffmpeg) and headerless PCM decode to 16 kHz mono and still hold speech."""
    wav = tmp_path / "in.wav"
    sf.write(wav, np.stack([utterance, utterance], axis=1), 44100 if codec else SR, subtype="PCM_16")
    out = tmp_path / f"in{suffix}"
    if codec:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(out)], check=True)
    else:
        out.write_bytes((np.clip(utterance, -1, 1) * 32767).astype("<i2").tobytes())
    audio = load_audio(out)
    expected = utterance.size * (SR / 44100 if codec else 1)
    assert audio.ndim == 1 and abs(audio.size - expected) < 0.1 * SR
    assert segment_quality(analyse(audio), 0.0, audio.size / SR, CONFIG).speech_ratio > 0.3
