"""Corpus reader: the 71502 layout from folders and zip parts, and every malformed case reported by file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import write_wav
from kidsasr.corpus.reader import ReadReport, is_unsafe_member, parse_time, read_corpus


def tone(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def label(stem: str, sentences: list[dict], **media) -> dict:
    return {
        "dataset_info": {"dataset_id": "71502"},
        "media_info": {"file_name": f"{stem}.wav", "category": "어린이 교육", "program_name": "테스트",
                       "sentence_list": sentences, **media},
        "speaker_info": [{"speaker_id": "C01", "speaker_type": "아동", "age_group": "7-9", "gender": "여"},
                         {"speaker_id": "A01", "speaker_type": "성인", "age_group": "adult", "gender": "남"}],
    }


def sent(text: str, start: str, end: str, speaker: str = "C01") -> dict:
    return {"sentence": text, "start": start, "end": end, "speaker_id": speaker}


def write_episode(folder: Path, stem: str, doc: dict | bytes | str, seconds: float = 4.0, audio: bool = True) -> None:
    wav_dir = folder / "01.원천데이터" / "TS_01"
    json_dir = folder / "02.라벨링데이터" / "TL_01"
    wav_dir.mkdir(parents=True, exist_ok=True)
    json_dir.mkdir(parents=True, exist_ok=True)
    if audio:
        write_wav(wav_dir / f"{stem}.wav", tone(seconds))
    path = json_dir / f"{stem}.json"
    if isinstance(doc, dict):
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    elif isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        path.write_bytes(doc)


@pytest.fixture
def good_corpus(tmp_path: Path) -> Path:
    write_episode(tmp_path, "EP_A", label("EP_A", [sent("안녕하세요 여러분!", "0:00:00.500", "0:00:01.750", "A01"),
                                                    sent("(3개)/(세 개) 있어요.", "00:00:02.000", "0:00:03.900")]))
    write_episode(tmp_path, "EP_B", label("EP_B", [sent("사과가 맛있어요.", "0:00:01.000", "0:00:02.500")]), 3.0)
    return tmp_path


def test_parse_time_formats():
    assert parse_time("0:01:02.350") == pytest.approx(62.35)
    assert parse_time("00:01:02.350") == pytest.approx(62.35)
    assert parse_time("1:02.5") == pytest.approx(62.5)
    assert parse_time(3.25) == 3.25
    for bad in ("", "1:xx", "-1", "0:61:00", None, "nan", True):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_reads_episodes_speakers_and_times(good_corpus: Path):
    report = ReadReport()
    episodes = list(read_corpus(good_corpus, report))
    assert [e.id for e in episodes] == ["EP_A", "EP_B"]
    a = episodes[0]
    assert a.category == "어린이 교육" and a.program == "테스트"
    assert [(s.start, s.end) for s in a.sentences] == [(0.5, 1.75), (2.0, 3.9)]
    assert a.sentences[0].speaker.role == "adult" and a.sentences[0].speaker.sex == "M"
    assert a.sentences[1].speaker.role == "child" and a.sentences[1].speaker.age_group == "7-9"
    assert a.sentences[1].text == "(3개)/(세 개) 있어요."
    assert a.metadata["duration_s"] == pytest.approx(4.0)
    assert a.audio.load().shape == (64000,)
    assert report.errors == [] and report.sentences_read == 3 and report.sentences_kept == 3


def test_each_malformed_case_is_reported_and_the_rest_read(good_corpus: Path):
    write_episode(good_corpus, "BAD_JSON", "{\"media_info\": {\"sentence_list\": [")
    write_episode(good_corpus, "NO_AUDIO", label("NO_AUDIO", [sent("소리가 없어요.", "0:00:00.100", "0:00:01.000")]),
                  audio=False)
    write_episode(good_corpus, "TIMES", label("TIMES", [
        sent("좋아요.", "0:00:00.100", "0:00:01.000"),
        sent("거꾸로예요.", "0:00:02.000", "0:00:01.000"),
        sent("이상한 시간.", "0:0x:01.000", "0:00:02.000"),
        sent("너무 길어요.", "0:00:02.000", "0:00:09.000"),
    ]), seconds=3.0)
    write_episode(good_corpus, "CP949", json.dumps(label("CP949", [sent("한글이에요.", "0:00:00.1", "0:00:01")]),
                                                   ensure_ascii=False).encode("cp949"))
    write_episode(good_corpus, "BOM", b"\xef\xbb\xbf" + json.dumps(
        label("BOM", [sent("처음에 표시가 있어요.", "0:00:00.1", "0:00:01")]), ensure_ascii=False).encode("utf-8"))
    write_episode(good_corpus, "NOT_TEXT", b"\xff\xfe\x00\x81\x00")
    (good_corpus / "01.원천데이터" / "TS_01" / "CORRUPT.wav").write_bytes(b"RIFF\x00\x00garbage")
    write_episode(good_corpus, "CORRUPT", label("CORRUPT", [sent("깨졌어요.", "0:00:00.1", "0:00:01")]), audio=False)
    write_wav(good_corpus / "01.원천데이터" / "TS_01" / "ORPHAN.wav", tone(1.0))

    report = ReadReport()
    episodes = {e.id: e for e in read_corpus(good_corpus, report)}
    assert set(episodes) == {"EP_A", "EP_B", "TIMES", "CP949", "BOM"}
    assert [s.text for s in episodes["TIMES"].sentences] == ["좋아요."]
    reasons = {(Path(i.path.split("!")[0]).stem, i.sentence_index): i.reason for i in report.issues}
    assert "malformed JSON" in reasons[("BAD_JSON", None)]
    assert "no audio file" in reasons[("NO_AUDIO", None)]
    assert "reversed" in reasons[("TIMES", 1)]
    assert "bad time" in reasons[("TIMES", 2)]
    assert "beyond the audio" in reasons[("TIMES", 3)]
    assert "cp949" in reasons[("CP949", None)]
    assert "utf-8-sig" in reasons[("BOM", None)]
    assert "neither UTF-8 nor CP949" in reasons[("NOT_TEXT", None)]
    assert "unreadable audio" in reasons[("CORRUPT", None)]
    assert "without a label" in reasons[("ORPHAN", None)]
    assert episodes["CP949"].sentences[0].text == "한글이에요."
    # nothing is lost: every sentence read is either kept or rejected with a reason
    kept = sum(len(e.sentences) for e in episodes.values())
    assert kept == report.sentences_kept
    assert report.sentences_kept + report.sentences_rejected == report.sentences_read


def pack_zips(folder: Path, out: Path) -> None:
    """Pack TS_/TL_ folders into zip parts the way AI Hub distributes them."""
    for part in sorted(folder.rglob("T[SL]_*")):
        if part.is_dir():
            target = out / part.relative_to(folder).parent / f"{part.name}.zip"
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w") as zf:
                for f in sorted(part.iterdir()):
                    zf.write(f, f.name)


def comparable(episodes) -> list:
    return [(e.id, e.category, e.program, e.sentences, e.metadata["duration_s"]) for e in episodes]


def test_zip_parts_read_like_folders(good_corpus: Path, tmp_path_factory):
    zipped = tmp_path_factory.mktemp("zipped")
    pack_zips(good_corpus, zipped)
    from_zip = list(read_corpus(zipped))
    assert comparable(from_zip) == comparable(read_corpus(good_corpus))
    assert from_zip[0].audio.member == "EP_A.wav"
    np.testing.assert_array_equal(from_zip[0].audio.load(), next(read_corpus(good_corpus)).audio.load())


def test_unsafe_zip_members_are_refused(good_corpus: Path, tmp_path_factory):
    zipped = tmp_path_factory.mktemp("evil")
    pack_zips(good_corpus, zipped)
    part = next(zipped.rglob("TL_01.zip"))
    with zipfile.ZipFile(part, "a") as zf:
        zf.writestr("../../escape.json", "{}")
        zf.writestr("/etc/evil.json", "{}")
    report = ReadReport()
    assert [e.id for e in read_corpus(zipped, report)] == ["EP_A", "EP_B"]
    refused = [i for i in report.issues if "refused zip member" in i.reason]
    assert len(refused) == 2
    assert is_unsafe_member("a/../b.json") and is_unsafe_member("C:/x.json") and not is_unsafe_member("a/b..json")


def test_missing_corpus_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not found"):
        list(read_corpus(tmp_path / "nope"))


def test_tiny_generated_corpus_round_trip(tiny_corpus: Path):
    """The generator's labels read back with the times, speakers and categories the generator wrote."""
    from kidsasr.fileio import read_jsonl

    report = ReadReport()
    episodes = list(read_corpus(tiny_corpus, report))
    assert report.errors == []
    truth = {(r["episode_id"], r["sentence_id"]): r for r in read_jsonl(tiny_corpus / "truth.jsonl")}
    sentences = [(e, s) for e in episodes for s in e.sentences]
    assert len(sentences) == len(truth) == report.sentences_read
    for episode, sentence in sentences:
        row = truth[(episode.id, sentence.index + 1)]
        assert sentence.start == pytest.approx(row["label_start"], abs=1e-3)
        assert sentence.end == pytest.approx(row["label_end"], abs=1e-3)
        assert sentence.speaker is not None and sentence.speaker.role in ("child", "adult")
    assert {e.category for e in episodes} >= {"미취학 아동 발달 교육", "어린이 교육", "어린이 드라마", "어린이 예능"}
