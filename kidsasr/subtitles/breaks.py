"""Where subtitle text is cut, judged from the text alone: bad breaks, sentence-start stubs and fragment cues.

Written apart from the cue builder (kidsasr.subtitles.cues), so that it measures the builder instead of repeating it. It
reads any cues (start, end, lines: ours, a vendor's file read back) and analyses the text on both sides of every
line break and every cue break with kiwipiepy (kidsasr.subtitles.morph).

A break is bad when it falls
  - right after an adnominal ending (ETM: `좋은 / 학교`, `있었단 / 말이야`),
  - right after a determiner (MM: `이 / 책`, `무슨 / 일`),
  - right after a prefix (XPN: `맨 / 손`),
  - right after the genitive 의 (JKG: `가정의 / 아이들과`),
  - right before a bound noun (NNB: `할 / 수`, `3 / 개`),
  - right before an auxiliary verb (VX: `먹고 / 있다`, `하고 / 싶다`),
  - right before a suffix (XSN, XSV, XSA: `공부 / 하다`),
  - inside an "-어야/-게/-지/-고 + 되다/하다/않다/있다/싶다" construction (`먹어야 / 되니까`, `가게 / 되었다`,
    `먹지 / 않았다`),
  - inside a morpheme (a word cut in two).

A sentence-start stub is a cue that ends one sentence and then starts the next with three or fewer characters
(letters and digits, lone jamo such as `ㅋ` not counted) that the next cue continues (`…음식인 것 같아요 아,`, `…이제. 헬스는`).

A fragment cue holds one word only (`아,`, `무슨`, `그…`), unless the speech is a lone word: more than
`lone_pause` seconds of silence before and after it (the cue's words' times when it has them, else its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from .morph import Morph, around, morphemes

SENTENCE_PUNCTUATION = frozenset(".?!…")
STUB_CHARS = 3
CONSTRUCTION_ENDINGS = frozenset({"어야", "아야", "여야", "야", "게", "지", "고"})
CONSTRUCTION_VERBS = frozenset({"되", "하", "않", "있", "싶"})


class TextCue(Protocol):
    start: float
    end: float
    lines: list[str]


@dataclass(frozen=True)
class Pattern:
    name: str
    matches: Callable[[Morph | None, Morph | None], bool]


PATTERNS: tuple[Pattern, ...] = (
    Pattern("after an adnominal ending (ETM)", lambda a, b: a is not None and a.tag == "ETM"),
    Pattern("after a determiner (MM)", lambda a, b: a is not None and a.tag == "MM"),
    Pattern("after a prefix (XPN)", lambda a, b: a is not None and a.tag == "XPN"),
    Pattern("after the genitive 의 (JKG)", lambda a, b: a is not None and a.tag == "JKG"),
    Pattern("before a bound noun (NNB)", lambda a, b: b is not None and b.tag == "NNB"),
    Pattern("before an auxiliary verb (VX)", lambda a, b: b is not None and b.tag == "VX"),
    Pattern("before a suffix (XSN/XSV/XSA)", lambda a, b: b is not None and b.tag in ("XSN", "XSV", "XSA")),
    Pattern("inside an -어야/-게/-지/-고 + 되다/하다/않다/있다/싶다 construction",
            lambda a, b: a is not None and b is not None and a.tag == "EC" and a.form in CONSTRUCTION_ENDINGS
            and b.tag in ("VV", "VX", "VA") and b.form in CONSTRUCTION_VERBS),
)


@dataclass(frozen=True)
class BadBreak:
    cue: int  # 0-based index of the cue the break ends (a line break: the cue it is in)
    kind: str  # "line" | "cue"
    pattern: str
    left: str
    right: str

    def __str__(self) -> str:
        mark = " / " if self.kind == "line" else " // "
        return f"{self.left}{mark}{self.right} ({self.pattern})"


@dataclass
class BreakReport:
    cues: int = 0
    line_breaks: int = 0
    cue_breaks: int = 0
    bad: list[BadBreak] = field(default_factory=list)
    stubs: list[tuple[int, str]] = field(default_factory=list)
    fragments: list[tuple[int, str]] = field(default_factory=list)

    @property
    def breaks(self) -> int:
        return self.line_breaks + self.cue_breaks

    @property
    def bad_share(self) -> float:
        return len(self.bad) / self.breaks if self.breaks else 0.0

    def summary(self) -> dict:
        return {"cues": self.cues, "breaks": self.breaks, "line_breaks": self.line_breaks,
                "cue_breaks": self.cue_breaks, "bad_breaks": len(self.bad), "bad_share": round(self.bad_share, 4),
                "bad_line_breaks": sum(b.kind == "line" for b in self.bad),
                "sentence_start_stubs": len(self.stubs), "fragment_cues": len(self.fragments)}


def bad_pattern(left: str, right: str) -> str | None:
    """The pattern a break between `left` and `right` text matches, None when the break is not bad."""
    text = f"{left} {right}"
    before, after, inside = around(morphemes(text), len(left))
    if inside:
        return "inside a morpheme"
    for pattern in PATTERNS:
        if pattern.matches(before, after):
            return pattern.name
    return None


def sentence_start_stub(text: str) -> str | None:
    """The short start of a next sentence at the end of `text` (at most STUB_CHARS letters/digits), or None."""
    morphs = morphemes(text)
    ends = [m.end for m in morphs if (m.tag == "SF" and m.form[-1:] in SENTENCE_PUNCTUATION) or m.tag == "EF"]
    if not ends:
        return None
    last = max(ends)
    while last < len(text) and not text[last].isspace():
        last += 1  # the rest of the word that ends the sentence: a particle ("싶대요"), closing marks ("요.」")
    tail = text[last:].strip()
    letters = sum(map(_counts, tail))
    return tail if 0 < letters <= STUB_CHARS else None


def _counts(ch: str) -> bool:
    """Letters and digits, but not a lone jamo (`ㅋㅋ`, `ㅠ` are emoticons, not the start of a sentence)."""
    return ch.isalnum() and not "\u3131" <= ch <= "\u318e"


def check_breaks(cues: Sequence[TextCue], lone_pause: float = 1.0) -> BreakReport:
    """Every line and cue break of `cues` (in time order) judged by PATTERNS, plus stubs and fragment cues."""
    report = BreakReport(cues=len(cues))
    texts = [" ".join(" ".join(line.split()) for line in cue.lines).strip() for cue in cues]
    for k, cue in enumerate(cues):
        lines = [" ".join(line.split()) for line in cue.lines if line.strip()]
        for n in range(1, len(lines)):
            report.line_breaks += 1
            left, right = " ".join(lines[:n]), " ".join(lines[n:])
            pattern = bad_pattern(_strip_dash(left), _strip_dash(right))
            if pattern and not _is_dash_pair(lines):
                report.bad.append(BadBreak(k, "line", pattern, _tail(left), _head(right)))
        if k + 1 < len(cues) and texts[k] and texts[k + 1]:
            report.cue_breaks += 1
            pattern = bad_pattern(_strip_dash(texts[k]), _strip_dash(texts[k + 1]))
            if pattern:
                report.bad.append(BadBreak(k, "cue", pattern, _tail(texts[k]), _head(texts[k + 1])))
            stub = sentence_start_stub(texts[k])
            if stub:
                report.stubs.append((k, texts[k]))
        if len(texts[k].split()) == 1 and not _lone_word(cues, k, lone_pause):
            report.fragments.append((k, texts[k]))
    return report


def _strip_dash(text: str) -> str:
    return text[2:] if text.startswith("- ") else text


def _is_dash_pair(lines: list[str]) -> bool:
    """Two speakers' lines ("- 뭐야?" / "- 사과야"): the break is the change of speaker."""
    return all(line.startswith("- ") for line in lines)


def _tail(text: str, words: int = 3) -> str:
    return " ".join(text.split()[-words:])


def _head(text: str, words: int = 3) -> str:
    return " ".join(text.split()[:words])


def _speech_span(cue) -> tuple[float, float]:
    return getattr(cue, "speech_start", cue.start), getattr(cue, "speech_end", cue.end)


def _lone_word(cues: Sequence[TextCue], k: int, pause: float) -> bool:
    start, end = _speech_span(cues[k])
    before = start - _speech_span(cues[k - 1])[1] if k > 0 else float("inf")
    after = _speech_span(cues[k + 1])[0] - end if k + 1 < len(cues) else float("inf")
    return before > pause and after > pause
