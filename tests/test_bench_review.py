"""The pure pieces of `make bench-review` and `make calibration`: the simulated editor's corrections, the page's
flag rule, the calibration goals line."""

from __future__ import annotations

import json

import numpy as np

from kidsasr.audio import SAMPLE_RATE, write_wav
from kidsasr.corpus.reviewed import read_reviewed
from kidsasr.corpus.reader import ReadReport
from kidsasr.review.calibrate import goals_line
from kidsasr.review.calibration import Utterance
from kidsasr.review.document import EditableCue, review_files, save
from kidsasr.review.simulate import is_weak, simulate_review
from kidsasr.subtitles.cues import CueWord, load_style

TRUTH = [Utterance(0.5, 3.0, "안녕하세요 여러분"), Utterance(4.0, 7.0, "오늘은 토마토를 키워요"),
         Utterance(8.0, 10.0, "정말 재미있어요")]


def cue(start, end, text, confidence=0.9, error=None):
    return EditableCue(start, end, [text], confidence, [CueWord(text, start, end, confidence)], False, error)


MACHINE = [cue(0.4, 3.1, "안녕하세요 여러분"),
           cue(4.0, 5.4, "오늘 도마도", 0.4), cue(5.5, 7.1, "키워", 0.8),  # both go to the second sentence
           cue(8.1, 9.9, "정말 재미있어요")]


def test_is_weak_follows_the_page():
    assert is_weak(cue(0, 1, "가", confidence=0.4), 0.5, None)
    assert not is_weak(cue(0, 1, "가", confidence=0.6), 0.5, None)
    # with a calibration, the error estimate decides, whatever the confidence
    assert is_weak(cue(0, 1, "가", confidence=0.9, error=0.7), 0.5, 0.6)
    assert not is_weak(cue(0, 1, "가", confidence=0.1, error=0.5), 0.5, 0.6)
    assert not is_weak(EditableCue(0, 1, ["가"]), 0.5, None)  # no confidence: nothing to flag on


def test_flagged_sentence_is_merged_retyped_retimed_and_reviewed():
    flags = [is_weak(c, 0.5, None) for c in MACHINE]
    assert flags == [False, True, False, False]
    review = simulate_review(MACHINE, flags, TRUTH)
    assert review.flagged == 1
    assert [(c.start, c.end, c.lines, c.reviewed) for c in review.corrected] == [
        (0.4, 3.1, ["안녕하세요 여러분"], False), (4.0, 7.0, ["오늘은 토마토를 키워요"], True),
        (8.1, 9.9, ["정말 재미있어요"], False)]
    # the control: the same cues and times, the machine's text of the merged cues
    assert [(c.start, c.end, c.reviewed) for c in review.control] == \
        [(c.start, c.end, c.reviewed) for c in review.corrected]
    assert review.control[1].lines == ["오늘 도마도 키워"]
    merged = review.corrected[1]
    assert [w.text for w in merged.words] == ["오늘 도마도", "키워"] and merged.confidence == 0.4
    assert review.edits == [{"action": "text", "cue": 2, "before": ["오늘 도마도 키워"], "after": "오늘은 토마토를 키워요"},
                            {"action": "reviewed", "cue": 2}]
    assert not any(c.reviewed for c in simulate_review(MACHINE, [False] * 4, TRUTH).corrected)


def test_saved_review_preps_only_the_corrected_sentence(tmp_path):
    review = simulate_review(MACHINE, [False, True, False, False], TRUTH)
    write_wav(tmp_path / "ep.wav", np.zeros(12 * SAMPLE_RATE, np.float32))
    machine = tmp_path / "ep.vtt"
    files = review_files(machine)
    result = save(review.corrected, files, load_style("kids"), review.edits, "ep.wav")
    assert result.reviewed == [2]
    assert json.loads(files.log.read_text(encoding="utf-8").splitlines()[-1])["reviewed"] == [2]
    report = ReadReport()
    (episode,) = read_reviewed(tmp_path, report)
    assert [(s.text, s.start, s.end) for s in episode.sentences] == [("오늘은 토마토를 키워요", 4.0, 7.0)]


def test_goals_line():
    report = {"cues": 278, "flagged": 84, "flagged_share": 0.3022, "utterances": 149, "bad_utterances": 45,
              "bad_share_ci95": [0.234, 0.3799], "bad_without_cue": 2, "bad_caught": 26, "recall": 0.5778}
    line = goals_line(report)
    assert "30.2% of 278 cues flagged (goal <= 30%)" in line
    assert "26 of 45 bad utterances caught = 57.8% [95% CI 43.3%, 71.0%] (goal >= 70%)" in line
    assert "[95% CI of the share 23.4%, 38.0%]" in line and line.endswith("goals NOT met")
    assert goals_line({**report, "flagged_share": 0.25, "recall": 0.75}).endswith("goals met")
