"""Episode-level scoring of a subtitle file (WebVTT or SRT) against reference cues or the episode's label JSON.

    kidsasr eval --subtitles ep.vtt --reference ep.json [--style kids] [--out DIR]

Four views, so the subtitle module is judged by the yardstick of its peers:
  text     CER over the whole episode (cue order, kidsasr.evaluation.metrics policy), plus CER with spaces and WER;
  SubER    the subtitle edit rate of Wilken et al. 2022 (`subtitle-edit-rate`): TER with shifts over words and
           line/cue break tokens, a word only matching within time-overlapping cues. The package splits words
           on spaces or, for language "ko", with MeCab-ko (not installed here), so we hand it our own tokens:
           characters (`suber_char`, the SubER analogue of CER) and eojeol (`suber_eojeol`, harsh: one wrong
           syllable costs the whole word), both after normalize_for_cer;
  timing   share of on-screen time outside reference speech, and cues held across a pause in speech;
  style    kidsasr.subtitles.cues.check_cue against a style profile, with the reference speech as speech regions.
Reference speech regions are the reference sentences' (or cues') spans unless others are given.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..subtitles.cues import Cue, Style, check_cue, load_style
from ..textnorm import normalize_for_cer
from . import metrics
from .inputs import EvalInputError, read_utf8

SUBTITLE_SUFFIXES = {".vtt", ".srt"}


class LongformInputError(EvalInputError):
    """A subtitle or reference file that cannot be scored, naming the file and the reason."""


@dataclass(frozen=True)
class TimedText:
    """A timed piece of text: one subtitle cue (lines kept) or one reference sentence (one line)."""

    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


# ---- reading ------------------------------------------------------------------------------------------------

def read_subtitles(path: str | Path) -> list[TimedText]:
    """Cues of a WebVTT or SRT file (webvtt-py), sorted by start; markup tags removed."""
    import webvtt

    path = Path(path)
    if not path.is_file():
        raise LongformInputError(f"{path}: file not found")
    if path.suffix.lower() not in SUBTITLE_SUFFIXES:
        raise LongformInputError(f"{path}: not a subtitle file (expected .vtt or .srt)")
    read_utf8(path)
    try:
        if path.suffix.lower() == ".srt":
            captions = webvtt.from_srt(str(path), encoding="utf-8")
        else:
            captions = webvtt.read(str(path), encoding="utf-8", strict=True)
    except Exception as e:  # webvtt-py raises several error types for malformed files
        raise LongformInputError(f"{path}: malformed subtitle file: {e}") from e
    for number, c in enumerate(captions, 1):
        if c.end_time.in_milliseconds() < c.start_time.in_milliseconds():
            raise LongformInputError(f"{path}: cue {number} ends ({c.end}) before it starts ({c.start})")
    segments = [TimedText(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                        tuple(_strip_tags(line) for line in c.lines if line.strip()))
                for c in captions]
    return sorted(segments, key=lambda s: (s.start, s.end))


def _strip_tags(line: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]*>", "", line)).strip()


def read_label_reference(path: str | Path) -> list[TimedText]:
    """The sentences of a 71502 label JSON as reference segments (raw labels; the policy normalises them)."""
    from ..corpus.reader import LabelError, decode_text, parse_time

    path = Path(path)
    try:
        doc = json.loads(decode_text(path.read_bytes())[0])
    except (LabelError, json.JSONDecodeError, OSError) as e:
        raise LongformInputError(f"{path}: unreadable label: {e}") from e
    sentences = (doc.get("media_info") or {}).get("sentence_list") if isinstance(doc, dict) else None
    if not isinstance(sentences, list) or not sentences:
        raise LongformInputError(f"{path}: no media_info.sentence_list")
    segments = []
    for k, s in enumerate(sentences, 1):
        try:
            segments.append(TimedText(parse_time(s["start"]), parse_time(s["end"]), (str(s["sentence"]),)))
        except (KeyError, TypeError, ValueError) as e:
            raise LongformInputError(f"{path}: sentence {k}: {e}") from e
        if segments[-1].end < segments[-1].start:
            raise LongformInputError(f"{path}: sentence {k} ends ({segments[-1].end:.3f} s) before it starts "
                                     f"({segments[-1].start:.3f} s)")
    return sorted(segments, key=lambda s: (s.start, s.end))


def read_reference(path: str | Path) -> list[TimedText]:
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_label_reference(path)
    return read_subtitles(path)


# ---- the four views -----------------------------------------------------------------------------------------

def merge_regions(regions: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _overlap(start: float, end: float, regions: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in regions if a < end and b > start)


def timing_scores(cues: Sequence[TimedText], speech: list[tuple[float, float]], style: Style) -> dict:
    """On-screen time outside speech, and cues that stay up across a pause longer than the style allows."""
    on_screen = sum(max(0.0, c.end - c.start) for c in cues)
    off_speech = sum(max(0.0, c.end - c.start) - _overlap(c.start, c.end, speech) for c in cues)
    pauses = [(a[1], b[0]) for a, b in zip(speech, speech[1:]) if b[0] - a[1] > style.max_pause_in_cue]
    spanning = sum(any(c.start < p0 and p1 < c.end for p0, p1 in pauses) for c in cues)
    speech_time = sum(b - a for a, b in speech)
    covered = sum(_overlap(a, b, merge_regions([(c.start, c.end) for c in cues])) for a, b in speech)
    return {
        "on_screen_seconds": on_screen,
        "off_speech_seconds": off_speech,
        "off_speech_share": off_speech / on_screen if on_screen else 0.0,
        "speech_seconds": speech_time,
        "speech_covered_share": covered / speech_time if speech_time else 0.0,
        "pauses_longer_than_style": len(pauses),
        "cues_spanning_pauses": spanning,
        "cues_spanning_pauses_share": spanning / len(cues) if cues else 0.0,
    }


def reference_span_scores(cues: Sequence[TimedText], reference: Sequence[TimedText], tolerance: float = 0.3) -> dict:
    """Timing against reference cues that are utterance spans with silence between them (the real episode): the
    share of on-screen time outside every span widened by `tolerance` on each side, cues that run across the gap
    between two consecutive spans (overlapping both), and the share of span time cues cover."""
    spans = merge_regions([(r.start, r.end) for r in reference])
    wide = merge_regions([(a - tolerance, b + tolerance) for a, b in spans])
    on_screen = sum(max(0.0, c.end - c.start) for c in cues)
    outside = sum(max(0.0, c.end - c.start) - _overlap(c.start, c.end, wide) for c in cues)
    crossing = [c for c in cues if any(c.start < a[1] and c.end > b[0] for a, b in zip(spans, spans[1:])
                                       if a[1] < c.end and b[0] > c.start)]
    shown = merge_regions([(c.start, c.end) for c in cues])
    span_time = sum(b - a for a, b in spans)
    return {"tolerance": tolerance, "outside_share": outside / on_screen if on_screen else 0.0,
            "cues_across_gaps": len(crossing), "spans_covered_share":
            sum(_overlap(a, b, shown) for a, b in spans) / span_time if span_time else 0.0}


def style_scores(cues: Sequence[TimedText], style: Style, speech: list[tuple[float, float]]) -> dict:
    """kidsasr.subtitles.cues.check_cue per cue; rules that need the builder's word times are not applicable to a
    file."""
    rules: Counter = Counter()
    failing = 0
    previous = None
    for segment in cues:
        cue = Cue(segment.start, segment.end, list(segment.lines), confidence=1.0)
        problems = [p for p in check_cue(cue, style, previous, speech) if p != "no timed words"]
        failing += bool(problems)
        rules.update({re.sub(r"\d+(\.\d+)?", "#", p) for p in problems})
        previous = cue
    return {"style": style.name, "cues": len(cues), "cues_with_violations": failing,
            "compliance": 1 - failing / len(cues) if cues else None,  # no cues: nothing to judge
            "violations_by_rule": dict(rules.most_common())}


def _suber_subtitles(segments: Sequence[TimedText], unit: str) -> list:
    from suber.data_types import LineBreak, Subtitle, TimedWord
    from suber.utilities import set_approximate_word_times

    subtitles = []
    for segment in segments:
        words = []
        for line in segment.lines:
            text = normalize_for_cer(line, keep_spaces=True)
            tokens = list(text.replace(" ", "")) if unit == "char" else text.split()
            words += [TimedWord(string=t, subtitle_start_time=segment.start, subtitle_end_time=segment.end)
                      for t in tokens]
            if tokens:
                words[-1].line_break = LineBreak.END_OF_LINE
        if not words:
            continue
        words[-1].line_break = LineBreak.END_OF_BLOCK
        set_approximate_word_times(words, segment.start, segment.end)
        subtitles.append(Subtitle(word_list=words, index=len(subtitles) + 1, start_time=segment.start,
                                  end_time=segment.end))
    return subtitles


def suber(hypothesis: Sequence[TimedText], reference: Sequence[TimedText], unit: str = "char") -> float:
    """SubER (%) with Korean tokens: `unit` "char" (syllables) or "eojeol" (space-separated words)."""
    from suber.metrics.suber import calculate_SubER

    return calculate_SubER(_suber_subtitles(hypothesis, unit), _suber_subtitles(reference, unit))


def score_episode(hypothesis: Sequence[TimedText], reference: Sequence[TimedText], style: Style,
                  speech_regions: Sequence[tuple[float, float]] | None = None) -> dict:
    """All four views for one episode; `speech_regions` default to the reference segments' spans."""
    if not reference:
        raise LongformInputError("the reference has no segments")
    speech = merge_regions(speech_regions if speech_regions is not None else [(r.start, r.end) for r in reference])
    text = metrics.score(["episode"], [" ".join(r.text for r in reference)],
                         [" ".join(h.text for h in hypothesis)], with_confusions=False)
    return {
        "cues": len(hypothesis),
        "reference_segments": len(reference),
        "cer": text.char.totals(),
        "cer_spaced": text.char_spaced.totals(),
        "wer": text.word.totals(),
        "suber_char": suber(hypothesis, reference, "char"),
        "suber_eojeol": suber(hypothesis, reference, "eojeol"),
        "timing": timing_scores(hypothesis, speech, style),
        "reference_spans": reference_span_scores(hypothesis, reference),
        "style_compliance": style_scores(hypothesis, style, speech),
        "normalisation_policy": metrics.NORMALISATION_POLICY,
    }


def evaluate_subtitles(subtitles: str | Path, reference: str | Path, style: str | Style = "kids",
                       speech_regions: Sequence[tuple[float, float]] | None = None) -> dict:
    """Score one subtitle file against a reference file (VTT/SRT cues or the episode's label JSON)."""
    style = load_style(style) if isinstance(style, str) else style
    try:
        result = score_episode(read_subtitles(subtitles), read_reference(reference), style, speech_regions)
    except metrics.ScoringError as e:
        raise LongformInputError(f"{reference}: {e}") from e
    return {"subtitles": str(subtitles), "reference": str(reference), **result}


def render_markdown(r: dict) -> str:
    t, s = r["timing"], r["style_compliance"]
    compliance = "n/a" if s["compliance"] is None else f"{100 * s['compliance']:.1f}"
    lines = [f"# Subtitle evaluation: {Path(r['subtitles']).name}", "",
             f"- subtitles `{r['subtitles']}` ({r['cues']} cues), reference `{r['reference']}` "
             f"({r['reference_segments']} segments)", "",
             "| CER % | CER spaced % | WER % | SubER char % | SubER eojeol % | speech covered % | "
             "off-speech on screen % | cues spanning pauses | style compliance % |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| {100 * r['cer']['rate']:.2f} | {100 * r['cer_spaced']['rate']:.2f} | {100 * r['wer']['rate']:.2f} | "
             f"{r['suber_char']:.2f} | {r['suber_eojeol']:.2f} | {100 * t['speech_covered_share']:.1f} | "
             f"{100 * t['off_speech_share']:.1f} | {t['cues_spanning_pauses']} | "
             f"{compliance} ({s['style']}) |", "",
             "## Style violations by rule", "", "| rule | cues |", "| --- | --- |"]
    lines += [f"| {rule} | {n} |" for rule, n in s["violations_by_rule"].items()]
    lines += ["", "## Normalisation policy", "", r["normalisation_policy"], ""]
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    """`kidsasr eval --subtitles FILE --reference FILE [--style NAME] [--out DIR]`."""
    import sys

    from ..fileio import write_json_atomic, write_text_atomic

    if not args.reference:
        print("kidsasr eval: error: --subtitles needs --reference (VTT/SRT cues or the label JSON)", file=sys.stderr)
        return 2
    try:
        result = evaluate_subtitles(args.subtitles, args.reference, args.style)
    except (EvalInputError, FileNotFoundError) as e:
        print(f"kidsasr eval: error: {e}", file=sys.stderr)
        return 2
    report = render_markdown(result)
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "subtitle_metrics.json", result)
        write_text_atomic(out / "subtitle_report.md", report)
        print(f"wrote {out / 'subtitle_metrics.json'} and {out / 'subtitle_report.md'}")
    print(report)
    return 0
