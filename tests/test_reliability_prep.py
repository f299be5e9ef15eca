"""`kidsasr prep` under hostile input and faults (issue 18): symlinked parts and files, the same file name in two
parts, missing or empty corpora and configs, a run that keeps nothing, and stale `.part` files of a killed
writer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import write_wav
from kidsasr.cli import main
from kidsasr.corpus.reader import ReadReport, read_corpus

from test_corpus import label, sent, tone

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data_prep" / "config.yaml"


def prep(corpus: Path, out: Path, *extra: str, config: Path = CONFIG) -> int:
    return main(["prep", "--config", str(config), "--corpus", str(corpus), "--out", str(out), "--aligner", "none",
                 *extra])


def put(root: Path, part: str, stem: str, seconds: float | None = None, doc: dict | None = None) -> Path:
    """A WAV (with `seconds`) or a label (with `doc`) in the 71502 part folder `part` (TS_01, TL_02, ...)."""
    kind = "01.원천데이터" if part[1] == "S" else "02.라벨링데이터"
    folder = root / "01.데이터" / "Training" / kind / part
    folder.mkdir(parents=True, exist_ok=True)
    if seconds is not None:
        write_wav(folder / f"{stem}.wav", tone(seconds))
        return folder / f"{stem}.wav"
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


# ---- case 2: symbolic links are followed, and reported, whether a part folder or a single file --------------


def test_symlinked_part_folder_and_file_are_read_and_reported(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    plain = ReadReport()
    episodes = list(read_corpus(corpus, plain))
    # a part folder on another disk, linked in; a label linked in from outside the corpus
    part = next(p for p in corpus.rglob("VL_*") if p.is_dir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(part, elsewhere / part.name)
    part.symlink_to(elsewhere / part.name, target_is_directory=True)
    label_file = next(p for p in corpus.rglob("TL_*/*.json"))
    shutil.move(label_file, elsewhere / label_file.name)
    label_file.symlink_to(elsewhere / label_file.name)

    linked = ReadReport()
    assert sorted(e.id for e in read_corpus(corpus, linked)) == sorted(e.id for e in episodes)
    assert linked.sentences_read == plain.sentences_read
    warnings = {i.path: i.reason for i in linked.issues if i.severity == "warning"}
    assert f"symbolic link to {elsewhere / part.name}" in warnings[str(part)]
    assert f"symbolic link to {elsewhere / label_file.name}" in warnings[str(label_file)]


def test_a_symlink_loop_is_reported_not_followed_forever(tmp_path):
    put(tmp_path, "TS_01", "EP_A", seconds=3.0)
    put(tmp_path, "TL_01", "EP_A", doc=label("EP_A", [sent("안녕하세요.", "0:00:00.500", "0:00:01.500")]))
    loop = tmp_path / "01.데이터" / "Training" / "02.라벨링데이터" / "TL_01" / "again"
    loop.symlink_to(tmp_path, target_is_directory=True)
    report = ReadReport()
    assert [e.id for e in read_corpus(tmp_path, report)] == ["EP_A"]
    assert any(i.path == str(loop) and "already read" in i.reason for i in report.issues)


# ---- case 3: the same file name in two parts -------------------------------------------------------------------


def test_labels_pair_with_the_audio_of_their_own_part(tmp_path):
    put(tmp_path, "TS_01", "KID_P_0000", seconds=3.0)
    put(tmp_path, "TS_02", "KID_P_0000", seconds=5.0)
    put(tmp_path, "TL_02", "KID_P_0000", doc=label("KID_P_0000", [sent("안녕하세요.", "0:00:03.500", "0:00:04.500")]))
    report = ReadReport()
    (episode,) = read_corpus(tmp_path, report)
    assert "TS_02" in str(episode.audio) and report.sentences_kept == 1
    unpaired = [i for i in report.issues if "without a label" in i.reason]
    assert [Path(i.path).parent.name for i in unpaired] == ["TS_01"]


def test_the_same_episode_id_in_two_parts_is_read_once_and_reported(tmp_path):
    for part, seconds in (("01", 3.0), ("02", 5.0)):
        put(tmp_path, f"TS_{part}", "KID_P_0000", seconds=seconds)
        put(tmp_path, f"TL_{part}", "KID_P_0000",
            doc=label("KID_P_0000", [sent("안녕하세요.", "0:00:00.500", "0:00:01.500"),
                                     sent("반가워요.", "0:00:02.000", "0:00:02.800")]))
    report = ReadReport()
    episodes = list(read_corpus(tmp_path, report))
    assert [e.id for e in episodes] == ["KID_P_0000"] and "TS_01" in str(episodes[0].audio)
    (duplicate,) = [i for i in report.errors if "duplicate episode id" in i.reason]
    assert "TL_02" in duplicate.path and "TL_01" in duplicate.reason and duplicate.sentences == 2
    assert report.sentences_kept + report.sentences_rejected == report.sentences_read == 4


def test_prep_manifest_never_holds_an_id_twice(tmp_path):
    for part in ("01", "02"):
        put(tmp_path / "c", f"TS_{part}", "KID_P_0000", seconds=3.0)
        put(tmp_path / "c", f"TL_{part}", "KID_P_0000",
            doc=label("KID_P_0000", [sent("안녕하세요 여러분.", "0:00:00.500", "0:00:02.000")]))
    assert prep(tmp_path / "c", tmp_path / "out") in (0, 1)
    ids = [json.loads(line)["id"] for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))
    assert any(r["reason"] == "duplicate_episode" for r in rejected)


# ---- case 6: a missing or empty corpus or config is a one-line error, and nothing is written ----------------


@pytest.mark.parametrize("what", ["missing corpus", "empty corpus", "missing config", "unknown key", "bad number"])
def test_unusable_corpus_or_config_writes_nothing(tmp_path, capsys, what):
    corpus, config = tmp_path / "corpus", CONFIG
    if what != "missing corpus":
        corpus.mkdir()
    if what != "empty corpus" and what != "missing corpus":
        put(corpus, "TS_01", "EP_A", seconds=3.0)
        put(corpus, "TL_01", "EP_A", doc=label("EP_A", [sent("안녕하세요.", "0:00:00.500", "0:00:01.500")]))
    if what == "missing config":
        config = tmp_path / "nope.yaml"
    elif what == "unknown key":
        config = tmp_path / "bad.yaml"
        config.write_text("filters:\n  min_durations: 1.0\n")
    elif what == "bad number":
        config = tmp_path / "bad.yaml"
        config.write_text("filters:\n  min_duration: lots\n")
    out = tmp_path / "out"
    code = prep(corpus, out, config=config)
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists()
    message = err.strip().splitlines()[-1]
    assert message.startswith("kidsasr prep: ") and "Traceback" not in err
    expected = {"missing corpus": f"{corpus}: corpus folder or zip not found",
                "empty corpus": f"{corpus}: no labels or audio found",
                "missing config": f"{config}: file not found",
                "unknown key": "filters.min_durations: unknown key",
                "bad number": "filters.min_duration"}[what]
    assert expected in message


def test_config_accepts_every_yaml_number_spelling(tmp_path):
    from kidsasr.prep.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("filters:\n  min_duration: 5e-1\n  max_duration: 3.0e+1\ncleaning:\n  target_dbfs: -23\n")
    config = load_config(path)
    assert (config.filters.min_duration, config.filters.max_duration, config.cleaning.target_dbfs) == (0.5, 30.0, -23.0)


# ---- case 7: a prep that keeps nothing says so; training on it names the empty split ------------------------


def test_prep_that_keeps_nothing_fails_and_train_names_the_empty_split(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    put(corpus, "TS_01", "EP_A", seconds=3.0)
    put(corpus, "TL_01", "EP_A", doc=label("EP_A", [sent("안녕하세요.", "0:00:05.000", "0:00:06.000")]))  # beyond audio
    out = tmp_path / "out"
    assert prep(corpus, out) == 1
    err = capsys.readouterr().err
    assert "kept no sentence" in err and str(out / "report.md") in err
    assert list((out / "dataset").rglob("*.parquet")) == []
    code = main(["train", "--recipe", str(ROOT / "recipes" / "demo_cpu.yaml"), "--data", str(out),
                 "--out", str(tmp_path / "train")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "data.train_split" in captured.err and "no utterances" in captured.err


def test_empty_zip_part_keeps_nothing_and_says_so(tmp_path, capsys):
    import zipfile

    corpus = tmp_path / "zips"
    corpus.mkdir()
    zipfile.ZipFile(corpus / "TS_01.zip", "w").close()
    assert prep(corpus, tmp_path / "out") == 2
    assert "no labels or audio found" in capsys.readouterr().err


# ---- case 12: a rerun removes the .part files of a killed writer, not those of a live one -------------------


def test_prep_rerun_removes_stale_part_files_of_a_killed_writer(tiny_corpus, tmp_path):
    from kidsasr.fileio import part_path

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kidsasr.cli", "prep", "--config", str(CONFIG), "--corpus", str(tiny_corpus),
           "--out", str(out), "--aligner", "none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen([sys.executable, "-c", (
        "import time; from kidsasr.fileio import atomic_path\n"
        f"with atomic_path({str(out / 'work' / 'x.parquet')!r}) as tmp:\n"
        "    tmp.write_bytes(b'half'); print(tmp, flush=True); time.sleep(600)\n")],
        env=env, stdout=subprocess.PIPE, text=True)
    stale = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    live = part_path(out / "dataset" / "train" / "y.parquet")
    live.parent.mkdir(parents=True, exist_ok=True)
    live.write_bytes(b"being written")
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not stale.exists() and live.exists()
    live.unlink()
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_part_files_of_another_host_are_left_alone(tmp_path):
    from kidsasr.fileio import part_path, remove_stale_parts

    mine = part_path(tmp_path / "a.json")
    mine.write_text("x")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours_dead = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{dead.pid}."))
    ours_dead.write_text("x")
    other_host = tmp_path / f".b.json.some-other-host-{dead.pid}.abcd.part"
    other_host.write_text("x")
    assert remove_stale_parts(tmp_path) == [ours_dead]
    assert mine.exists() and other_host.exists() and not ours_dead.exists()


def test_a_second_prep_on_the_same_out_is_refused_while_the_first_runs(tmp_path, capsys):
    """The run lock is the kernel's: held by a live process it refuses a second run at once, naming the holder;
    gone with its holder, so a killed run never leaves a stale lock."""
    corpus = tmp_path / "corpus"
    put(corpus, "TS_01", "EP_A", seconds=3.0)
    put(corpus, "TL_01", "EP_A", doc=label("EP_A", [sent("안녕하세요 여러분.", "0:00:00.500", "0:00:02.000")]))
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from kidsasr.fileio import run_lock\n"
        f"with run_lock({str(out)!r}, 'prep'):\n"
        "    print('locked', flush=True); time.sleep(600)\n")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert prep(corpus, out) == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert prep(corpus, out) in (0, 1)  # the killed holder's lock went with it
    assert (out / "manifest.jsonl").is_file()
