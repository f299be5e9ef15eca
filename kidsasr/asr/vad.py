"""Speech regions (silero-vad) and a music-dominance measure, on 16 kHz mono audio.

silero-vad scores 512-sample (32 ms) frames with a recurrent state carried across calls, so
`SpeechDetector.feed` accepts an episode in consecutive chunks and keeps only one probability per frame: a 3-hour
episode costs about 1.4 MB of probabilities, never the audio. Regions come from silero's own state machine
(`get_speech_timestamps_from_probs`).

Music dominance: the share of a region's energy held in sustained spectral peaks, i.e. narrow partials that stay
on the same frequency (within one bin) for at least `MIN_NOTE_SECONDS`. Held notes and chords do that; speech
harmonics follow the voice's pitch contour and its syllables stop every ~0.2 s, so even a flat synthetic voice
keeps a low share, and speech over a quiet music bed keeps most of its energy outside the music's partials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME = 512  # silero-vad's window at 16 kHz
FRAME_SECONDS = FRAME / SAMPLE_RATE
CONTEXT = 64  # samples of the previous frame silero-vad prepends
BLOCK_FRAMES = 512
MIN_NOTE_SECONDS = 0.45
MUSIC_DOMINANCE_THRESHOLD = 0.6


@dataclass
class VadOptions:
    threshold: float = 0.5
    min_speech_duration_ms: int = 250
    min_silence_duration_ms: int = 300
    speech_pad_ms: int = 100


class SpeechDetector:
    """Streaming silero-vad: feed consecutive chunks, then ask for the regions.

    Uses silero's sequence ONNX export (one ONNX call per block of frames instead of one per 32 ms frame, the
    same probabilities as the streaming model), carrying its LSTM state and 64-sample context between chunks.
    """

    def __init__(self, options: VadOptions | None = None):
        import onnxruntime as ort
        import silero_vad

        self.options = options or VadOptions()
        session_options = ort.SessionOptions()
        session_options.inter_op_num_threads = 1
        session_options.intra_op_num_threads = 1
        model = Path(silero_vad.__file__).parent / "data" / "silero_vad_16k_sequence.onnx"
        self.session = ort.InferenceSession(str(model), sess_options=session_options,
                                            providers=["CPUExecutionProvider"])
        self._state = (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.samples = 0
        self.probs: list[float] = []

    def feed(self, chunk: np.ndarray) -> None:
        self.samples += chunk.size
        audio = np.concatenate([self._pending, chunk.astype(np.float32, copy=False)])
        whole = audio.size // FRAME * FRAME
        self._run(audio[:whole].reshape(-1, FRAME))
        self._pending = audio[whole:]

    def _run(self, frames: np.ndarray) -> None:
        for first in range(0, len(frames), BLOCK_FRAMES):
            block = frames[first : first + BLOCK_FRAMES]
            contexts = np.concatenate([self._context[None], block[:-1, -CONTEXT:]])
            probs, h, c = self.session.run(["speech_probs", "hn", "cn"], {
                "input": np.concatenate([contexts, block], axis=1), "h": self._state[0], "c": self._state[1]})
            self._state = (h, c)
            self._context = block[-1, -CONTEXT:].copy()
            self.probs.extend(probs.reshape(-1).tolist())

    def finish(self) -> list[tuple[float, float]]:
        """Flush the last partial frame and return speech regions in seconds."""
        if self._pending.size:
            tail = np.zeros((1, FRAME), dtype=np.float32)
            tail[0, : self._pending.size] = self._pending
            self._run(tail)
            self._pending = np.zeros(0, dtype=np.float32)
        return regions_from_probs(self.probs, self.samples, self.options)

    def mean_prob(self, start: float, end: float) -> float:
        """Mean speech probability of the frames inside [start, end)."""
        a, b = int(start / FRAME_SECONDS), max(int(start / FRAME_SECONDS) + 1, int(np.ceil(end / FRAME_SECONDS)))
        window = self.probs[a:b]
        return float(np.mean(window)) if window else 0.0


def regions_from_probs(probs: list[float], samples: int, options: VadOptions | None = None) -> list[tuple[float, float]]:
    from silero_vad import get_speech_timestamps_from_probs

    if not probs:
        return []
    o = options or VadOptions()
    stamps = get_speech_timestamps_from_probs(
        probs, sampling_rate=SAMPLE_RATE, threshold=o.threshold, min_speech_duration_ms=o.min_speech_duration_ms,
        min_silence_duration_ms=o.min_silence_duration_ms, speech_pad_ms=o.speech_pad_ms,
        audio_length_samples=samples)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def speech_regions(audio: np.ndarray, options: VadOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions of an in-memory clip (for long files use SpeechDetector with streamed chunks)."""
    detector = SpeechDetector(options)
    detector.feed(audio)
    return detector.finish()


def music_dominance(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Share (0..1) of the clip's spectral energy in partials held steady for >= MIN_NOTE_SECONDS."""
    import scipy.fft
    from scipy.ndimage import maximum_filter1d

    n_fft, hop = 1024, 320
    if audio.size < n_fft:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float32), n_fft)[::hop]
    spectrum = scipy.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)  # stays complex64
    power = (spectrum.real ** 2 + spectrum.imag ** 2).T  # (freq, time)
    total = power.sum()
    if total <= 1e-10:
        return 0.0
    local_max = power >= maximum_filter1d(power, size=5, axis=0)
    prominent = power > 30.0 * np.median(power, axis=0, keepdims=True)
    peaks = maximum_filter1d((local_max & prominent).view(np.uint8), 3, axis=0, mode="constant")  # +-1 bin
    held = runs_at_least(peaks, max(2, int(round(MIN_NOTE_SECONDS * sr / hop))), axis=1)
    return float(power[held].sum() / total)


def runs_at_least(mask: np.ndarray, length: int, axis: int = -1) -> np.ndarray:
    """True where `mask` is inside a run of at least `length` consecutive true values along `axis`.

    A morphological opening by a line (scipy.ndimage.binary_opening), done with two O(n) running min/max filters.
    """
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    eroded = minimum_filter1d(mask.astype(np.uint8, copy=False), length, axis=axis, mode="constant")
    return maximum_filter1d(eroded, length, axis=axis, mode="constant", origin=length % 2 - 1).astype(bool)
