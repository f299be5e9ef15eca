"""Child-speech augmentation on 16 kHz mono float32 clips.

Each transform is a pure function of (audio, parameters); `Augmenter` draws the parameters from an
`AugmentConfig` with a caller-supplied random generator, so a run is reproducible from its seed.
Contracts: every transform keeps the sample rate; all but speed perturbation keep the length exactly;
speed perturbation by factor f returns round(len / f) samples (tempo and pitch change together, as in Kaldi).
SpecAugment is not here: it is the model config's masking (`mask_time_prob`, `mask_feature_prob`).
`bank_speech` adds whole utterances instead: unseen sentences from the project's text bank spoken by the
synthetic voices, for corpora too small to teach the decoder more than a few hundred sentences.
Reverberation convolves a clip with the impulse response of a simulated shoebox room (pyroomacoustics' image-source
method): the generated voices are dry, the rooms children are recorded in are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio import load_audio, resample
from ..constants import SAMPLE_RATE
from .recipe import AugmentConfig

N_FFT = 512
HOP = 128
CEPSTRAL_LIFTER = 30  # cepstral coefficients kept for the spectral envelope (vocal tract, not the harmonics)
# Simulating a room costs up to seconds at long reverberation times, so a run simulates this many rooms once (drawn
# from ROOMS_SEED) and each reverberated clip uses one of them.
ROOMS = 32
ROOMS_SEED = 0


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster: duration / factor, pitch and formants * factor."""
    if factor == 1.0:
        return audio.astype(np.float32, copy=False)
    out = resample(audio, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)
    target = int(round(len(audio) / factor))
    return _fit_length(out, target)


def pitch_shift(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch (and with it the whole spectrum) by `semitones`, same duration."""
    import librosa

    if semitones == 0 or len(audio) < N_FFT:
        return audio.astype(np.float32, copy=False)
    out = librosa.effects.pitch_shift(audio.astype(np.float32), sr=SAMPLE_RATE, n_steps=semitones, n_fft=N_FFT,
                                      hop_length=HOP)
    return _fit_length(out.astype(np.float32), len(audio))


def formant_shift(audio: np.ndarray, ratio: float) -> np.ndarray:
    """Scale the spectral envelope (formants, i.e. a shorter vocal tract when ratio > 1), keeping pitch.

    The envelope is the cepstrally smoothed log magnitude of each frame; the excitation (harmonics) is what
    remains after dividing it out. The envelope is warped on the frequency axis and the phase is kept.
    """
    import librosa

    if ratio == 1.0 or len(audio) < N_FFT:
        return audio.astype(np.float32, copy=False)
    spec = librosa.stft(audio.astype(np.float32), n_fft=N_FFT, hop_length=HOP)
    log_mag = np.log(np.abs(spec) + 1e-8)
    cepstrum = np.fft.irfft(log_mag, axis=0)
    cepstrum[CEPSTRAL_LIFTER:-CEPSTRAL_LIFTER] = 0.0
    envelope = np.fft.rfft(cepstrum, axis=0).real[: spec.shape[0]]
    bins = np.arange(spec.shape[0], dtype=np.float64)
    warped = np.stack([np.interp(bins / ratio, bins, envelope[:, t]) for t in range(envelope.shape[1])], axis=1)
    out_spec = spec * np.exp(warped - envelope)
    out = librosa.istft(out_spec, hop_length=HOP, n_fft=N_FFT, length=len(audio))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return (out / peak * min(peak, 0.99) if peak > 0 else out).astype(np.float32)


def room_impulse_response(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """The impulse response, source to microphone, of a random shoebox room (3-10 x 3-8 x 2.5-4.5 m) with
    reverberation time `rt60` seconds, the talker 0.3-2 m from the microphone."""
    import pyroomacoustics as pra

    dims = rng.uniform([3.0, 3.0, 2.5], [10.0, 8.0, 4.5])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(float(absorption)), max_order=max_order)
    mic = rng.uniform([1.0, 1.0, 0.8], dims - [1.0, 1.0, 1.0])
    for _ in range(100):  # a talker position inside the room, 0.3-2 m away
        direction = rng.normal(size=3)
        source = mic + rng.uniform(0.3, 2.0) * direction / np.linalg.norm(direction)
        if np.all(source > 0.2) and np.all(source < dims - 0.2):
            break
    else:
        source = mic + [0.3, 0.0, 0.0]
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    # The image-source tail of such rooms rings up to 2x longer than Sabine's formula says: steepen it to rt60.
    measured = float(pra.experimental.measure_rt60(rir, fs=SAMPLE_RATE))
    if measured > rt60:
        rir *= np.exp(-6.91 * np.arange(rir.size) / SAMPLE_RATE * (1.0 / rt60 - 1.0 / measured))
    return rir.astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`audio` heard through `rir`: same length, aligned on the direct path, same loudness (RMS)."""
    from scipy.signal import fftconvolve

    if audio.size == 0 or not np.any(rir):
        return audio.astype(np.float32, copy=False)
    direct = int(np.argmax(np.abs(rir)))
    out = fftconvolve(audio.astype(np.float64), rir.astype(np.float64))[direct : direct + len(audio)]
    rms_in, rms_out = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))), float(np.sqrt(np.mean(out**2)))
    out = out * (rms_in / rms_out) if rms_out > 0 else out
    return _below_clipping(out)


def mix_at_snr(audio: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """Add `background` (looped or cut to length) so that speech power / background power = snr_db."""
    if background.size == 0:
        raise ValueError("background has no samples")
    reps = int(np.ceil(len(audio) / len(background)))
    bed = np.tile(background, reps)[: len(audio)].astype(np.float64)
    speech_power = float(np.mean(audio.astype(np.float64) ** 2))
    bed_power = float(np.mean(bed**2))
    if speech_power == 0 or bed_power == 0:
        return audio.astype(np.float32, copy=False)
    gain = np.sqrt(speech_power / (bed_power * 10 ** (snr_db / 10)))
    out = audio + gain * bed
    return _below_clipping(out)


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum 1/f**exponent: 0 white, 1 pink, 2 brown."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=n)
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def tonal_bed(n: int, rng: np.random.Generator) -> np.ndarray:
    """A music-like bed: a sequence of random major/minor chords of harmonic tones with note envelopes."""
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    note = int(0.4 * SAMPLE_RATE)
    for start in range(0, n, note):
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        chord = (0, 4 if rng.random() < 0.5 else 3, 7)
        seg = slice(start, min(n, start + note))
        env = np.exp(-3.0 * (t[seg] - t[start]))
        for semis in chord:
            f0 = root * 2 ** (semis / 12)
            for harmonic in (1, 2, 3):
                out[seg] += env * np.sin(2 * np.pi * f0 * harmonic * t[seg] + rng.random() * 6.28) / harmonic
    return (out / (np.std(out) + 1e-12)).astype(np.float32)


@dataclass
class Augmenter:
    """Draws and applies the recipe's augmentations; `config.enabled = false` makes it the identity."""

    config: AugmentConfig

    def __post_init__(self) -> None:
        self._beds: list[np.ndarray] | None = None
        self._rooms: list[np.ndarray] | None = None

    def music_beds(self) -> list[np.ndarray]:
        if self._beds is None:
            folder = Path(self.config.music_dir) if self.config.music_dir else None
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"}) \
                if folder else []
            if folder and not files:
                raise FileNotFoundError(f"{folder}: augment.music_dir holds no wav/flac/ogg/mp3 files")
            self._beds = [load_audio(p, max_seconds=60.0) for p in files]
        return self._beds

    def rooms(self) -> list[np.ndarray]:
        if self._rooms is None:
            rng = np.random.default_rng(ROOMS_SEED)
            self._rooms = [room_impulse_response(float(rng.uniform(*self.config.reverb_rt60)), rng)
                           for _ in range(ROOMS)]
        return self._rooms

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        if not c.enabled:
            return audio
        if rng.random() < c.speed_prob:
            audio = speed_perturb(audio, float(rng.choice(c.speed_factors)))
        if rng.random() < c.pitch_prob:
            audio = pitch_shift(audio, float(rng.uniform(*c.pitch_semitones)))
        if rng.random() < c.formant_prob:
            audio = formant_shift(audio, float(rng.uniform(*c.formant_ratio)))
        if c.reverb_prob and rng.random() < c.reverb_prob:  # no draw when off: older recipes keep their draws
            rooms = self.rooms()
            audio = reverberate(audio, rooms[int(rng.integers(len(rooms)))])
        if rng.random() < c.music_prob:
            beds = self.music_beds()
            bed = beds[int(rng.integers(len(beds)))] if beds else tonal_bed(len(audio), rng)
            audio = mix_at_snr(audio, bed, float(rng.uniform(*c.music_snr_db)))
        if rng.random() < c.noise_prob:
            noise = colored_noise(len(audio), rng, float(rng.choice([0.0, 1.0, 2.0])))
            audio = mix_at_snr(audio, noise, float(rng.uniform(*c.noise_snr_db)))
        return audio


def bank_speech(count: int, exclude: set[str], seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """(label, audio) for up to `count` sentences of `kidsasr.synth.textbank.sentence_bank(seed)`, spoken (their
    pronunciation side) by the synthetic child and adult voices in turn; a sentence whose scoring form
    (`normalize_for_cer`) is in `exclude` is skipped, so held-out dev and test sentences never become training
    speech."""
    from ..synth.textbank import sentence_bank
    from ..textnorm import normalize_for_cer, parse_label
    from ..synth.voices import ADULT_HOSTS, CHILD_VOICES, speak

    voices = CHILD_VOICES + ADULT_HOSTS
    bank = sentence_bank(seed)
    order = np.random.default_rng(seed).permutation(len(bank))
    made = 0
    for i in order:
        if made == count:
            return
        label = bank[int(i)].label
        spoken = parse_label(label).pronunciation
        if not spoken or normalize_for_cer(label) in exclude:
            continue
        audio = speak(spoken, voices[made % len(voices)])
        if audio.size:
            made += 1
            yield label, audio


def _below_clipping(audio: np.ndarray) -> np.ndarray:
    """float32 audio, scaled down to a peak of 0.99 where it would clip."""
    peak = float(np.max(np.abs(audio)))
    return (audio / peak * 0.99 if peak > 0.99 else audio).astype(np.float32)


def _fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    if len(audio) >= n:
        return audio[:n]
    return np.pad(audio, (0, n - len(audio)))
