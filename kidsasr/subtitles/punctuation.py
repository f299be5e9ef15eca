"""The punctuation and ellipsis policy of kidsasr's subtitles (written out in subtitle/PUNCTUATION.md).

Two pure steps: `clean_word` on each recognised word before cues are built, `finish_line` on each line of a cue.
"""

from __future__ import annotations

import re

ELLIPSIS = "\u2026"
_DOTS = re.compile(r"(?:\.\s?){2,}|。{2,}|…+(?:\s?\.)*")
_REPEATED = re.compile(r"([?!])\1+")
_LINE_END_DROP = ".,"


def clean_word(text: str) -> str:
    """Two or more dots (`..`, `...`, `. . .`, `。。。`) become one U+2026; `!!`/`??` become one mark; no spaces."""
    text = _DOTS.sub(ELLIPSIS, "".join(str(text).split()))
    return _REPEATED.sub(r"\1", text)


def finish_line(line: str, first_in_cue: bool = False) -> str:
    """A line as it is shown: a period or comma that ends the line is dropped (the line end is the pause), `?`,
    `!` and `…` stay; a cue never starts with an ellipsis. Periods inside a line (between two sentences, in
    `3.5`) stay."""
    line = " ".join(line.split())
    if first_in_cue:
        line = line.lstrip(ELLIPSIS + " ") or line
    return line.rstrip(_LINE_END_DROP).rstrip() or line
