"""Audio cleaning for data prep: decode, measure and normalise broadcast audio.

An episode is decoded once to 16 kHz mono (`kidsasr.audio`: WAV, raw PCM, MP3, MP4/M4A through ffmpeg) and
analysed once per 32 ms frame: silero-vad speech probability (kidsasr.asr.vad, the same detector subtitling
uses), RMS level, and the spectrum of every non-speech frame. Every sentence is
then measured from those arrays (speech ratio, SNR, clipping, background condition: clean, or music when the
background spectrum has note-like peaks, else noise) and cut, DC-removed and loudness-normalised on its own, so
memory holds one episode at a time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ..asr.vad import FRAME, FRAME_SECONDS, speech_probabilities
from ..constants import SAMPLE_RATE

SILENCE_DB = -100.0
BAND = slice(6, 129)  # FFT bins of a 512-sample frame from about 190 Hz to 4 kHz: where music's notes show
MAX_SNR_DB = 60.0


@dataclass(frozen=True)
class CleaningConfig:
    vad_threshold: float = 0.5  # speech probability above which a frame counts as speech
    target_dbfs: float = -23.0  # RMS level of the speech frames after normalisation
    max_gain_db: float = 30.0  # never amplify (or attenuate) by more than this
    peak_ceiling_dbfs: float = -1.0  # the normalised clip's peak stays below this
    clip_level: float = 0.999  # |sample| at or above this (full scale 1.0) counts as clipped
    context_seconds: float = 1.0  # audio either side of a sentence used for its background estimate
    clean_snr_db: float = 25.0  # background this far below speech counts as clean
    music_peakiness_db: float = 0.75  # background spectrum peaks above this (mean dB over 190 Hz-4 kHz): music


@dataclass
class EpisodeSignal:
    """One episode's audio and its per-frame measurements."""

    audio: np.ndarray  # 16 kHz mono float32, as decoded
    speech_prob: np.ndarray  # silero-vad probability per frame
    frame_power: np.ndarray  # mean square per frame
    background_frames: np.ndarray  # indices of the frames the VAD calls non-speech, ascending
    background_spectra: np.ndarray  # their power spectra over BAND, one row each

    @property
    def duration(self) -> float:
        return self.audio.size / SAMPLE_RATE


@dataclass(frozen=True)
class SegmentQuality:
    speech_ratio: float  # share of the sentence's frames the VAD calls speech
    snr_db: float  # speech power over background power; MAX_SNR_DB for a digitally silent background
    clipped_fraction: float  # share of samples at full scale
    condition: str  # clean | music | noise: the background under the sentence
    speech_db: float  # RMS level of the speech frames


def frame_measures(audio: np.ndarray, background: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Mean square of every 512-sample frame (silero-vad's framing, last frame zero-padded), and the band power
    spectrum of each frame flagged in `background`.

    Computed `block` frames at a time, so a long episode never needs more than one block of temporaries.
    """
    n_frames = -(-audio.size // FRAME)
    offset = np.float32(audio.mean(dtype=np.float64))
    window = np.hanning(FRAME).astype(np.float32)
    power = np.empty(n_frames, dtype=np.float64)
    spectra = []
    for first in range(0, n_frames, block):
        count = min(block, n_frames - first)
        frames = np.zeros(count * FRAME, dtype=np.float32)
        samples = audio[first * FRAME: (first + count) * FRAME]
        frames[: samples.size] = samples - offset
        frames = frames.reshape(count, FRAME)
        power[first: first + count] = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / FRAME
        quiet = frames[background[first: first + count]]
        spectra.append((np.abs(np.fft.rfft(quiet * window, axis=1)[:, BAND]) ** 2).astype(np.float32))
    return power, np.concatenate(spectra)


def analyse(audio: np.ndarray, vad_threshold: float = 0.5) -> EpisodeSignal:
    """Run the VAD and the frame measurements over a whole 16 kHz mono episode."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    n_frames = -(-audio.size // FRAME)
    speech_prob = speech_probabilities(audio)[:n_frames]
    background = speech_prob < vad_threshold
    power, spectra = frame_measures(audio, background)
    return EpisodeSignal(audio, speech_prob, power, np.flatnonzero(background), spectra)


def peakiness_db(spectrum: np.ndarray, width: int = 9) -> float:
    """How far a power spectrum's peaks stand above its local average, in dB averaged over the bins.

    Notes and chords give sharp peaks (several dB); hiss, rumble and murmur give a smooth spectrum (near 0).
    """
    level = 10 * np.log10(spectrum + 1e-12)
    smooth = np.convolve(np.pad(level, width // 2, mode="edge"), np.ones(width) / width, mode="valid")
    return float(np.maximum(level - smooth, 0.0).mean())


def _frame_range(signal: EpisodeSignal, start: float, end: float) -> slice:
    first = max(0, int(start / FRAME_SECONDS))
    last = min(len(signal.speech_prob), max(first + 1, int(np.ceil(end / FRAME_SECONDS))))
    return slice(first, last)


def _db(power: float) -> float:
    return float(10 * np.log10(power)) if power > 1e-10 else SILENCE_DB


def segment_quality(signal: EpisodeSignal, start: float, end: float, config: CleaningConfig) -> SegmentQuality:
    """Speech ratio, SNR, clipping and background condition of [start, end) from the episode's frames."""
    inside = _frame_range(signal, start, end)
    is_speech = signal.speech_prob[inside] >= config.vad_threshold
    speech_ratio = float(is_speech.mean()) if is_speech.size else 0.0
    around = _frame_range(signal, max(0.0, start - config.context_seconds), end + config.context_seconds)
    around_speech = signal.speech_prob[around] >= config.vad_threshold
    power = signal.frame_power[around]
    background = power[~around_speech]
    speech_power = float(signal.frame_power[inside][is_speech].mean()) if is_speech.any() else 0.0
    noise_power = float(np.median(background)) if background.size else float(power.min(initial=0.0))
    if speech_power <= 0:
        snr = -MAX_SNR_DB
    elif noise_power <= 1e-10:
        snr = MAX_SNR_DB
    else:
        snr = float(np.clip(_db(max(speech_power - noise_power, 1e-10)) - _db(noise_power), -MAX_SNR_DB, MAX_SNR_DB))
    if snr >= config.clean_snr_db or not background.size:
        condition = "clean"
    else:
        rows = slice(*np.searchsorted(signal.background_frames, (around.start, around.stop)))
        tonal = peakiness_db(signal.background_spectra[rows].mean(axis=0)) >= config.music_peakiness_db
        condition = "music" if tonal else "noise"
    clip = signal.audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    clipped = float((np.abs(clip) >= config.clip_level).mean()) if clip.size else 0.0
    return SegmentQuality(speech_ratio, snr, clipped, condition, _db(speech_power))


def normalise(clip: np.ndarray, speech_db: float, config: CleaningConfig) -> tuple[np.ndarray, float]:
    """Remove DC and bring the speech level to the target (gain bounded, peak kept under the ceiling)."""
    clip = clip - clip.mean(dtype=np.float64).astype(np.float32)
    gain_db = float(np.clip(config.target_dbfs - speech_db, -config.max_gain_db, config.max_gain_db))
    peak = float(np.abs(clip).max(initial=0.0))
    if peak > 0:
        gain_db = min(gain_db, config.peak_ceiling_dbfs - 20 * np.log10(peak))
    return (clip * np.float32(10 ** (gain_db / 20))).astype(np.float32), gain_db


def flac_bytes(clip: np.ndarray) -> bytes:
    """16-bit 16 kHz FLAC: lossless for 16-bit sources, about half the size of WAV."""
    buf = io.BytesIO()
    sf.write(buf, clip, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()
