"""An episode's subtitles as the review editor sees them, and the save: check, write, log.

A review never writes the machine's file. For a subtitle file `EP.vtt` (or `EP.srt`) it owns, beside it or in
`--out DIR`:
  EP.reviewed.vtt         the corrected subtitles (clean WebVTT)
  EP.reviewed.srt         the same as SubRip
  EP.reviewed.cues.json   the review state: per cue its times, lines, machine confidence, timed words, whether an
                          editor reviewed it, and the rules it breaks
  EP.edits.jsonl          the edit log: one row per edit the page reports, and one `save` row per save naming
                          the cues an editor reviewed or changed and the SHA-256 of the VTT it wrote
Each is written atomically; the VTT last.

Rule checks are `kidsasr.cues.check_cues`, the rules `kidsasr subtitle` builds with. A cue's timed words are
the recogniser's words that the editor kept with it (a split divides them, a merge joins them); they are the
speech the timing rules measure against. A cue an editor typed without any timed word is checked with its own
times as its speech.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..fileio import write_json_atomic, write_text_atomic
from ..subtitles.cues import WEAK_CONFIDENCE, Cue, CueWord, Style, check_cues, cues_json_path, text_width
from ..subtitles.frames import frame_rate, frames_at_least, frames_at_most
from ..subtitles.writers import vtt_text, write_subtitles

SUBTITLE_SUFFIXES = (".vtt", ".srt")
# what the page reports in the edit log; `save` rows are the server's own
ACTIONS = ("text", "times", "split", "merge", "add", "delete", "reviewed", "unreviewed", "undo")
_LOG_KEYS = ("action", "cue", "at", "before", "after")
_TAG = re.compile(r"<[^>]*>")


class SaveError(OSError):
    """A save that could not be written, naming the file and the reason."""


@dataclass(frozen=True)
class ReviewFiles:
    machine: Path  # the recogniser's subtitle file: read, never written
    vtt: Path
    srt: Path
    state: Path
    log: Path

    @property
    def owned(self) -> tuple[Path, ...]:
        return self.vtt, self.srt, self.state, self.log


def review_files(subtitle: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> ReviewFiles:
    """The files a review of `subtitle` owns, beside it or in `out_dir`."""
    subtitle = Path(subtitle)
    folder = Path(out_dir) if out_dir is not None else subtitle.parent
    stem = subtitle.name[: -len(subtitle.suffix)] if subtitle.suffix.lower() in SUBTITLE_SUFFIXES else subtitle.name
    vtt = folder / f"{stem}.reviewed.vtt"
    return ReviewFiles(subtitle, vtt, vtt.with_suffix(".srt"), cues_json_path(vtt), folder / f"{stem}.edits.jsonl")


@dataclass
class EditableCue:
    start: float
    end: float
    lines: list[str]
    confidence: float | None = None  # the recogniser's, kept through edits; None for a file without one
    words: list[CueWord] = field(default_factory=list)
    reviewed: bool = False
    error: float | None = None  # the calibrated probability that the machine's text is wrong, when known

    def to_json(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "lines": self.lines,
                "confidence": self.confidence, "error": self.error, "reviewed": self.reviewed,
                "words": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(w).items()}
                          for w in self.words]}

    def as_cue(self) -> Cue:
        """The `kidsasr.cues.Cue` the rules check (see the module docstring for cues without timed words)."""
        words = self.words or [CueWord(" ".join(self.lines), self.start, self.end, 1.0)]
        confidence = 1.0 if self.confidence is None else self.confidence
        return Cue(self.start, self.end, list(self.lines), confidence, list(words))


def frame_numbers(style: Style) -> dict:
    """The style's frame grid as the rules use it (kidsasr.subtitles.frames): the exact rate, and the minimum
    duration and gap rounded up, the maximum duration down, to whole frames."""
    rate = frame_rate(style.fps)
    return {"rate": [rate.numerator, rate.denominator], "min_duration": frames_at_least(style.min_duration, rate),
            "max_duration": frames_at_most(style.max_duration, rate), "min_gap": frames_at_least(style.min_gap, rate)}


@functools.cache
def width_table() -> dict[str, list[list[int]]]:
    """`kidsasr.cues.text_width` of every code point, as ranges of the ones that are not 0.5: the page measures
    line widths with the same numbers as the Python rules."""
    ranges: dict[str, list[list[int]]] = {"wide": [], "zero": []}
    measure = text_width.__wrapped__  # each code point once: no need to fill text_width's cache
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        width = measure(chr(code))
        if width != 0.5:
            found = ranges["wide" if width == 1.0 else "zero"]
            if found and found[-1][1] == code - 1:
                found[-1][1] = code
            else:
                found.append([code, code])
    return ranges


# ------------------------------------------------------------------------------------------------------- reading


def read_subtitle_file(path: str | os.PathLike) -> list[EditableCue]:
    """The cues of a WebVTT or SubRip file (webvtt-py reads both); tags removed, entities decoded."""
    import webvtt

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such subtitle file")
    try:
        captions = webvtt.from_srt(str(path)) if path.suffix.lower() == ".srt" else webvtt.read(str(path))
    except Exception as e:  # webvtt-py raises its own errors and UnicodeDecodeError
        raise ValueError(f"{path}: not a readable {'SubRip' if path.suffix.lower() == '.srt' else 'WebVTT'} "
                         f"file: {e}") from e
    cues = []
    for caption in captions:
        lines = [html.unescape(_TAG.sub("", line)).strip() for line in caption.lines]
        cues.append(EditableCue(_seconds(caption.start), _seconds(caption.end), [line for line in lines if line]))
    return cues


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    seconds = sum(float(p) * 60 ** k for k, p in enumerate(reversed(parts)))
    return round(seconds, 3)


def _words(rows: Any) -> list[CueWord]:
    """Timed words from JSON rows; a row without text, times and probability is left out."""
    known = {f.name for f in fields(CueWord)} - {"text", "start", "end", "probability"}
    words = []
    for w in rows if isinstance(rows, list) else []:
        try:
            words.append(CueWord(str(w["text"]), float(w["start"]), float(w["end"]), float(w["probability"]),
                                 **{k: v for k, v in w.items() if k in known}))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return words


def attach_side_file(cues: list[EditableCue], side_path: str | os.PathLike) -> dict:
    """Confidences, timed words and reviewed marks from a `.cues.json` (written by `kidsasr subtitle` or by a
    save) onto the cues with the same start and lines. Returns the side file (empty when there is none)."""
    side_path = Path(side_path)
    if not side_path.is_file():
        return {}
    try:
        side = json.loads(side_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{side_path}: not a readable review side file: {e}") from e
    rows = side.get("cues") if isinstance(side, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{side_path}: no `cues` list")
    by_start: dict[int, list[dict]] = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("start"), (int, float)):
            by_start.setdefault(round(row["start"] * 1000), []).append(row)
    for cue in cues:
        for row in by_start.get(round(cue.start * 1000), []):
            if [str(line).strip() for line in row.get("lines") or []] == cue.lines:
                confidence = row.get("confidence")
                cue.confidence = float(confidence) if isinstance(confidence, (int, float)) else None
                cue.words = _words(row.get("words"))
                cue.reviewed = bool(row.get("reviewed", False))
                error = row.get("error_probability", row.get("error"))
                cue.error = float(error) if isinstance(error, (int, float)) else None
                break
    return side


@dataclass
class Document:
    cues: list[EditableCue]
    loaded_from: str  # "reviewed" | "machine"
    style: Style | None  # the style of the side file, when it names one
    weak_threshold: float  # a cue's confidence below this is weak...
    error_threshold: float | None  # ...or, with a calibration, its error probability at or above this


def load_document(files: ReviewFiles) -> Document:
    """The last saved review when there is one, else the machine's subtitles, with their side files."""
    source, loaded_from = (files.vtt, "reviewed") if files.vtt.is_file() else (files.machine, "machine")
    cues = read_subtitle_file(source)
    side = attach_side_file(cues, files.state if loaded_from == "reviewed" else cues_json_path(files.machine))
    if loaded_from == "reviewed" and not side:
        side = attach_side_file(cues, cues_json_path(files.machine))
    style = None
    if isinstance(side.get("style"), dict):
        try:
            style = Style(**side["style"])
        except (TypeError, ValueError):
            style = None
    threshold, error_threshold = side.get("weak_threshold"), side.get("error_threshold")
    return Document(cues, loaded_from, style,
                    float(threshold) if isinstance(threshold, (int, float)) else WEAK_CONFIDENCE,
                    float(error_threshold) if isinstance(error_threshold, (int, float)) else None)


# -------------------------------------------------------------------------------------------------------- saving


def cues_from_payload(rows: Any) -> list[EditableCue]:
    """The page's cue list, validated: ValueError names the cue (1-based) and the field."""
    if not isinstance(rows, list):
        raise ValueError("`cues` must be a list")
    cues = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"cue {number}: not an object")
        times = []
        for key in ("start", "end"):
            value = row.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError(f"cue {number}: {key} must be a non-negative number of seconds, got {value!r}")
            times.append(round(float(value), 3))
        if times[1] <= times[0]:
            raise ValueError(f"cue {number}: ends ({times[1]:.3f} s) before it starts ({times[0]:.3f} s)")
        lines = row.get("lines")
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ValueError(f"cue {number}: lines must be a list of strings")
        lines = [" ".join(line.replace("-->", "->").split()) for line in lines]
        lines = [line for line in lines if line]
        if not lines:
            raise ValueError(f"cue {number}: no text (delete the cue instead)")
        confidence, error = row.get("confidence"), row.get("error")
        cues.append(EditableCue(times[0], times[1], lines,
                                float(confidence) if isinstance(confidence, (int, float)) else None,
                                _words(row.get("words")), bool(row.get("reviewed", False)),
                                float(error) if isinstance(error, (int, float)) else None))
    return cues


def check(cues: Sequence[EditableCue], style: Style) -> list[list[str]]:
    """Every style rule each cue breaks (`kidsasr.cues.check_cues`)."""
    return check_cues([c.as_cue() for c in cues], style)


def log_rows(rows: Any) -> list[dict]:
    """The page's edit-log rows, validated: known actions and keys only."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise ValueError("`log` must be a list")
    kept = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or row.get("action") not in ACTIONS:
            raise ValueError(f"log row {number}: needs an action, one of {', '.join(ACTIONS)}")
        kept.append({k: row[k] for k in _LOG_KEYS if k in row})
    return kept


@dataclass
class SaveResult:
    files: ReviewFiles
    violations: list[list[str]]
    reviewed: list[int]  # 1-based numbers of the cues an editor reviewed or changed


def save(cues: list[EditableCue], files: ReviewFiles, style: Style, edits: list[dict], episode: str,
         weak_threshold: float = WEAK_CONFIDENCE, error_threshold: float | None = None) -> SaveResult:
    """Check the cues with the style's rules and write the review's files (atomically, the VTT last)."""
    violations = check(cues, style)
    reviewed = [n for n, c in enumerate(cues, 1) if c.reviewed]
    plain = [Cue(c.start, c.end, c.lines, 1.0 if c.confidence is None else c.confidence) for c in cues]
    vtt = vtt_text(plain, notes=False)
    vtt = vtt if vtt.endswith("\n") else vtt + "\n"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state = {"episode": episode, "machine": str(files.machine), "saved_at": now, "style": asdict(style),
             "weak_threshold": weak_threshold, "error_threshold": error_threshold,
             "cues_with_violations": sum(bool(v) for v in violations), "reviewed": reviewed,
             "cues": [{**c.to_json(), "index": n, "violations": v}
                      for n, (c, v) in enumerate(zip(cues, violations), 1)]}
    save_row = {"action": "save", "at": now, "file": files.vtt.name, "cues": len(cues), "reviewed": reviewed,
                "violations": state["cues_with_violations"], "sha256": hashlib.sha256(vtt.encode()).hexdigest()}
    previous_log = ""
    try:
        if files.log.is_file():
            previous_log = files.log.read_text(encoding="utf-8")
        log_text = previous_log + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*edits, save_row])
        write_json_atomic(files.state, state)
        write_subtitles(plain, files.srt, "srt")
        write_text_atomic(files.log, log_text)
        write_text_atomic(files.vtt, vtt)
    except OSError as e:
        where = e.filename or files.vtt.parent
        raise SaveError(f"cannot save the review into {files.vtt.parent}: {where}: {e.strerror or e} "
                        f"(start `kidsasr review` with --out DIR to save somewhere writable)") from e
    return SaveResult(files, violations, reviewed)


def last_save(log_path: str | os.PathLike) -> dict | None:
    """The last `save` row of an edit log, or None (no log, or no save in it)."""
    log_path = Path(log_path)
    if not log_path.is_file():
        return None
    found = None
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("action") == "save":
            found = row
    return found
