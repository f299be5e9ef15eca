"""The cue builder's text layer: syntax-aware breaks, no sentence-start stubs or fragments, punctuation policy,
frame-grid times; judged by kidsasr.subtitles.breaks, the checker written apart from the builder."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from kidsasr.subtitles.breaks import check_breaks
from kidsasr.subtitles.cues import build_cues, check_cues, load_style, reading_length
from kidsasr.subtitles.frames import frame_of, frame_rate

KIDS = load_style("kids")


@dataclass
class Word:
    text: str
    start: float
    end: float
    probability: float = 0.9


def say(text: str, start: float = 0.0, per_syllable: float = 0.16, space: float = 0.06) -> list[Word]:
    words, t = [], start
    for token in text.split():
        duration = per_syllable * max(1, reading_length(token))
        words.append(Word(token, round(t, 3), round(t + duration, 3)))
        t += duration + space
    return words


@pytest.mark.parametrize("text", [
    "역시 좋은 학교 가정의 아이들과 함께 놀았어요",
    "우리 회사 근처에 저런 유명한 식당이 있었네요",
    "어제 그 친구가 나한테 있었단 말이야 정말로",
    "숙제를 먼저 끝내고 밥을 먹어야 되니까 빨리 와",
    "오늘은 도서관에서 책을 한 번에 몇 권까지 빌릴 수 있어요",
])
def test_lines_break_at_syntax_not_inside_a_phrase(text):
    cues = build_cues(say(text), KIDS)
    report = check_breaks(cues)
    assert report.bad == [], [str(b) for b in report.bad]
    assert all(not problems for problems in check_cues(cues, KIDS))


def test_no_cue_ends_a_sentence_and_starts_the_next_with_a_stub():
    text = ("맛있는 음식인 것 같아요. 아, 저는 내일부터 헬스를 다시 시작해야 될 것 같아요. 이제 헬스는 가야 돼. "
            "그래서 오늘은 일찍 잘 거예요. 음, 그게 좋겠다.")
    cues = build_cues(say(text), KIDS)
    report = check_breaks(cues)
    assert report.stubs == [] and report.fragments == []
    assert report.bad_share <= 0.05


def test_a_lone_word_between_long_pauses_is_its_own_cue_and_no_other_word_is():
    words = say("네", 0.0) + say("그럼 우리 같이 놀이터에 가서 재미있게 놀자", 3.0) + say("좋아", 8.0)
    cues = build_cues(words, KIDS)
    report = check_breaks(cues)
    assert [c.text for c in cues][0] == "네" and report.fragments == []


def test_punctuation_policy_on_cue_lines():
    cues = build_cues(say("그.. 저는 학교에 갔어요. 정말?"), KIDS)
    text = " ".join(" ".join(c.lines) for c in cues)
    assert "그…" in text and ".." not in text and not text.endswith(".") and "정말?" in text
    assert all(not line.endswith((".", ",")) for c in cues for line in c.lines)


@pytest.mark.parametrize("fps", [23.976, 24, 25, 29.97, 30])
def test_cue_times_sit_on_the_frame_grid_and_keep_the_rules(fps):
    style = replace(KIDS, fps=fps)
    rate = frame_rate(fps)
    text = "안녕 친구들 오늘은 무엇을 할까요? 같이 그림을 그려 봐요. 좋아! 빨간색 크레파스를 가져와 줄래?"
    cues = build_cues(say(text, 0.37) + say("네", 9.0) + say("고마워 정말 예쁘다", 9.9), style)
    for cue in cues:
        for t in (cue.start, cue.end):
            assert abs(t * rate - frame_of(t, rate)) < 1e-6
    assert all(not problems for problems in check_cues(cues, style)), check_cues(cues, style)
