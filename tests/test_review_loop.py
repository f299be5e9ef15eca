"""The review loop end to end: subtitle a generated episode, correct it through the editor's save path, prep it
with the corpus, find the corrections in the manifest with their reviewed times, and train on them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import WHISPER_BASE
from kidsasr.corpus.reader import read_corpus
from kidsasr.prep.runner import prepare
from kidsasr.textnorm import parse_label
from review_episode import open_session, serving
from test_prep import no_align_config
from test_review import post_save, request
from test_training import losses, recipe_for

EPISODE = "KID_P_0000"  # its first sentence's label times are jittered: the editor puts the true ones back


@pytest.mark.slow
def test_corrections_become_training_data(tiny_corpus, tiny_whisper, tmp_path):
    from kidsasr.asr.models import load_recognizer
    from kidsasr.subtitles.runner import subtitle_file
    from kidsasr.training import driver

    episode = next(e for e in read_corpus(tiny_corpus) if e.id == EPISODE)
    truth = {row["sentence_id"]: row for row in map(json.loads, (tiny_corpus / "truth.jsonl").read_text().splitlines())
             if row["episode_id"] == EPISODE}
    first, second = episode.sentences[:2]
    assert truth[1]["jittered"] and first.start != truth[1]["true_start"]

    # 1. the machine's subtitles (zero-shot whisper-base: espeak speech comes out wrong)
    reviewed_dir = tmp_path / "reviewed"
    reviewed_dir.mkdir()
    media = reviewed_dir / "ep.wav"
    shutil.copy(episode.audio.path, media)
    result = subtitle_file(media, media.with_suffix(".vtt"), load_recognizer(WHISPER_BASE, backend="transformers"))
    assert result.status == "done", result.reason

    # 2. an editor retypes and retimes the first sentence and marks it reviewed; the second is typed, not reviewed
    corrected = [(truth[1]["true_start"], truth[1]["true_end"], parse_label(first.text).spelling, True),
                 (truth[2]["true_start"], truth[2]["true_end"], parse_label(second.text).spelling, False)]
    with serving(open_session(media)) as base:
        machine = json.loads(request(base, "GET", "/api/episode")[1])["cues"]
        cues = [{"start": s, "end": e, "lines": [text], "confidence": None, "reviewed": reviewed,
                 "words": [w for c in machine for w in c["words"] if s <= w["start"] < e]}
                for s, e, text, reviewed in corrected]
        log = [{"action": "text", "cue": 1, "before": [c["lines"] for c in machine], "after": corrected[0][2]},
               {"action": "times", "cue": 1, "before": [first.start, first.end], "after": list(corrected[0][:2])}]
        status, saved = post_save(base, {"cues": cues, "log": log})
    assert status == 200, saved
    assert saved["reviewed"] == [1]

    # 3. prep reads the corpus and the reviewed episode together
    out = tmp_path / "prep"
    report = prepare([tiny_corpus, reviewed_dir], out, no_align_config())
    assert report["accounted"]
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    reviewed_rows = [r for r in rows if r["source"] == "review"]
    assert [(r["text"], r["start"], r["end"], r["split"]) for r in reviewed_rows] == [
        (corrected[0][2], corrected[0][0], corrected[0][1], "train")]
    assert reviewed_rows[0]["label_start"] == truth[1]["true_start"]
    assert {r["source"] for r in rows} == {"71502", "review"}
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["reason"] for r in rejected if r["episode_id"] == "review-ep"] == ["not_reviewed"]

    # 4. a short training run with the reviewed utterance weighted x3
    recipe = recipe_for(tmp_path, out, tiny_whisper, data={"review_weight": 3}, train={"max_steps": 4})
    setup = driver.build(recipe, tmp_path / "run", tmp_path / "cache")
    train = setup.splits["train"].dataset
    assert list(train["source"]).count("review") == 3
    assert len(train) == setup.splits["train"].read - sum(setup.splits["train"].rejected.values()) + 2
    setup.trainer.train()
    assert len(losses(setup.trainer)) == 4 and all(np.isfinite(losses(setup.trainer)))
