"""How good a line or cue break is between two spacing units, from a morphological analysis (kidsasr.subtitles.morph).

Kinds, best first:
  sentence  after a sentence end: a final ending (EF) or `.` `?` `!` `…`
  clause    after a comma or a connective ending (EC: `먹고`, `와서`, `그런데`), or before a conjunctive adverb
            (MAJ: `그리고`, `그래서`)
  phrase    after a particle (J*: `학교에`, `친구들과`, `나는`) or an interjection (IC: `아`, `음`)
  word      between two other words
  bound     where a break splits what reads as one: after an adnominal ending (ETM), a determiner (MM), a prefix
            (XPN) or the genitive 의 (JKG); before a bound noun (NNB), an auxiliary verb (VX) or a suffix
            (XSN/XSV/XSA); inside an -어야/-게/-지/-고 + 되다/하다/않다/있다/싶다 construction; inside a number
            expression (`3시 30분`) or `-와/과 함께`; inside a morpheme
The cue builder (kidsasr.subtitles.cues) prices each kind; a bound break is taken only where the style rules leave no other.
"""

from __future__ import annotations

from typing import Sequence

from .morph import Morph, around, morphemes

KINDS = ("sentence", "clause", "phrase", "word", "bound")
_SENTENCE_MARKS = frozenset(".?!…")
_BINDS_NEXT = frozenset({"ETM", "MM", "XPN", "JKG"})
_BOUND_TO_PREVIOUS = frozenset({"NNB", "VX", "XSN", "XSV", "XSA"})
_HELPER_ENDINGS = frozenset({"어야", "아야", "여야", "야", "게", "지", "고"})
_HELPER_VERBS = frozenset({"되", "하", "않", "있", "싶"})
_WITH = frozenset({"와", "과", "랑", "이랑", "하고"})
_TOGETHER = frozenset({"함께", "같이"})


def boundary_kinds(texts: Sequence[str]) -> list[str]:
    """The kind of the break after each of `texts` but the last (len(texts) - 1 kinds)."""
    if len(texts) < 2:
        return []
    joined, positions, at = [], [], 0
    for text in texts:
        joined.append(text)
        at += len(text)
        positions.append(at)
        at += 1
    morphs = morphemes(" ".join(joined))
    return [_kind(*around(morphs, p), left=texts[k]) for k, p in enumerate(positions[:-1])]


def _kind(before: Morph | None, after: Morph | None, inside: bool, left: str) -> str:
    stripped = left.rstrip("\"'”’)]}」』》〉")
    if stripped[-1:] in _SENTENCE_MARKS:
        return "sentence"
    if stripped[-1:] in ",;:":
        return "clause"
    if inside or before is None or after is None:
        return "bound" if inside else "word"
    if before.tag in _BINDS_NEXT or after.tag in _BOUND_TO_PREVIOUS:
        return "bound"
    if before.tag == "EC" and before.form in _HELPER_ENDINGS and after.tag in ("VV", "VX", "VA") \
            and after.form in _HELPER_VERBS:
        return "bound"
    if before.tag in ("NNB", "NNG") and after.tag == "SN" and any(ch.isdigit() for ch in left):
        return "bound"  # 3시 / 30분, 2024년 / 3월
    if before.tag == "JKB" and before.form in _WITH and after.form in _TOGETHER:
        return "bound"  # 친구들과 / 함께
    if before.tag == "EF":
        return "sentence"
    if before.tag == "EC" or after.tag == "MAJ":
        return "clause"
    if before.tag.startswith("J") or before.tag == "IC":
        return "phrase"
    return "word"
