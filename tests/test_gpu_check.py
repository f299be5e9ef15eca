"""The GPU check's CPU-side parts (recipes/gpu_check.py, gpu_pack.py, gpu_check.sh): arguments, the no-GPU line,
throughput and goals, the report, the carried folders and their checksums, the device stages, and a dry run of the
whole check on CPU with a tiny model."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

import gpu_check  # noqa: E402
import gpu_pack  # noqa: E402

SR = 16000


# ------------------------------------------------------------------------------------------------ fixtures
def _flac(seconds: float, seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32), SR, format="FLAC")
    return buf.getvalue()


@pytest.fixture()
def real_speech(tmp_path) -> Path:
    """A fake korean-read folder: 3 sentences, each read in 2 rooms."""
    folder = tmp_path / "korean-read"
    rows = []
    for n, text in enumerate(["안녕하세요.", "오늘은 날씨가 좋아요.", "고마워요!"]):
        for room in ("RoomA", "RoomB"):
            (folder / room).mkdir(parents=True, exist_ok=True)
            path = f"{room}/clip{n}.flac"
            (folder / path).write_bytes(_flac(0.5 + n * 0.1, n))
            rows.append({"id": f"{room}-{n}", "audio": path, "text": text, "room": room, "duration": 0.5})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder


@pytest.fixture()
def fake_prep(tmp_path) -> Path:
    """A prep output with 6 rows a split of about 16 kB of audio each."""
    out = tmp_path / "prep"
    for s, split in enumerate(("train", "dev", "test")):
        rows = [{"id": f"EP{s}_{i:04d}", "text": "가나다", "audio": {"bytes": _flac(0.5, 10 * s + i), "path": None}}
                for i in range(6)]
        (out / "dataset" / split).mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(out / "dataset" / split / "data-00000-of-00001.parquet")
    return out


@pytest.fixture()
def packed(tmp_path, fake_prep, real_speech):
    """gpu_pack on small fake files: a 3-file model, the fake prep, the fake real speech, two fake wheels."""
    model = tmp_path / "model"
    model.mkdir()
    for name, size in (("config.json", 100), ("model.safetensors", 300_000), ("tokenizer.json", 50_000)):
        (model / name).write_bytes(os.urandom(size))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for spec in gpu_pack.WHEELS:
        name, version = spec.split("==")
        (wheels / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(os.urandom(2000))
    args = argparse.Namespace(data=str(fake_prep), model=str(model), real_speech=str(real_speech),
                              out=str(tmp_path / "gpu"), part_mib=0.25, data_mib=0.4, wheels=str(wheels))
    return args, gpu_pack.pack(args)


# ------------------------------------------------------------------------------------------------ gpu_check.py
def test_arguments_defaults_and_errors():
    args = gpu_check.parse_args(["--data", "d"])
    assert (args.steps, args.batch_size, args.warmup_steps, args.alphas) == (80, 16, 8, [1.0, 0.8, 0.6, 0.4, 0.2])
    assert args.work == str(Path(args.out) / "work")
    assert gpu_check.parse_args(["--data", "d", "--steps", "3", "--timing-skip", "5"]).timing_skip == 0
    for bad in (["--steps", "0"], ["--batch-size", "-1"], ["--alphas", "1.5"], ["--alphas", "x"],
                ["--learning-rate", "0"], []):
        with pytest.raises(SystemExit):
            gpu_check.parse_args((["--data", "d"] if bad else []) + bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
def test_without_a_gpu_it_stops_at_once_with_one_line(tmp_path):
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "recipes" / "gpu_check.py"), "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU is visible" in lines[0] and "--allow-cpu" in lines[0]
    assert time.monotonic() - started < 60  # seconds here; the machine is shared, so the bound is loose


def test_throughput_leaves_out_the_first_steps():
    marks = [(0, 0.0, 0), (1, 5.0, 10), (2, 6.0, 20), (3, 7.0, 30), (4, 8.0, 40)]
    ups, sps, steps, seconds = gpu_check.throughput(marks, skip=1)
    assert (ups, sps, steps, seconds) == (10.0, 1.0, 3, 3.0)
    assert gpu_check.throughput(marks[:1], skip=0) == (0.0, 0.0, 0, 0.0)


def test_goals_met_not_met_and_not_measured():
    data = {"zero_shot": {"cer": {"real_report": 0.15}},
            "kidsasr": {"utterances_per_second": 130.0, "peak_memory_gib": 4.0,
                        "cer": {"test": 0.08, "real_report": 0.14}},
            "baseline": {"utterances_per_second": 100.0, "peak_memory_gib": 5.0, "cer": {"test": 0.2}}}
    assert list(gpu_check.goals(data).values()) == [True, True, True, True, True]
    data["kidsasr"]["utterances_per_second"] = 120.0
    data["kidsasr"]["cer"]["real_report"] = 0.16
    assert list(gpu_check.goals(data).values()) == [False, True, True, True, False]
    data["kidsasr"]["peak_memory_gib"] = 0.0  # CPU: not measured
    del data["baseline"]
    assert list(gpu_check.goals(data).values()) == [None, None, None, True, False]


def test_report_writes_json_and_markdown(tmp_path):
    report = gpu_check.Report(tmp_path / "out")
    report.set("device", {"name": "NVIDIA H200", "kind": "cuda", "torch": "2.11", "transformers": "5.17"})
    report.set("kidsasr", {"utterances_per_second": 500.0, "peak_memory_gib": 3.0, "train_seconds": 10.0,
                           "timed_steps": 75, "cer": {"dev": 0.05, "test": 0.06, "real_report": 0.14},
                           "notes": ["alpha 0.8 chosen"]})
    report.set("baseline", {"utterances_per_second": 100.0, "peak_memory_gib": 6.0, "train_seconds": 12.0,
                            "timed_steps": 75, "cer": {"dev": 0.3, "test": 0.25, "real_report": 0.2}})
    assert json.loads((tmp_path / "out" / "report.json").read_text())["kidsasr"]["cer"]["test"] == 0.06
    md = (tmp_path / "out" / "report.md").read_text()
    assert "NVIDIA H200" in md and "**5.00x**" in md and "| kidsasr | 500.0 | 3.00 | 10.0 (75) | 5.0% | 6.0%" in md
    assert "- kidsasr: alpha 0.8 chosen" in md and "- met: kidsasr >= 1.3x" in md
    assert not list((tmp_path / "out").glob("*.partial"))


# ------------------------------------------------------------------------------------------------ gpu_pack.py
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_cuts_checksummed_parts_that_rejoin_into_the_stage(packed, tmp_path):
    args, manifest = packed
    out = Path(args.out)
    calls = sorted(out.glob("call*"), key=lambda p: int(p.name[4:]))
    assert len(calls) == len(manifest["calls"]) >= 3
    for call in calls:  # every call within its budget, every file as its SHA256SUMS says
        assert gpu_pack.folder_bytes(call) <= args.part_mib * gpu_pack.MIB + 4096  # + the small sums file
        for line in (call / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split("  ")
            if (call / name).exists():
                assert _sha(call / name) == digest
    assert (calls[0] / "wheels").is_dir() and not (calls[1] / "wheels").exists()
    joined = tmp_path / "joined.tar"
    with open(joined, "wb") as f:
        for call in calls:
            f.write(next(call.glob("kidsasr-gpu.tar.*")).read_bytes())
    assert _sha(joined) == manifest["tar_sha256"]
    assert f"{manifest['tar_sha256']}  kidsasr-gpu.tar" in (calls[-1] / "SHA256SUMS").read_text()
    with tarfile.open(joined) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    for name, f in manifest["files"].items():
        assert _sha(tmp_path / "unpacked" / name) == f["sha256"]
    assert (tmp_path / "unpacked" / "real" / "korean-read" / "RoomB" / "clip2.flac").is_file()
    plan = manifest["device_calls"]
    assert [p["command"] for p in plan] == [f"bash recipes/gpu_check.sh stash {n}" for n in range(1, len(calls))] \
        + [f"bash recipes/gpu_check.sh run {len(calls)}"]
    assert all(len(p["command"]) <= 2000 and p["carry"] == [f"gpu/call{n}"] for n, p in enumerate(plan, 1))
    assert (out / "CALLS.md").read_text().count("recipes/gpu_check.sh") == len(calls)


def test_pack_keeps_each_splits_rows_in_id_order_within_its_budget(packed, tmp_path):
    args, manifest = packed
    budget = {k: v * args.data_mib / 40 * gpu_pack.MIB for k, v in gpu_pack.SPLIT_BUDGET_MIB.items()}
    for split, (kept, read) in manifest["data_rows"].items():
        assert read == 6 and 1 <= kept <= 6
        table = pd.read_parquet(tmp_path / "prep" / "dataset" / split / "data-00000-of-00001.parquet")
        sizes = [len(a["bytes"]) for a in table["audio"]]
        assert sum(sizes[:kept]) <= budget[split] and (kept == 6 or sum(sizes[:kept + 1]) > budget[split])
    assert manifest["data_rows"]["train"][0] > manifest["data_rows"]["dev"][0]


def test_pack_names_a_missing_wheel(tmp_path):
    (tmp_path / "w").mkdir()
    with pytest.raises(FileNotFoundError, match="datasets==5.2.0"):
        gpu_pack.fetch_wheels(tmp_path / "dest", str(tmp_path / "w"))


# ------------------------------------------------------------------------------------------------ gpu_check.sh
def _stage(packed_args, tmp_path, *argv, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PACK": packed_args.out, "STASH": str(tmp_path / "stash"), "SITE": str(tmp_path / "site"),
           "OUT": str(tmp_path / "device-out"), **(env_extra or {})}
    return subprocess.run(["bash", str(ROOT / "recipes" / "gpu_check.sh"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_device_stages_stash_check_join_and_start_the_check(packed, tmp_path):
    """The stages as the device runs them, with the fake wheels left out (they install nothing here) and a
    stand-in python3 that records how the check would be started."""
    args, manifest = packed
    shutil.rmtree(Path(args.out) / "call1" / "wheels")
    calls = len(manifest["calls"])
    for n in range(1, calls):
        done = _stage(args, tmp_path, "stash", str(n))
        assert done.returncode == 0, done.stderr
    (tmp_path / "site" / "datasets").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\necho \"check started with: $*\"\n")
    (bin_dir / "python3").chmod(0o755)
    done = _stage(args, tmp_path, "run", str(calls), "--steps", "7",
                  env_extra={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr + done.stdout
    stash = tmp_path / "stash"
    assert f"--model {stash}/unpacked/model --data {stash}/unpacked/data --real-speech " \
           f"{stash}/unpacked/real/korean-read --out {tmp_path}/device-out --work {stash}/work --steps 7" in done.stdout
    assert (tmp_path / "device-out" / "log.txt").read_text().startswith("check started with:")
    for name, f in manifest["files"].items():
        assert _sha(stash / "unpacked" / name) == f["sha256"]


def test_device_stages_refuse_a_damaged_or_missing_part(packed, tmp_path):
    args, manifest = packed
    shutil.rmtree(Path(args.out) / "call1" / "wheels")
    last = len(manifest["calls"])
    (tmp_path / "site" / "datasets").mkdir(parents=True)
    done = _stage(args, tmp_path, "run", str(last))  # parts 1.. never stashed: the machine was given back
    assert done.returncode == 4 and "make every call again from call 1" in done.stdout
    part = next((Path(args.out) / "call2").glob("kidsasr-gpu.tar.*"))
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    done = _stage(args, tmp_path, "stash", "2")
    assert done.returncode == 3 and "checksum mismatch" in done.stdout + done.stderr
    assert _stage(args, tmp_path, "stash", "9").returncode == 2


# ------------------------------------------------------------------------------------------------ the dry run
@pytest.mark.slow
def test_dry_run_on_cpu_writes_the_whole_report(prepared, tiny_whisper, real_speech, tmp_path):
    out = tmp_path / "check"
    data = gpu_check.run(gpu_check.parse_args([
        "--model", str(tiny_whisper), "--data", str(prepared), "--real-speech", str(real_speech), "--out", str(out),
        "--allow-cpu", "--steps", "2", "--batch-size", "2", "--workers", "0", "--eval-limit", "3",
        "--max-new-tokens", "4", "--alphas", "1,0.5"]), "cpu")
    saved = json.loads((out / "report.json").read_text())
    sets = saved["eval_sets"]
    assert saved["settings"]["steps"] == 2 and (sets["real_tune"], sets["real_report"]) == (2, 4)
    assert 1 <= sets["dev"] <= 3 and 1 <= sets["test"] <= 3
    for name in ("kidsasr", "baseline"):
        r = saved[name]
        assert r["timed_steps"] == 2 and r["utterances_per_second"] > 0 and r["final_loss"] is not None
        assert set(r["cer"]) == {"dev", "test", "real_report"}
    assert saved["kidsasr"]["utterances_seen"] > saved["baseline"]["utterances_seen"] == 4  # packed windows
    assert set(saved["zero_shot"]["cer"]) == {"dev", "test", "real_report", "real_tune"}
    assert any("weight ensemble: alpha" in note for note in saved["kidsasr"]["notes"])
    assert "## Goals (issue 20)" in (out / "report.md").read_text() and data["goals"]
