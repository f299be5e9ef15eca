"""Audio cleaning for data prep: decode, measure and normalise broadcast audio.

An episode is decoded once to 16 kHz mono (`kidsasr.audio`: WAV, raw PCM, MP3, MP4/M4A through ffmpeg) and
analysed once per 32 ms frame: silero-vad speech probability (kidsasr.asr.vad, the same detector subtitling
uses), RMS level, and the spectrum of every non-speech frame. Every sentence is
then measured from those arrays (speech ratio, SNR, clipping, background condition) and cut, DC-removed and
loudness-normalised on its own, so memory holds one episode at a time.

Background condition: a timeline over the whole episode (`background_timeline`). Each frame the VAD is sure holds
no speech is "clean" when it is quiet next to the speech around it (a local reference, so fader moves do not
count), else "music" when its spectrum's fine structure (peaks over the local average) persists into the next
frame, as held notes do and hiss, rumble, murmur, applause and laughter do not, else "noise"; both measures are
smoothed over neighbouring background frames. Every frame under speech takes the state of the nearest background
frame, unless the background has gone from under it: the quietest frame within `floor_window_seconds` (minimum
statistics; speech cannot hide a background louder than that) lies more than `floor_drop_db` below that background
frame's level, as when a theme tune ends under the first sentence; such a frame is clean. A sentence is music (or
noise) when more than `condition_share` of it is, the way the generator's truth counts a sentence under a bed.
Measured against truth.jsonl by `data_prep/bench_condition.py`.
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
CONDITIONS = ("clean", "music", "noise")  # the timeline's states 0, 1, 2
REFERENCE_SECONDS = 15.0  # speech within this distance sets the level a background frame is compared with


@dataclass(frozen=True)
class CleaningConfig:
    vad_threshold: float = 0.5  # speech probability above which a frame counts as speech
    target_dbfs: float = -23.0  # RMS level of the speech frames after normalisation
    max_gain_db: float = 30.0  # never amplify (or attenuate) by more than this
    peak_ceiling_dbfs: float = -1.0  # the normalised clip's peak stays below this
    clip_level: float = 0.999  # |sample| at or above this (full scale 1.0) counts as clipped
    context_seconds: float = 1.0  # audio either side of a sentence used for its SNR estimate
    # Background condition (tuned on generated demo corpora, seeds 0, 5, 7, 21, 22, 23; data_prep/bench_condition.py):
    background_threshold: float = 0.3  # speech probability below which a frame shows the background alone
    smoothing_frames: int = 15  # background frames over which level (median) and persistence (mean) are smoothed
    clean_below_db: float = -24.0  # background this far or further below the local speech level: clean
    music_persistence: float = 0.15  # frame-to-frame correlation of the spectrum's fine structure: music above
    event_level_db: float = -4.0  # a background this loud (applause, laughter) is noise unless ...
    event_persistence: float = 0.45  # ... its fine structure persists at least this much
    condition_share: float = 0.4  # share of a sentence under music (or noise) that makes it a music (noise) one
    floor_window_seconds: float = 1.0  # minimum statistics under speech: the quietest frame within this span
    floor_drop_db: float = 8.0  # that far below the nearest background frame's level: the background is gone


@dataclass
class EpisodeSignal:
    """One episode's audio and its per-frame measurements."""

    audio: np.ndarray  # 16 kHz mono float32, as decoded
    speech_prob: np.ndarray  # silero-vad probability per frame
    frame_power: np.ndarray  # mean square per frame
    background_frames: np.ndarray  # indices of the frames the VAD calls non-speech, ascending
    background_state: np.ndarray  # per frame, the background under it: an index into CONDITIONS

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


def analyse(audio: np.ndarray, config: CleaningConfig | None = None) -> EpisodeSignal:
    """Run the VAD and the frame measurements over a whole 16 kHz mono episode."""
    config = config or CleaningConfig()
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    n_frames = -(-audio.size // FRAME)
    speech_prob = speech_probabilities(audio)[:n_frames]
    clear = speech_prob < config.background_threshold
    power, spectra = frame_measures(audio, clear)
    state = background_timeline(speech_prob, power, np.flatnonzero(clear), spectra, config)
    return EpisodeSignal(audio, speech_prob, power, np.flatnonzero(speech_prob < config.vad_threshold), state)


def fine_structure(spectra: np.ndarray, width: int = 9) -> np.ndarray:
    """Each power spectrum's log level minus its local average over `width` bins, as a unit vector per row:
    the peaks and dips that notes make, with the overall shape (tilt, band edges) taken out."""
    from scipy.ndimage import uniform_filter1d

    level = 10 * np.log10(spectra + 1e-12)
    detail = level - uniform_filter1d(level, width, axis=1, mode="nearest")
    detail -= detail.mean(axis=1, keepdims=True)
    return detail / (np.linalg.norm(detail, axis=1, keepdims=True) + 1e-9)


def background_timeline(speech_prob: np.ndarray, power: np.ndarray, clear: np.ndarray, spectra: np.ndarray,
                        config: CleaningConfig) -> np.ndarray:
    """Per frame, the background under it (0 clean, 1 music, 2 noise), from the frames in `clear` (indices of
    frames with no speech, ascending) and their band spectra; see the module docstring."""
    from scipy.ndimage import median_filter, minimum_filter1d

    n = speech_prob.size
    if not clear.size:
        return np.zeros(n, dtype=np.int8)
    level = 10 * np.log10(np.maximum(power, 1e-12))
    speech = speech_prob >= config.vad_threshold
    reference = _local_speech_level(level, speech)
    relative = level[clear] - reference[clear]
    detail = fine_structure(spectra)
    follows = np.diff(clear) == 1  # frame i and the next background frame are neighbours in time
    persistence = np.full(clear.size, np.nan)
    persistence[:-1][follows] = np.einsum("ij,ij->i", detail[:-1][follows], detail[1:][follows])
    width = config.smoothing_frames
    smooth_level = median_filter(relative, width, mode="nearest")
    smooth_persistence = _nan_mean_filter(persistence, width)
    music = (smooth_persistence >= config.music_persistence) & ~(
        (smooth_level > config.event_level_db) & (smooth_persistence < config.event_persistence))
    state = np.where(smooth_level < config.clean_below_db, 0, np.where(music, 1, 2)).astype(np.int8)
    # every frame takes the state of the nearest background frame
    frames = np.arange(n)
    right = np.minimum(np.searchsorted(clear, frames), clear.size - 1)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(frames - clear[left]) <= np.abs(clear[right] - frames), left, right)
    window = max(1, int(round(config.floor_window_seconds / FRAME_SECONDS)))
    floor = minimum_filter1d(level, window, mode="nearest") - reference
    gone = speech & (floor < smooth_level[nearest] - config.floor_drop_db)
    return np.where(gone, 0, state[nearest]).astype(np.int8)


def _local_speech_level(level: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Per frame, the median level (dB) of the speech frames within REFERENCE_SECONDS, on a one-second grid."""
    step = max(1, int(round(1.0 / FRAME_SECONDS)))
    reach = int(round(REFERENCE_SECONDS / FRAME_SECONDS))
    fallback = float(np.median(level[speech])) if speech.any() else float(level.max(initial=0.0))
    grid = np.arange(0, level.size, step)
    reference = np.array([np.median(level[a:b][speech[a:b]]) if speech[a:b].any() else fallback
                          for a, b in ((max(0, g - reach), g + reach) for g in grid)])
    return np.repeat(reference, step)[: level.size]


def _nan_mean_filter(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the finite values within `width` positions (centred); 0 where there are none."""
    finite = np.isfinite(values)
    kernel = np.ones(width)
    total = np.convolve(np.where(finite, values, 0.0), kernel, mode="same")
    count = np.convolve(finite.astype(float), kernel, mode="same")
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


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
    under = np.bincount(signal.background_state[inside], minlength=len(CONDITIONS)) / max(inside.stop - inside.start, 1)
    condition = ("music" if under[1] > config.condition_share else
                 "noise" if under[2] > config.condition_share else "clean")
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
