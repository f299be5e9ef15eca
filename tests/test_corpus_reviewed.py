"""Reviewed subtitles as a prep corpus source: which cues become sentences, with what times, and the accounting."""

from __future__ import annotations

import shutil

from kidsasr.corpus.reader import ReadReport
from kidsasr.review import document
from kidsasr.corpus.reviewed import NOT_REVIEWED, read_reviewed
from review_episode import KIDS, write_episode


def saved_review(folder, reviewed: set[int]):
    """ep.wav + a saved review of its cues; cue 2 retyped and retimed; `reviewed` (1-based) marked."""
    media, cues = write_episode(folder)
    files = document.review_files(folder / "ep.vtt")
    edited = document.load_document(files).cues
    edited[1].lines, edited[1].start, edited[1].end = ["오늘은 친구들과", "토마토를 키워요"], 4.1, 7.6
    for n, cue in enumerate(edited, 1):
        cue.reviewed = n in reviewed
    document.save(edited, files, KIDS, [{"action": "text", "cue": 2}], media.name)
    return media, edited


def test_reviewed_cues_become_sentences_with_their_times(tmp_path):
    _, edited = saved_review(tmp_path / "a", {2, 3})
    report = ReadReport()
    [episode] = read_reviewed(tmp_path, report)
    assert episode.id == "review-a-ep" and episode.metadata["source"] == "review"
    assert [(s.index, s.text, s.start, s.end) for s in episode.sentences] == [
        (1, "오늘은 친구들과 토마토를 키워요", 4.1, 7.6), (2, " ".join(edited[2].lines), edited[2].start, edited[2].end)]
    skipped = [i for i in report.issues if i.reason == NOT_REVIEWED]
    assert [i.sentence_index for i in skipped] == [0, 3]
    assert report.sentences_read == len(edited) and report.sentences_kept + report.sentences_rejected == len(edited)


def test_without_a_log_every_cue_counts_and_a_stale_log_is_reported(tmp_path):
    media, edited = saved_review(tmp_path / "a", {2})
    log = tmp_path / "a" / "ep.edits.jsonl"
    moved = log.rename(tmp_path / "log.jsonl")
    report = ReadReport()
    [episode] = read_reviewed(tmp_path, report)
    assert len(episode.sentences) == len(edited) and not report.issues
    shutil.copy(moved, log)
    vtt = tmp_path / "a" / "ep.reviewed.vtt"
    vtt.write_text(vtt.read_text(encoding="utf-8").replace("토마토를", "토마토"), encoding="utf-8")
    report = ReadReport()
    [episode] = read_reviewed(tmp_path, report)
    assert len(episode.sentences) == len(edited)
    assert [i.severity for i in report.issues] == ["warning"]
    assert "changed since the last save" in report.issues[0].reason


def test_a_review_without_its_audio_is_rejected_whole(tmp_path):
    media, edited = saved_review(tmp_path / "a", {1, 2, 3, 4})
    media.unlink()
    report = ReadReport()
    assert list(read_reviewed(tmp_path, report)) == []
    assert report.sentences_rejected == report.sentences_read == len(edited)
    assert "no audio file beside it" in report.issues[0].reason
