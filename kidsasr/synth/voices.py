"""Synthetic speakers: espeak-ng Korean voice profiles for children and adult hosts.

espeak-ng has one Korean voice; variants (`ko+f3`, `ko+m2`, ...), pitch (`-p`) and speed (`-s`) make distinct
speakers of it. Child voices are also shifted up 2-5 semitones in pitch *and* formants (a shorter vocal tract):
espeak-ng speaks `2**(st/12)` times slower and the samples are then played back that much faster by resampling,
which raises pitch and formants together and brings the speaking rate back to the profile's speed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ..constants import SAMPLE_RATE


@dataclass(frozen=True)
class Voice:
    id: str  # speaker id written to the labels, e.g. "C03"
    role: str  # "child" | "adult"
    age_group: str  # "4-6" | "7-9" | "10-12" | "adult"
    sex: str  # "F" | "M"
    variant: str  # espeak-ng voice, e.g. "ko+f3"
    pitch: int  # espeak-ng -p, 0-99 (its default is 50)
    speed: int  # words per minute after the shift (espeak-ng's default is 175)
    semitones: float = 0.0  # pitch-and-formant shift applied after synthesis

    def speaker_info(self) -> dict:
        """The label's `speaker_info` entry."""
        return {
            "speaker_id": self.id,
            "speaker_type": "아동" if self.role == "child" else "성인",
            "age_group": self.age_group,
            "gender": "여" if self.sex == "F" else "남",
        }


CHILD_VOICES = (
    Voice("C01", "child", "7-9", "F", "ko+f1", 70, 150, 3.0),
    Voice("C02", "child", "4-6", "F", "ko+f2", 75, 140, 4.0),
    Voice("C03", "child", "10-12", "F", "ko+f3", 65, 165, 2.5),
    Voice("C04", "child", "4-6", "F", "ko+f4", 80, 130, 5.0),
    Voice("C05", "child", "7-9", "F", "ko+f5", 70, 155, 3.5),
    Voice("C06", "child", "10-12", "F", "ko+Annie", 60, 160, 2.0),
    Voice("C07", "child", "4-6", "F", "ko+steph", 75, 135, 4.5),
    # espeak-ng's male variants sit low: boys need the top of the pitch range as well as the shift.
    Voice("C08", "child", "7-9", "M", "ko+m1", 99, 150, 5.0),
    Voice("C09", "child", "4-6", "M", "ko+m2", 99, 140, 5.0),
    Voice("C10", "child", "10-12", "M", "ko+m3", 95, 170, 4.0),
    Voice("C11", "child", "4-6", "M", "ko+f4", 80, 130, 4.0),  # young boys sound like young girls
    Voice("C12", "child", "7-9", "M", "ko+m6", 99, 160, 4.5),
    Voice("C13", "child", "10-12", "M", "ko+m7", 92, 175, 3.5),
    Voice("C14", "child", "4-6", "F", "ko+f2", 92, 125, 0.0),  # raised pitch only, slow
)

ADULT_HOSTS = (
    Voice("A01", "adult", "adult", "F", "ko+f3", 45, 170),
    Voice("A02", "adult", "adult", "M", "ko+m1", 40, 165),
    Voice("A03", "adult", "adult", "F", "ko+f5", 52, 175),
    Voice("A04", "adult", "adult", "M", "ko+m3", 35, 160),
)

VOICES = {voice.id: voice for voice in CHILD_VOICES + ADULT_HOSTS}

_TRIM_DB = 40.0  # samples quieter than this below the clip's peak count as silence


class SpeechSynthesisError(RuntimeError):
    pass


def require_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechSynthesisError(
            "espeak-ng is not installed (Debian: apt-get install espeak-ng); `make setup` installs it")
    return path


def espeak(text: str, variant: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    """Raw espeak-ng output (float32, its native rate). The text goes through stdin, so a leading '-' is safe."""
    proc = subprocess.run(
        [require_espeak(), "-v", variant, "-p", str(pitch), "-s", str(speed), "--stdout"],
        input=text.encode("utf-8"), capture_output=True,
    )
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
        raise SpeechSynthesisError(f"espeak-ng -v {variant} failed on {text!r}: {reason}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return audio, sr


def trim_silence(audio: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence, so where a clip is placed is where its speech starts and ends."""
    if audio.size == 0:
        return audio
    loud = np.flatnonzero(np.abs(audio) > np.abs(audio).max() * 10 ** (-_TRIM_DB / 20))
    return audio[loud[0]: loud[-1] + 1] if loud.size else audio[:0]


def speak(text: str, voice: Voice) -> np.ndarray:
    """`text` spoken by `voice`: 16 kHz mono float32, silence trimmed."""
    import soxr

    ratio = 2.0 ** (voice.semitones / 12.0)
    audio, sr = espeak(text, voice.variant, voice.pitch, max(80, round(voice.speed / ratio)))
    # Declaring the samples `ratio` times faster than they are and resampling to 16 kHz shortens the clip and
    # raises every frequency (pitch and formants) by `ratio`.
    audio = soxr.resample(audio, sr * ratio, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return trim_silence(audio)
