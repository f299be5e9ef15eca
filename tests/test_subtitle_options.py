"""`kidsasr subtitle` options and outputs, `kidsasr check` and `kidsasr --version`: each option shown with its
default in --help and shown to take effect (on the cues, the files, or the real components it reaches)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr import __version__
from kidsasr.cli import main
from kidsasr.subtitles.cues import build_cues, reading_length, text_width
from kidsasr.subtitles.runner import (RunOptions, add_arguments, decode_options_from_args, run_options_from_args,
                                      style_from_args, subtitle_file)
from kidsasr.asr.vad import VadOptions

from test_models import espeak, make_tiny_ctc

SR = 16000
OPTIONS = ["--format", "--srt", "--notes", "--smi-encoding", "--beam-size", "--initial-prompt", "--hotwords",
           "--batch-size", "--threads", "--vad-threshold", "--vad-min-silence-ms", "--vad-min-speech-ms",
           "--vad-speech-pad-ms",
           "--max-line-width", "--max-lines", "--max-cps", "--fps"]


@dataclass
class Word:
    text: str
    start: float
    end: float
    probability: float = 0.9


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["episode.wav", *argv])


def say(text: str, start: float = 0.0) -> list[Word]:
    words, t = [], start
    for token in text.split():
        words.append(Word(token, round(t, 3), round(t + 0.15 * max(1, reading_length(token)), 3)))
        t = words[-1].end + 0.05
    return words


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny-ctc"))


@pytest.fixture(scope="module")
def episode(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ep") / "ep.wav"
    speech = espeak("우리 친구들 안녕! 오늘은 토끼와 거북이 이야기를 들려줄게요.")
    quiet = np.zeros(SR, np.float32)
    sf.write(path, np.concatenate([quiet, speech, quiet, 0.3 * speech, quiet]), SR, subtype="PCM_16")
    return path


def test_help_names_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["subtitle", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split(" options: ", 1)[1]  # past the usage line
    for option in OPTIONS:
        assert f" {option} " in text, option
        described = text.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert "(default: " in described, (option, described)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"kidsasr {__version__}"


def test_cue_rule_overrides_change_the_cues():
    words = say("오늘은 우리 친구들과 함께 3개월 동안 키운 토마토를 수확해 볼 거예요. 정말 빨갛게 잘 익었네요!")
    default = build_cues(words, style_from_args(parse()))
    style = style_from_args(parse("--max-line-width", "9", "--max-lines", "1", "--max-cps", "20", "--fps", "25"))
    assert (style.max_line_width, style.max_lines, style.max_cps, style.fps) == (9, 1, 20, 25)
    cues = build_cues(words, style)
    assert len(cues) > len(default)
    assert all(len(c.lines) == 1 and text_width(c.lines[0]) <= 9 for c in cues)
    assert all(abs(t * 25 - round(t * 25)) < 1e-6 for c in cues for t in (c.start, c.end))
    with pytest.raises(ValueError, match="max_lines"):
        style_from_args(parse("--max-lines", "0"))


def test_decode_options_from_the_command_line(tmp_path):
    args = parse("--beam-size", "4", "--initial-prompt", "토끼와 거북이", "--hotwords", "뽀로로 크롱",
                 "--batch-size", "3", "--threads", "2")
    assert decode_options_from_args(args) == {"beam_size": 4, "batch_size": 3, "num_threads": 2,
                                              "initial_prompt": "토끼와 거북이", "hotwords": "뽀로로 크롱"}
    options = run_options_from_args(parse("--vad-threshold", "0.7", "--vad-min-silence-ms", "500",
                                      "--vad-min-speech-ms", "120", "--vad-speech-pad-ms", "30",
                                      "--format", "smi,ttml", "--srt"))
    assert options.vad == VadOptions(threshold=0.7, min_silence_duration_ms=500, min_speech_duration_ms=120,
                                     speech_pad_ms=30)
    # not given: the style's speech detection (children: a lower threshold, shorter silences)
    assert run_options_from_args(parse()).vad == VadOptions(threshold=0.35, min_silence_duration_ms=100)
    assert run_options_from_args(parse("--style", "adult", "--vad-threshold", "0.6")).vad == \
        VadOptions(threshold=0.6, min_silence_duration_ms=250)
    with pytest.raises(ValueError, match="--vad-threshold"):
        run_options_from_args(parse("--vad-threshold", "1.5"))
    profile = tmp_path / "short-words.yaml"
    profile.write_text("name: short-words\nvad_min_speech_ms: 120\n")
    assert run_options_from_args(parse("--style", str(profile))).vad.min_speech_duration_ms == 120
    assert options.formats == ("smi", "ttml", "srt")
    with pytest.raises(ValueError, match="unknown ass"):
        run_options_from_args(parse("--format", "ass"))


def test_vad_options_reach_the_speech_detector(episode, tiny_ctc, tmp_path):
    from kidsasr.asr.models import load_recognizer

    recognizer = load_recognizer(str(tiny_ctc), backend="ctc")
    regions = {}
    for name, vad in [("default", VadOptions()), ("strict", VadOptions(threshold=0.95, speech_pad_ms=0)),
                      ("padded", VadOptions(speech_pad_ms=400))]:
        out = tmp_path / f"{name}.vtt"
        assert subtitle_file(episode, out, recognizer, "kids", RunOptions(vad=vad)).status == "done"
        regions[name] = json.loads(out.with_suffix(".cues.json").read_text())["speech_regions"]
    speech = {name: sum(e - s for s, e in r) for name, r in regions.items()}
    assert speech["strict"] < speech["default"] < speech["padded"]


def test_output_format_from_the_extension_and_more_beside_it(episode, tiny_ctc, tmp_path, capsys):
    out = tmp_path / "ep.srt"
    code = main(["subtitle", str(episode), "-o", str(out), "--model", str(tiny_ctc), "--backend", "ctc",
                 "--format", "smi,ttml,txt", "--smi-encoding", "cp949"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.cues.json", "ep.smi", "ep.srt", "ep.ttml", "ep.txt"]
    assert "-> " + str(out) in capsys.readouterr().out
    (tmp_path / "ep.smi").read_bytes().decode("cp949")
    side = json.loads((tmp_path / "ep.cues.json").read_text(encoding="utf-8"))
    assert side["source"] == str(episode) and side["model"].startswith("ctc:")  # QC data: here, not in the SRT


def test_check_reports_each_broken_rule_and_exits_1(tmp_path, capsys):
    good, bad = tmp_path / "good.vtt", tmp_path / "bad.srt"
    good.write_text("WEBVTT\n\n00:00:01.001 --> 00:00:02.536\n안녕 친구들\n", encoding="utf-8")
    bad.write_text("1\n00:00:01,000 --> 00:00:01,400\n가나다라마바사아자차카타파하가나다라\n\n"
                   "2\n00:00:01,420 --> 00:00:03,000\n다음\n", encoding="utf-8")
    assert main(["check", str(good), "--style", "kids"]) == 0
    assert main(["check", str(bad), "--style", "kids"]) == 1
    out = capsys.readouterr().out
    assert "| 1 |" in out and "width 18 > 16" in out and "duration 0.400 s < 0.833 s" in out
    assert "| 2 |" in out and "gap to the previous cue" in out
    assert main(["check", str(tmp_path / "missing.vtt")]) == 2


def test_check_reads_sami_each_sync_to_the_next(tmp_path, capsys):
    smi = tmp_path / "vendor.smi"
    smi.write_bytes(("<SAMI><BODY>\n<SYNC Start=1000><P Class=KRCC>안녕 친구들\n"
                     "<SYNC Start=1400><P Class=KRCC>&nbsp;\n"
                     "<SYNC Start=5000><P Class=KRCC>오늘은<br>토끼 이야기\n"
                     "<SYNC Start=6500><P Class=KRCC>&nbsp;\n</BODY></SAMI>\n").encode("cp949"))
    assert main(["check", str(smi)]) == 1
    out = capsys.readouterr().out
    assert "2 cues, 1 breaking" in out and "| 1 | 1.000 | 1.400 |" in out and "duration 0.400 s" in out
