"""A long-form episode made of the real read-speech clips (../shared/real-speech/korean-read), for evaluation only.

All clips of the manifest, in an order shuffled with a fixed seed, are laid end to end with uniform random gaps
(0.4-2.0 s) of light background noise; a synthetic music bed (kidsasr.synth.broadcast_mix) runs at -22 dB under about
the middle third of the episode. The reference cues are the clips' spans and texts, written as a WebVTT file that
kidsasr's scoring reads (`kidsasr eval --subtitles OUT.vtt --reference reference.vtt`).

The clips are CC BY-NC-ND: the episode is derived audio and is written under a work folder only, never committed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, load_audio, write_wav
from ..synth.broadcast_mix import background_noise, db_to_gain, music_bed, music_loop, rms
from ..fileio import write_json_atomic
from .real_speech import canonical_text, load_clips, read_speech_manifest, real_speech_root, sentence_halves

GAP_RANGE = (0.4, 2.0)
MUSIC_DB = -22.0
NOISE_DB = -40.0
MUSIC_SHARE = (1 / 3, 2 / 3)  # the music bed runs under this part of the episode


class RealSpeechMissing(FileNotFoundError):
    """The real read-speech set is not where it was looked for (it is not redistributed with kidsasr)."""


@dataclass(frozen=True)
class RealEpisode:
    wav: Path
    reference: Path  # WebVTT: one cue per clip, its span and its text
    spans: list[tuple[float, float]]  # where each clip sits in the episode, in reference order
    duration: float


def build_real_episode(out_dir: str | os.PathLike, real_speech: str | os.PathLike | None = None, seed: int = 0,
                       half: str | None = None) -> RealEpisode:
    """Write `episode.wav`, `reference.vtt` and `spans.json` under `out_dir` (cached: an existing episode is reused).

    `half` ("tune" or "report"): only the clips of that half (kidsasr.evaluation.real_speech.sentence_halves).

    Raises RealSpeechMissing, with what to do, when the read-speech set is absent.
    """
    out = Path(out_dir)
    wav, reference, spans_path = out / "episode.wav", out / "reference.vtt", out / "spans.json"
    if wav.is_file() and reference.is_file() and spans_path.is_file():
        saved = json.loads(spans_path.read_text(encoding="utf-8"))
        return RealEpisode(wav, reference, [tuple(s) for s in saved["spans"]], saved["duration"])
    manifest = read_speech_manifest(real_speech)
    if manifest is None:
        raise RealSpeechMissing(f"{real_speech_root(real_speech)}: the real read-speech manifest is not there; "
                                "download the Deeply Korean Read Speech Corpus (github.com/deeplyinc/Korean-Read-"
                                "Speech-Corpus) and pass its folder (--real-speech PATH or KIDSASR_REAL_SPEECH)")
    rows = load_clips(manifest)
    if half is not None:
        halves = sentence_halves([row.text for row in rows])
        rows = [row for row in rows if halves[canonical_text(row.text)] == half]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    clips = [load_audio(rows[k].audio) for k in order]
    gaps = rng.uniform(*GAP_RANGE, size=len(clips) + 1)
    total = int(round((sum(c.size for c in clips) + sum(int(g * SAMPLE_RATE) for g in gaps))))
    speech = np.zeros(total, dtype=np.float32)
    spans, texts, at = [], [], int(gaps[0] * SAMPLE_RATE)
    for k, clip in zip(order, clips):
        speech[at:at + clip.size] = clip
        spans.append((at / SAMPLE_RATE, (at + clip.size) / SAMPLE_RATE))
        texts.append(rows[k].text)
        at += clip.size + int(gaps[len(spans)] * SAMPLE_RATE)
    level = rms(np.concatenate(clips))
    noise = background_noise(rng, total / SAMPLE_RATE, "pink")[:total] * (level * db_to_gain(NOISE_DB))
    mixed = speech + noise.astype(np.float32)
    lo, hi = (int(total * share) for share in MUSIC_SHARE)
    bed = music_bed(music_loop(rng), (hi - lo) / SAMPLE_RATE, rng)
    mixed[lo:lo + bed.size] += bed * np.float32(level * db_to_gain(MUSIC_DB))
    peak = float(np.max(np.abs(mixed)))
    if peak > 0.99:
        mixed *= np.float32(0.99 / peak)
    out.mkdir(parents=True, exist_ok=True)
    write_wav(wav, mixed)
    _write_reference(reference, spans, texts)
    write_json_atomic(spans_path, {"spans": spans, "duration": total / SAMPLE_RATE, "seed": seed,
                                   "music": [lo / SAMPLE_RATE, (lo + bed.size) / SAMPLE_RATE],
                                   "ids": [rows[k].id for k in order]})
    return RealEpisode(wav, reference, spans, total / SAMPLE_RATE)


def _write_reference(path: Path, spans: list[tuple[float, float]], texts: list[str]) -> None:
    import webvtt

    from ..fileio import atomic_path

    captions = [webvtt.Caption(str(webvtt.models.Timestamp.from_seconds(round(s, 3))),
                               str(webvtt.models.Timestamp.from_seconds(round(e, 3))), [text])
                for (s, e), text in zip(spans, texts)]
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            webvtt.WebVTT(captions=captions).write(f)
