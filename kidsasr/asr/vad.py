"""Speech regions (silero-vad) and a music-dominance measure, on 16 kHz mono audio.

silero-vad scores 512-sample (32 ms) frames with a recurrent state carried across calls, so
`SpeechDetector.feed` accepts an episode in consecutive chunks and keeps only one probability per frame: a 3-hour
episode costs about 1.4 MB of probabilities, never the audio. The model is silero-vad 6.2.3's batched "sequence"
ONNX export, shipped in `silero/` (MIT licence beside it) and run with onnxruntime alone; regions come from
silero's state machine (`regions_from_probs`).

Music dominance: the share of a region's energy held in sustained spectral peaks, i.e. narrow partials that stay
on the same frequency (within one bin) for at least `MIN_NOTE_SECONDS`. Held notes and chords do that; speech
harmonics follow the voice's pitch contour and its syllables stop every ~0.2 s, so even a flat synthetic voice
keeps a low share, and speech over a quiet music bed keeps most of its energy outside the music's partials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..constants import SAMPLE_RATE

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
    neg_threshold: float | None = None  # speech ends below this; None: threshold - 0.15 (silero's default)


@lru_cache(maxsize=1)
def _session():
    """One single-threaded ONNX Runtime session per process (it holds no state between calls)."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.inter_op_num_threads = 1
    session_options.intra_op_num_threads = 1
    model = Path(__file__).resolve().parent / "silero" / "silero_vad_16k_sequence.onnx"  # package data
    return ort.InferenceSession(str(model), sess_options=session_options, providers=["CPUExecutionProvider"])


class SpeechDetector:
    """Streaming silero-vad: feed consecutive chunks, then ask for the regions.

    Uses silero's sequence ONNX export (one ONNX call per block of frames instead of one per 32 ms frame, the
    same probabilities as the streaming model), carrying its LSTM state and 64-sample context between chunks.
    """

    def __init__(self, options: VadOptions | None = None):
        self.options = options or VadOptions()
        self.session = _session()
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
        self.flush()
        return regions_from_probs(self.probs, self.samples, self.options)

    def flush(self) -> None:
        """Score the last partial frame (zero-padded): every sample fed so far then has its frame's probability."""
        if self._pending.size:
            tail = np.zeros((1, FRAME), dtype=np.float32)
            tail[0, : self._pending.size] = self._pending
            self._run(tail)
            self._pending = np.zeros(0, dtype=np.float32)

    def mean_prob(self, start: float, end: float) -> float:
        """Mean speech probability of the frames inside [start, end)."""
        a, b = int(start / FRAME_SECONDS), max(int(start / FRAME_SECONDS) + 1, int(np.ceil(end / FRAME_SECONDS)))
        window = self.probs[a:b]
        return float(np.mean(window)) if window else 0.0


def regions_from_probs(probs: list[float], samples: int, options: VadOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions (seconds) from per-frame probabilities: silero-vad's `get_speech_timestamps_from_probs` state
    machine (hysteresis, minimum speech and silence, padding; no maximum speech length), restated here because
    silero_vad's module imports torch, which the subtitle install does not have. The tests check that both give
    the same regions."""
    o = options or VadOptions()
    min_speech = SAMPLE_RATE * o.min_speech_duration_ms / 1000
    min_silence = SAMPLE_RATE * o.min_silence_duration_ms / 1000
    pad = SAMPLE_RATE * o.speech_pad_ms / 1000
    neg_threshold = max(o.threshold - 0.15, 0.01) if o.neg_threshold is None else o.neg_threshold
    speeches: list[list[int]] = []
    start: int | None = None
    temp_end = 0  # where the current silence began (0: none yet)
    for i, prob in enumerate(probs):
        sample = FRAME * i
        if prob >= o.threshold:
            temp_end = 0
            if start is None:
                start = sample
                continue
        if start is not None and prob < neg_threshold:
            temp_end = temp_end or sample
            if sample - temp_end >= min_silence:
                if temp_end - start > min_speech:
                    speeches.append([start, temp_end])
                start, temp_end = None, 0
    if start is not None and samples - start > min_speech:
        speeches.append([start, samples])
    for i, speech in enumerate(speeches):
        if i == 0:
            speech[0] = int(max(0, speech[0] - pad))
        if i == len(speeches) - 1:
            speech[1] = int(min(samples, speech[1] + pad))
            continue
        following = speeches[i + 1]
        silence = following[0] - speech[1]
        if silence < 2 * pad:
            speech[1] += int(silence // 2)
            following[0] = int(max(0, following[0] - silence // 2))
        else:
            speech[1] = int(min(samples, speech[1] + pad))
            following[0] = int(max(0, following[0] - pad))
    return [(begin / SAMPLE_RATE, end / SAMPLE_RATE) for begin, end in speeches]


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """silero-vad's speech probability of every 512-sample frame of an in-memory clip (last frame zero-padded)."""
    detector = SpeechDetector()
    detector.feed(audio)
    detector.flush()
    return np.asarray(detector.probs, dtype=np.float32)


def speech_regions(audio: np.ndarray, options: VadOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions of an in-memory clip (for long files use SpeechDetector with streamed chunks)."""
    detector = SpeechDetector(options)
    detector.feed(audio)
    return detector.finish()


def music_dominance(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Share (0..1) of the clip's spectral energy in partials held steady for >= MIN_NOTE_SECONDS."""
    n_fft, hop = 1024, 320
    if audio.size < n_fft:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float32), n_fft)[::hop]
    spectrum = np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)  # stays complex64
    power = (spectrum.real ** 2 + spectrum.imag ** 2).T  # (freq, time)
    total = power.sum()
    if total <= 1e-10:
        return 0.0
    local_max = power >= running_filter(np.max, power, 5, axis=0, mode="symmetric")
    prominent = power > 30.0 * np.median(power, axis=0, keepdims=True)
    peaks = running_filter(np.max, (local_max & prominent).view(np.uint8), 3, axis=0)  # +-1 bin
    held = runs_at_least(peaks, max(2, int(round(MIN_NOTE_SECONDS * sr / hop))), axis=1)
    return float(power[held].sum() / total)


def running_filter(reduce, x: np.ndarray, size: int, axis: int = -1, origin: int = 0,
                   mode: str = "constant") -> np.ndarray:
    """`reduce` (np.max or np.min) over a sliding window of `size` along `axis`: scipy.ndimage's
    maximum_filter1d / minimum_filter1d (same window placement and `origin`; "constant" pads with 0 and numpy's
    "symmetric" is scipy's "reflect") in numpy alone, so the subtitle install needs no scipy. The tests compare
    the two."""
    x = np.moveaxis(x, axis, -1)
    left = size // 2 + origin
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left, size - 1 - left)], mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=-1)
    return np.moveaxis(reduce(windows, axis=-1), -1, axis)


def runs_at_least(mask: np.ndarray, length: int, axis: int = -1) -> np.ndarray:
    """True where `mask` is inside a run of at least `length` consecutive true values along `axis`.

    A morphological opening by a line (scipy.ndimage.binary_opening): a running minimum, then a running maximum.
    """
    eroded = running_filter(np.min, mask.astype(np.uint8, copy=False), length, axis=axis)
    return running_filter(np.max, eroded, length, axis=axis, origin=length % 2 - 1).astype(bool)
