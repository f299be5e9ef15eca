"""`kidsasr eval`: scoring hypotheses files, reports, RESULTS.md rows, bad input; one end-to-end run with
whisper-base on a tiny prepared split."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kidsasr.cli import main
from kidsasr.evaluation.reports import RESULTS_HEADER, append_results_row
from kidsasr.evaluation.transcription import _read_cache

UTTERANCES = [  # id, text, category, age_group, sex, speaker_role, condition
    ("ep1_0001", "안녕하세요.", "어린이 드라마", "7-9", "F", "child", "clean"),
    ("ep1_0002", "나는 학교에 가요.", "어린이 드라마", "7-9", "M", "child", "music"),
    ("ep1_0003", "사과 3개 주세요", "어린이 드라마", "adult", "F", "adult", "clean"),
    ("ep2_0001", "오늘은 공원에 가요", "어린이 예능", "4-6", "F", "child", "noise"),
    ("ep2_0002", "고마워", "어린이 예능", None, None, None, None),
]
HYPS = {"ep1_0001": "안녕하세여", "ep1_0002": "나는 학교 가요", "ep1_0003": "사과 세 개 주세요",
        "ep2_0002": "고마워 고마워 고마워"}  # ep2_0001 missing: 8 deletions
# hand count: 1 + 1 + 0 + 8 + 6 edits over 5 + 7 + 7 + 8 + 3 = 30 reference chars
MODEL_CER = 16 / 30


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def manifest(tmp_path) -> Path:
    rows = [{"id": i, "episode_id": i[:3], "split": "test", "audio_source": f"{i[:3]}.wav", "start": 0.0,
             "end": 1.0, "text": t, "text_pron": t, "raw_text": t, "category": c, "age_group": a, "sex": s,
             "speaker_role": r, "condition": k} for i, t, c, a, s, r, k in UTTERANCES]
    rows.append({**rows[0], "id": "train_0001", "split": "train"})
    return write_jsonl(tmp_path / "manifest.jsonl", rows)


@pytest.fixture()
def hyps(tmp_path) -> Path:
    return write_jsonl(tmp_path / "hyps.jsonl", [{"id": k, "text": v} for k, v in HYPS.items()])


def run_eval(tmp_path, *args) -> int:
    return main(["eval", "--results-md", str(tmp_path / "RESULTS.md"), "--bootstrap", "200", *map(str, args)])


def test_hypotheses_file_is_scored_and_reported(tmp_path, manifest, hyps):
    out = tmp_path / "run1"
    assert run_eval(tmp_path, "--hyps", hyps, "--data", manifest, "--out", out) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["utterances"] == 5  # the train row is not in the test split
    assert m["model"]["cer"]["estimate"] == pytest.approx(MODEL_CER)
    assert m["model"]["cer"]["ci_low"] <= MODEL_CER <= m["model"]["cer"]["ci_high"]
    assert m["model"]["missing_ids"] == ["ep2_0001"] and m["model"]["char_edits"]["deletions"] >= 8
    assert m["model"]["hallucinated_utterances"] == 1
    assert m["normalisation_policy"].startswith("Headline CER")
    for field, rows in m["breakdowns"]["model"].items():
        assert sum(r["utterances"] for r in rows) == 5, field
        assert sum(r["reference_chars"] for r in rows) == 30, field
    roles = {r["value"]: r["utterances"] for r in m["breakdowns"]["model"]["speaker_role"]}
    assert roles == {"child": 3, "adult": 1, "unknown": 1}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Normalisation policy" in report and "NOT measured on our data" in report and "ep2_0001" in report
    for png in ("cer_by_subset.png", "cer_by_length.png", "confusions.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_utt = [json.loads(line) for line in (out / "utterances.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [u["id"] for u in per_utt] == sorted(i for i, *_ in UTTERANCES)
    (row,) = [line for line in (tmp_path / "RESULTS.md").read_text(encoding="utf-8").splitlines()
              if line.startswith("| 20")]
    assert " | run1 | " in row and "53.33 [" in row


def test_baseline_hypotheses_give_a_paired_comparison(tmp_path, manifest, hyps):
    perfect = write_jsonl(tmp_path / "base.jsonl", [{"id": i, "text": t} for i, t, *_ in UTTERANCES])
    out = tmp_path / "run"
    assert run_eval(tmp_path, "--hyps", hyps, "--baseline-hyps", perfect, "--data", manifest, "--out", out) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["baseline"]["cer"]["estimate"] == 0.0
    assert m["comparison"]["difference"]["estimate"] == pytest.approx(MODEL_CER)
    assert "paired bootstrap" in (out / "report.md").read_text(encoding="utf-8")


def test_results_md_gets_one_row_per_run_and_keeps_other_sections(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## Subtitles\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n", encoding="utf-8")
    for k in range(2):
        append_results_row(results, f"| 2026-01-01 | r{k} |\n")
    text = results.read_text(encoding="utf-8")
    assert "## Subtitles\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n" in text
    runs = text.split("## Runs")[1]
    assert runs.startswith("\n\n" + RESULTS_HEADER + "| 2026-01-01 | r0 |\n| 2026-01-01 | r1 |\n")
    # a runs table followed by another section: rows go to the end of the runs table, not of the file
    results.write_text(text + "\n## Data prep\n\n| x |\n| --- |\n", encoding="utf-8")
    append_results_row(results, "| 2026-01-02 | r2 |\n")
    text = results.read_text(encoding="utf-8")
    assert "| r1 |\n| 2026-01-02 | r2 |\n\n## Data prep\n\n| x |\n| --- |\n" in text


def test_non_utf8_hypotheses_name_file_and_line(tmp_path, manifest, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "ep1_0001", "text": "ok"}\n' + '{"id": "ep1_0002", "text": "학교"}\n'.encode("cp949"))
    assert run_eval(tmp_path, "--hyps", bad, "--data", manifest, "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "not UTF-8" in err
    assert not (tmp_path / "x" / "metrics.json").exists()


@pytest.mark.parametrize("rows, message", [
    ([{"id": "ep9_0001", "text": "유령"}], "ep9_0001"),  # id not in the references
    ([{"id": "ep1_0001", "text": "a"}, {"id": "ep1_0001", "text": "b"}], "appears twice"),
    ([{"id": "ep1_0001"}], "row 1"),
])
def test_mismatched_hypotheses_are_errors(tmp_path, manifest, capsys, rows, message):
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert run_eval(tmp_path, "--hyps", bad, "--data", manifest, "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and message in err


def test_empty_reference_is_an_error_naming_file_and_id(tmp_path, capsys):
    refs = write_jsonl(tmp_path / "refs.jsonl", [{"id": "ep1_0001", "text": "안녕"}, {"id": "ep1_0002", "text": " . "}])
    hyps = write_jsonl(tmp_path / "h.jsonl", [{"id": "ep1_0001", "text": "안녕"}, {"id": "ep1_0002", "text": "네"}])
    assert run_eval(tmp_path, "--hyps", hyps, "--data", refs, "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "refs.jsonl" in err and "ep1_0002" in err and "empty" in err


def test_interrupted_transcription_cache_is_reused(tmp_path):
    cache = tmp_path / "hyps-model.jsonl"
    cache.write_text('{"id": "a", "text": "안녕", "audio_seconds": 1.0, "compute_seconds": 0.5}\n{"id": "b", "te',
                     encoding="utf-8")
    assert list(_read_cache(cache)) == ["a"]


# ---- end to end with whisper-base ---------------------------------------------------------------------------

SENTENCES = [("안녕하세요 친구들", "어린이 예능", "child", "F", "7-9"),
             ("오늘은 공원에 가요", "어린이 드라마", "adult", "M", "adult"),
             ("사과가 세 개 있어요", "어린이 교육", "child", "M", "4-6"),
             ("너무 긴 문장이에요", "어린이 교육", "child", "F", "4-6")]


def build_tiny_split(root: Path) -> Path:
    """A prepared test split per kidsasr.manifest: espeak-ng Korean clips as FLAC bytes in parquet."""
    import datasets
    import soundfile as sf

    from kidsasr.audio import load_audio
    from kidsasr.manifest import Utterance

    root.mkdir(parents=True)
    rows = []
    for k, (text, category, role, sex, age) in enumerate(SENTENCES):
        wav = root / f"clip{k}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(wav), text], check=True)
        audio = load_audio(wav)
        if k == len(SENTENCES) - 1:  # longer than Whisper's 30 s window: the recogniser refuses it
            audio = np.concatenate([audio, np.zeros(31 * 16000, np.float32)])
        buf = io.BytesIO()
        sf.write(buf, audio, 16000, format="FLAC")
        utt = Utterance(id=f"ep{k}_0001", episode_id=f"ep{k}", split="test", audio_source=str(wav), start=0.0,
                        end=len(audio) / 16000, text=text, text_pron=text, raw_text=text, category=category,
                        speaker_role=role, sex=sex, age_group=age, condition="clean")
        rows.append({**utt.to_row(), "audio": {"bytes": buf.getvalue(), "path": None}})
    (root / "dataset" / "test").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(root / "dataset" / "test" / "part-0.parquet"))
    return root


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_end_to_end_eval_with_whisper_base(tmp_path):
    from conftest import WHISPER_BASE

    data = build_tiny_split(tmp_path / "prep")
    out = tmp_path / "run"
    args = ["--model", WHISPER_BASE, "--backend", "transformers", "--baseline", "none", "--data", data,
            "--split", "test", "--out", out, "--batch-size", "4", "--real-speech", "none"]
    assert run_eval(tmp_path, *args) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # the 32 s clip fails alone (its batch is retried clip by clip) and stays in the denominator
    assert m["utterances"] == 4 and m["model"]["missing_ids"] == ["ep3_0001"]
    assert "30 s" in m["model"]["transcription_failures"]["ep3_0001"]
    assert "ep3_0001: not transcribed" in (out / "report.md").read_text(encoding="utf-8")
    assert m["model"]["real_time_factor"] > 0
    assert m["model"]["char_edits"]["deletions"] >= len("너무긴문장이에요")
    (cache,) = out.glob("hyps-whisper-base-transformers-*.jsonl")
    cached = cache.read_text(encoding="utf-8").splitlines()
    assert len(cached) == 3
    # a rerun resumes from the cache: only the failed clip is tried again
    assert run_eval(tmp_path, *args) == 0
    assert cache.read_text(encoding="utf-8").splitlines() == cached
    assert len([line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if line.startswith("| 20")]) == 2


# ---- long-form subtitle scoring -----------------------------------------------------------------------------

LABEL = {"media_info": {"file_name": "ep.wav", "sentence_list": [
    {"sentence_id": 1, "sentence": "안녕하세요.", "start": "0:00:01.000", "end": "0:00:03.000", "speaker_id": "C1"},
    {"sentence_id": 2, "sentence": "사과 주세요", "start": "0:00:03.500", "end": "0:00:05.000", "speaker_id": "C1"},
    {"sentence_id": 3, "sentence": "고마워!", "start": "0:00:10.000", "end": "0:00:12.000", "speaker_id": "C1"}]}}
VTT = ("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n안녕하세여\n\n"
       "00:00:03.500 --> 00:00:12.000\n사과 주세요\n고마워\n")


@pytest.fixture()
def episode(tmp_path) -> tuple[Path, Path]:
    label = tmp_path / "ep.json"
    label.write_text(json.dumps(LABEL, ensure_ascii=False), encoding="utf-8")
    vtt = tmp_path / "ep.vtt"
    vtt.write_text(VTT, encoding="utf-8")
    return vtt, label


def test_subtitle_file_scored_against_label_json(episode):
    from kidsasr.evaluation.longform import evaluate_subtitles

    vtt, label = episode
    r = evaluate_subtitles(vtt, label, "kids")
    assert r["cues"] == 2 and r["reference_segments"] == 3
    assert r["cer"]["rate"] == pytest.approx(1 / 13)  # 안녕하세여: one substitution over 13 syllables
    # char tokens + break tokens: ref 5+<eob> 5+<eob> 3+<eob> = 16; edits: 여/요, <eol> for the missing <eob>
    assert r["suber_char"] == pytest.approx(100 * 2 / 16, abs=0.01)
    assert r["suber_eojeol"] > r["suber_char"]
    t = r["timing"]
    assert t["on_screen_seconds"] == pytest.approx(10.5)
    assert t["off_speech_seconds"] == pytest.approx(5.0)  # 5.0 -> 10.0 with nobody speaking
    assert t["cues_spanning_pauses"] == 1 and t["speech_covered_share"] == pytest.approx(1.0)
    s = r["style_compliance"]
    assert s["cues_with_violations"] == 1 and s["compliance"] == pytest.approx(0.5)
    assert any(rule.startswith("duration") for rule in s["violations_by_rule"])


def test_identical_subtitles_score_zero_and_srt_reads_the_same(tmp_path, episode):
    from kidsasr.evaluation.longform import evaluate_subtitles, read_subtitles

    vtt, _ = episode
    r = evaluate_subtitles(vtt, vtt)
    assert r["cer"]["rate"] == 0 and r["suber_char"] == 0 and r["suber_eojeol"] == 0
    srt = tmp_path / "ep.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:03,000\n안녕하세여\n\n2\n00:00:03,500 --> 00:00:12,000\n"
                   "사과 주세요\n고마워\n", encoding="utf-8")
    assert read_subtitles(srt) == read_subtitles(vtt)
    blank = tmp_path / "blank.vtt"
    blank.write_text("WEBVTT\n", encoding="utf-8")
    r = evaluate_subtitles(blank, vtt)
    assert r["cues"] == 0 and r["cer"]["rate"] == 1.0 and r["style_compliance"]["compliance"] is None


def test_subtitle_cli_writes_metrics_and_rejects_bad_files(tmp_path, episode, capsys):
    vtt, label = episode
    out = tmp_path / "sub"
    assert main(["eval", "--subtitles", str(vtt), "--reference", str(label), "--out", str(out)]) == 0
    assert json.loads((out / "subtitle_metrics.json").read_text(encoding="utf-8"))["cues"] == 2
    assert "SubER" in (out / "subtitle_report.md").read_text(encoding="utf-8")
    bad = tmp_path / "bad.vtt"
    bad.write_bytes("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n".encode() + "안녕".encode("cp949") + b"\n")
    assert main(["eval", "--subtitles", str(bad), "--reference", str(label)]) == 2
    assert "bad.vtt:4" in capsys.readouterr().err
    empty_label = tmp_path / "empty.json"
    empty_label.write_text('{"media_info": {}}', encoding="utf-8")
    assert main(["eval", "--subtitles", str(vtt), "--reference", str(empty_label)]) == 2
    assert "empty.json" in capsys.readouterr().err
