"""Alignment boundary error on a generated corpus: refined times against the true times in truth.jsonl
(used by data_prep/bench_align.py and the tests)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..constants import SAMPLE_RATE
from ..prep.alignment import AlignItem, Aligner, Alignment


def boundary_errors(truth_rows: Sequence[dict], alignments: Sequence[Alignment | None], tolerance: float = 0.2) -> dict:
    """Boundary errors against the true times, before (label times) and after (aligned times) refinement.

    `alignments[k]` belongs to `truth_rows[k]` (None: not aligned, counted as unchanged label times). An error of a
    sentence is the larger of its start and end errors; "within" counts sentences whose both edges are within
    `tolerance` seconds.
    """
    def stats(pairs: list[tuple[dict, tuple[float, float]]]) -> dict:
        if not pairs:
            return {"n": 0}
        edges = np.array([[abs(s - r["true_start"]), abs(e - r["true_end"])] for r, (s, e) in pairs])
        worst = edges.max(axis=1)
        return {"n": len(pairs), "median_abs_error": float(np.median(edges)), "mean_abs_error": float(edges.mean()),
                "p90_abs_error": float(np.quantile(edges, 0.9)), "within_tolerance": float((worst <= tolerance).mean())}

    subsets = {"all": lambda r: True, "jittered": lambda r: bool(r.get("jittered")),
               "jittered_without_overlap": lambda r: bool(r.get("jittered")) and not r.get("overlap")}
    report = {"tolerance": tolerance}
    for subset, wanted in subsets.items():
        rows = [(r, a) for r, a in zip(truth_rows, alignments) if wanted(r)]
        report[subset] = {
            "before": stats([(r, (r["label_start"], r["label_end"])) for r, _ in rows]),
            "after": stats([(r, (a.start, a.end) if a is not None else (r["label_start"], r["label_end"]))
                            for r, a in rows]),
        }
    return report


def _truth_row(rows: list[dict], label_start: float | None, label_end: float | None) -> dict | None:
    """The truth row whose label times are these (labels carry millisecond times)."""
    if label_start is None or label_end is None:
        return None
    for row in rows:
        if abs(row["label_start"] - label_start) < 0.002 and abs(row["label_end"] - label_end) < 0.002:
            return row
    return None


def sentences_with_truth(corpus: Path) -> Iterator[tuple]:
    """Each episode of a generated corpus with its labelled sentences paired to their truth.jsonl rows."""
    from ..corpus.reader import read_corpus
    from ..fileio import read_jsonl

    truth: dict[str, list[dict]] = {}
    for row in read_jsonl(corpus / "truth.jsonl"):
        truth.setdefault(row["episode_id"], []).append(row)
    for episode in read_corpus(corpus):
        rows = truth.get(episode.id, [])
        yield episode, [(s, r) for s in episode.sentences if (r := _truth_row(rows, s.start, s.end)) is not None]


def measure_corpus(corpus: Path, aligner: Aligner, limit: int | None = None, conditions: Iterable[str] | None = None) -> dict:
    """Align every labelled sentence of a generated corpus and compare with truth.jsonl."""
    from ..textnorm import parse_label

    wanted = set(conditions) if conditions else None
    rows, alignments, audio_seconds, cpu_seconds, episodes = [], [], 0.0, 0.0, 0
    for episode, pairs in sentences_with_truth(corpus):
        if limit is not None and episodes >= limit:
            break
        pairs = [(s, r) for s, r in pairs if wanted is None or r.get("condition") in wanted]
        if not pairs:
            continue
        audio = episode.audio.load()
        items = [AlignItem(parse_label(s.text).pronunciation, s.start, s.end) for s, _ in pairs]
        t0 = time.process_time()
        result = aligner.align(audio, items)
        cpu_seconds += time.process_time() - t0
        audio_seconds += len(audio) / SAMPLE_RATE
        episodes += 1
        rows.extend(r for _, r in pairs)
        alignments.extend(result)
    report = boundary_errors(rows, alignments)
    report["jittered_by_condition"] = {
        condition: boundary_errors([r for r in rows if r.get("condition") == condition],
                                   [a for r, a in zip(rows, alignments) if r.get("condition") == condition])["jittered"]
        for condition in sorted({r.get("condition", "?") for r in rows})
    }
    report.update(episodes=episodes, sentences=len(rows), audio_seconds=audio_seconds, cpu_seconds=cpu_seconds,
                  audio_seconds_per_cpu_second=audio_seconds / cpu_seconds if cpu_seconds else None,
                  methods={m: sum(a.method == m for a in alignments) for m in sorted({a.method for a in alignments})},
                  ok=sum(a.ok for a in alignments))
    return report
