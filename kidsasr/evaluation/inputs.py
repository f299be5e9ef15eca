"""Evaluation inputs: references (kidsasr.evaluation.sources), hypotheses files; every problem names the file."""

from __future__ import annotations

import json
from pathlib import Path

from ..manifest import Utterance
from . import metrics


class EvalInputError(ValueError):
    """Unusable evaluation input, naming the file (and the ids or line) at fault."""


def read_utf8(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 are an error naming the file, line and offset."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = raw[: e.start].count(b"\n") + 1
        raise EvalInputError(f"{path}:{line_no}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from e


def read_jsonl_strict(path: Path) -> list[dict]:
    """JSON lines with errors that name the file and line."""
    text = read_utf8(path)
    rows = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{path}:{line_no}: invalid JSON: {e.msg}") from e
        if not isinstance(row, dict):
            raise EvalInputError(f"{path}:{line_no}: expected a JSON object")
        rows.append(row)
    return rows


def read_hypotheses(path: str | Path) -> dict[str, str]:
    """A JSON-lines file of {"id": ..., "text": ...}; duplicate ids and non-string texts are errors."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: hypotheses file not found")
    hyps: dict[str, str] = {}
    for line_no, row in enumerate(read_jsonl_strict(path), 1):
        if not isinstance(row.get("id"), str) or not isinstance(row.get("text"), str):
            raise EvalInputError(f"{path}: row {line_no} needs a string 'id' and a string 'text'")
        if row["id"] in hyps:
            raise EvalInputError(f"{path}: id {row['id']!r} appears twice")
        hyps[row["id"]] = row["text"]
    if not hyps:  # scoring nothing would report 100% CER as if it were a result
        raise EvalInputError(f"{path}: no hypotheses (the file holds no {{id, text}} rows)")
    return hyps


def align_hypotheses(utterances: list[Utterance], hyps: dict[str, str], source: str) -> list[str | None]:
    """Hypotheses in reference order; None where missing. Ids the references lack are an error."""
    known = {u.id for u in utterances}
    unknown = [i for i in hyps if i not in known]
    if unknown:
        raise EvalInputError(f"{source}: {len(unknown)} hypothesis id(s) not in the references: "
                             f"{metrics.preview_ids(unknown)}")
    return [hyps.get(u.id) for u in utterances]
