"""Two runs at once (issue 18): while one process holds a command's run lock on an output, a second `kidsasr
synth`, `eval`, `export`, `train`, `review` or `calibrate` on that output is refused at once (exit 2, the holder's
pid named, nothing written), the way tests/test_reliability_prep.py checks `prep`. The holder takes the lock exactly
where the command does (kidsasr.fileio.run_lock), so a command that locks elsewhere, or not at all, fails here (a
review that took no lock would serve until the timeout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from review_episode import write_episode

ROOT = Path(__file__).resolve().parents[1]


def argv_and_lock(command: str, tmp_path: Path, prepared: Path) -> tuple[list[str], Path, dict]:
    """The command line on output `out`, and the folder (and run_lock keywords) its lock is taken on."""
    out = tmp_path / "out"
    if command == "synth":
        return ["synth", "--size", "tiny", "--out", str(out)], out, {}
    if command == "eval":
        return (["eval", "--hyps", str(tmp_path / "hyps.jsonl"), "--data", str(prepared), "--out", str(out),
                 "--results-md", "none"], out, {})
    if command == "export":
        return ["export", str(tmp_path / "model"), "-o", str(out)], tmp_path, {"output": "out"}
    if command == "calibrate":
        (tmp_path / "model").mkdir()
        return (["calibrate", "--model", str(tmp_path / "model"), "--data", str(prepared), "--work", str(out)],
                out / "model", {})
    if command == "review":
        media, _ = write_episode(tmp_path / "show")
        return (["review", str(media), "--port", "0", "--no-browser"], media.parent,
                {"output": f"{media.stem}.reviewed.vtt"})
    return (["train", "--recipe", str(ROOT / "recipes" / "demo_cpu.yaml"), "--data", str(prepared),
             "--out", str(out)], out, {})


@pytest.mark.parametrize("command", ["synth", "eval", "export", "train", "review", "calibrate"])
def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(command, tmp_path, prepared):
    argv, folder, lock_options = argv_and_lock(command, tmp_path, prepared)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from kidsasr.fileio import run_lock\n"
        f"with run_lock({str(folder)!r}, {command!r}, **{lock_options!r}):\n"
        "    print('locked', flush=True); time.sleep(600)\n")],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in tmp_path.rglob("*"))
        second = subprocess.run([sys.executable, "-m", "kidsasr.cli", *argv], env=env, capture_output=True,
                                text=True, timeout=180)
        assert second.returncode == 2, second.stderr[-2000:]
        err = second.stderr
        assert f"kidsasr {command}, host" in err and f"pid {holder.pid}" in err, err
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
