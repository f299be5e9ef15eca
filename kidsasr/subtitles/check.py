"""`kidsasr check EP.vtt --style kids`: the style rules on any subtitle file, without a reference.

Reads WebVTT, SubRip, SAMI (UTF-8 or CP949) or TTML with clock times (pysubs2), checks every cue against the
style profile (kidsasr.subtitles.cues.check_cues: lines, line width, duration, reading speed, gap to the previous cue, in
whole frames of the style's frame rate) and prints a table of the cues that break a rule and why. Exit status 1
when any cue does, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..evaluation.longform import LongformInputError, read_subtitles
from .cues import Cue, check_cues, load_style


class SubtitleReadError(ValueError):
    pass


def read_cues(path: str | Path) -> list[Cue]:
    """The cues of a subtitle file in time order (no word times: those rules are not checked). WebVTT and SubRip
    are read by webvtt-py (as kidsasr eval reads them: NOTE blocks are not cue text), SAMI and TTML by pysubs2."""
    import pysubs2

    path = Path(path)
    if not path.is_file():
        raise SubtitleReadError(f"{path}: no such file")
    if path.suffix.lower() in (".vtt", ".srt"):
        try:
            return [Cue(s.start, s.end, list(s.lines), 1.0) for s in read_subtitles(path)]
        except LongformInputError as e:
            raise SubtitleReadError(str(e)) from e
    last_error: Exception | None = None
    for encoding in ("utf-8-sig", "cp949"):
        try:
            events = pysubs2.load(str(path), encoding=encoding)
            break
        except UnicodeDecodeError as e:
            last_error = e
        except Exception as e:  # pysubs2 raises several kinds for a file it cannot parse
            raise SubtitleReadError(f"{path}: not a subtitle file pysubs2 can read: {type(e).__name__}: {e}") from e
    else:
        raise SubtitleReadError(f"{path}: neither UTF-8 nor CP949 text: {last_error}")
    cues = [Cue(e.start / 1000, e.end / 1000, [line for line in e.plaintext.split("\n")], 1.0)
            for e in events if e.plaintext.strip()]
    return sorted(cues, key=lambda c: (c.start, c.end))


def violations(cues: list[Cue], style) -> list[tuple[int, Cue, list[str]]]:
    """(1-based cue number, cue, its problems) for every cue that breaks a rule."""
    checked = ([p for p in problems if p != "no timed words"] for problems in check_cues(cues, style))
    return [(k, cue, found) for k, (cue, found) in enumerate(zip(cues, checked), 1) if found]


def render_table(path: Path, cues: list[Cue], found: list[tuple[int, Cue, list[str]]], style) -> str:
    lines = [f"{path}: {len(cues)} cues, {len(found)} breaking a rule of style {style.name} "
             f"({style.fps:g} fps)"]
    if found:
        lines += ["| cue | start | end | text | rules broken |", "| --- | --- | --- | --- | --- |"]
        for number, cue, problems in found:
            text = " / ".join(cue.lines).replace("|", "\\|")
            lines.append(f"| {number} | {cue.start:.3f} | {cue.end:.3f} | {text} | {'; '.join(problems)} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="SUBTITLES", help=".vtt, .srt, .smi or .ttml files")
    parser.add_argument("--style", default="kids", help="kids (default), adult, or a style YAML file")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate the times are checked on (default: the style's, 29.97)")


def run(args: argparse.Namespace) -> int:
    try:
        style = load_style(args.style)
        if args.fps:
            style = replace(style, fps=args.fps)
    except ValueError as e:
        print(f"kidsasr check: {e}", file=sys.stderr)
        return 2
    status = 0
    for name in args.files:
        try:
            cues = read_cues(name)
        except SubtitleReadError as e:
            print(f"kidsasr check: {e}", file=sys.stderr)
            status = 2
            continue
        found = violations(cues, style)
        print(render_table(Path(name), cues, found, style))
        if found and status == 0:
            status = 1
    return status
