"""kidsasr.subtitles.breaks: the bad-break patterns, sentence-start stubs and fragment cues, on hand-made Korean text."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kidsasr.subtitles.breaks import PATTERNS, bad_pattern, check_breaks, sentence_start_stub


@dataclass
class TextCue:
    start: float
    end: float
    lines: list[str] = field(default_factory=list)


@pytest.mark.parametrize("left, right, pattern", [
    ("역시 좋은", "학교", "ETM"), ("있었단", "말이야", "ETM"), ("이", "책을 읽었어", "MM"), ("무슨", "일이야", "MM"),
    ("맨", "손으로", "XPN"), ("가정의", "아이들과", "JKG"), ("먹고", "있어요", "VX"), ("하고", "싶다", "VX"),
    ("먹어야", "되니까", "construction"), ("가게", "되었다", "construction"),
])
def test_each_listed_pattern_is_found(left, right, pattern):
    found = bad_pattern(left, right)
    assert found is not None and pattern in found, (left, right, found)


@pytest.mark.parametrize("left, right", [
    ("학교에 갔어요.", "그리고 집에 왔어요"), ("나는", "학교에 가요"), ("밥을 먹고", "학교에 갔어요"), ("3시", "30분에 만나"),
    ("친구들과", "놀았어요"), ("비가 와서", "못 갔어"),
])
def test_natural_breaks_are_not_flagged(left, right):
    assert bad_pattern(left, right) is None


def test_the_docstring_lists_every_pattern():
    import kidsasr.subtitles.breaks as module

    for pattern in PATTERNS:
        key = pattern.name.rsplit("(", 1)[-1].rstrip(")").split("/")[0] if "(" in pattern.name else "construction"
        assert key in module.__doc__, pattern.name


@pytest.mark.parametrize("text, stub", [
    ("음식인 것 같아요 아,", "아,"), ("이제. 헬스는", "헬스는"), ("좋아요. 네.", None), ("학교에 갔어요", None),
    ("갔어요. 그래서 나는", None),
])
def test_sentence_start_stub(text, stub):
    assert sentence_start_stub(text) == stub


def test_check_breaks_counts_line_and_cue_breaks_and_fragments():
    cues = [TextCue(0.0, 2.0, ["역시 좋은", "학교에 다녀요"]),   # bad line break after ETM
            TextCue(2.1, 3.0, ["무슨"]),                        # fragment, and a bad cue break after MM
            TextCue(3.1, 5.0, ["일이 있었어요. 그래서"]),         # a cue break that is fine, no stub (4 letters? no: 3)
            TextCue(5.1, 7.0, ["집에 갔어요"]),
            TextCue(9.0, 9.5, ["네"])]                          # a lone word with pauses over 1 s around it
    report = check_breaks(cues)
    assert (report.line_breaks, report.cue_breaks) == (1, 4)
    assert [(b.cue, b.kind) for b in report.bad] == [(0, "line"), (1, "cue")]
    assert report.fragments == [(1, "무슨")]
    assert report.stubs == [(2, "일이 있었어요. 그래서")]
    assert report.summary()["bad_share"] == pytest.approx(2 / 5)


def test_two_speaker_dash_lines_are_not_a_bad_break():
    report = check_breaks([TextCue(0.0, 2.0, ["- 이", "- 책이야"])])
    assert report.bad == []
