"""Audio decoding: every input kind to 16 kHz mono float32, or an AudioError naming the file and the reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr.audio import AudioError, audio_info, load_audio, resample, stream_audio, to_pcm16, wav_bytes, write_wav


def tone(seconds: float, sr: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def dominant_hz(audio: np.ndarray, sr: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.argmax(spectrum) * sr / len(audio))


def test_wav_stereo_44k_is_downmixed_and_resampled(tmp_path: Path):
    stereo = np.stack([tone(2.0, 44100), tone(2.0, 44100)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100)
    audio = load_audio(tmp_path / "s.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == 32000
    assert abs(dominant_hz(audio) - 440) < 2
    assert audio_info(tmp_path / "s.wav").channels == 2


@pytest.mark.parametrize("suffix", ["mp3", "m4a", "mp4"])
def test_compressed_formats_decode_through_ffmpeg(tmp_path: Path, suffix: str):
    sf.write(tmp_path / "src.wav", tone(2.0, 8000), 8000)
    ffmpeg("-i", str(tmp_path / "src.wav"), str(tmp_path / f"x.{suffix}"))
    audio = load_audio(tmp_path / f"x.{suffix}")
    assert 1.9 * 16000 < len(audio) < 2.2 * 16000
    assert abs(dominant_hz(audio) - 440) < 3
    info = audio_info(tmp_path / f"x.{suffix}")
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_headerless_pcm(tmp_path: Path):
    (tmp_path / "a.pcm").write_bytes(to_pcm16(tone(1.0, 16000)).tobytes())
    assert len(load_audio(tmp_path / "a.pcm")) == 16000
    assert audio_info(tmp_path / "a.pcm").duration == pytest.approx(1.0)


def test_bad_inputs_name_file_and_reason(tmp_path: Path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x10\x00\x00\x00garbage-bytes")
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=32x32:d=1", str(tmp_path / "video_only.mp4"))
    cases = {"empty.wav": "empty file", "junk.wav": "cannot decode", "video_only.mp4": "no audio stream",
             "missing.wav": "not found"}
    for name, reason in cases.items():
        for read in (load_audio, lambda p: list(stream_audio(p))):
            with pytest.raises(AudioError, match=reason) as err:
                read(tmp_path / name)
            assert name in str(err.value)


def test_stream_matches_whole_decode(tmp_path: Path):
    audio = tone(5.3, 16000, 300)
    write_wav(tmp_path / "a.wav", audio)
    sf.write(tmp_path / "b.flac", tone(5.3, 22050, 300), 22050)
    chunks = list(stream_audio(tmp_path / "a.wav", chunk_seconds=2.0))
    assert [len(c) for c in chunks] == [32000, 32000, 20800]
    np.testing.assert_allclose(np.concatenate(chunks), load_audio(tmp_path / "a.wav"))
    streamed = np.concatenate(list(stream_audio(tmp_path / "b.flac", chunk_seconds=2.0)))  # resampled by ffmpeg
    assert abs(len(streamed) - len(audio)) <= 2 and abs(dominant_hz(streamed) - 300) < 2


def test_wav_writing_is_deterministic_and_atomic(tmp_path: Path):
    audio = tone(1.0, 16000)
    assert wav_bytes(audio) == wav_bytes(audio.copy())
    write_wav(tmp_path / "out.wav", audio)
    assert sf.info(tmp_path / "out.wav").subtype == "PCM_16"
    assert list(tmp_path.iterdir()) == [tmp_path / "out.wav"]


def test_resample_is_librosa_soxr_hq_without_librosa():
    """audio.resample keeps librosa.resample(res_type="soxr_hq")'s output bit for bit (length rule included)."""
    import librosa

    rng = np.random.default_rng(0)
    for sr, n in [(44100, 44100 * 3 + 17), (48000, 1000), (8000, 8001), (22050, 5)]:
        x = rng.normal(0, 0.1, n).astype(np.float32)
        expected = librosa.resample(x, orig_sr=sr, target_sr=16000, res_type="soxr_hq").astype(np.float32)
        assert np.array_equal(resample(x, sr), expected)
