"""kidsasr prep: config, filters, splits (pure), and the recipe end to end on the tiny generated corpus."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kidsasr.prep.filters import (FilterConfig, check_duration, check_rate, check_text, overlapping_neighbours,
                                  reader_reason_code)
from kidsasr.prep.config import PrepConfig, load_config
from kidsasr.prep.runner import prepare
from kidsasr.prep.splits import EpisodeKey, SplitConfig, assign_splits

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data_prep" / "config.yaml"
OUTPUTS = ["manifest.jsonl", "rejected.jsonl", "report.json", "report.md", "boundary_corrections.png"]


def no_align_config() -> PrepConfig:
    import dataclasses

    config = load_config(CONFIG)
    return dataclasses.replace(config, alignment=dataclasses.replace(config.alignment, aligner="none"))


def output_files(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    files.update({str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "dataset").rglob("*.parquet"))})
    return files


# ---------------------------------------------------------------------------------------------------------------
# config


def test_shipped_config_loads():
    config = load_config(CONFIG)
    assert config.alignment.aligner == "whisper" and config.filters.min_duration == 0.5


@pytest.mark.parametrize("text,key", [("filters:\n  min_durations: 1.0\n", "min_durations"),
                                      ("cleanup:\n  x: 1\n", "cleanup")])
def test_unknown_config_key_is_rejected_by_name(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=key):
        load_config(path)


# ---------------------------------------------------------------------------------------------------------------
# filters (pure)


def test_duration_text_and_rate_filters():
    config = FilterConfig()
    assert check_duration(1.0, 1.3, config).code == "too_short"
    assert check_duration(0.0, 31.0, config).code == "too_long"
    assert check_duration(0.0, 3.0, config) is None
    assert check_text("", "", False).code == "empty_text"
    assert check_text("", "", True).code == "tag_only"
    assert check_rate("가" * 100, 0.0, 2.0, config).code == "cps_outlier"
    assert check_rate("안녕하세요", 0.0, 1.0, config) is None
    assert check_rate("안녕", 0.0, 10.0, config).code == "cps_outlier"


def test_overlap_finds_both_neighbours_and_ignores_touching_spans():
    spans = [(0.0, 2.0), (2.0, 3.0), (2.5, 4.0), (10.0, 11.0), (5.0, 6.0)]
    assert overlapping_neighbours(spans, 0.2) == {1: 2, 2: 1}
    assert overlapping_neighbours([(0.0, 10.0), (1.0, 2.0), (4.0, 5.0)], 0.2) == {1: 0, 0: 1, 2: 0}


def test_reader_reasons_map_to_codes():
    assert reader_reason_code("malformed JSON: Expecting value at line 1 column 1") == "bad_label"
    assert reader_reason_code("no audio file with stem 'X'") == "missing_audio"
    assert reader_reason_code("ends at 9.000 s, beyond the audio (4.000 s): truncated audio?") == "truncated_audio"
    assert reader_reason_code("unreadable audio: x.wav: cannot decode: Invalid data") == "bad_audio"
    assert reader_reason_code("bad time: not a time: '1:2:3:4'") == "bad_times"
    assert reader_reason_code("audio file without a label") == "missing_label"


# ---------------------------------------------------------------------------------------------------------------
# splits (pure)


def _episodes(n: int, programs: int | None) -> list[EpisodeKey]:
    categories = ["A", "B", "C", "D"]
    return [EpisodeKey(f"ep{i:03d}", f"prog{i % programs}" if programs else None, categories[i % 4], 0.1 + i % 7 / 10)
            for i in range(n)]


@pytest.mark.parametrize("programs", [None, 24])
def test_splits_are_disjoint_deterministic_and_stratified(programs):
    episodes = _episodes(400, programs)
    config = SplitConfig(dev=0.1, test=0.1, min_programs=10)
    assignment = assign_splits(episodes, config)
    assert set(assignment) == {e.episode_id for e in episodes}  # every episode in exactly one split
    assert assignment == assign_splits(list(reversed(episodes)), config)  # read order does not matter
    if programs:
        split_of_program: dict[str, set[str]] = {}
        for e in episodes:
            split_of_program.setdefault(e.program, set()).add(assignment[e.episode_id])
        assert all(len(s) == 1 for s in split_of_program.values())  # a programme never straddles splits
    else:
        for category in "ABCD":
            hours = {s: sum(e.hours for e in episodes if e.category == category and assignment[e.episode_id] == s)
                     for s in ("train", "dev", "test")}
            total = sum(hours.values())
            assert abs(hours["dev"] / total - 0.1) < 0.03 and abs(hours["test"] / total - 0.1) < 0.03, hours


def test_small_corpus_still_gets_dev_and_test_from_different_categories():
    episodes = _episodes(6, None)
    assignment = assign_splits(episodes, SplitConfig())
    assert set(assignment.values()) == {"train", "dev", "test"}
    held_out = [e.category for e in episodes if assignment[e.episode_id] != "train"]
    assert len(held_out) == len(set(held_out)) == 2


# ---------------------------------------------------------------------------------------------------------------
# the recipe on the tiny corpus


@pytest.fixture(scope="module")
def reference_run(tiny_corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prep") / "ref"
    report = prepare(tiny_corpus, out, no_align_config())
    return out, report


def test_outputs_follow_the_manifest_contract(reference_run, tiny_corpus):
    from kidsasr.manifest import SPLITS, Utterance, decode_audio, load_split

    out, report = reference_run
    assert report["accounted"] and report["sentences_kept"] + report["sentences_rejected"] == report["sentences_read"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == report["sentences_kept"] > 0
    rows = {}
    for split in SPLITS:
        ds = load_split(out, split)
        for row in ds:
            rows[row["id"]] = row
            assert row["split"] == split
        audio = decode_audio(ds[0]["audio"])
        assert abs(audio.size / 16000 - (ds[0]["end"] - ds[0]["start"])) < 0.01
    assert sorted(rows) == sorted(r["id"] for r in manifest)
    for r in manifest:
        assert Utterance.from_row(r).to_row() == {k: rows[r["id"]][k] for k in Utterance.from_row(r).to_row()}
    # no episode (and so no programme of an episode) in two splits
    splits_of_episode: dict[str, set[str]] = {}
    for r in manifest:
        splits_of_episode.setdefault(r["episode_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of_episode.values())
    assert (out / "boundary_corrections.png").read_bytes()[:4] == b"\x89PNG"
    assert "Rejected by reason" in (out / "report.md").read_text()


def test_sigkill_mid_run_then_rerun_gives_identical_output(reference_run, tiny_corpus, tmp_path):
    ref_out, _ = reference_run
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "kidsasr.cli", "prep", "--config", str(CONFIG), "--corpus", str(tiny_corpus),
           "--out", str(out), "--aligner", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / "work").glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((out / "work").glob("*.json")))
    assert 0 < done < 8, f"the kill should land mid-way, {done} of 8 episodes were done"
    assert not (out / "manifest.jsonl").exists()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed, reference = output_files(out), output_files(ref_out)
    assert sorted(resumed) == sorted(reference)
    assert [name for name in reference if resumed[name] != reference[name]] == []


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def local_ray_head():
    """A real Ray head (`ray start --head`) listening on 127.0.0.1 only, as the README says to run one; yields
    its address and process and stops it (SIGTERM to `ray start --block` takes its processes down with it)."""
    import shutil
    import socket
    import tempfile

    port, client_port = _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, **RAY_LOOPBACK}
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                             "--node-ip-address=127.0.0.1", f"--port={port}", f"--ray-client-server-port={client_port}",
                             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert head.poll() is None, "ray start --head exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", head
    finally:
        head.terminate()
        head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def listening_addresses(pid: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses that process `pid` and every process under it listen on (TCP; IPv4-mapped IPv6 as IPv4)."""
    import psutil  # installed with accelerate (kidsasr[train], part of kidsasr[all] with Ray)

    root = psutil.Process(pid)
    found = {ipaddress.ip_address(c.laddr.ip) for p in [root, *root.children(recursive=True)]
             for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    return {getattr(a, "ipv4_mapped", None) or a for a in found}


# Node IP 127.0.0.1 and every Ray server on loopback only (README, "Scale-out"); nothing outside this machine can
# reach this test cluster, so it runs without Ray's token authentication.
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def test_process_pool_and_ray_give_identical_output(reference_run, tiny_corpus, tmp_path, local_ray_head):
    ref_out, _ = reference_run
    prepare(tiny_corpus, tmp_path / "pool", no_align_config(), workers=2)
    assert output_files(tmp_path / "pool") == output_files(ref_out)
    # a fresh process with no Ray of its own: prep's `ray.init(address=...)` joins the running head
    address, head = local_ray_head
    cmd = [sys.executable, "-m", "kidsasr.cli", "prep", "--config", str(CONFIG), "--corpus", str(tiny_corpus),
           "--out", str(tmp_path / "ray"), "--aligner", "none", "--ray-address", address]
    env = {**os.environ, **RAY_LOOPBACK, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Ray {address}" in done.stderr
    assert output_files(tmp_path / "ray") == output_files(ref_out)
    # the head's servers (GCS, raylet, object manager, client server, workers) listen on loopback only
    listening = listening_addresses(head.pid)
    assert listening and all(a.is_loopback for a in listening), listening


def test_zip_parts_give_the_same_utterances_as_folders(reference_run, tmp_path):
    """The distributed packaging (TS_/TL_ zip parts) is read in place, with the same result as extracted folders."""
    from kidsasr.synth.generator import generate

    ref_out, _ = reference_run
    corpus = generate("tiny", seed=0, out=tmp_path / "zipped", zip_parts=True)
    assert list(corpus.rglob("*.zip")) and not list(corpus.rglob("*.wav"))
    prepare(corpus, tmp_path / "out", no_align_config())

    def rows(out: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "audio_source"}
                for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]

    assert rows(tmp_path / "out") == rows(ref_out)
    assert all("!" in json.loads(line)["audio_source"]
               for line in (tmp_path / "out" / "manifest.jsonl").read_text(encoding="utf-8").splitlines())


@pytest.mark.slow
def test_whisper_aligner_end_to_end(tiny_corpus, tmp_path):
    """The default recipe (whisper-base forced alignment) on the tiny corpus; every kept row has a confidence."""
    out = tmp_path / "whisper"
    report = prepare(tiny_corpus, out, load_config(CONFIG))
    assert report["accounted"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert manifest and all(0.0 <= r["confidence"] <= 1.0 for r in manifest)
    assert report["boundary_corrections"]["count"] == len(manifest)
    truth = {(r["episode_id"], r["sentence_id"] - 1): r for r in
             map(json.loads, (tiny_corpus / "truth.jsonl").read_text().splitlines())}
    before, after = [], []
    for r in manifest:
        t = truth[(r["episode_id"], int(r["id"].rsplit("_", 1)[1]))]
        if t["jittered"]:
            before.append(abs(r["label_start"] - t["true_start"]) + abs(r["label_end"] - t["true_end"]))
            after.append(abs(r["start"] - t["true_start"]) + abs(r["end"] - t["true_end"]))
    assert before, "the tiny corpus has jittered labels"
    assert sum(after) < 0.6 * sum(before)  # refinement moves the jittered boundaries towards the true times
