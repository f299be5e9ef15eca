"""kidsasr.writers: every format written, then read back by a reader other than its writer."""

from __future__ import annotations

from pathlib import Path

import lxml.etree
import lxml.html
import pysubs2
import pytest
import webvtt

from kidsasr.subtitles.cues import Cue, CueWord
from kidsasr.subtitles.writers import FORMATS, format_of, write_subtitles

CUES = [
    Cue(1.001, 2.536, ["안녕 <하세요> & --> 테스트", "둘째 줄"], 0.4, [CueWord("a-->b", 1.0, 2.0, 0.3)]),
    Cue(3.003, 4.004, ["- 뭐야?", "- 사과야 똠방각하 😀"], 0.9, [CueWord("뭐야?", 3.0, 3.5, 0.9)]),
]
TEXTS = ["안녕 <하세요> & --> 테스트\n둘째 줄", "- 뭐야?\n- 사과야 똠방각하 😀"]


def _read_pysubs2(path: Path, **kwargs) -> list[tuple[int, int, str]]:
    events = pysubs2.load(str(path), **kwargs)
    return [(e.start, e.end, e.text.replace("\\N", "\n")) for e in events if e.text.strip()]


@pytest.mark.parametrize("name, fmt", [("a.vtt", "vtt"), ("a.SRT", "srt"), ("a.smi", "smi"), ("a.ttml", "ttml"),
                                       ("a.dfxp", "ttml"), ("a.txt", "txt"), ("a.ass", None)])
def test_format_from_the_extension(name, fmt):
    assert format_of(name) == fmt


def test_vtt_is_clean_by_default_and_notes_are_escaped(tmp_path):
    clean = write_subtitles(CUES, tmp_path / "ep.vtt").read_text(encoding="utf-8")
    assert "NOTE" not in clean and clean.count("-->") == 2
    reviewed = write_subtitles(CUES, tmp_path / "review.vtt", notes=True).read_text(encoding="utf-8")
    assert reviewed.count("NOTE") == 2 and "WEAK" in reviewed and reviewed.count("-->") == 2 and "a--&gt;b" in reviewed
    captions = webvtt.read(str(tmp_path / "review.vtt"))
    assert [c.text for c in captions] == [t.replace("<", "&lt;").replace(">", "&gt;").replace("& ", "&amp; ")
                                         for t in TEXTS]


def test_srt_read_back_by_pysubs2(tmp_path):
    rows = _read_pysubs2(write_subtitles(CUES, tmp_path / "ep.srt"))
    assert [(s, e) for s, e, _ in rows] == [(1001, 2536), (3003, 4004)]
    assert rows[0][2].startswith("안녕 ‹하세요› & --› 테스트")


@pytest.mark.parametrize("encoding", ["utf-8", "cp949"])
def test_sami_read_back_by_pysubs2_and_lxml(tmp_path, encoding):
    path = write_subtitles(CUES, tmp_path / "ep.smi", smi_encoding=encoding)
    rows = _read_pysubs2(path, encoding=encoding)
    assert [(s, e) for s, e, _ in rows] == [(1001, 2536), (3003, 4004)]
    assert rows[0][2] == TEXTS[0]
    assert rows[1][2] == TEXTS[1]  # 😀 is not in CP949: written as a character reference, read back whole
    document = lxml.html.fromstring(path.read_bytes().decode(encoding))
    syncs = document.xpath("//sync")
    assert [int(s.get("start")) for s in syncs] == [1001, 2536, 3003, 4004]
    assert all(p.get("class") == "KRCC" for p in document.xpath("//p"))


def test_ttml_is_imsc1_text_and_read_back_by_pysubs2(tmp_path):
    path = write_subtitles(CUES, tmp_path / "ep.ttml", fps=29.97)
    root = lxml.etree.parse(str(path)).getroot()
    assert root.tag == "{http://www.w3.org/ns/ttml}tt"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "ko"
    assert root.get("{http://www.w3.org/ns/ttml#parameter}contentProfiles") == \
        "http://www.w3.org/ns/ttml/profile/imsc1/text"
    assert (root.get("{http://www.w3.org/ns/ttml#parameter}frameRate"),
            root.get("{http://www.w3.org/ns/ttml#parameter}frameRateMultiplier")) == ("30", "1000 1001")
    assert len(root.findall(".//{http://www.w3.org/ns/ttml}region")) == 1
    rows = _read_pysubs2(path)
    assert [(s, e) for s, e, _ in rows] == [(1001, 2536), (3003, 4004)]  # frames 30, 76, 90, 120 at 29.97
    assert [t for _, _, t in rows] == TEXTS


def test_txt_and_unknown_format(tmp_path):
    assert write_subtitles(CUES, tmp_path / "ep.txt").read_text(encoding="utf-8").splitlines() == \
        [t.replace("\n", " ") for t in TEXTS]
    with pytest.raises(ValueError, match="no subtitle format"):
        write_subtitles(CUES, tmp_path / "ep.ass")
    assert set(FORMATS) == {"vtt", "srt", "smi", "ttml", "txt"}


def test_empty_cue_lists_give_valid_files(tmp_path):
    for fmt in FORMATS:
        path = write_subtitles([], tmp_path / f"empty.{fmt}")
        assert path.exists()
    assert webvtt.read(str(tmp_path / "empty.vtt")).captions == []
    assert _read_pysubs2(tmp_path / "empty.ttml") == []
