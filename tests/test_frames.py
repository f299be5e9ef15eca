"""kidsasr.frames: exact frame rates, minimums rounded up, and snapping that keeps every rule."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from fractions import Fraction

import pytest

from kidsasr.subtitles.cues import load_style
from kidsasr.subtitles.frames import frame_of, frame_rate, frames_at_least, frames_at_most, on_frames, snap_cues


@dataclass(frozen=True)
class Timed:
    start: float
    end: float
    speech_start: float
    speech_end: float
    lines: tuple[str, ...] = ("자막",)


@pytest.mark.parametrize("fps, rate", [(23.976, Fraction(24000, 1001)), (24, Fraction(24)), (25, Fraction(25)),
                                       (29.97, Fraction(30000, 1001)), (30, Fraction(30))])
def test_frame_rates(fps, rate):
    assert frame_rate(fps) == rate


def test_minimums_round_up_and_maximums_down():
    rate = frame_rate(29.97)
    assert frames_at_least(0.833, rate) == 25 and frames_at_least(0.083, rate) == 3
    assert frames_at_least(25 * 1001 / 30000, rate) == 25  # exactly 25 frames stays 25
    assert frames_at_most(7.0, rate) == 209
    style = on_frames(replace(load_style("kids"), fps=24))
    assert style.min_duration == pytest.approx(20 / 24) and style.min_gap == pytest.approx(2 / 24)


@pytest.mark.parametrize("fps", [23.976, 24, 25, 29.97, 30])
def test_snapped_cues_keep_minimum_duration_and_gap_in_frames(fps):
    style = replace(load_style("kids"), fps=fps)
    timing = on_frames(style)  # what build_cues times cues with before it snaps them
    rate = frame_rate(fps)
    rng = random.Random(fps)
    cues, t = [], 0.0
    for _ in range(300):  # back-to-back cues at the limits: exactly the minimum duration and gap, in ms
        start = t + timing.min_gap + rng.choice([0.0, 0.001, 0.0004, 0.02])
        end = start + timing.min_duration + rng.choice([0.0, 0.0005, 0.01])
        cues.append(Timed(round(start, 3), round(end, 3), round(start, 3), round(end - 0.3, 3)))
        t = cues[-1].end
    snapped = snap_cues(cues, style, lambda lines: style.min_duration)
    need, gap = frames_at_least(style.min_duration, rate), frames_at_least(style.min_gap, rate)
    frames = [(frame_of(c.start, rate), frame_of(c.end, rate)) for c in snapped]
    for (s, e), c in zip(frames, snapped):
        assert c.start == pytest.approx(float(s / rate)) and c.end == pytest.approx(float(e / rate))
        assert e - s >= need
    assert all(b[0] - a[1] >= gap for a, b in zip(frames, frames[1:]))


def test_a_cue_grows_into_the_silence_before_it_when_the_next_is_close():
    style = load_style("kids")
    rate = frame_rate(style.fps)
    cues = [Timed(10.0, 10.8, 10.1, 10.35), Timed(10.9, 12.0, 10.9, 11.9)]
    first, second = snap_cues(cues, style, lambda lines: style.min_duration)
    assert frame_of(first.end, rate) - frame_of(first.start, rate) >= 25
    assert frame_of(second.start, rate) - frame_of(first.end, rate) >= 3
