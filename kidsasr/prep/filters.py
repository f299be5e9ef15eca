"""Utterance filters for data prep: pure checks that say why a sentence is not fit for training.

Each check returns `Rejection(code, detail)` or nothing; `code` is the stable key the report counts by, `detail`
says what was measured. Reader problems (bad JSON, missing or truncated audio, ...) get codes here too, so the
report groups everything the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cleaning import SegmentQuality

REASONS = {
    "empty_text": "empty text",
    "tag_only": "only noise/event tags, no words",
    "too_short": "shorter than the minimum duration",
    "too_long": "longer than the maximum duration",
    "cps_outlier": "characters per second outside the plausible range",
    "low_confidence": "alignment confidence below the threshold",
    "alignment_failed": "the aligner could not place the sentence",
    "no_times": "the label has no times and no aligner was run",
    "no_speech": "the VAD found (almost) no speech in the span",
    "clipping": "too many clipped samples",
    "overlap": "overlaps a neighbouring sentence",
    "bad_label": "label file unreadable or not in the corpus format",
    "bad_times": "unparseable, reversed or empty times",
    "missing_audio": "no audio file for the label (stem mismatch?)",
    "missing_label": "audio file without a label (stem mismatch?)",
    "bad_audio": "audio file corrupt, empty or undecodable",
    "truncated_audio": "sentence lies beyond the end of the audio",
    "format_mismatch": "audio sample rate or channel count is not the corpus's",
    "reader_other": "other problem reported by the reader",
}

_READER_PATTERNS = [  # first match wins; matched against the reader's reason text
    ("truncated_audio", re.compile(r"beyond the audio|truncat", re.I)),
    ("missing_label", re.compile(r"without a label", re.I)),
    ("missing_audio", re.compile(r"no audio file|stem", re.I)),
    ("bad_audio", re.compile(r"audio|decode|no samples", re.I)),
    ("bad_times", re.compile(r"time", re.I)),
    ("bad_label", re.compile(r"label|json|encod|zip|sentence|utf|cp949", re.I)),
]


@dataclass(frozen=True)
class FilterConfig:
    min_duration: float = 0.5
    max_duration: float = 30.0
    min_confidence: float = 0.3
    min_cps: float = 1.0  # pronunciation-side syllables per second
    max_cps: float = 20.0
    max_clipped_fraction: float = 0.001
    min_speech_ratio: float = 0.1
    max_overlap: float = 0.2  # seconds two neighbouring sentences may share before both are rejected


@dataclass(frozen=True)
class Rejection:
    code: str
    detail: str


def reader_reason_code(reason: str) -> str:
    """Map a reader's free-text reason to a report code."""
    for code, pattern in _READER_PATTERNS:
        if pattern.search(reason):
            return code
    return "reader_other"


def syllables(text: str) -> int:
    """Characters that are spoken: everything but whitespace and punctuation."""
    return sum(1 for ch in text if ch.isalnum())


def check_text(spelling: str, pronunciation: str, tag_only: bool) -> Rejection | None:
    if tag_only:
        return Rejection("tag_only", "the label holds only noise/event tags")
    if not spelling.strip() or not syllables(pronunciation):
        return Rejection("empty_text", "no words left after normalisation")
    return None


def check_duration(start: float, end: float, config: FilterConfig) -> Rejection | None:
    duration = end - start
    if duration < config.min_duration:
        return Rejection("too_short", f"{duration:.2f} s < {config.min_duration:g} s")
    if duration > config.max_duration:
        return Rejection("too_long", f"{duration:.2f} s > {config.max_duration:g} s")
    return None


def check_rate(pronunciation: str, start: float, end: float, config: FilterConfig) -> Rejection | None:
    cps = syllables(pronunciation) / max(end - start, 1e-3)
    if not config.min_cps <= cps <= config.max_cps:
        return Rejection("cps_outlier", f"{cps:.1f} chars/s outside [{config.min_cps:g}, {config.max_cps:g}]")
    return None


def check_confidence(confidence: float | None, config: FilterConfig) -> Rejection | None:
    if confidence is not None and confidence < config.min_confidence:
        return Rejection("low_confidence", f"confidence {confidence:.2f} < {config.min_confidence:g}")
    return None


def check_quality(quality: SegmentQuality, config: FilterConfig) -> list[Rejection]:
    found = []
    if quality.speech_ratio < config.min_speech_ratio:
        found.append(Rejection("no_speech", f"speech in {quality.speech_ratio:.0%} of the span"))
    if quality.clipped_fraction > config.max_clipped_fraction:
        found.append(Rejection("clipping", f"{quality.clipped_fraction:.2%} of samples clipped"))
    return found


def overlapping_neighbours(spans: list[tuple[float, float]], max_overlap: float) -> dict[int, int]:
    """Index -> index of a neighbour it overlaps by more than `max_overlap` seconds (spans in any order)."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    found: dict[int, int] = {}
    latest = None  # the span, among those seen, that ends last
    for i in order:
        if latest is not None:
            shared = min(spans[latest][1], spans[i][1]) - spans[i][0]
            if shared > max_overlap:
                found.setdefault(i, latest)
                found.setdefault(latest, i)
        if latest is None or spans[i][1] > spans[latest][1]:
            latest = i
    return found
