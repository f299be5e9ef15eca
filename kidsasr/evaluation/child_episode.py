"""An episode of real child speech (../shared/real-speech/child, CC BY-NC-ND 4.0), for evaluation only.

The clips of a real 5-year-old (talking, singing, reading, refusing) have no transcripts, so the episode measures
what needs none: which clips get a cue, how much of the child's speech time cues cover, the longest run of clips
left without any cue (a loop or a guard that drops whole packed clips shows up there), and stock hallucinations.

Build: every clip of `child/metadata.jsonl`, in an order shuffled with numpy's default_rng(seed), laid end to end
with `gap` seconds of silence before each and after the last, as long as the episode stays within `seconds`.
A clip's whole duration counts as speech. The episode is derived audio: it is written under a work folder only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio import SAMPLE_RATE, load_audio, write_wav
from ..fileio import write_json_atomic
from .real_speech import real_speech_root

CHILD_METADATA = Path("child") / "metadata.jsonl"


@dataclass(frozen=True)
class ChildClip:
    id: str
    activity: str  # other | singing | reading | refusing
    start: float  # where the clip sits in the episode, seconds
    end: float


@dataclass(frozen=True)
class ChildEpisode:
    wav: Path
    clips: list[ChildClip]
    duration: float


def build_child_episode(out_dir: str | os.PathLike, real_speech: str | os.PathLike | None = None, seed: int = 0,
                        seconds: float = 300.0, gap: float = 0.8) -> ChildEpisode:
    """Write `episode.wav` and `clips.json` under `out_dir` (an existing episode with the same settings is reused).

    Raises FileNotFoundError naming the metadata file when the child set is absent.
    """
    out = Path(out_dir)
    wav, index = out / "episode.wav", out / "clips.json"
    settings = {"seed": seed, "seconds": seconds, "gap": gap}
    if wav.is_file() and index.is_file():
        saved = json.loads(index.read_text(encoding="utf-8"))
        if saved.get("settings") == settings:
            return ChildEpisode(wav, [ChildClip(**c) for c in saved["clips"]], saved["duration"])
    metadata = real_speech_root(real_speech) / CHILD_METADATA
    if not metadata.is_file():
        raise FileNotFoundError(f"{metadata}: the real child-speech set is not there (Deeply Parent-Child Vocal "
                                "Interaction Dataset; give its folder with --real-speech PATH or $KIDSASR_REAL_SPEECH)")
    rows = [json.loads(line) for line in metadata.read_text(encoding="utf-8").splitlines() if line.strip()]
    gap_samples = int(round(gap * SAMPLE_RATE))
    parts, clips, at = [np.zeros(gap_samples, np.float32)], [], gap_samples
    for k in np.random.default_rng(seed).permutation(len(rows)):
        row = rows[k]
        if (at + row["duration"] * SAMPLE_RATE + gap_samples) / SAMPLE_RATE > seconds:
            break
        audio = load_audio(metadata.parent / row["audio"])
        clips.append(ChildClip(row["id"], row["activity"], at / SAMPLE_RATE, (at + audio.size) / SAMPLE_RATE))
        parts += [audio, np.zeros(gap_samples, np.float32)]
        at += audio.size + gap_samples
    out.mkdir(parents=True, exist_ok=True)
    write_wav(wav, np.concatenate(parts))
    write_json_atomic(index, {"settings": settings, "duration": at / SAMPLE_RATE,
                              "clips": [c.__dict__ for c in clips]})
    return ChildEpisode(wav, clips, at / SAMPLE_RATE)


def score_child_cues(cues: Sequence[tuple[float, float, str]], clips: Sequence[ChildClip]) -> dict:
    """What the cues (start, end, text) do for the child's clips: share of clips with a cue, share of clip time
    covered, the longest run of consecutive clips without any cue (seconds, first such clip's start to the last
    one's end), and the cues holding a stock Whisper hallucination."""
    from ..asr.guards import stock_phrase_spans
    from .longform import merge_regions

    shown = merge_regions([(start, end) for start, end, _ in cues])

    def overlap(a: float, b: float) -> float:
        return sum(max(0.0, min(b, e) - max(a, s)) for s, e in shown if s < b and e > a)

    covered = [overlap(c.start, c.end) for c in clips]
    longest, run_start = 0.0, None
    for clip, seconds in zip(clips, covered):
        if seconds > 0:
            run_start = None
            continue
        run_start = clip.start if run_start is None else run_start
        longest = max(longest, clip.end - run_start)
    speech = sum(c.end - c.start for c in clips)
    by_activity = {}
    for activity in sorted({c.activity for c in clips}):
        members = [(c, s) for c, s in zip(clips, covered) if c.activity == activity]
        by_activity[activity] = {"clips": len(members), "with_cue": sum(s > 0 for _, s in members) / len(members),
                                 "covered": sum(s for _, s in members) / sum(c.end - c.start for c, _ in members)}
    return {"clips": len(clips), "cues": len(cues), "clips_with_cue": sum(s > 0 for s in covered) / len(clips),
            "speech_covered": sum(covered) / speech if speech else 0.0, "longest_uncued_stretch": longest,
            "stock_hallucinations": [text for _, _, text in cues if stock_phrase_spans(text)],
            "by_activity": by_activity}


NO_SPEECH_FOUND = "no speech found (VAD)"
NO_WORDS = "speech found, decoded to no words"


def guard_reason_kind(reason: str) -> str:
    """A guard's reason without its figures: "low log-probability (-1.20 < -1.0)" -> "low log-probability"."""
    return re.split(r" \(| \d", reason, maxsplit=1)[0]


def why_no_cue(clips: Sequence[ChildClip], cues: Sequence[tuple[float, float, str]],
               speech_regions: Sequence[Sequence[float]], dropped: Sequence[dict]) -> dict[str, list[str]]:
    """Why each clip without a cue has none, read off kidsasr's review side file (`OUT.cues.json`): the first step
    from audio to cue that lost it. No speech region over the clip (VAD); else a guard removed what was decoded
    there (`dropped` rows {start, end, text, reason}, by reason without its figures); else the decoder gave no
    words for it. Returns reason -> clip ids, in clip order."""
    def overlaps(a: float, b: float, start: float, end: float) -> bool:
        return start < b and end > a if end > start else a <= start <= b

    reasons: dict[str, list[str]] = {}
    for clip in clips:
        if any(overlaps(clip.start, clip.end, s, e) for s, e, _ in cues):
            continue
        if not any(overlaps(clip.start, clip.end, s, e) for s, e in speech_regions):
            reason = NO_SPEECH_FOUND
        else:
            removed = [d for d in dropped if overlaps(clip.start, clip.end, d["start"], d["end"])]
            reason = guard_reason_kind(removed[0]["reason"]) if removed else NO_WORDS
        reasons.setdefault(reason, []).append(clip.id)
    return dict(sorted(reasons.items(), key=lambda item: -len(item[1])))
