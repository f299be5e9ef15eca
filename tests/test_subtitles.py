"""`kidsasr subtitle` on real files: a folder of good and bad inputs (built with ffmpeg/soundfile), resume,
the summary's accounting, empty VTTs for silence and music; whisper-base end to end in the slow tests."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webvtt
from test_transcribe import music

from kidsasr.cli import main
from kidsasr.subtitles.cues import check_cues, load_style
from kidsasr.subtitles.runner import SUMMARY_NAME, find_episodes, subtitle_file

from conftest import WHISPER_BASE
from test_models import espeak, make_tiny_ctc

SR = 16000
MEDIA_COUNT = 13


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return np.concatenate([np.zeros(SR, np.float32), espeak("우리 친구들 안녕! 오늘은 토끼와 거북이 이야기를 들려줄게요."),
                           np.zeros(2 * SR, np.float32)])


@pytest.fixture(scope="module")
def episodes(tmp_path_factory, speech) -> Path:
    """Good and bad episodes of every kind the issue names, and a file that is not media."""
    folder = tmp_path_factory.mktemp("episodes")
    good = folder / "good.wav"
    sf.write(good, speech, SR, subtype="PCM_16")
    ffmpeg("-i", str(good), "-ac", "2", "-ar", "44100", str(folder / "stereo44k.mp3"))
    ffmpeg("-i", str(good), "-c:a", "aac", str(folder / "talk.m4a"))
    ffmpeg("-i", str(good), "-ar", "8000", str(folder / "phone8k.wav"))
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=4", "-i", str(good), "-shortest", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(folder / "with_video.mp4"))
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(folder / "video_only.mp4"))
    sf.write(folder / "silence.wav", np.zeros(5 * SR, np.float32), SR, subtype="PCM_16")
    sf.write(folder / "music.wav", music(8.0), SR, subtype="PCM_16")
    (folder / "empty.wav").write_bytes(b"")
    data = good.read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 3])  # the header promises more than is there
    mp3 = (folder / "stereo44k.mp3").read_bytes()
    (folder / "truncated.mp3").write_bytes(mp3[: len(mp3) // 2])
    (folder / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(20000))
    (folder / "nested").mkdir()
    sf.write(folder / "nested" / "good.wav", speech, SR, subtype="PCM_16")
    (folder / "notes.txt").write_text("not an episode\n")
    (folder / ".hidden.wav").write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny-ctc"))


def test_find_episodes_mirrors_folders_and_keeps_same_stems_apart(tmp_path):
    for name in ["a.wav", "a.mp4", "b.MP3", "sub/c.m4a", "x.txt", ".h.wav", "out/a.vtt", "out/a.cues.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    pairs, ignored = find_episodes(tmp_path, tmp_path / "out")
    assert {str(s.relative_to(tmp_path)): str(t.relative_to(tmp_path)) for s, t in pairs} == {
        "a.mp4": "out/a.mp4.vtt", "a.wav": "out/a.wav.vtt", "b.MP3": "out/b.vtt", "sub/c.m4a": "out/sub/c.vtt"}
    assert [p.name for p in ignored] == ["x.txt"]


def read_summary(out: Path) -> dict:
    return json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))


def test_folder_run_accounts_for_every_input_and_resumes(episodes, tiny_ctc, tmp_path, capsys):
    out = tmp_path / "subs"
    code = main(["subtitle", str(episodes), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc", "--srt"])
    assert code == 1  # something failed
    summary = read_summary(out)
    results = {Path(r["source"]).relative_to(episodes).as_posix(): r for r in summary["results"]}
    assert summary["inputs"] == len(results) == MEDIA_COUNT
    assert summary["done"] + summary["skipped"] + summary["failed"] == MEDIA_COUNT
    assert [Path(p).name for p in summary["ignored"]] == ["notes.txt"]
    failed = {name: r["reason"] for name, r in results.items() if r["status"] == "failed"}
    assert set(failed) == {"video_only.mp4", "empty.wav", "corrupt.wav"}
    assert "no audio stream" in failed["video_only.mp4"]
    assert "empty file" in failed["empty.wav"]
    assert "cannot decode" in failed["corrupt.wav"]
    for name, r in results.items():
        vtt = Path(r["output"])
        if r["status"] == "done":
            parsed = webvtt.read(str(vtt))  # a valid WebVTT file, possibly empty
            assert len(parsed.captions) == r["cues"]
            assert vtt.with_suffix(".srt").is_file() and vtt.with_name(vtt.stem + ".cues.json").is_file()
        else:
            assert not vtt.exists() and not vtt.with_name(vtt.stem + ".cues.json").exists()
    for quiet in ("silence.wav", "music.wav"):
        assert results[quiet]["status"] == "done" and results[quiet]["cues"] == 0
        assert webvtt.read(results[quiet]["output"]).captions == []
    assert (out / "nested" / "good.vtt").is_file()
    assert not list(out.rglob("*.part"))
    printed = capsys.readouterr().out
    assert f"{MEDIA_COUNT} episodes: {MEDIA_COUNT - 3} done, 0 skipped (already subtitled), 3 failed" in printed
    assert "notes.txt: not a media file" in printed

    # a second run skips what is done, retries what failed, and still accounts for everything
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.vtt")}
    assert main(["subtitle", str(episodes), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"]) == 1
    summary = read_summary(out)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, MEDIA_COUNT - 3, 3)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.vtt")} == before


@pytest.mark.slow
def test_worker_processes_give_the_same_files(episodes, tiny_ctc, tmp_path):
    """--workers 2: each worker process loads its own model (seconds each on this machine)."""
    folder = tmp_path / "good-only"
    folder.mkdir()
    for name in ("good.wav", "talk.m4a", "silence.wav"):
        (folder / name).write_bytes((episodes / name).read_bytes())
    args = ["--model", str(tiny_ctc), "--backend", "ctc"]
    assert main(["subtitle", str(folder), "-o", str(tmp_path / "one"), *args]) == 0
    assert main(["subtitle", str(folder), "-o", str(tmp_path / "two"), *args, "--workers", "2"]) == 0
    summary = read_summary(tmp_path / "two")
    assert (summary["done"], summary["failed"]) == (3, 0)
    for name in ("good", "talk", "silence"):
        one, two = (tmp_path / d / f"{name}.cues.json" for d in ("one", "two"))
        assert json.loads(one.read_text())["cues"] == json.loads(two.read_text())["cues"]
        assert (tmp_path / "one" / f"{name}.vtt").read_text() == (tmp_path / "two" / f"{name}.vtt").read_text()


def test_a_zip_member_as_named_in_prepared_manifests(episodes, tiny_ctc, tmp_path):
    part = tmp_path / "TS_01.zip"
    with zipfile.ZipFile(part, "w") as zf:
        zf.write(episodes / "good.wav", "01.원천데이터/KID_0001.wav")
    out = tmp_path / "subs" / "KID_0001.vtt"
    member = f"{part}!01.원천데이터/KID_0001.wav"
    assert main(["subtitle", member, "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc"]) == 0
    assert webvtt.read(str(out)).captions == [] and sorted(p.name for p in tmp_path.iterdir()) == ["TS_01.zip", "subs"]
    assert main(["subtitle", f"{part}!missing.wav", "--model", str(tiny_ctc)]) == 2


def test_single_file_errors_name_the_file_and_leave_nothing(episodes, tmp_path, capsys):
    out = tmp_path / "video_only.vtt"
    result = subtitle_file(episodes / "video_only.mp4", out, recognizer=None)
    assert (result.status, result.reason) == ("failed", "cannot decode: no audio stream")
    assert list(tmp_path.iterdir()) == []
    assert main(["subtitle", str(tmp_path / "missing.wav"), "-o", str(out)]) == 2
    assert "missing.wav: no such file or folder" in capsys.readouterr().err
    assert main(["subtitle", str(episodes / "good.wav"), "--style", "nosuchstyle"]) == 2
    assert "built-in styles: adult, kids" in capsys.readouterr().err
    assert main(["subtitle", str(episodes), "-o", str(tmp_path / "all.vtt")]) == 2
    assert "-o names an output folder" in capsys.readouterr().err


@pytest.mark.slow
def test_whisper_base_subtitles_an_episode_end_to_end(episodes, speech, tmp_path):
    """CTranslate2 whisper-base on generated Korean speech with music and silence around it: a valid VTT and SRT
    whose cues come from timed words inside the speech, every rule violation listed in the review file."""
    episode = tmp_path / "episode.wav"
    sf.write(episode, np.concatenate([music(6.0), np.zeros(SR, np.float32), speech]), SR, subtype="PCM_16")
    out = tmp_path / "out" / "episode.vtt"
    assert main(["subtitle", str(episode), "-o", str(out), "--model", WHISPER_BASE, "--srt"]) == 0
    parsed = webvtt.read(str(out))
    side = json.loads(out.with_name("episode.cues.json").read_text(encoding="utf-8"))
    assert len(parsed.captions) == len(side["cues"])
    assert len(webvtt.from_srt(str(out.with_suffix(".srt"))).captions) == len(side["cues"])
    speech_start = 7.0 + 1.0 - 0.2  # the espeak sentence starts after 6 s music, 1 s silence, 1 s lead-in
    for caption, cue in zip(parsed.captions, side["cues"]):
        assert caption.start_time.in_milliseconds() == round(cue["start"] * 1000)
        assert cue["words"] and all(w["start"] >= speech_start for w in cue["words"])
    assert side["cues"] or side["dropped"]  # zero-shot whisper-base: some words, or guarded loops
    assert side["cues_with_violations"] == sum(bool(c["violations"]) for c in side["cues"])
    if side["cues"]:
        from kidsasr.subtitles.cues import Cue, CueWord

        rebuilt = [Cue(c["start"], c["end"], c["lines"], c["confidence"], [CueWord(**w) for w in c["words"]])
                   for c in side["cues"]]
        assert [c["violations"] for c in side["cues"]] == check_cues(rebuilt, load_style("kids"),
                                                                     side["speech_regions"])
