"""Rank safety (issue 20): two CPU processes under torchrun and under accelerate launch train one tiny Whisper with the
encoder cache. They must stop at the same step although only one of them runs out of time, build the cache once,
export once, and learn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_train.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(launcher: str, port: int) -> list[str]:
    """The launcher's command line for two CPU processes (accelerate: `--multi_gpu` on a machine without GPUs
    starts two gloo processes; `--cpu` would start one)."""
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(port)]
    return [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
            "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_agree_on_the_stop_share_the_cache_and_export_once(launcher, prepared, tiny_whisper,
                                                                          tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([*launch(launcher, free_port()), str(WORKER), str(prepared), str(tiny_whisper), str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # process 1's clock ran out at step 6 of 8; process 0's did not, and it stopped with it
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 6
    assert ranks[0]["encoded_batches"] > 0 and ranks[1]["encoded_batches"] == 0  # the encoder cache, built once
    assert "best" in ranks[0]["returned"] and ranks[1]["returned"] == []  # one export
    assert (out / "best" / "model.safetensors").is_file() and (out / "results.json").is_file()
    assert done.stdout.count("train: two-processes, writing checkpoints") == 1  # the first process prints
    losses = ranks[0]["losses"]
    assert len(losses) >= 6 and losses[-1] < losses[0]
