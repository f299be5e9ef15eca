"""The prep report (stage 5 of `kidsasr prep`): figures tallied one row at a time, report.json, report.md
and the boundary-correction histogram."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..corpus.reader import ReadReport
from ..fileio import atomic_path
from ..manifest import SPLITS
from .config import PrepConfig
from .filters import (REASONS)


@dataclass
class Tally:
    """The report's figures, accumulated one row at a time so the parent never holds every row."""

    kept: int = 0
    rejected: int = 0  # sentences
    episodes: int = 0
    audio_hours: float = 0.0
    kept_hours: float = 0.0
    rejected_hours: float = 0.0
    splits: dict = field(default_factory=lambda: {s: {"utterances": 0, "hours": 0.0, "episodes": set()}
                                                  for s in SPLITS})
    categories: dict = field(default_factory=lambda: defaultdict(
        lambda: {s: {"utterances": 0, "hours": 0.0} for s in SPLITS}))
    conditions: Counter = field(default_factory=Counter)
    reasons: dict = field(default_factory=lambda: defaultdict(lambda: {"items": 0, "sentences": 0, "hours": 0.0}))
    corrections: list = field(default_factory=list)

    def add_episode(self, marker: dict) -> None:
        self.episodes += 1
        self.audio_hours += marker["audio_hours"]
        self.corrections += marker["corrections"]

    def add_kept(self, row: dict) -> None:
        hours = (row["end"] - row["start"]) / 3600
        self.kept += 1
        self.kept_hours += hours
        split = self.splits[row["split"]]
        split["utterances"] += 1
        split["hours"] += hours
        split["episodes"].add(row["episode_id"])
        cell = self.categories[row["category"] or "unknown"][row["split"]]
        cell["utterances"] += 1
        cell["hours"] += hours
        self.conditions[row["condition"]] += 1

    def add_rejected(self, row: dict) -> None:
        hours = (row["duration"] or 0.0) / 3600
        self.rejected += row["sentences"]
        self.rejected_hours += hours
        entry = self.reasons[row["reason"]]
        entry["items"] += 1
        entry["sentences"] += row["sentences"]
        entry["hours"] += hours


def build_report(read: ReadReport, tally: Tally, grouped_by: str, config: PrepConfig,
                 shards: dict[str, list[str]]) -> dict:
    corrections = np.array(tally.corrections, dtype=float).reshape(-1, 2)
    return {
        "sentences_read": read.sentences_read,
        "labels_read": read.labels_read,
        "episodes_processed": tally.episodes,
        "sentences_kept": tally.kept,
        "sentences_rejected": tally.rejected,
        "accounted": tally.kept + tally.rejected == read.sentences_read,
        "audio_hours_read": round(tally.audio_hours, 4),
        "labelled_hours_kept": round(tally.kept_hours, 4),
        "labelled_hours_rejected": round(tally.rejected_hours, 4),
        "splits": {s: {"utterances": v["utterances"], "hours": round(v["hours"], 4), "episodes": len(v["episodes"]),
                       "shards": shards.get(s, [])} for s, v in tally.splits.items()},
        "splits_disjoint_by": grouped_by,
        "categories": {c: {s: {"utterances": v["utterances"], "hours": round(v["hours"], 4)} for s, v in d.items()}
                       for c, d in sorted(tally.categories.items())},
        "conditions": dict(sorted(tally.conditions.items())),
        "rejected_by_reason": {k: {**v, "hours": round(v["hours"], 4), "meaning": REASONS.get(k, "")}
                               for k, v in sorted(tally.reasons.items())},
        "reader_warnings": [{"path": i.path, "reason": i.reason} for i in read.issues if i.severity != "error"],
        "boundary_corrections": {
            "aligner": config.alignment.aligner,
            "count": int(len(corrections)),
            "median_abs_start_s": round(float(np.median(np.abs(corrections[:, 0]))), 3) if len(corrections) else None,
            "median_abs_end_s": round(float(np.median(np.abs(corrections[:, 1]))), 3) if len(corrections) else None,
        },
        "config": dataclasses.asdict(config),
    }


def report_markdown(report: dict) -> str:
    lines = [
        "# Data prep report", "",
        f"Sentences read: {report['sentences_read']} from {report['labels_read']} label files; kept "
        f"{report['sentences_kept']}, rejected {report['sentences_rejected']} "
        f"({'all accounted for' if report['accounted'] else 'NOT ALL ACCOUNTED FOR'}).",
        f"Audio read: {report['audio_hours_read']:.3f} h in {report['episodes_processed']} episodes; labelled speech "
        f"kept {report['labelled_hours_kept']:.3f} h, rejected {report['labelled_hours_rejected']:.3f} h.",
        f"Splits are disjoint by {report['splits_disjoint_by']}.", "",
        "## Splits", "", "| split | utterances | hours | episodes |", "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {s} | {v['utterances']} | {v['hours']:.3f} | {v['episodes']} |" for s, v in report["splits"].items()]
    lines += ["", "## Kept by category", "", "| category | " + " | ".join(SPLITS) + " |",
              "| --- |" + " ---: |" * len(SPLITS)]
    for category, cells in report["categories"].items():
        lines.append(f"| {category} | " + " | ".join(f"{cells[s]['utterances']} ({cells[s]['hours']:.3f} h)"
                                                   for s in SPLITS) + " |")
    lines += ["", "## Rejected by reason", "", "| reason | items | sentences | hours | meaning |",
              "| --- | ---: | ---: | ---: | --- |"]
    lines += [f"| {k} | {v['items']} | {v['sentences']} | {v['hours']:.3f} | {v['meaning']} |"
              for k, v in report["rejected_by_reason"].items()]
    lines += ["", "Every rejected item, with the file and the measured reason, is in `rejected.jsonl`.", "",
              "## Background condition of kept utterances", ""]
    lines += [f"- {k}: {v}" for k, v in report["conditions"].items()]
    bc = report["boundary_corrections"]
    lines += ["", "## Boundary corrections", "",
              f"Aligner: {bc['aligner']}; {bc['count']} sentences; median |start shift| {bc['median_abs_start_s']} s, "
              f"median |end shift| {bc['median_abs_end_s']} s. Histogram: `boundary_corrections.png`."]
    if report["reader_warnings"]:
        lines += ["", "## Reader warnings (items read anyway)", ""]
        lines += [f"- `{w['path']}`: {w['reason']}" for w in report["reader_warnings"]]
    return "\n".join(lines) + "\n"


def plot_corrections(corrections: list, path: Path, aligner: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corrections = np.array(corrections, dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(-1.0, 1.0, 41)
    for column, name in ((0, "start"), (1, "end")):
        ax.hist(np.clip(corrections[:, column], -1.0, 1.0), bins=bins, alpha=0.6, label=f"{name} (refined - label)")
    ax.set_xlabel("boundary correction, seconds (clipped to ±1 s)")
    ax.set_ylabel("sentences")
    ax.set_title(f"Boundary corrections by the {aligner} aligner ({len(corrections)} kept sentences)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
