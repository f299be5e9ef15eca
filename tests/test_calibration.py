"""Confidence calibration: the matching rule, the fitted estimate and its threshold, the saved file."""

from __future__ import annotations

import numpy as np
import pytest

from kidsasr.review.calibration import (FEATURES, Calibration, Utterance, choose_threshold, cue_badness, cue_features,
                                        fit, summary, utterance_outcomes, wilson_interval)

REFS = [Utterance(0.0, 2.0, "안녕하세요 여러분"), Utterance(3.0, 5.0, "오늘은 토마토를 키워요"),
        Utterance(6.0, 8.0, "정말 재미있어요")]


def test_matching_rule_bad_and_caught():
    cues = [(0.1, 1.0, "안녕하세요"), (1.0, 1.9, "여러분"),  # together exact
            (3.0, 5.0, "오늘 도마도 키워"),                 # CER above 30%
            (9.5, 10.0, "정말")]                           # nearest the third by its midpoint: 6/7 missed
    outcomes = utterance_outcomes(cues, [False, False, True, False], REFS)
    assert [o.cues for o in outcomes] == [[0, 1], [2], [3]]
    assert [o.bad for o in outcomes] == [False, True, True]
    assert [o.caught for o in outcomes] == [False, True, False]
    assert outcomes[0].cer == 0.0 and outcomes[1].cer > 0.3
    s = summary(outcomes, [False, False, True, False])
    assert (s["bad_utterances"], s["bad_caught"], s["flagged"], s["recall"]) == (2, 1, 1, 0.5)
    assert list(cue_badness(cues, REFS)) == [False, False, True, True]
    # an utterance no cue went to is bad and cannot be caught
    assert [o.bad for o in utterance_outcomes(cues[:2], [True, True], REFS)] == [False, True, True]


def test_wilson_interval():
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-3) and high == pytest.approx(0.1744, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def row(probabilities, start=0.0, end=2.0, text="가나다라", **decoder):
    return {"start": start, "end": end, "lines": [text], "confidence": float(np.mean(probabilities)),
            "words": [{"text": "가", "start": 0, "end": 1, "probability": p} for p in probabilities], "decoder": decoder}


def test_features_fit_threshold_and_round_trip(tmp_path):
    assert len(cue_features(row([0.9, 0.2]))) == len(FEATURES)
    rng = np.random.default_rng(0)
    rows, bad = [], []
    for _ in range(400):
        wrong = rng.random() < 0.25
        p = np.clip(rng.normal(0.45 if wrong else 0.8, 0.15, 4), 0, 1)
        rows.append(row(list(p), avg_logprob=rng.normal(-0.9 if wrong else -0.3, 0.2)))
        bad.append(wrong)
    x, bad = np.array([cue_features(r) for r in rows]), np.array(bad)
    calibration = fit(x, bad, "test-model", max_flag_share=0.3)
    flags = calibration.flags(rows)
    assert flags.mean() <= 0.3 and flags[bad].mean() >= 0.8  # separable data: most bad cues caught
    calibration.save(tmp_path / "c.json")
    again = Calibration.load(tmp_path / "c.json")
    assert list(again.flags(rows)) == list(flags)
    with pytest.raises(ValueError, match="both good and bad"):
        fit(x, np.zeros(len(x), bool), "m")


def test_choose_threshold_respects_the_flag_share():
    probability = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    t = choose_threshold(probability, probability > 0.5, 0.3)
    assert t == 0.7 and np.mean(probability >= t) == 0.3
