"""Confidence calibration: the matching rule, the fitted estimate and its threshold, the saved file."""

from __future__ import annotations

import json

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


def test_decoder_details_go_into_the_side_file_with_the_calibrated_flags(tmp_path):
    from kidsasr.asr.transcribe import Segment
    from kidsasr.review.calibration import decoder_details, find_calibration
    from kidsasr.subtitles.cues import write_cues_json
    from review_episode import KIDS, machine_cues

    cues = machine_cues()
    segments = [Segment(0.5, 2.2, "안녕하세요 여러분", [], -0.2, 1.1, 0.01),
                Segment(4.0, 7.9, "오늘은", [], -1.2, 2.6, 0.3, fallback=True, music=0.4)]
    details = [decoder_details(c.speech_start, c.speech_end, segments) for c in cues]
    assert details[0] == {"avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01, "fallback": 0.0,
                          "music": 0.0}
    assert details[1]["fallback"] == 1.0 and details[1]["music"] == 0.4 and details[2] == {}
    rows = [{"start": c.start, "end": c.end, "lines": c.lines, "words": [{"probability": w.probability}
                                                                          for w in c.words],
             "decoder": d} for c, d in zip(cues, details)]
    x = np.array([cue_features(r) for r in rows * 10])
    calibration = fit(x, np.array([c.confidence < 0.5 for c in cues] * 10), "m", max_flag_share=0.5)
    write_cues_json(cues, tmp_path / "ep.cues.json", KIDS, None, details, calibration)
    side = json.loads((tmp_path / "ep.cues.json").read_text())
    assert [r["decoder"] for r in side["cues"]] == details
    assert side["error_threshold"] == round(calibration.threshold, 4)
    expected = calibration.error_probability([cue_features(r) for r in side["cues"]])
    assert [r["weak"] for r in side["cues"]] == [bool(p >= calibration.threshold) for p in expected]
    assert [r["error_probability"] for r in side["cues"]] == [round(float(p), 4) for p in expected]
    assert find_calibration(tmp_path) is None
    calibration.save(tmp_path / "confidence_calibration.json")
    assert find_calibration(tmp_path) == tmp_path / "confidence_calibration.json"


def test_calibrate_reads_both_kinds_of_data_and_scores_cached_decodes(tmp_path):
    from kidsasr.review.calibrate import episodes_in, labelled, score
    from kidsasr.subtitles.writers import write_subtitles
    from kidsasr.subtitles.cues import Cue

    prep = tmp_path / "prep"
    prep.mkdir()
    rows = [{"split": "dev", "audio_source": "/x/a.wav", "start": u.start, "end": u.end, "text": u.text} for u in REFS]
    (prep / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    [episode] = episodes_in(prep, "dev")
    assert episode.name == "a" and episode.utterances == REFS and episodes_in(prep, "test") == []
    real = tmp_path / "real"
    real.mkdir()
    (real / "episode.wav").write_bytes(b"")
    write_subtitles([Cue(u.start, u.end, [u.text], 1.0) for u in REFS], real / "reference.vtt")
    [other] = episodes_in(real)
    assert other.media == real / "episode.wav" and other.utterances == REFS
    # decodes are cached in the work folder: these stand for the model's
    work = tmp_path / "work"
    work.mkdir()
    decoded = [row([0.9, 0.95], 0.1, 1.9, "안녕하세요 여러분"), row([0.3, 0.2], 3.0, 5.0, "오늘 도마도 키워"),
               row([0.4], 6.0, 7.5, "정말")]
    (work / "a.cues.json").write_text(json.dumps({"cues": decoded}, ensure_ascii=False))
    (x, y), per_episode = labelled([episode], None, work, "kids")
    assert list(y) == [False, True, True]
    calibration = fit(np.vstack([x] * 5), np.concatenate([y] * 5), "m", max_flag_share=0.7)
    figures, probability, bad, outcomes = score(calibration, per_episode)
    assert figures["bad_utterances"] == 2 and figures["bad_caught"] == 2 and figures["flagged"] == 2
    assert list(bad) == [False, True, True] and len(probability) == 3
