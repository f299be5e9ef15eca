"""The real-speech episodes' scoring (reference spans, child clips) and, when ../shared/real-speech is here, a few
real child clips through `kidsasr subtitle`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kidsasr.evaluation.child_episode import (NO_SPEECH_FOUND, NO_WORDS, ChildClip, build_child_episode,
                                             guard_reason_kind, score_child_cues, why_no_cue)
from kidsasr.evaluation.longform import TimedText, reference_span_scores
from kidsasr.evaluation.real_speech import real_speech_root


def test_reference_span_scores_count_time_outside_gaps_crossed_and_coverage():
    reference = [TimedText(1.0, 3.0, ("가",)), TimedText(4.0, 6.0, ("나",)), TimedText(8.0, 9.0, ("다",))]
    cues = [TimedText(0.8, 3.2, ("가",)),  # inside the +-0.3 s tolerance
            TimedText(5.0, 8.5, ("나 다",)),  # across the gap 6-8: 1.4 s outside the widened spans
            TimedText(10.0, 11.0, ("라",))]  # wholly outside: 1 s
    r = reference_span_scores(cues, reference)
    assert r["cues_across_gaps"] == 1
    assert r["outside_share"] == pytest.approx((1.4 + 1.0) / (2.4 + 3.5 + 1.0))
    assert r["spans_covered_share"] == pytest.approx((2.0 + 1.0 + 0.5) / 5.0)


def test_child_cues_scored_per_clip_with_the_longest_uncued_run():
    clips = [ChildClip("a", "other", 1.0, 2.0), ChildClip("b", "singing", 3.0, 5.0), ChildClip("c", "other", 6.0, 7.0),
             ChildClip("d", "other", 8.0, 9.0), ChildClip("e", "reading", 10.0, 11.0)]
    cues = [(1.0, 2.0, "안녕"), (10.5, 11.0, "시청해주셔서 감사합니다")]
    r = score_child_cues(cues, clips)
    assert r["clips_with_cue"] == pytest.approx(2 / 5)
    assert r["speech_covered"] == pytest.approx(1.5 / 6.0)
    assert r["longest_uncued_stretch"] == pytest.approx(9.0 - 3.0)  # clips b, c, d
    assert r["stock_hallucinations"] == ["시청해주셔서 감사합니다"]
    assert r["by_activity"]["singing"] == {"clips": 1, "with_cue": 0.0, "covered": 0.0}


def test_each_clip_without_a_cue_gets_the_first_step_that_lost_it():
    clips = [ChildClip("cued", "other", 1.0, 2.0), ChildClip("silent", "other", 3.0, 4.0),
             ChildClip("loop", "singing", 5.0, 6.0), ChildClip("unsure", "other", 7.0, 8.0),
             ChildClip("empty", "other", 9.0, 10.0), ChildClip("tail", "other", 11.0, 12.0)]
    regions = [(0.9, 2.1), (4.9, 8.1), (8.9, 12.1)]  # nothing found over "silent"
    dropped = [{"start": 5.0, "end": 6.0, "text": "자 자 자", "reason": "repetition loop"},
               {"start": 7.2, "end": 7.9, "text": "음", "reason": "low log-probability (-1.31 < -1.0)"},
               {"start": 11.5, "end": 11.5, "text": "네", "reason": "outside speech"}]  # a point in time
    reasons = why_no_cue(clips, [(1.2, 1.8, "안녕")], regions, dropped)
    assert reasons == {NO_SPEECH_FOUND: ["silent"], "repetition loop": ["loop"], "low log-probability": ["unsure"],
                       NO_WORDS: ["empty"], "outside speech": ["tail"]}
    assert guard_reason_kind("no speech (p=0.91, logprob=-1.40)") == "no speech"
    assert guard_reason_kind("compression ratio 2.61 > 2.4") == "compression ratio"
    assert guard_reason_kind("music-dominated (0.71 > 0.6)") == "music-dominated"


def _child_set():
    root = real_speech_root()
    if not (root / "child" / "metadata.jsonl").is_file():
        pytest.skip(f"{root}/child not found: the real child-speech set is not in the repository (evaluation only)")
    return root


def test_child_episode_is_fixed_by_its_seed(tmp_path):
    root = _child_set()
    episode = build_child_episode(tmp_path / "ep", root, seconds=20.0)
    again = build_child_episode(tmp_path / "again", root, seconds=20.0)
    assert [c.id for c in episode.clips] == [c.id for c in again.clips] and episode.duration <= 20.0
    assert all(b.start - a.end == pytest.approx(0.8, abs=1e-3) for a, b in zip(episode.clips, episode.clips[1:]))


@pytest.mark.slow
def test_real_child_clips_through_kidsasr_subtitle(tmp_path):
    """Six real child clips (talking and singing): valid cues for most of them, nothing stock, no crash."""
    from kidsasr.asr.guards import stock_phrase_spans
    from kidsasr.cli import main

    from conftest import WHISPER_BASE

    episode = build_child_episode(tmp_path / "ep", _child_set(), seconds=15.0)
    out = tmp_path / "out" / "child.vtt"
    assert main(["subtitle", str(episode.wav), "-o", str(out), "--model", WHISPER_BASE]) == 0
    side = json.loads(out.with_name("child.cues.json").read_text(encoding="utf-8"))
    cues = [(c["start"], c["end"], " ".join(c["lines"])) for c in side["cues"]]
    scores = score_child_cues(cues, episode.clips)
    assert scores["clips_with_cue"] >= 0.5 and not scores["stock_hallucinations"]
    assert all(not stock_phrase_spans(" ".join(c["lines"])) for c in side["cues"])
    assert np.all(np.diff([c["start"] for c in side["cues"]]) > 0)
