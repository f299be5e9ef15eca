"""Readers for the related AI Hub layouts: 자유대화, KsponSpeech (pcm + CP949 text), broadcast dialogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import to_pcm16, write_wav
from kidsasr.corpus.reader import ReadReport
from kidsasr.corpus.related import detect_format, read_any


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def freetalk_label(file_name: str, stt: str, seconds: float, age: int = 6) -> dict:
    return {"발화정보": {"stt": stt, "fileNm": file_name, "recrdTime": f"{seconds:.2f}", "recrdQuality": "16k",
                      "scriptId": "S1"},
            "녹음자정보": {"gender": "여", "age": age, "recorderId": "R77"},
            "대화정보": {"recrdEnvrn": "조용한 실내", "cityCode": "11", "convrsThema": "놀이"}}


def test_freetalk_with_filename_typo_bom_and_truncation(tmp_path: Path):
    write_wav(tmp_path / "kid_0001.wav", tone(2.0))
    (tmp_path / "kid_0001.json").write_text(json.dumps(freetalk_label("kid_0001.wavp", "공룡이 좋아요", 2.0),
                                                       ensure_ascii=False), encoding="utf-8-sig")
    write_wav(tmp_path / "kid_0002.wav", tone(1.0))
    (tmp_path / "kid_0002.json").write_text(json.dumps(freetalk_label("kid_0002.wav", "잘렸어요", 2.5),
                                                       ensure_ascii=False), encoding="utf-8")
    (tmp_path / "kid_0003.json").write_text(json.dumps(freetalk_label("kid_0003.wav", "소리 없음", 1.0),
                                                       ensure_ascii=False), encoding="utf-8")
    assert detect_format(tmp_path) == "freetalk"
    report = ReadReport()
    episodes = list(read_any(tmp_path, report))
    assert [e.id for e in episodes] == ["kid_0001"]
    sentence = episodes[0].sentences[0]
    assert sentence.text == "공룡이 좋아요" and sentence.end == pytest.approx(2.0)
    assert sentence.speaker.role == "child" and sentence.speaker.sex == "F" and sentence.speaker.age_group == "6"
    reasons = " | ".join(i.reason for i in report.errors)
    assert "truncated audio" in reasons and "no audio file" in reasons
    assert report.sentences_kept + report.sentences_rejected == report.sentences_read == 3


def test_kspon_pcm_with_trn_and_cp949_txt(tmp_path: Path):
    for stem, seconds in (("KsponSpeech_000001", 1.5), ("KsponSpeech_000002", 1.0), ("KsponSpeech_000003", 0.5)):
        (tmp_path / f"{stem}.pcm").write_bytes(to_pcm16(tone(seconds)).tobytes())
    (tmp_path / "train.trn").write_text("KsponSpeech_01/KsponSpeech_000001.pcm :: b/ 아/ 모+ 몬 소리야 n/\n"
                                        "broken line without separator\n", encoding="utf-8")
    (tmp_path / "KsponSpeech_000002.txt").write_bytes("(70%)/(칠 십 퍼센트) 확률이라니".encode("cp949"))
    assert detect_format(tmp_path) == "kspon"
    report = ReadReport()
    episodes = {e.id: e for e in read_any(tmp_path, report)}
    assert set(episodes) == {"KsponSpeech_000001", "KsponSpeech_000002"}
    assert episodes["KsponSpeech_000001"].sentences[0].text == "b/ 아/ 모+ 몬 소리야 n/"
    assert episodes["KsponSpeech_000002"].sentences[0].text == "(70%)/(칠 십 퍼센트) 확률이라니"
    assert episodes["KsponSpeech_000001"].sentences[0].end == pytest.approx(1.5)
    assert episodes["KsponSpeech_000002"].audio.load().shape == (16000,)
    reasons = " | ".join(i.reason for i in report.issues)
    assert "without ' :: ' separator" in reasons and "without a transcript" in reasons


def test_broadcast_dialogue_float_times_and_number_side_first(tmp_path: Path):
    write_wav(tmp_path / "bc_01.wav", tone(5.0))
    doc = {"metadata": {"title": "뉴스 놀이", "category": "어린이 교육"},
           "speaker": [{"id": "1", "age": "30", "sex": "남", "role": "진행자"}, {"id": "2", "age": 8, "sex": "여"}],
           "utterance": [
               {"id": "u1", "start": 0.5, "end": 1.8, "form": "칠십 퍼센트", "original_form": "(칠십 퍼센트)/(70%) 맞아요",
                "speaker_id": "1"},
               {"id": "u2", "start": 2.0, "end": 3.0, "form": "네", "speaker_id": "2"},
               {"id": "u3", "start": 4.0, "end": 3.5, "form": "거꾸로", "speaker_id": "2"},
           ]}
    (tmp_path / "bc_01.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert detect_format(tmp_path) == "broadcast_dialogue"
    report = ReadReport()
    [episode] = read_any(tmp_path, report)
    assert episode.program == "뉴스 놀이" and episode.category == "어린이 교육"
    assert [s.text for s in episode.sentences] == ["(70%)/(칠십 퍼센트) 맞아요", "네"]
    assert episode.sentences[0].speaker.role == "adult" and episode.sentences[1].speaker.role == "child"
    assert [i.sentence_index for i in report.errors] == [2]
    assert report.sentences_kept + report.sentences_rejected == report.sentences_read == 3


def test_unknown_layout_is_a_clear_error(tmp_path: Path):
    (tmp_path / "x.json").write_text("{\"hello\": 1}", encoding="utf-8")
    with pytest.raises(ValueError, match="no recognisable corpus layout"):
        list(read_any(tmp_path))


@pytest.mark.parametrize("layout, good, stray, reason", [
    ("freetalk", freetalk_label("kid_0001.wav", "공룡이 좋아요", 2.0), {"발화정보": "빈칸"},
     "not a 자유대화 label: no 발화정보"),
    ("broadcast_dialogue", {"utterance": [{"id": "u1", "start": 0.5, "end": 1.5, "form": "네", "speaker_id": "1"}]},
     {"utterance": {"id": "u1"}}, "not a broadcast-dialogue label: no utterance list"),
])
def test_a_label_of_the_wrong_shape_is_reported_by_name_and_the_rest_read(tmp_path: Path, layout, good, stray,
                                                                          reason):
    write_wav(tmp_path / "kid_0001.wav", tone(2.0))
    (tmp_path / "kid_0001.json").write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "kid_0002.json").write_text(json.dumps(stray, ensure_ascii=False), encoding="utf-8")
    report = ReadReport()
    episodes = list(read_any(tmp_path, report, layout=layout))
    assert [e.id for e in episodes] == ["kid_0001"]
    assert [(Path(i.path).name, i.reason) for i in report.errors] == [("kid_0002.json", reason)]
