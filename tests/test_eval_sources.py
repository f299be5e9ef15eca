"""`kidsasr eval --data X` on any labelled audio (kidsasr.evaluation.sources), metadata breakdowns, the real
read-speech split and the standing real-speech score's skip path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import SAMPLE_RATE, write_wav
from kidsasr.cli import main
from kidsasr.evaluation.real_score import score_real_speech
from kidsasr.evaluation.real_speech import read_speech_manifest, read_speech_split
from kidsasr.evaluation.sources import SpanLoader, open_labelled

ROWS = [("r1", "안녕하세요.", "Anechoic", 1.0), ("r2", "나는 학교에 가요.", "Anechoic", 1.5),
        ("r3", "안녕하세요.", "Dance", 0.5), ("r4", "사과 주세요", "Dance", 2.0)]


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def shared_manifest(tmp_path) -> Path:
    """The shared korean-read format: audio paths relative to the manifest's folder, a `room` per row."""
    root = tmp_path / "korean-read"
    rows = []
    for uid, text, room, seconds in ROWS:
        write_wav(root / room / f"{uid}.wav", np.full(int(seconds * SAMPLE_RATE), 0.01, np.float32))
        rows.append({"id": uid, "audio": f"{room}/{uid}.wav", "text": text, "room": room, "speaker": "s1",
                     "duration": seconds})
    return write_jsonl(root / "manifest.jsonl", rows)


def test_shared_manifest_rows_point_to_audio_beside_the_manifest(shared_manifest):
    labelled = open_labelled(shared_manifest, "test")
    assert labelled.kind == "manifest" and [u.id for u in labelled.utterances] == ["r1", "r2", "r3", "r4"]
    assert [m["room"] for m in labelled.metadata] == ["Anechoic", "Anechoic", "Dance", "Dance"]
    load = SpanLoader()
    assert [load(span).size for span in labelled.audio] == [int(s * SAMPLE_RATE) for *_, s in ROWS]


def test_kidsasr_manifest_spans_are_cut_from_the_episode(tmp_path):
    episode = np.arange(4 * SAMPLE_RATE, dtype=np.float32) / (8 * SAMPLE_RATE)
    write_wav(tmp_path / "corpus" / "ep.wav", episode)
    rows = [{"id": f"ep_{k:04d}", "episode_id": "ep", "split": "test", "audio_source": "corpus/ep.wav",
             "start": float(k), "end": k + 0.5, "text": "안녕"} for k in range(3)]
    labelled = open_labelled(write_jsonl(tmp_path / "manifest.jsonl", rows), "test")
    assert labelled.kind == "kidsasr-manifest"
    clips = [SpanLoader()(span) for span in labelled.audio]  # the relative path resolves beside the manifest
    assert [c.size for c in clips] == [SAMPLE_RATE // 2] * 3
    assert np.allclose(clips[2][:3], episode[2 * SAMPLE_RATE: 2 * SAMPLE_RATE + 3], atol=1e-4)


def test_corpus_folder_in_a_known_layout_gives_timed_sentences(tiny_corpus):
    labelled = open_labelled(tiny_corpus, "test")
    assert labelled.kind == "corpus:71502" and len(labelled.utterances) > 10
    first = labelled.audio[0]
    assert first.start is not None and first.end > first.start
    assert SpanLoader()(first).size == pytest.approx((first.end - first.start) * SAMPLE_RATE, abs=2)


def test_any_metadata_field_gets_a_breakdown(tmp_path, shared_manifest):
    hyps = write_jsonl(tmp_path / "hyps.jsonl", [{"id": "r1", "text": "안녕하세요"}, {"id": "r2", "text": "나는 학교에 가요"},
                                                {"id": "r3", "text": "안녕"}, {"id": "r4", "text": "사과 주세요"}])
    out = tmp_path / "run"
    assert main(["eval", "--hyps", str(hyps), "--data", str(shared_manifest), "--out", str(out), "--bootstrap",
                 "50", "--results-md", "none"]) == 0
    rooms = {r["value"]: r for r in json.loads((out / "metrics.json").read_text())["breakdowns"]["model"]["room"]}
    assert rooms["Anechoic"]["estimate"] == 0 and rooms["Dance"]["estimate"] == pytest.approx(3 / 10)  # 3 deletions over 5 + 5 chars
    assert "### room" in (out / "report.md").read_text(encoding="utf-8")
    assert "speaker" not in json.loads((out / "metrics.json").read_text())["breakdowns"]["model"]  # one value


def test_manifest_without_audio_cannot_be_transcribed(tmp_path, capsys):
    data = write_jsonl(tmp_path / "refs.jsonl", [{"id": "a", "text": "안녕"}])
    assert main(["eval", "--model", "no-such-model", "--data", str(data), "--baseline", "none", "--out",
                 str(tmp_path / "run"), "--results-md", "none", "--real-speech", "none"]) == 2
    assert "name no audio" in capsys.readouterr().err


def test_read_speech_split_halves_the_distinct_texts(shared_manifest):
    halves = read_speech_split(shared_manifest)
    assert halves["r1"] == halves["r3"]  # the same sentence in another room goes with it
    texts = {ROWS[k][1]: halves[uid] for k, uid in enumerate(["r1", "r2", "r3", "r4"])}
    assert sorted(texts.values()) == ["report", "report", "tune"]  # 3 distinct texts: 1 tune, 2 report
    assert read_speech_split(shared_manifest) == halves


def test_real_read_speech_split_when_present():
    manifest = read_speech_manifest()
    if manifest is None:
        pytest.skip("../shared/real-speech is not here (the data is not in the repository)")
    halves = read_speech_split(manifest)
    assert len(halves) == 300 and sum(h == "report" for h in halves.values()) == 149


def test_standing_score_says_plainly_when_it_skips(tmp_path):
    result = score_real_speech("openai/whisper-base", tmp_path / "out", real_speech=tmp_path / "nowhere")
    assert result["skipped"].startswith("real read speech: skipped") and str(tmp_path / "nowhere") in result["skipped"]


def test_model_card_shows_the_real_speech_score_or_why_it_skipped(tmp_path):
    from kidsasr.evaluation.scoring import evaluate
    from kidsasr.manifest import Utterance
    from kidsasr.training.model_card import write_model_card
    from kidsasr.training.recipe import Recipe

    utterances = [Utterance(id=i, episode_id=i, split="", audio_source="", start=0.0, end=1.0, text=t, text_pron=t,
                            raw_text=t) for i, t in (("a", "안녕하세요"), ("b", "사과 주세요"), ("c", "사과 주세요"))]
    result, _ = evaluate(utterances, ["안녕하세요", "사과", "사과 주세요"], ["안녕", "사과 주세요", "사과 주세요"],
                         n_resamples=50, metadata=[{"room": "Anechoic"}, {"room": "Dance"}, {"room": "Dance"}])
    real = {"manifest": "m.jsonl", "half": "report", "model_name": "M", "baseline_name": "openai/whisper-base",
            **{k: v for k, v in result.items() if k != "breakdowns"},
            "by_room": {s: rows["room"] for s, rows in result["breakdowns"].items()}}
    results = {"data": {}, "global_step": 1, "train_minutes": 0.1, "device": "cpu", "real_speech": real}
    write_model_card(tmp_path, Recipe(name="r"), results)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "## Real read speech" in card and "| model `M` | 20.00" in card and "Paired bootstrap" in card
    write_model_card(tmp_path, Recipe(name="r"), {**results, "real_speech": {"skipped": "real read speech: skipped, X"}})
    assert "real read speech: skipped, X" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_half_scores_one_half_of_the_read_speech_sentences(tmp_path, shared_manifest):
    hyps = write_jsonl(tmp_path / "hyps.jsonl", [{"id": uid, "text": text} for uid, text, *_ in ROWS])
    out = tmp_path / "run"
    assert main(["eval", "--hyps", str(hyps), "--data", str(shared_manifest), "--half", "report", "--out", str(out),
                 "--bootstrap", "50", "--results-md", "none"]) == 0
    halves = read_speech_split(shared_manifest)
    scored = [json.loads(line)["id"] for line in (out / "utterances.jsonl").read_text().splitlines()]
    assert scored == sorted(uid for uid, half in halves.items() if half == "report")
