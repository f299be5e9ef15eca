"""Audio decoding, resampling and writing.

Everything in kidsasr works on 16 kHz mono float32 numpy arrays. WAV/FLAC/OGG (and file objects, such as
zip members) are read with soundfile; anything else (MP3, MP4/M4A, video containers) is decoded by ffmpeg.
Headerless KsponSpeech `.pcm` files are 16 kHz 16-bit little-endian mono.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf

from .constants import SAMPLE_RATE

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga"}
PCM_SUFFIXES = {".pcm", ".raw"}

AudioSource = str | os.PathLike | BinaryIO


class AudioError(Exception):
    """An audio input that cannot be used, with the file and the reason."""

    def __init__(self, source: object, reason: str):
        self.source = _name(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int


def _name(source: AudioSource) -> str:
    """The full path of a path (a Path's `.name` is only its last component), or a file object's name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", source))


def _to_mono(audio: np.ndarray) -> np.ndarray:
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """soxr's high-quality resampler, the output cut or zero-padded to ceil(n * target / orig) samples (what
    librosa.resample(res_type="soxr_hq") returns, without librosa's numba import)."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    import soxr

    out = soxr.resample(audio, orig_sr, target_sr, quality="soxr_hq")
    size = int(np.ceil(audio.shape[-1] * float(target_sr) / orig_sr))
    out = out[:size] if out.shape[0] >= size else np.pad(out, (0, size - out.shape[0]))
    return out.astype(np.float32)


def audio_info(source: AudioSource) -> AudioInfo:
    """Duration, rate and channels from the header (soundfile) or ffprobe, without decoding."""
    suffix = Path(_name(source)).suffix.lower()
    if not hasattr(source, "read") and os.path.exists(source) and os.path.getsize(source) == 0:
        raise AudioError(source, "empty file (0 bytes)")
    if suffix in PCM_SUFFIXES and not hasattr(source, "read"):
        size = os.path.getsize(source)
        return AudioInfo(size / 2 / SAMPLE_RATE, SAMPLE_RATE, 1)
    try:
        info = sf.info(source)
        if hasattr(source, "seek"):
            source.seek(0)
        return AudioInfo(info.frames / info.samplerate, info.samplerate, info.channels)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        if hasattr(source, "seek"):
            source.seek(0)
    if hasattr(source, "read"):
        raise AudioError(source, "cannot read the audio header")
    return _ffprobe_info(source)


def _ffprobe_info(path: AudioSource) -> AudioInfo:
    _require_ffmpeg()
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels:format=duration", "-of", "default=noprint_wrappers=1", str(path)],
        capture_output=True, text=True,
    )
    fields = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if proc.returncode != 0 or "sample_rate" not in fields:
        reason = _ffmpeg_reason(proc.stderr, proc.returncode) if proc.stderr.strip() else "no audio stream"
        raise AudioError(path, f"cannot decode: {reason}")
    try:
        duration = float(fields.get("duration", "nan"))
    except ValueError:
        duration = float("nan")
    return AudioInfo(duration, int(fields["sample_rate"]), int(fields.get("channels", 1)))


def load_audio(source: AudioSource, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Decode any supported input to mono float32 at `sr`. Raises AudioError with the reason."""
    if not hasattr(source, "read") and not os.path.exists(source):
        raise AudioError(source, "file not found")
    if not hasattr(source, "read") and os.path.getsize(source) == 0:
        raise AudioError(source, "empty file (0 bytes)")
    suffix = Path(_name(source)).suffix.lower()
    if suffix in PCM_SUFFIXES:
        audio = load_pcm(source)
        native_sr = SAMPLE_RATE
    elif suffix in SOUNDFILE_SUFFIXES or hasattr(source, "read"):
        try:
            frames = -1 if max_seconds is None else int(max_seconds * sf.info(source).samplerate)
            if hasattr(source, "seek"):
                source.seek(0)
            data, native_sr = sf.read(source, frames=frames, dtype="float32", always_2d=False)
            audio = _to_mono(data)
        except (sf.LibsndfileError, RuntimeError) as e:
            if hasattr(source, "read"):
                raise AudioError(source, f"cannot decode: {e}") from e
            return _decode_ffmpeg(source, sr, max_seconds)
    else:
        return _decode_ffmpeg(source, sr, max_seconds)
    if audio.size == 0:
        raise AudioError(source, "no audio samples")
    return resample(audio, native_sr, sr)


def load_pcm(source: str | os.PathLike | BinaryIO) -> np.ndarray:
    raw = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    if len(raw) % 2:
        raw = raw[:-1]
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _require_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (Debian: apt-get install ffmpeg); `make setup` installs it")


def _ffmpeg_cmd(path: AudioSource, sr: int, start: float = 0.0, max_seconds: float | None = None) -> list[str]:
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if start:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += ["-i", str(path), "-vn", "-map", "0:a:0"]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    return cmd + ["-f", "s16le", "-ac", "1", "-ar", str(sr), "-"]


def _ffmpeg_reason(stderr: str, code: int) -> str:
    """The useful line of ffmpeg's complaint (a video-only file names its problem before the last line)."""
    if "matches no streams" in stderr:
        return "no audio stream"
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else f"ffmpeg exit code {code}"


def _decode_ffmpeg(path: AudioSource, sr: int, max_seconds: float | None = None) -> np.ndarray:
    _require_ffmpeg()
    proc = subprocess.run(_ffmpeg_cmd(path, sr, max_seconds=max_seconds), capture_output=True)
    if proc.returncode != 0:
        raise AudioError(path, f"cannot decode: {_ffmpeg_reason(proc.stderr.decode('utf-8', 'replace'), proc.returncode)}")
    audio = np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) / 32768.0
    if audio.size == 0:
        raise AudioError(path, "no audio samples")
    return audio


def stream_audio(path: str | os.PathLike, chunk_seconds: float = 60.0, sr: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Yield consecutive mono chunks at `sr`, holding only one chunk in memory (for multi-hour episodes)."""
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    chunk = int(chunk_seconds * sr)
    suffix = Path(path).suffix.lower()
    if suffix in SOUNDFILE_SUFFIXES:
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError):
            info = None
        if info is not None and info.samplerate == sr:
            yielded = False
            for block in sf.blocks(path, blocksize=chunk, dtype="float32", always_2d=True):
                yielded = True
                yield _to_mono(block)
            if not yielded:
                raise AudioError(path, "no audio samples")
            return
    _require_ffmpeg()
    proc = subprocess.Popen(_ffmpeg_cmd(path, sr), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yielded = False
    try:
        while True:
            raw = proc.stdout.read(chunk * 2)
            if not raw:
                break
            yielded = True
            yield np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        code = proc.wait()
    if code != 0 and not yielded:
        raise AudioError(path, f"cannot decode: {_ffmpeg_reason(stderr, code)}")
    if not yielded:
        raise AudioError(path, "no audio samples")


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")


def wav_bytes(audio: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes: deterministic for the same samples (no timestamps in the header)."""
    buf = io.BytesIO()
    sf.write(buf, to_pcm16(audio), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: str | os.PathLike, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically."""
    from .fileio import write_bytes_atomic

    write_bytes_atomic(path, wav_bytes(audio, sr))
