"""The background condition prep assigns (clean | music | noise) agrees with the generator's truth.jsonl
(issue 18, case 16). The thresholds were tuned on demo seeds 0, 5, 7, 21, 22 and 23; these tests use seeds 11
and 12, which tuning never saw, and `make bench-condition` reports seeds 100-102."""

from __future__ import annotations

import pytest

from kidsasr.evaluation.conditions import agreement, measure_conditions


def test_agreement_and_recall_from_a_confusion_matrix():
    confusion = {"clean": {"clean": 8, "music": 2, "noise": 0}, "music": {"clean": 0, "music": 5, "noise": 0},
                 "noise": {"clean": 1, "music": 0, "noise": 4}}
    r = agreement(confusion)
    assert (r["sentences"], r["agreed"]) == (20, 17) and r["agreement"] == pytest.approx(0.85)
    assert r["recall"] == pytest.approx({"clean": 0.8, "music": 1.0, "noise": 0.8})


@pytest.mark.slow
def test_prep_condition_agrees_with_the_generators_truth(tmp_path_factory):
    """A demo-size corpus (12 episodes of 2-3 minutes): at least 85% agreement, every class at least 80% recall.
    The condition prep assigned before (the spectrum peakiness of the nearby pauses) reached about 82%, with
    noise recall near 60%, on the tuning seeds."""
    from kidsasr.synth.generator import generate

    corpus = generate("demo", 11, tmp_path_factory.mktemp("demo") / "demo-11")
    r = measure_conditions(corpus)
    assert r["sentences"] > 300
    assert r["agreement"] >= 0.85, r
    assert all(recall >= 0.8 for recall in r["recall"].values()), r


def test_a_sentence_the_theme_tune_fades_under_is_clean(tmp_path):
    """The first sentence of an episode often starts while the theme tune fades (truth: clean, under music for
    less than 30% of it). Taking the state of the nearest pause called most of them music (1 of 10 clean on demo
    seed 12); the minimum-statistics floor under the speech shows the music gone (6 of 10). Only the first
    minute of each episode is analysed, to keep the test fast."""
    from kidsasr.constants import SAMPLE_RATE
    from kidsasr.corpus.reader import read_corpus
    from kidsasr.fileio import read_jsonl
    from kidsasr.prep.cleaning import CleaningConfig, analyse, segment_quality
    from kidsasr.synth.generator import generate

    corpus = generate("demo", 12, tmp_path / "demo-12")
    truth = {(row["episode_id"], row["sentence_id"]): row["condition"] for row in read_jsonl(corpus / "truth.jsonl")}
    config = CleaningConfig()
    assigned = []
    for episode in read_corpus(corpus):
        first = episode.sentences[0]
        if truth[(episode.id, 1)] == "clean":
            signal = analyse(episode.audio.load()[: int((first.end + 30) * SAMPLE_RATE)], config)
            assigned.append(segment_quality(signal, first.start, first.end, config).condition)
    assert len(assigned) >= 8
    assert assigned.count("clean") >= 0.45 * len(assigned), assigned
