"""Reviewed subtitles as a corpus source for `kidsasr prep` (layout `review`).

A folder (searched recursively) of episodes as `kidsasr review` leaves them: `EP.<audio or video>` beside
`EP.reviewed.vtt` (or `EP.reviewed.srt`) and, when present, `EP.edits.jsonl`. Each cue becomes a Sentence with
the cue's reviewed times and text (its lines joined by a space); prep then aligns and filters it like any other
sentence, and its manifest rows say `source: review`.

With an edit log, only the cues its last save lists as reviewed or changed are used: the others are the
machine's text that nobody read, and are rejected as `not_reviewed`. When the subtitle file no longer matches
that save (its SHA-256 differs: edited by hand afterwards), the log does not describe it, so every cue is used
and the report says why.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from ..audio import AudioError, audio_info
from .reader import AudioRef, Episode, ReadIssue, ReadReport, Sentence, checked_times
from ..subtitles.runner import MEDIA_SUFFIXES
from ..review.document import last_save, read_subtitle_file, review_files

SOURCE = "review"
REVIEWED_SUFFIXES = (".reviewed.vtt", ".reviewed.srt")
NOT_REVIEWED = "not reviewed: the edit log's last save does not list this cue"


def reviewed_files(root: Path) -> list[tuple[Path, str]]:
    """(reviewed subtitle file, episode stem) under `root`; a VTT wins over an SRT of the same episode."""
    found: dict[Path, Path] = {}
    for suffix in reversed(REVIEWED_SUFFIXES):
        for path in sorted(root.rglob(f"*{suffix}")):
            found[path.parent / path.name[: -len(suffix)]] = path
    return [(path, stem.name) for stem, path in sorted(found.items())]


def looks_like_review(root: Path) -> bool:
    return root.is_dir() and bool(reviewed_files(root))


def _media_for(subtitle: Path, stem: str) -> Path | None:
    candidates = [p for p in sorted(subtitle.parent.iterdir())
                  if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES and p.name[: -len(p.suffix)] == stem]
    return candidates[0] if candidates else None


def _reviewed_numbers(subtitle: Path, log: Path, report: ReadReport, episode_id: str) -> set[int] | None:
    """The 1-based cue numbers the edit log's last save lists, or None (use every cue)."""
    save = last_save(log)
    if save is None:
        if log.is_file():
            report.add(ReadIssue(str(log), "edit log without a save; every cue of the reviewed file used",
                                 episode_id, severity="warning"))
        return None
    if save.get("sha256") != hashlib.sha256(subtitle.read_bytes()).hexdigest():
        report.add(ReadIssue(str(subtitle), f"changed since the last save in {log.name}; every cue used",
                             episode_id, severity="warning"))
        return None
    return {n for n in save.get("reviewed") or [] if isinstance(n, int)}


def read_reviewed(root: Path, report: ReadReport) -> Iterator[Episode]:
    """One Episode per reviewed subtitle file under `root` (see the module docstring)."""
    root = Path(root)
    for subtitle, stem in reviewed_files(root):
        report.labels_read += 1
        relative = subtitle.parent.relative_to(root).parts
        episode_id = "-".join([SOURCE, *relative, stem])
        try:
            cues = read_subtitle_file(subtitle)
        except ValueError as e:
            report.add(ReadIssue(str(subtitle), f"unreadable label: {e}", episode_id))
            continue
        report.sentences_read += len(cues)
        media = _media_for(subtitle, stem)
        if media is None:
            report.add(ReadIssue(str(subtitle), f"no audio file beside it named {stem}.<wav, mp4, ...>", episode_id,
                                 sentences=len(cues)))
            continue
        try:
            duration = audio_info(media).duration
        except AudioError as e:
            report.add(ReadIssue(str(media), f"unreadable audio: {e.reason}", episode_id, sentences=len(cues)))
            continue
        log = review_files(subtitle.parent / f"{stem}.vtt").log
        reviewed = _reviewed_numbers(subtitle, log, report, episode_id) if log.is_file() else None
        sentences = []
        for index, cue in enumerate(cues):
            if reviewed is not None and index + 1 not in reviewed:
                report.add(ReadIssue(str(subtitle), NOT_REVIEWED, episode_id, index, sentences=1))
                continue
            start, end, problem = checked_times(cue.start, cue.end, duration)
            if problem:
                report.add(ReadIssue(str(subtitle), problem, episode_id, index, sentences=1))
                continue
            sentences.append(Sentence(episode_id, index, " ".join(cue.lines), start, end))
        report.episodes += 1
        report.sentences_kept += len(sentences)
        metadata = {"duration_s": duration, "source": SOURCE, "edit_log": str(log) if reviewed is not None else None}
        yield Episode(episode_id, AudioRef(str(media)), str(subtitle), None, stem, sentences, metadata)
