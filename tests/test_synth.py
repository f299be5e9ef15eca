"""The synthetic corpus generator: determinism, the 71502 layout and label schema, truth rows, zip parts, resume."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr.audio import wav_bytes
from kidsasr.cli import main as cli_main
from kidsasr.corpus.reader import CATEGORIES
from kidsasr.synth import broadcast_mix as mix
from kidsasr.synth import generator as synth
from kidsasr.synth.voices import ADULT_HOSTS, CHILD_VOICES, espeak, speak

TIME = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d\.\d{3})$")
TRUTH_KEYS = {"episode_id", "sentence_id", "true_start", "true_end", "label_start", "label_end", "jittered",
              "condition", "overlap"}


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def seconds(stamp: str) -> float:
    match = TIME.match(stamp)
    assert match, f"bad time string {stamp!r}"
    hours, minutes, secs = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def labels(root: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in sorted(root.rglob("*.json"))]


def truth_rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / synth.TRUTH_FILE).read_text(encoding="utf-8").splitlines()]


def test_same_seed_same_bytes_whatever_the_workers(tiny_corpus, tmp_path):
    again = synth.generate("tiny", seed=0, out=tmp_path / "again", workers=2)
    assert tree_digest(again) == tree_digest(tiny_corpus)


def test_layout_splits_categories_and_size(tiny_corpus):
    data = tiny_corpus / synth.DATA_DIR
    wavs = sorted(data.rglob("*.wav"))
    found = {(p.parts[-4], p.parts[-3], p.parts[-2][:2]) for p in wavs}
    assert found == {("Training", "01.원천데이터", "TS"), ("Validation", "01.원천데이터", "VS")}
    assert {p.stem for p in wavs} == {p.stem for p, _ in labels(data)}
    for path, label in labels(data):
        assert path.parent.name[:2] in ("TL", "VL") and path.parts[-3] == "02.라벨링데이터"
    by_split = {split: {label["media_info"]["category"] for p, label in labels(data / split)}
                for split in ("Training", "Validation")}
    assert by_split == {"Training": set(CATEGORIES), "Validation": set(CATEGORIES)}
    assert len(wavs) >= 6
    total = sum(sf.info(p).duration for p in wavs)
    assert total <= 120.0
    assert (tiny_corpus / synth.TEXT_CORPUS_FILE).stat().st_size > 0


def test_wav_format(tiny_corpus):
    for path in sorted(tiny_corpus.rglob("*.wav")):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV"), path
        audio, _ = sf.read(path, dtype="float32")
        assert np.abs(audio).max() < 1.0 and np.sqrt(np.mean(audio**2)) > 0.01, path


def test_label_schema_times_and_speakers(tiny_corpus):
    rows = {(r["episode_id"], r["sentence_id"]): r for r in truth_rows(tiny_corpus)}
    sentences = 0
    for path, label in labels(tiny_corpus / synth.DATA_DIR):
        assert set(label) >= {"dataset_info", "media_info", "speaker_info"}, path
        media = label["media_info"]
        assert set(media) >= {"file_name", "program_name", "category", "channel", "duration", "sample_rate",
                              "bit_depth", "channels", "sentence_list"}, path
        assert media["file_name"] == f"{path.stem}.wav" and media["category"] in CATEGORIES
        wav = next(tiny_corpus.rglob(media["file_name"]))
        duration = sf.info(wav).duration
        assert seconds(media["duration"]) == pytest.approx(duration, abs=0.001)
        speakers = {s["speaker_id"]: s for s in label["speaker_info"]}
        for info in speakers.values():
            assert info["speaker_type"] in ("아동", "성인") and info["gender"] in ("여", "남") and info["age_group"]
        assert {s["speaker_type"] for s in speakers.values()} == {"아동", "성인"}, path
        for number, sentence in enumerate(media["sentence_list"], 1):
            start, end = seconds(sentence["start"]), seconds(sentence["end"])
            assert sentence["sentence_id"] == number and sentence["sentence"].strip()
            assert 0.0 <= start < end <= duration + 1e-6, (path, sentence)
            assert sentence["speaker_id"] in speakers
            row = rows[(path.stem, number)]
            assert (row["label_start"], row["label_end"]) == (round(start, 3), round(end, 3))
            sentences += 1
    assert sentences == len(rows)


def test_truth_rows(tiny_corpus):
    rows = truth_rows(tiny_corpus)
    assert all(set(row) == TRUTH_KEYS for row in rows)
    assert {row["condition"] for row in rows} <= {"clean", "music", "noise"}
    assert {row["condition"] for row in rows} >= {"clean", "music"}
    for row in rows:
        assert 0.0 < row["true_start"] < row["true_end"]
        moved = (abs(row["label_start"] - row["true_start"]), abs(row["label_end"] - row["true_end"]))
        if row["jittered"]:
            assert max(moved) <= 0.5 + 1e-9 and max(moved) > 0.0
        else:
            assert moved == (0.0, 0.0)
    by_episode: dict[str, list[dict]] = {}
    for row in rows:
        by_episode.setdefault(row["episode_id"], []).append(row)
    for episode in by_episode.values():
        assert sum(row["jittered"] for row in episode) == round(synth.JITTER_SHARE * len(episode))


def test_zip_parts_are_the_folders_packed_reproducibly(tiny_corpus, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny_corpus, first)
    shutil.copytree(tiny_corpus, second)
    zips = synth.pack_zips(first)
    synth.pack_zips(second)
    assert tree_digest(first) == tree_digest(second)
    names = sorted(z.name for z in zips)
    assert names == sorted(f"{kind}_{n:02d}.zip" for kind in ("TS", "TL", "VS", "VL") for n in range(1, 5))
    assert not [p for p in (first / synth.DATA_DIR).rglob("*") if p.is_dir() and p.name[:3] in ("TS_", "VL_")]
    for archive in zips:
        folder = tiny_corpus / archive.relative_to(first).with_suffix("")
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            assert [m.filename for m in members] == sorted(p.name for p in folder.iterdir())
            for member in members:
                assert member.date_time == synth.ZIP_DATE
                assert zf.read(member) == (folder / member.filename).read_bytes()
    wav_zip = first / synth.DATA_DIR / "Training" / "01.원천데이터" / "TS_01.zip"
    with zipfile.ZipFile(wav_zip) as zf:
        assert sf.info(io.BytesIO(zf.read(zf.namelist()[0]))).samplerate == 16000


def test_interrupted_run_resumes_to_the_same_bytes(tiny_corpus, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    render = synth.render_episode

    def fail_on_sixth(plan, seed, pool):
        if plan.index == 5:
            raise RuntimeError("killed")
        return render(plan, seed, pool)

    monkeypatch.setattr(synth, "render_episode", fail_on_sixth)
    with pytest.raises(RuntimeError, match="killed"):
        synth.generate("tiny", seed=0, out=out)
    assert not (out / synth.STAMP_FILE).exists() and len(list(out.rglob("*.wav"))) == 5
    monkeypatch.setattr(synth, "render_episode", render)
    synth.generate("tiny", seed=0, out=out)
    assert tree_digest(out) == tree_digest(tiny_corpus)


def test_cli_refuses_a_folder_holding_another_corpus(tiny_corpus, capsys):
    assert cli_main(["synth", "--size", "tiny", "--seed", "0", "--out", str(tiny_corpus)]) == 0
    assert "8 episodes" in capsys.readouterr().out
    assert cli_main(["synth", "--size", "tiny", "--seed", "7", "--out", str(tiny_corpus)]) == 2
    assert "already holds a tiny corpus with seed 0" in capsys.readouterr().err


def test_refuses_to_mix_into_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no kidsasr synth run"):
        synth.generate("tiny", seed=0, out=tmp_path)


def test_reader_reads_every_episode_without_issues(tiny_corpus):
    from kidsasr.corpus.reader import ReadReport, read_corpus

    report = ReadReport()
    episodes = list(read_corpus(tiny_corpus, report))
    assert report.issues == []
    assert len(episodes) == 8 and sum(len(e.sentences) for e in episodes) == len(truth_rows(tiny_corpus))


def test_voice_profiles_are_distinct_real_variants():
    assert len(CHILD_VOICES) >= 12 and len(ADULT_HOSTS) >= 3
    assert len({v.id for v in CHILD_VOICES + ADULT_HOSTS}) == len(CHILD_VOICES) + len(ADULT_HOSTS)
    shifted = [v for v in CHILD_VOICES if v.semitones]
    assert all(2.0 <= v.semitones <= 5.0 for v in shifted) and len(shifted) >= 12
    text = "안녕"
    # espeak-ng falls back to the plain voice on an unknown variant: every variant must sound different from it.
    plain = espeak(text, "ko", 50, 175)[0]
    for variant in {v.variant for v in CHILD_VOICES + ADULT_HOSTS}:
        audio = espeak(text, variant, 50, 175)[0]
        assert audio.shape != plain.shape or not np.array_equal(audio, plain), variant
    clips = {v.id: speak(text, v) for v in CHILD_VOICES + ADULT_HOSTS}
    assert len({clip.tobytes() for clip in clips.values()}) == len(clips)


def test_child_shift_raises_the_spectrum_and_keeps_the_speaking_rate():
    def centroid(audio: np.ndarray) -> float:
        magnitude = np.abs(np.fft.rfft(audio))
        return float((np.fft.rfftfreq(audio.size, 1 / 16000) * magnitude).sum() / magnitude.sum())

    child = next(v for v in CHILD_VOICES if v.semitones >= 5.0)
    text = "안녕하세요 친구들 오늘은 무엇을 할까요"
    shifted, unshifted = speak(text, child), speak(text, dataclasses.replace(child, semitones=0.0))
    assert centroid(shifted) > 1.1 * centroid(unshifted)
    assert shifted.size == pytest.approx(unshifted.size, rel=0.1)


def test_blockwise_wav_has_the_bytes_of_write_wav(tmp_path):
    audio = (np.random.default_rng(0).standard_normal(40_000) * 0.2).astype(np.float32)
    synth.write_wav_blocks(tmp_path / "a.wav", audio, block=7_000)
    assert (tmp_path / "a.wav").read_bytes() == wav_bytes(audio)


def test_format_time():
    assert synth.format_time(62.35) == "0:01:02.350"
    assert synth.format_time(62.35, zero_hour=True) == "00:01:02.350"
    assert synth.format_time(3599.9996) == "1:00:00.000"
    assert synth.format_time(0.0) == "0:00:00.000"


@pytest.mark.parametrize("make", [
    lambda rng: mix.music_bed(mix.music_loop(rng), 10.0, rng),
    lambda rng: mix.applause(rng, 2.0),
    lambda rng: mix.laughter(rng, 2.0),
    lambda rng: mix.laugh(rng, 1.0),
    lambda rng: mix.breath(rng, 0.5),
    lambda rng: mix.knock(rng, 0.5),
    *[lambda rng, kind=kind: mix.background_noise(rng, 2.0, kind) for kind in mix.NOISE_KINDS],
])
def test_broadcast_sounds_are_seeded_finite_and_unit_level(make):
    first, second = make(np.random.default_rng(3)), make(np.random.default_rng(3))
    assert np.array_equal(first, second) and np.isfinite(first).all()
    assert mix.rms(first) == pytest.approx(1.0, rel=0.2)


def test_reverb_keeps_the_dry_signal_and_adds_a_tail():
    rng = np.random.default_rng(0)
    dry = rng.standard_normal(1600).astype(np.float32)
    impulse = mix.room_impulse(rng, 0.3)
    wet = mix.reverberate(dry, impulse, 0.0)
    assert wet.size == dry.size + impulse.size - 1 and np.allclose(wet[: dry.size], dry)
    assert mix.rms(mix.reverberate(dry, impulse, 0.3)[dry.size:]) > 0
