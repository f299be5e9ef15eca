"""Two runs at once (issue 18): while one process holds a command's run lock on an output, a second `kidsasr
synth`, `eval`, `export` or `train` on that output is refused at once (exit 2, the holder's pid named, nothing
written), the way tests/test_reliability_prep.py checks `prep`. The holder takes the lock exactly where the command
does (kidsasr.fileio.run_lock), so a command that locks elsewhere, or not at all, fails here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kidsasr.cli import main

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
    return (["train", "--recipe", str(ROOT / "recipes" / "demo_cpu.yaml"), "--data", str(prepared),
             "--out", str(out)], out, {})


@pytest.mark.parametrize("command", ["synth", "eval", "export", "train"])
def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(command, tmp_path, prepared, capsys):
    argv, folder, lock_options = argv_and_lock(command, tmp_path, prepared)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from kidsasr.fileio import run_lock\n"
        f"with run_lock({str(folder)!r}, {command!r}, **{lock_options!r}):\n"
        "    print('locked', flush=True); time.sleep(600)\n")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in tmp_path.rglob("*"))
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"kidsasr {command}, host" in err and f"pid {holder.pid}" in err, err
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
