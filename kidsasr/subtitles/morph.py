"""Korean morphological analysis (kiwipiepy, its model inside the wheel: no download) for the subtitle layer.

`morphemes(text)` gives (form, tag, start, end) with character offsets into `text` (Sejong tags: NNG noun,
NNB bound noun, VV verb, VX auxiliary, ETM adnominal ending, EC connective ending, EF final ending, JKG genitive,
MM determiner, XPN prefix, XSN/XSV/XSA suffixes, SF sentence punctuation, SP comma, ...).
"""

from __future__ import annotations

import functools
from typing import NamedTuple


class Morph(NamedTuple):
    form: str
    tag: str
    start: int
    end: int


@functools.lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


@functools.lru_cache(maxsize=1 << 14)
def morphemes(text: str) -> tuple[Morph, ...]:
    """The best analysis of `text`; offsets are positions in `text`, so a space between two words can be located
    between the morphemes that end before it and those that start after it."""
    if not text.strip():
        return ()
    return tuple(Morph(t.form, t.tag.split("-")[0], t.start, t.start + t.len) for t in _kiwi().tokenize(text))


def around(morphs: tuple[Morph, ...], position: int) -> tuple[Morph | None, Morph | None, bool]:
    """(the last morpheme ending at or before `position`, the first starting after it, whether a morpheme spans
    it). `position` is the index of a space in the analysed text."""
    before = after = None
    inside = False
    for m in morphs:
        if m.end <= position:
            before = m
        elif m.start > position:
            after = m
            break
        else:
            inside = True
    return before, after, inside
