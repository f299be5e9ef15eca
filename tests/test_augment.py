from __future__ import annotations

import numpy as np
import pytest

from kidsasr.constants import SAMPLE_RATE
from kidsasr.training.augment import (Augmenter, colored_noise, formant_shift, mix_at_snr, pitch_shift, reverberate,
                                      room_impulse_response, speed_perturb, tonal_bed)
from kidsasr.training.recipe import AugmentConfig


def voiced(seconds: float = 1.0, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    return (0.3 * tone / np.max(np.abs(tone))).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_duration_by_the_factor(factor):
    audio = voiced(1.0)
    out = speed_perturb(audio, factor)
    assert out.dtype == np.float32
    assert len(out) == round(len(audio) / factor)
    assert dominant_frequency(out) == pytest.approx(220.0 * factor, rel=0.03)


def test_pitch_shift_keeps_length_and_moves_pitch():
    audio = voiced(1.0)
    out = pitch_shift(audio, 3.0)
    assert out.dtype == np.float32 and len(out) == len(audio)
    assert dominant_frequency(out) == pytest.approx(220.0 * 2 ** (3 / 12), rel=0.03)


def test_formant_shift_keeps_length_and_pitch_but_moves_the_envelope():
    audio = voiced(1.0, f0=150.0)
    out = formant_shift(audio, 1.25)
    assert out.dtype == np.float32 and len(out) == len(audio)
    assert dominant_frequency(out) % 150.0 == pytest.approx(0.0, abs=3.0) or \
        dominant_frequency(out) % 150.0 == pytest.approx(150.0, abs=3.0)

    def centroid(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x))
        return float(np.sum(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE) * spectrum) / np.sum(spectrum))

    assert centroid(out) > centroid(audio) * 1.05


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_mix_at_snr_hits_the_requested_ratio(snr):
    rng = np.random.default_rng(0)
    speech = 0.1 * voiced(1.0)
    noise = colored_noise(4000, rng, 1.0)  # shorter than the speech: looped
    out = mix_at_snr(speech, noise, snr)
    assert len(out) == len(speech) and out.dtype == np.float32
    residual = out - speech
    measured = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
    assert measured == pytest.approx(snr, abs=0.1)


def test_room_impulse_response_decays_as_slowly_as_its_reverberation_time():
    from pyroomacoustics.experimental import measure_rt60

    rng = np.random.default_rng(0)
    measured = {rt60: measure_rt60(room_impulse_response(rt60, rng), fs=SAMPLE_RATE) for rt60 in (0.25, 0.7)}
    for rt60, seconds in measured.items():
        assert seconds == pytest.approx(rt60, rel=0.2)
    assert measured[0.7] > 2 * measured[0.25]


def test_reverberate_keeps_length_and_loudness_and_fills_the_silence_after_a_sound():
    rng = np.random.default_rng(1)
    audio = np.concatenate([voiced(0.3), np.zeros(SAMPLE_RATE // 2, np.float32)])
    out = reverberate(audio, room_impulse_response(0.6, rng))
    assert out.dtype == np.float32 and len(out) == len(audio)
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(audio**2)), rel=0.01)
    tail = slice(int(0.35 * SAMPLE_RATE), int(0.5 * SAMPLE_RATE))
    assert np.sqrt(np.mean(out[tail] ** 2)) > 0.05 * np.sqrt(np.mean(out**2))  # the room still rings
    assert np.abs(np.corrcoef(out[: int(0.3 * SAMPLE_RATE)], audio[: int(0.3 * SAMPLE_RATE)])[0, 1]) > 0.3


def test_generated_beds_are_normalised_and_sized():
    rng = np.random.default_rng(1)
    for bed in (colored_noise(16000, rng, 0.0), colored_noise(16001, rng, 2.0), tonal_bed(20000, rng)):
        assert bed.dtype == np.float32 and np.std(bed) == pytest.approx(1.0, rel=0.01)
    assert len(tonal_bed(20000, rng)) == 20000


def test_augmenter_is_reproducible_and_keeps_contracts():
    config = AugmentConfig(speed_prob=0.5, pitch_prob=1.0, formant_prob=1.0, reverb_prob=1.0, reverb_rt60=[0.2, 0.3],
                           noise_prob=1.0, music_prob=1.0)
    augmenter = Augmenter(config)
    audio = voiced(0.8)
    a = augmenter(audio, np.random.default_rng(7))
    b = augmenter(audio, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.max(np.abs(a)) <= 1.0
    assert round(len(audio) / 1.1) <= len(a) <= round(len(audio) / 0.9)
    assert not np.array_equal(a, audio)


def test_disabled_augmenter_is_the_identity():
    audio = voiced(0.5)
    out = Augmenter(AugmentConfig(enabled=False, pitch_prob=1.0, noise_prob=1.0))(audio, np.random.default_rng(0))
    assert out is audio


def test_music_dir_without_audio_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="music_dir"):
        Augmenter(AugmentConfig(music_prob=1.0, music_dir=str(tmp_path)))(voiced(0.5), np.random.default_rng(0))
