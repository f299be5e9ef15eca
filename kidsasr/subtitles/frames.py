"""Cue times on a video frame grid.

Broadcast subtitles change on frame boundaries: Korean TV runs at 29.97 fps (30000/1001), film at 23.976
(24000/1001) or 24. A style's minimum duration and minimum gap are given in seconds and are rounded *up* to
whole frames (0.833 s at 29.97 fps is 25 frames, 0.083 s is 3), its maximum duration *down*, so that a rule
that holds in frames holds in seconds too. Snapping happens once, at the end of cue building; the rules are then
checked in whole frames (kidsasr.subtitles.cues.check_cue), so rounding cannot break them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import Sequence

SUPPORTED_FPS = (23.976, 24.0, 25.0, 29.97, 30.0)
_EPS = 1e-6


def frame_rate(fps: float) -> Fraction:
    """The exact rate of a nominal one: 23.976 -> 24000/1001, 29.97 -> 30000/1001, 59.94 -> 60000/1001."""
    if not fps > 0:
        raise ValueError(f"frame rate must be positive, got {fps!r}")
    nominal = round(fps)
    if abs(fps - nominal * 1000 / 1001) < 0.01 and abs(fps - nominal) > 0.01:
        return Fraction(nominal * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def frame_of(seconds: float, rate: Fraction) -> int:
    """The nearest frame."""
    return int(math.floor(seconds * rate + 0.5))


def frames_at_least(seconds: float, rate: Fraction) -> int:
    """The fewest whole frames that last at least `seconds` (a minimum rounded up)."""
    return max(0, int(math.ceil(seconds * rate - _EPS)))


def frames_at_most(seconds: float, rate: Fraction) -> int:
    """The most whole frames that last at most `seconds` (a maximum rounded down)."""
    return int(math.floor(seconds * rate + _EPS))


def seconds_of(frame: int, rate: Fraction) -> float:
    return float(frame / rate)


def on_frames(style):
    """The style with its minimums rounded up and its maximum duration rounded down to whole frames (in seconds):
    the numbers cues are built to before they are snapped."""
    rate = frame_rate(style.fps)
    return replace(style, min_duration=seconds_of(frames_at_least(style.min_duration, rate), rate),
                   min_gap=seconds_of(frames_at_least(style.min_gap, rate), rate),
                   max_duration=seconds_of(frames_at_most(style.max_duration, rate), rate))


def snap_cues(cues: Sequence, style, needed_seconds) -> list:
    """Cues (objects with start, end, lines, speech_start, speech_end) moved to the frame grid of `style.fps`.

    In order: a start goes to its nearest frame, but not before the previous end plus the gap nor more than the
    style's lead before its speech; an end to its nearest frame, but not after the next cue's start less the gap
    nor more than the style's linger after its speech; a cue shorter than it must be (`needed_seconds(lines)`: the
    minimum duration or what its reading speed needs, rounded up to frames) grows at its end within those
    bounds, then at its start; no cue is longer than the maximum. What still cannot be met is left for check_cue.
    """
    rate = frame_rate(style.fps)
    gap, longest = frames_at_least(style.min_gap, rate), frames_at_most(style.max_duration, rate)
    snapped = []
    previous_end = -(10**9)
    for k, cue in enumerate(cues):
        earliest = max(previous_end + gap, frames_at_least(cue.speech_start - style.max_lead, rate), 0)
        next_start = frame_of(cues[k + 1].start, rate) if k + 1 < len(cues) else 10**12
        latest = min(next_start - gap, frames_at_most(cue.speech_end + style.max_linger, rate))
        start = max(frame_of(cue.start, rate), earliest)
        end = min(frame_of(cue.end, rate), latest)
        needed = frames_at_least(needed_seconds(cue.lines), rate)
        if end - start < needed:
            end = max(end, min(start + needed, latest))
        if end - start < needed:
            start = min(start, max(end - needed, earliest))
        if end - start > longest and cue.end - cue.start <= style.max_duration:
            end = start + longest  # snapping made it too long; a cue longer than its speech allows stays (reported)
        end = max(start + 1, end)
        snapped.append(replace(cue, start=seconds_of(start, rate), end=seconds_of(end, rate)))
        previous_end = end
    return snapped
