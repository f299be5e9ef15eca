"""kidsasr.evaluation.real_speech: the fixed tune/report halves of the real read-speech set, and its loader."""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr.evaluation.real_speech import (ENV_VAR, load_clips, load_half, read_speech_split, real_speech_root,
                                            sentence_halves)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "real-speech" / "korean-read"
TEXTS = ["안녕하세요.", "오늘은 날씨가 좋아요.", "고마워요!", "내일 또 만나요.", "사과 두 개 주세요."]


def write_set(folder: Path, texts: list[str], rooms=("A", "B")) -> Path:
    rows = []
    for n, text in enumerate(texts):
        for room in rooms:
            (folder / room).mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            sf.write(buf, np.zeros(1600, dtype=np.float32), 16000, format="FLAC")
            (folder / room / f"{n}.flac").write_bytes(buf.getvalue())
            rows.append({"id": f"{room}-{n}", "audio": f"{room}/{n}.flac", "text": text, "room": room,
                         "duration": 0.1})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return folder / "manifest.jsonl"


def test_halves_follow_the_hash_order_of_the_distinct_texts():
    halves = sentence_halves(TEXTS + TEXTS[:2])
    ordered = sorted(TEXTS, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    assert halves == {t: "tune" if i < 2 else "report" for i, t in enumerate(ordered)}  # 5 // 2 = 2 tune


def test_every_clip_goes_with_its_sentence(tmp_path):
    manifest = write_set(tmp_path, TEXTS)
    split = read_speech_split(manifest)
    assert len(split) == 10 and set(split.values()) == {"tune", "report"}
    for n in range(len(TEXTS)):
        assert split[f"A-{n}"] == split[f"B-{n}"]
    tune, report = load_half(tmp_path, "tune"), load_half(manifest, "report")
    assert len(tune) == 4 and len(report) == 6 and not {c.text for c in tune} & {c.text for c in report}
    assert all(c.audio.is_file() and c.audio.is_absolute() for c in tune + report)


def test_the_split_reads_texts_in_nfc_and_stripped():
    decomposed = [unicodedata.normalize("NFD", t) + "  " for t in TEXTS]
    assert sentence_halves(decomposed) == sentence_halves(TEXTS)


def test_bad_rows_and_missing_audio_are_named(tmp_path):
    manifest = write_set(tmp_path, TEXTS[:2])
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:1] + ['{"id": "x"}'] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: bad row"):
        load_clips(manifest)
    manifest.write_text("\n".join(lines) + "\n")
    (tmp_path / "B" / "1.flac").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest.jsonl:4: audio .*B/1.flac not found"):
        load_clips(tmp_path)
    with pytest.raises(ValueError, match="half must be one of"):
        load_half(tmp_path, "test")


def test_root_comes_from_the_environment_or_beside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert real_speech_root() == tmp_path
    monkeypatch.delenv(ENV_VAR)
    assert real_speech_root() == Path(__file__).resolve().parents[2] / "shared" / "real-speech"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/real-speech is not beside the checkout")
def test_the_shared_set_splits_51_sentences_each_way():
    tune, report = load_half(SHARED, "tune"), load_half(SHARED, "report")
    assert (len(tune), len(report)) == (151, 149)
    assert len({c.text for c in tune}) == len({c.text for c in report}) == 51
