"""eval/bench_real.py (the real-speech half of `make bench-subtitle`): it imports, times a fresh process, and scores
tiny hand-made subtitle files the way it scores the real episodes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

import bench_real  # noqa: E402
import bench_subtitle  # noqa: E402,F401  (imports bench_real at the top: no dead import may hide there)

from kidsasr.evaluation.child_episode import ChildClip  # noqa: E402
from kidsasr.subtitles.cues import load_style  # noqa: E402


def _vtt(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    stamp = lambda t: f"00:00:{t:06.3f}"  # noqa: E731
    path.write_text("WEBVTT\n\n" + "\n".join(f"{stamp(a)} --> {stamp(b)}\n{text}\n" for a, b, text in cues),
                    encoding="utf-8")
    return path


def test_read_scores_on_a_tiny_episode(tmp_path):
    reference = _vtt(tmp_path / "reference.vtt", [(1.0, 3.0, "안녕하세요."), (5.0, 7.0, "사과가 좋아요.")])
    hyp = _vtt(tmp_path / "kidsasr.vtt", [(1.0, 3.2, "안녕하세요"), (4.0, 7.0, "사과가 좋아")])
    r = bench_real.read_scores(hyp, reference, load_style("kids"))
    assert r["cer"] == pytest.approx(1 / 11)  # "요" missing of 11 characters
    assert r["cues"] == 2 and r["cues_across_gaps"] == 0
    assert r["outside_spans"] == pytest.approx(0.7 / 5.2)  # 4.0-4.7 lies outside 5.0 - 0.3
    assert r["spans_covered"] == pytest.approx(1.0)
    assert 0 <= r["in_rules"] <= 1 and r["suber_char"] > 0


def test_child_scores_read_the_written_file(tmp_path):
    clips = [ChildClip("a", "other", 1.0, 2.0), ChildClip("b", "singing", 3.0, 5.0)]
    r = bench_real.child_scores(_vtt(tmp_path / "c.vtt", [(1.0, 2.0, "엄마")]), clips)
    assert r["clips_with_cue"] == pytest.approx(0.5) and r["speech_covered"] == pytest.approx(1 / 3)
    assert "no_cue_reasons" not in r  # faster-whisper writes no review side file


def test_child_scores_say_why_clips_got_no_cue_from_kidsasr_side_file(tmp_path):
    clips = [ChildClip("a", "other", 1.0, 2.0), ChildClip("b", "singing", 3.0, 5.0), ChildClip("c", "other", 6.0, 7.0)]
    vtt = _vtt(tmp_path / "kidsasr-1.vtt", [(1.0, 2.0, "엄마")])
    (tmp_path / "kidsasr-1.cues.json").write_text(json.dumps({
        "speech_regions": [[0.9, 2.1], [2.9, 5.1]], "cues": [],
        "dropped": [{"start": 3.0, "end": 5.0, "text": "랄랄라", "reason": "compression ratio 2.80 > 2.4"}]}),
        encoding="utf-8")
    r = bench_real.child_scores(vtt, clips)
    assert r["no_cue_reasons"] == {"compression ratio": 1, "no speech found (VAD)": 1}
    rows = [{"episode": "real child speech", "tool": "kidsasr", "duration": 8.0, "wall": 1.0, "cpu": 1.0, "load": 0.0,
             "rtf": 0.1, **r}]
    assert "why clips got no cue, kidsasr: 1 compression ratio; 1 no speech found (VAD)" in \
        bench_real.report(rows, "openai/whisper-base", 2, 1)


def test_a_fresh_process_is_timed_with_the_load_and_reported(tmp_path):
    run = bench_real.timed_process([sys.executable, "-c", "sum(range(10**6))"])
    assert run.wall > 0 and run.cpu > 0 and run.load_before >= 0
    with pytest.raises(RuntimeError, match="exit status 3"):
        bench_real.timed_process([sys.executable, "-c", "raise SystemExit(3)"])
    rows = [{"episode": "real read speech", "tool": tool, "duration": 100.0, **bench_real.timing_row([run], 100.0),
             "cer": 0.1, "suber_char": 20.0, "cues": 2, "in_rules": 1.0, "violations": {}, "outside_spans": 0.0,
             "cues_across_gaps": 0, "spans_covered": 0.9} for tool in bench_real.TOOLS]
    text = bench_real.report(rows, "openai/whisper-base", 2, 1)
    assert "| kidsasr |" in text and "faster-whisper / kidsasr: 1.00x the wall time" in text


def test_each_tool_runs_as_its_own_command(tmp_path):
    kidsasr = bench_real.tool_command("kidsasr", Path("ep.wav"), tmp_path / "k.vtt", "m", Path("ct2"), 2, "kids")
    assert kidsasr[1:4] == ["-m", "kidsasr.cli", "subtitle"] and "--style" in kidsasr
    fw = bench_real.tool_command("faster-whisper", Path("ep.wav"), tmp_path / "f.vtt", "m", Path("ct2"), 2, "kids")
    assert fw[2:] == ["faster-whisper", "ep.wav", str(tmp_path / "f.vtt"), "ct2", "2"]
    with pytest.raises(ValueError, match="unknown tool"):
        bench_real.tool_command("whisperx", Path("ep.wav"), tmp_path / "x.vtt", "m", Path("ct2"), 2, "kids")
