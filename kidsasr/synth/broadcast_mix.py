"""Synthetic broadcast sound: music beds, applause, laughter, background noise and room reverb.

Every generator is a pure function of a numpy Generator and a length, returns 16 kHz mono float32 at unit RMS
(so the mixer sets levels in dB relative to speech), and costs little: a music bed is one synthesised loop of
chords, bass and melody tiled to length, as background music in children's programmes usually is.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..constants import SAMPLE_RATE

SR = SAMPLE_RATE

# Chord progressions as scale degrees of a major key (I-V-vi-IV, I-vi-IV-V, vi-IV-I-V, I-IV-V-IV).
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3))
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms(audio: np.ndarray, block: int = 1 << 20) -> float:
    """Root mean square, summed in float64 a block at a time (no full-length float64 copy)."""
    if not audio.size:
        return 0.0
    total = sum(float(np.square(audio[i:i + block], dtype=np.float64).sum()) for i in range(0, audio.size, block))
    return float(np.sqrt(total / audio.size))


def unit_rms(audio: np.ndarray) -> np.ndarray:
    audio = audio.astype(np.float32, copy=False)
    level = rms(audio)
    if level > 0:
        audio /= np.float32(level)  # in place: callers hand over arrays they no longer need
    return audio


def fade(audio: np.ndarray, fade_in: float, fade_out: float) -> np.ndarray:
    """Linear fades in place (seconds), clipped to half the clip each."""
    n_in = min(int(fade_in * SR), audio.size // 2)
    n_out = min(int(fade_out * SR), audio.size // 2)
    if n_in:
        audio[:n_in] *= np.linspace(0.0, 1.0, n_in, dtype=np.float32)
    if n_out:
        audio[-n_out:] *= np.linspace(1.0, 0.0, n_out, dtype=np.float32)
    return audio


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _tone(freq: float, n: int, harmonics: tuple[float, ...], phase: float = 0.0) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) / SR
    out = np.zeros(n)
    for k, amp in enumerate(harmonics, 1):
        if freq * k < SR / 2:
            out += amp * np.sin(2 * np.pi * freq * k * t + phase * k)
    return out


def _envelope(n: int, attack: float, decay: float) -> np.ndarray:
    """Attack ramp then exponential decay with time constant `decay` (seconds)."""
    t = np.arange(n) / SR
    return np.minimum(t / max(attack, 1e-3), 1.0) * np.exp(-np.maximum(t - attack, 0.0) / decay)


def music_loop(rng: np.random.Generator) -> np.ndarray:
    """One loop of background music: four bars of pad chords, a bass line and a plucked melody."""
    tempo = rng.uniform(80, 132)
    beat = int(SR * 60.0 / tempo)
    bar = 4 * beat
    root = 48 + int(rng.integers(0, 12))  # C3..B3
    degrees = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    pad_harmonics = tuple(rng.uniform(0.1, 0.6, 4) * (1.0, 0.5, 0.3, 0.15))
    pluck_harmonics = (1.0, 0.4, 0.25, 0.1, 0.05)
    loop = np.zeros(4 * bar)

    def scale_note(degree: int) -> int:
        return root + 12 * (degree // 7) + MAJOR_SCALE[degree % 7]

    for i, degree in enumerate(degrees):
        start = i * bar
        chord = [scale_note(degree + step) + 12 for step in (0, 2, 4)]
        pad_env = np.minimum(np.arange(bar) / (0.25 * SR), 1.0) * np.minimum((bar - np.arange(bar)) / (0.2 * SR), 1.0)
        for note in chord:
            loop[start:start + bar] += 0.25 * pad_env * _tone(_midi_hz(note), bar, pad_harmonics, rng.uniform(0, 6.28))
        for b in range(4):  # bass on every beat, root and fifth
            note = scale_note(degree) - 12 + (7 if b % 2 else 0)
            loop[start + b * beat:start + (b + 1) * beat] += 0.5 * _envelope(beat, 0.01, 0.25) * _tone(
                _midi_hz(note), beat, (1.0, 0.3))
        for half in range(8):  # melody on eighth notes: chord tones over two octaves, some rests
            if rng.random() < 0.2:
                continue
            length = beat // 2
            note = scale_note(degree + int(rng.choice((0, 2, 4, 7, 9)))) + 24
            at = start + half * length
            pluck = _envelope(length, 0.005, 0.12) * _tone(_midi_hz(note), length, pluck_harmonics)
            loop[at:at + length] += 0.35 * pluck
    return unit_rms(loop)


def music_bed(loop: np.ndarray, seconds: float, rng: np.random.Generator, block: int = 1 << 20) -> np.ndarray:
    """`seconds` of a music loop tiled, with a slow swell in level and fades at both ends.

    Built in place a block at a time, so a 10-minute bed costs one float32 array and nothing more.
    """
    n = int(seconds * SR)
    bed = np.resize(loop, n)
    omega, phase = 2 * np.pi / (rng.uniform(8, 20) * SR), rng.uniform(0, 6.28)
    for start in range(0, n, block):
        t = np.arange(start, min(start + block, n), dtype=np.float64)
        bed[start:start + block] *= (1.0 + 0.15 * np.sin(omega * t + phase)).astype(np.float32)
    return fade(unit_rms(bed), 1.0, 1.5)


def applause(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """An audience clapping: many short band-passed noise bursts at random times under a swell-and-fade envelope."""
    n = int(seconds * SR)
    rate = rng.uniform(25, 80)  # claps per second across the audience
    impulses = np.zeros(n)
    times = rng.integers(0, n, int(rate * seconds))
    np.add.at(impulses, times, rng.uniform(0.3, 1.0, times.size))
    clap = rng.standard_normal(int(0.02 * SR)) * np.exp(-np.arange(int(0.02 * SR)) / (0.004 * SR))
    sound = signal.fftconvolve(impulses, clap)[:n]
    sound = signal.sosfilt(signal.butter(2, (700, 5000), "bandpass", fs=SR, output="sos"), sound)
    envelope = np.minimum(np.arange(n) / (0.3 * SR), 1.0) * np.minimum((n - np.arange(n)) / (0.8 * SR), 1.0)
    return unit_rms(sound * envelope)


def _laugh(rng: np.random.Generator, n: int) -> np.ndarray:
    """One person laughing: 'ha' pulses at 4-6 Hz, a voiced buzz plus breath through two formant filters."""
    f0 = rng.uniform(180, 380)
    t = np.arange(n) / SR
    pitch = f0 * (1.0 - 0.25 * t / max(t[-1], 1e-3))  # falls over the laugh
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    buzz = sum(np.sin(k * phase) / k for k in range(1, 12))
    source = buzz + 0.6 * rng.standard_normal(n)
    voiced = np.zeros(n)
    for formant, width in ((rng.uniform(650, 900), 200), (rng.uniform(1100, 1500), 300)):
        sos = signal.butter(2, (formant - width / 2, formant + width / 2), "bandpass", fs=SR, output="sos")
        voiced += signal.sosfilt(sos, source)
    pulses = np.clip(np.sin(2 * np.pi * rng.uniform(4, 6) * t), 0.0, None) ** 2
    return voiced * pulses * np.exp(-t / rng.uniform(0.8, 1.8))


def laughter(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A few people laughing together, starting at slightly different moments."""
    n = int(seconds * SR)
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 6))):
        offset = int(rng.uniform(0, 0.3) * SR)
        out[offset:] += rng.uniform(0.5, 1.0) * _laugh(rng, n - offset)
    return unit_rms(out)


def laugh(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """One speaker's short laugh, for a label's `l/` tag."""
    return unit_rms(_laugh(rng, int(seconds * SR)))


def breath(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """An audible breath, for a label's `b/` tag: band-passed noise swelling and fading."""
    n = int(seconds * SR)
    sound = signal.sosfilt(signal.butter(2, (400, 3000), "bandpass", fs=SR, output="sos"), rng.standard_normal(n))
    return unit_rms(sound * np.sin(np.pi * np.arange(n) / n) ** 2)


def knock(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A studio noise, for a label's `n/` tag: one to three knocks or clatters, each a decaying noise burst."""
    n = int(seconds * SR)
    impulses = np.zeros(n)
    hits = int(rng.integers(1, 4))
    impulses[rng.integers(0, max(n - SR // 10, 1), hits)] = rng.uniform(0.5, 1.0, hits)
    hit = rng.standard_normal(int(0.05 * SR)) * np.exp(-np.arange(int(0.05 * SR)) / (0.01 * SR))
    sound = signal.fftconvolve(impulses, hit)[:n]
    return unit_rms(signal.sosfilt(signal.butter(2, 2500, "lowpass", fs=SR, output="sos"), sound))


def background_noise(rng: np.random.Generator, seconds: float, kind: str) -> np.ndarray:
    """Studio or location noise: "pink" (hiss), "brown" (rumble), "hum" (mains and fan) or "crowd" (murmur)."""
    n = int(seconds * SR)
    white = rng.standard_normal(n)
    if kind == "pink":  # Kellet's economy 1/f filter
        sound = signal.lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                               [1.0, -2.494956002, 2.017265875, -0.522189400], white)
    elif kind == "brown":
        sound = signal.sosfilt(signal.butter(1, 300, "lowpass", fs=SR, output="sos"), white)
    elif kind == "hum":
        t = np.arange(n) / SR
        mains = rng.choice((50.0, 60.0))
        sound = sum(np.sin(2 * np.pi * mains * k * t) / k for k in (1, 2, 3, 5)) + 0.3 * signal.sosfilt(
            signal.butter(2, 1500, "lowpass", fs=SR, output="sos"), white)
    elif kind == "crowd":
        band = signal.sosfilt(signal.butter(2, (250, 2500), "bandpass", fs=SR, output="sos"), white)
        murmur = signal.sosfilt(signal.butter(1, 3, "lowpass", fs=SR, output="sos"), rng.standard_normal(n))
        sound = band * (1.0 + 2.0 * np.abs(murmur) / (rms(murmur) or 1.0))
    else:
        raise ValueError(f"unknown noise kind {kind!r}: expected pink, brown, hum or crowd")
    return unit_rms(sound)


NOISE_KINDS = ("pink", "brown", "hum", "crowd")


def room_impulse(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A synthetic room response: the direct sound, then exponentially decaying noise reaching -60 dB at rt60."""
    n = int(rt60 * SR)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    tail[: int(0.003 * SR)] = 0.0  # a short pre-delay before the first reflections
    tail = signal.sosfilt(signal.butter(1, 4000, "lowpass", fs=SR, output="sos"), tail)
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def reverberate(audio: np.ndarray, impulse: np.ndarray, wet: float) -> np.ndarray:
    """Dry signal plus `wet` times its reverberant tail (the result is longer by the impulse's length)."""
    out = wet * signal.oaconvolve(audio, impulse)
    out[: audio.size] += audio
    return out.astype(np.float32)
