"""Bad input through `kidsasr prep`: a small 71502-layout corpus with real espeak-ng speech and one of each
kind of broken file (corrupt, empty, silent, clipped, 44.1 kHz stereo, truncated, stem mismatch, bad JSON).
`build_corpus` and `speech` are shared with tests/test_cleaning.py."""

from __future__ import annotations

import io
import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr.audio import load_audio
from kidsasr.corpus.reader import CATEGORIES

SR = 16000
SENTENCES = ["안녕하세요 오늘은 숫자 놀이를 해요", "사과가 (3개)/(세 개) 있어요", "우리 같이 노래를 불러 볼까요",
             "b/ 음/ 정말 재미있었어요", "내일 또 만나요 친구들"]


def speech(text: str, variant: str = "ko") -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", variant, "-s", "150", "--stdout", text], capture_output=True,
                         check=True).stdout
    return load_audio(io.BytesIO(wav))


def _time(seconds: float) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:06.3f}"


def label(stem: str, category: str, program: str, spans: list[tuple[str, float, float]], duration: float) -> dict:
    return {"dataset_info": {"dataset_id": "71502", "version": "test"},
            "media_info": {"file_name": f"{stem}.wav", "program_name": program, "category": category,
                           "channel": "EBS", "duration": _time(duration), "sample_rate": 16000, "bit_depth": 16,
                           "channels": 1,
                           "sentence_list": [{"sentence_id": i + 1, "sentence": text, "start": _time(a),
                                              "end": _time(b), "speaker_id": "C01"}
                                             for i, (text, a, b) in enumerate(spans)]},
            "speaker_info": [{"speaker_id": "C01", "speaker_type": "아동", "age_group": "7-9", "gender": "여"}]}


def episode_audio(texts: list[str], seed: int, noise_db: float = -60.0) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Speech turns separated by 0.6-1.0 s pauses over a quiet noise floor; returns audio and true spans."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5
    for text in texts:
        clip = speech(text.split(")/(")[-1].strip("() ").replace("b/ ", "").replace("음/ ", "음 ")) * 0.5
        spans.append((text, round(t, 3), round(t + clip.size / SR, 3)))
        pause = np.zeros(int(rng.uniform(0.6, 1.0) * SR), np.float32)
        parts += [clip, pause]
        t += (clip.size + pause.size) / SR
    audio = np.concatenate(parts)
    return audio + rng.normal(0, 10 ** (noise_db / 20), audio.size).astype(np.float32), spans


def write_episode(root: Path, stem: str, audio: np.ndarray, doc: dict, sr: int = SR, channels: int = 1,
                  audio_stem: str | None = None) -> None:
    wav_dir = root / "01.데이터" / "Training" / "01.원천데이터" / "TS_01"
    json_dir = root / "01.데이터" / "Training" / "02.라벨링데이터" / "TL_01"
    wav_dir.mkdir(parents=True, exist_ok=True)
    json_dir.mkdir(parents=True, exist_ok=True)
    if sr != SR:
        import librosa

        audio = librosa.resample(audio, orig_sr=SR, target_sr=sr)
    data = np.stack([audio] * channels, axis=1) if channels > 1 else audio
    sf.write(wav_dir / f"{audio_stem or stem}.wav", data, sr, subtype="PCM_16")
    (json_dir / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def build_corpus(root: Path, good_episodes: int = 8, bad: bool = True) -> Path:
    """`good_episodes` clean episodes over the four categories, plus (with `bad`) one of each bad input."""
    for n in range(good_episodes):
        category = CATEGORIES[n % 4]
        texts = [SENTENCES[(n + k) % len(SENTENCES)] for k in range(3)]
        audio, spans = episode_audio(texts, seed=n)
        stem = f"KID_G_{n:04d}"
        write_episode(root, stem, audio, label(stem, category, f"programme {n}", spans, audio.size / SR))
    if not bad:
        return root
    audio, spans = episode_audio(SENTENCES[:2], seed=100)
    duration = audio.size / SR
    # Stereo 44.1 kHz: the reader warns, prep converts (or rejects with format_mismatch: reject).
    write_episode(root, "KID_B_stereo", audio, label("KID_B_stereo", CATEGORIES[0], "p", spans, duration),
                  sr=44100, channels=2)
    # Truncated: the second sentence lies beyond the end of the audio.
    cut = int((spans[0][2] + 0.3) * SR)
    write_episode(root, "KID_B_truncated", audio[:cut], label("KID_B_truncated", CATEGORIES[1], "p", spans, duration))
    # Silent: labels over digital silence and a faint hiss.
    write_episode(root, "KID_B_silent", np.random.default_rng(1).normal(0, 1e-4, audio.size).astype(np.float32),
                  label("KID_B_silent", CATEGORIES[2], "p", spans, duration))
    # Stem mismatch: the label's audio is named differently.
    write_episode(root, "KID_B_stem", audio, label("KID_B_stem", CATEGORIES[3], "p", spans, duration),
                  audio_stem="KID_B_stem_renamed")
    # Corrupt WAV, zero-length WAV, malformed JSON.
    write_episode(root, "KID_B_corrupt", audio, label("KID_B_corrupt", CATEGORIES[0], "p", spans, duration))
    wav = next(root.rglob("KID_B_corrupt.wav"))
    wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    write_episode(root, "KID_B_empty", audio, label("KID_B_empty", CATEGORIES[1], "p", spans, duration))
    next(root.rglob("KID_B_empty.wav")).write_bytes(b"")
    write_episode(root, "KID_B_badjson", audio, label("KID_B_badjson", CATEGORIES[2], "p", spans, duration))
    badjson = next(root.rglob("KID_B_badjson.json"))
    badjson.write_text(badjson.read_text(encoding="utf-8")[:-20], encoding="utf-8")
    # Clipped: speech driven hard into full scale.
    write_episode(root, "KID_B_clipped", np.clip(audio * 20, -1, 1),
                  label("KID_B_clipped", CATEGORIES[3], "p", spans, duration))
    return root


# ---------------------------------------------------------------------------------------------------------------
# tests: every bad input gets a clear reason, the rest is processed, every sentence is accounted for


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("bad") / "corpus", good_episodes=4)


def _run(corpus: Path, out: Path, **output) -> tuple[dict, list[dict], list[dict]]:
    import dataclasses

    from kidsasr.prep.config import load_config
    from kidsasr.prep.runner import prepare

    config = load_config(Path(__file__).resolve().parents[1] / "data_prep" / "config.yaml")
    config = dataclasses.replace(config, alignment=dataclasses.replace(config.alignment, aligner="none"),
                                 output=dataclasses.replace(config.output, **output))
    report = prepare(corpus, out, config)
    rows = lambda name: [json.loads(line) for line in (out / name).read_text(encoding="utf-8").splitlines()]
    return report, rows("manifest.jsonl"), rows("rejected.jsonl")


def test_bad_inputs_are_rejected_with_reasons_and_the_rest_kept(bad_corpus, tmp_path):
    report, kept, rejected = _run(bad_corpus, tmp_path / "out")
    assert len(kept) + sum(r["sentences"] for r in rejected) == report["sentences_read"] > 0
    assert report["accounted"]
    reasons = {(r["episode_id"], r["reason"]) for r in rejected}
    assert ("KID_B_corrupt", "bad_audio") in reasons
    assert ("KID_B_empty", "bad_audio") in reasons
    assert ("KID_B_badjson", "bad_label") in reasons
    assert ("KID_B_stem", "missing_audio") in reasons
    assert ("KID_B_stem_renamed", "missing_label") in reasons
    assert ("KID_B_truncated", "truncated_audio") in reasons
    assert {r["reason"] for r in rejected if r["episode_id"] == "KID_B_silent"} == {"no_speech"}
    assert {r["reason"] for r in rejected if r["episode_id"] == "KID_B_clipped"} == {"clipping"}
    for r in rejected:
        assert r["detail"] and r["source"], r
    kept_episodes = Counter(r["episode_id"] for r in kept)
    assert all(kept_episodes[f"KID_G_{n:04d}"] == 3 for n in range(4))  # every good sentence survives
    assert kept_episodes["KID_B_stereo"] == 2  # 44.1 kHz stereo is converted (the reader warns)
    assert kept_episodes["KID_B_truncated"] == 1  # the sentence inside the audio is kept
    assert any("44100" in w["reason"] for w in report["reader_warnings"])
    assert "tag_only" not in reasons and report["rejected_by_reason"]["clipping"]["sentences"] == 2


def test_format_mismatch_can_be_rejected(bad_corpus, tmp_path):
    report, kept, rejected = _run(bad_corpus, tmp_path / "out", format_mismatch="reject")
    assert report["accounted"]
    assert not [r for r in kept if r["episode_id"] == "KID_B_stereo"]
    stereo = [r for r in rejected if r["episode_id"] == "KID_B_stereo"]
    assert len(stereo) == 2 and all(r["reason"] == "format_mismatch" and "44100" in r["detail"] for r in stereo)
