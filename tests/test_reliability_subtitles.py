"""`kidsasr subtitle` under hostile input and faults (issue 18): output-name clashes, truncated WAVs, read-only
output folders, stale `.part` files from a killed writer, `-->` in a file name, absurd style values, Ctrl-C on a
folder run and a model path that does not exist."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webvtt

from kidsasr.cli import main
from kidsasr.subtitles.cues import load_style
from kidsasr.subtitles.runner import SUMMARY_NAME, find_episodes, subtitle_file

from test_models import espeak, make_tiny_ctc

SR = 16000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny-ctc"))


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    audio = np.concatenate([np.zeros(SR, np.float32), espeak("우리 친구들 안녕! 오늘은 토끼 이야기를 들려줄게요."),
                            np.zeros(SR, np.float32)])
    sf.write(path, audio, SR, subtype="PCM_16")
    return path


def kidsasr_process(*args: str, drop_root: bool = False, **kwargs) -> subprocess.Popen:
    """The CLI in a child process; `drop_root` takes away root's power to write into read-only folders."""
    prefix = ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override"] \
        if drop_root and os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*prefix, sys.executable, "-m", "kidsasr.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# ---- case 1: every input gets its own output name ----------------------------------------------------------


@pytest.mark.parametrize("names", [["ep.wav", "ep.m4a", "ep.wav.mp3"], ["ep.wav.mp3", "ep.wav"],
                                   ["a.wav", "a.wav.m4a", "a.wav.m4a.mp4", "a.mp4"], ["x.WAV", "x.wav"]])
def test_output_names_are_unique_for_every_input_set(tmp_path, names):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    pairs, _ = find_episodes(tmp_path, tmp_path / "out")
    targets = [t for _, t in pairs]
    assert len(pairs) == len(names)
    assert len(set(targets)) == len(targets), targets
    assert all(t.name.endswith(".vtt") for t in targets)


def test_folder_run_with_clashing_stems_writes_three_files(tmp_path, speech_wav, tiny_ctc):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("ep.wav", "ep.wav.mp3", "ep.m4a"):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(speech_wav), str(folder / name)],
                       check=True)
    out = tmp_path / "out"
    assert main(["subtitle", str(folder), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"]) == 0
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    outputs = [r["output"] for r in summary["results"]]
    assert summary["done"] == 3 and len(set(outputs)) == 3
    assert all(Path(o).is_file() for o in outputs)
    source_named = [json.loads(Path(o).with_name(Path(o).stem + ".cues.json").read_text())["source"]
                    for o in outputs]
    assert sorted(Path(s).name for s in source_named) == ["ep.m4a", "ep.wav", "ep.wav.mp3"]


# ---- case 4: a truncated WAV is subtitled as far as it goes, and marked partial -----------------------------


def test_truncated_wav_is_partial_with_a_warning_naming_both_durations(tmp_path, speech_wav, tiny_ctc, capsys):
    full = tmp_path / "full.wav"
    sf.write(full, np.tile(sf.read(speech_wav, dtype="float32")[0], 3), SR, subtype="PCM_16")
    data = full.read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.wav").write_bytes(data[: len(data) // 4])
    header_seconds = sf.info(full).duration
    out = tmp_path / "out"
    code = main(["subtitle", str(folder), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"])
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    (result,) = summary["results"]
    assert result["status"] == "partial" and summary["partial"] == 1 and summary["done"] == 0
    assert f"{header_seconds:.2f} s" in result["reason"] and "cut.wav" in captured.err
    present = float(result["audio_seconds"])
    assert present < header_seconds / 3 and f"{present:.2f} s" in result["reason"]
    assert webvtt.read(str(out / "cut.vtt")) is not None
    assert "partial" in captured.out


# ---- case 5: a read-only output folder is refused before any decoding ---------------------------------------


def test_read_only_output_folder_fails_before_decoding_and_names_it(tmp_path, speech_wav):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(speech_wav, folder / "ep.wav")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        # a model that does not exist: the writability check must come first, before any model is loaded
        proc = kidsasr_process("subtitle", str(folder), "-o", str(out), "--model", str(tmp_path / "no-model"),
                               drop_root=True)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, stderr
        assert f"{out}: output folder is not writable" in stderr
        assert "Traceback" not in stderr and ".part" not in stderr
        assert list(out.iterdir()) == []
        single = kidsasr_process("subtitle", str(folder / "ep.wav"), "-o", str(out / "ep.vtt"), "--model",
                                 str(tmp_path / "no-model"), drop_root=True)
        _, stderr = single.communicate(timeout=300)
        assert single.returncode == 2 and f"{out}: output folder is not writable" in stderr
    finally:
        out.chmod(0o755)


# ---- case 12: stale .part files of a killed writer are removed on the rerun ---------------------------------


def test_rerun_removes_a_killed_writers_part_file_but_not_a_live_ones(tmp_path, speech_wav, tiny_ctc):
    from kidsasr.fileio import part_path

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(speech_wav, folder / "ep.wav")
    out = tmp_path / "out"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from kidsasr.fileio import atomic_path\n"
        f"with atomic_path({str(out / 'ep.vtt')!r}) as tmp:\n"
        "    tmp.write_text('WEBVTT\\n'); print(tmp, flush=True); time.sleep(600)\n")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    stale = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert stale.is_file()
    live = part_path(out / "other.vtt")  # a concurrent writer in this very process: still alive
    live.write_text("WEBVTT\n")
    assert main(["subtitle", str(folder), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"]) == 0
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "ep.cues.json", "ep.vtt", SUMMARY_NAME]


# ---- case 13: a name with `-->` never reaches a VTT line as a timing arrow -----------------------------------


@pytest.mark.parametrize("name", ["a--->b.wav", "a-->b.wav", "a---->b.wav", "x-- >y-->.wav"])
def test_arrow_in_an_input_name_does_not_reach_the_vtt(tmp_path, speech_wav, tiny_ctc, name):
    episode = tmp_path / name
    shutil.copy(speech_wav, episode)
    out = tmp_path / "out.vtt"
    assert main(["subtitle", str(episode), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if "-->" in line and not line[:1].isdigit()], lines
    webvtt.read(str(out))


# ---- case 14: style values that cannot be met are refused when the style is read ----------------------------


@pytest.mark.parametrize("key,value,message", [
    ("max_lines", "1000000000", "max_lines must be at most"), ("max_lines", "2.7", "max_lines: expected an integer"),
    ("max_line_width", "1.0e+300", "max_line_width must be at most"),
    ("max_line_width", "1e300", "max_line_width must be at most"),
    ("max_duration", "1.0e+9", "max_duration must be at most"), ("max_cps", "1.0e+12", "max_cps must be at most"),
    ("min_gap", "600", "min_gap must be at most")])
def test_impossible_style_values_are_rejected_by_name(tmp_path, key, value, message):
    path = tmp_path / "style.yaml"
    path.write_text(f"name: mine\n{key}: {value}\n")
    with pytest.raises(ValueError, match=message):
        load_style(path)


def test_reasonable_style_values_still_load(tmp_path):
    path = tmp_path / "style.yaml"
    path.write_text("name: wide\nmax_lines: 3\nmax_line_width: 42\nmax_cps: 17\n")
    style = load_style(path)
    assert (style.max_lines, style.max_line_width, style.max_cps) == (3, 42.0, 17.0)


# ---- also required: Ctrl-C on a folder run, and a model folder that does not exist --------------------------


def test_ctrl_c_on_a_folder_run_prints_no_traceback_and_keeps_the_summary(tmp_path, speech_wav, tiny_ctc):
    folder = tmp_path / "in"
    folder.mkdir()
    long = np.tile(sf.read(speech_wav, dtype="float32")[0], 8)
    for k in range(8):
        sf.write(folder / f"ep{k}.wav", long, SR, subtype="PCM_16")
    out = tmp_path / "out"
    # a test run in the background inherits SIGINT ignored (as a shell's `&` leaves it): give the child the default
    # disposition back, so Python turns Ctrl-C into KeyboardInterrupt as in a terminal
    proc = kidsasr_process("subtitle", str(folder), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc",
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not list(out.glob("*.vtt")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert summary["done"] >= 1 and summary["failed"] >= 1
    assert summary["done"] + summary["failed"] == 8


def test_a_model_folder_that_does_not_exist_is_named(tmp_path, speech_wav, capsys):
    missing = tmp_path / "models" / "nope"
    assert main(["subtitle", str(speech_wav), "-o", str(tmp_path / "x.vtt"), "--model", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: no such model folder" in err and "Repo id" not in err


def test_a_whole_file_is_done_not_partial(speech_wav, tiny_ctc, tmp_path):
    from kidsasr.asr.models import load_recognizer

    result = subtitle_file(speech_wav, tmp_path / "s.vtt", load_recognizer(str(tiny_ctc), backend="ctc"))
    assert result.status == "done" and result.reason == ""
