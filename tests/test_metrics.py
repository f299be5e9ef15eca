"""kidsasr.evaluation.metrics on hand-checked Korean examples, the normalisation policy, and the bootstrap
statistics."""

from __future__ import annotations

import numpy as np
import pytest

from kidsasr.evaluation import metrics


def score(refs, hyps):
    return metrics.score([f"u{i}" for i in range(len(refs))], refs, hyps)


def test_one_substitution_in_five_syllables():
    s = score(["안녕하세요"], ["안녕하세여"])
    assert s.char.rate == pytest.approx(1 / 5)
    assert (s.char.substitutions.sum(), s.char.deletions.sum(), s.char.insertions.sum()) == (1, 0, 0)
    assert s.confusions[("요", "여")] == 1


def test_dropped_particle_headline_spaced_and_word_rates():
    # 나는학교에가요 (7 chars) vs 나는학교가요: one deletion (에).
    # Spaced: "나는 학교에 가요" (9 chars incl. 2 spaces) vs "나는 학교 가요": one deletion.
    # Words: [나는, 학교에, 가요] vs [나는, 학교, 가요]: one substitution.
    s = score(["나는 학교에 가요."], ["나는 학교 가요"])
    assert s.char.rate == pytest.approx(1 / 7)
    assert s.char_spaced.rate == pytest.approx(1 / 9)
    assert s.word.rate == pytest.approx(1 / 3)
    assert s.confusions[("에", "")] == 1


def test_corpus_cer_is_total_edits_over_total_reference_chars():
    s = score(["안녕하세요", "나는 학교에 가요."], ["안녕하세여", "나는 학교 가요"])
    assert s.char.rate == pytest.approx(2 / 12)  # not the mean of 1/5 and 1/7
    assert list(s.char.errors) == [1, 1] and list(s.char.ref_len) == [5, 7]


def test_policy_spacing_punctuation_and_numbers_are_not_errors():
    s = score(["어린이 집", "안녕, 친구야!", "사과 3개 주세요"], ["어린이집", "안녕 친구야", "사과 세 개 주세요"])
    assert s.char.rate == 0.0
    # spacing still shows where spaces are kept: "어린이 집" (5) vs "어린이집" loses one space
    assert s.char_spaced.errors[0] == 1
    # and in WER: [어린이, 집] vs [어린이집] is one substitution + one deletion
    assert s.word.errors[0] == 2


def test_policy_is_stated_for_reports():
    assert "spaces removed" in metrics.NORMALISATION_POLICY or "space removed" in metrics.NORMALISATION_POLICY
    assert "normalize_for_cer" in metrics.NORMALISATION_POLICY


def test_missing_hypothesis_counts_as_all_deletions():
    s = score(["사과", "바나나"], [None, "바나나"])
    assert list(s.missing) == [True, False]
    assert s.char.deletions[0] == 2
    assert s.char.rate == pytest.approx(2 / 5)


def test_empty_reference_is_an_error_naming_the_id():
    with pytest.raises(metrics.ScoringError, match="u1"):
        score(["사과", "!!"], ["사과", "네"])


def test_length_mismatch_is_an_error():
    with pytest.raises(metrics.ScoringError):
        metrics.score(["a"], ["사과", "배"], ["사과"])


def test_hallucination_length_and_repetition():
    assert metrics.is_hallucination("고마워", "고마워고마워고마워")  # 9 > 1.5 x 3, and a loop
    assert metrics.is_hallucination("오늘은친구와공원에가서놀았어요", "구독과좋아요구독과좋아요구독과좋아요")
    assert metrics.repeats_phrase("너는이이이이이", "너는이가")  # one syllable five times
    assert not metrics.repeats_phrase("하하하하", "")
    assert not metrics.is_hallucination("안녕하세요", "안녕하세여")
    assert not metrics.is_hallucination("고마워", "고마워요")  # 4 <= 4.5
    # a repetition the child really said is not a hallucination
    assert not metrics.repeats_phrase("아니아니아니", "아니아니아니싫어")
    s = score(["고마워", "안녕"], ["고마워 고마워 고마워", "안녕"])
    assert list(s.hallucinated) == [True, False]
    assert s.char.rate == pytest.approx(6 / 5)  # six insertions over five reference chars


def test_bootstrap_ci_contains_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(1)

    def ci(n):
        ref_len = rng.integers(5, 30, n)
        errors = rng.binomial(ref_len, 0.2)
        return metrics.bootstrap_ci(errors, ref_len, n_resamples=500, seed=0)

    small, large = ci(50), ci(5000)
    for c in (small, large):
        assert c.low <= c.estimate <= c.high
    assert (large.high - large.low) < (small.high - small.low) / 5
    assert large.low < 0.2 < large.high


def test_bootstrap_is_seeded():
    errors, ref_len = np.array([1, 0, 3, 2]), np.array([5, 4, 6, 7])
    assert metrics.bootstrap_ci(errors, ref_len, 200, seed=3) == metrics.bootstrap_ci(errors, ref_len, 200, seed=3)


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    ref_len = rng.integers(5, 30, 400)
    better = rng.binomial(ref_len, 0.10)
    worse = rng.binomial(ref_len, 0.20)
    real = metrics.paired_bootstrap(better, worse, ref_len, n_resamples=1000, seed=0)
    assert real.significant and real.p_value < 0.01 and real.difference.high < 0
    # Two equally good systems: at the 5% level about 1 in 20 null data sets may come out significant.
    nulls = [metrics.paired_bootstrap(rng.binomial(ref_len, 0.15), rng.binomial(ref_len, 0.15), ref_len,
                                      n_resamples=500, seed=k) for k in range(40)]
    assert sum(c.significant for c in nulls) <= 6
    assert np.median([c.p_value for c in nulls]) > 0.2


def test_breakdown_subset_sizes_sum_to_total_and_unknown_is_kept():
    s = score(["안녕하세요", "사과", "바나나", "학교에 가요"], ["안녕하세여", "사과", None, "학교 가요"])
    rows = metrics.breakdown(s, "sex", ["F", None, "M", "F"], n_resamples=100)
    assert {r.value: r.utterances for r in rows} == {"F": 2, "M": 1, "unknown": 1}
    assert sum(r.utterances for r in rows) == len(s)
    assert sum(r.reference_chars for r in rows) == s.char.ref_len.sum()
    f = next(r for r in rows if r.value == "F")
    assert f.cer.estimate == pytest.approx(2 / 10)
    with pytest.raises(metrics.ScoringError):
        metrics.breakdown(s, "sex", ["F"])


def test_length_buckets():
    assert [metrics.length_bucket(n) for n in (1, 5, 6, 20, 21, 40, 41, 300)] == [
        "1-5", "1-5", "6-10", "11-20", "21-40", "21-40", "41+", "41+"]
