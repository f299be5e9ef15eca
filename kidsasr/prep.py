"""`kidsasr prep`: turn a corpus into clean, aligned, filtered training data.

Stages (ESPnet/icefall style; the config in data_prep/config.yaml, the code here):
  1. read     labels and audio headers (kidsasr.corpus / kidsasr.related_corpora); reader problems are rejections
  2. split    train/dev/test per episode, disjoint by programme or episode, stratified by category (kidsasr.splits)
  3. process  one work shard per episode, on a process pool or a Ray cluster:
              clean (kidsasr.cleaning) -> align (kidsasr.alignment) -> filter (kidsasr.filters) -> FLAC clips.
              A shard writes work/<key>.parquet, then its done-marker work/<key>.json; a rerun skips done shards,
              so a killed run resumes without losing or duplicating anything.
  4. write    dataset/<split>/*.parquet, manifest.jsonl, rejected.jsonl (sorted, so reruns are identical)
  5. report   report.json, report.md, boundary_corrections.png

Every sentence the reader saw ends up kept or rejected with a reason: kept + rejected = read.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .audio import SAMPLE_RATE, AudioError
from .cleaning import CleaningConfig, EpisodeSignal, analyse, flac_bytes, normalise, segment_quality
from .corpus import Episode, ReadReport, Sentence
from .fileio import atomic_path, write_json_atomic, write_text_atomic
from .filters import (REASONS, FilterConfig, Rejection, check_confidence, check_duration, check_quality,
                      check_rate, check_text, overlapping_neighbours, reader_reason_code)
from .manifest import SPLITS, Utterance
from .splits import EpisodeKey, SplitConfig, assign_splits, grouping

ALIGNERS = ("whisper", "ctc", "none")


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlignConfig:
    aligner: str = "whisper"  # whisper | ctc | none (keep the label times)
    whisper_model: str = "openai/whisper-base"
    ctc_model: str | None = None  # any wav2vec2 CTC model id or path
    device: str = "cpu"


@dataclass(frozen=True)
class OutputConfig:
    rows_per_shard: int = 2000
    expected_sample_rate: int = SAMPLE_RATE
    expected_channels: int = 1
    format_mismatch: str = "convert"  # convert | reject: audio whose rate/channels differ from the above


@dataclass(frozen=True)
class PrepConfig:
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    alignment: AlignConfig = field(default_factory=AlignConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def _from_dict(cls: type, data: Any, where: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
        else:
            values[name] = value
    return cls(**values)


def load_config(path: str | os.PathLike) -> PrepConfig:
    """YAML -> PrepConfig; a key the dataclasses do not know is an error naming it."""
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    config = _from_dict(PrepConfig, data, str(path))
    if config.alignment.aligner not in ALIGNERS:
        raise ValueError(f"{path}: alignment.aligner must be one of {ALIGNERS}, not {config.alignment.aligner!r}")
    if config.output.format_mismatch not in ("convert", "reject"):
        raise ValueError(f"{path}: output.format_mismatch must be 'convert' or 'reject'")
    return config


def config_fingerprint(config: PrepConfig) -> str:
    return hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# Stage 1-2: read and split
# ---------------------------------------------------------------------------------------------------------------

def read_stage(corpus: Path, limit_hours: float | None) -> tuple[list[Episode], ReadReport]:
    from .related_corpora import read_any

    report = ReadReport()
    episodes: list[Episode] = []
    hours = 0.0
    for episode in read_any(corpus, report):
        episodes.append(episode)
        hours += float(episode.metadata.get("duration_s") or 0.0) / 3600
        if limit_hours is not None and hours >= limit_hours:
            break
    return episodes, report


def _labelled_hours(episode: Episode) -> float:
    return sum(s.end - s.start for s in episode.sentences if s.start is not None and s.end is not None) / 3600


def split_stage(episodes: list[Episode], config: SplitConfig) -> dict[str, str]:
    keys = [EpisodeKey(e.id, e.program, e.category, _labelled_hours(e) or 1e-6) for e in episodes]
    return assign_splits(keys, config)


def reader_rejections(report: ReadReport) -> list[dict]:
    rows = []
    for issue in report.issues:
        if issue.severity != "error":
            continue
        rows.append(_rejection_row(issue.episode_id, issue.sentence_index, issue.path, "read",
                                   Rejection(reader_reason_code(issue.reason), issue.reason), sentences=issue.sentences))
    return rows


def _rejection_row(episode_id: str | None, index: int | None, source: str, stage: str, rejection: Rejection,
                   sentence: Sentence | None = None, others: Iterable[Rejection] = (), sentences: int = 1) -> dict:
    start = sentence.start if sentence is not None else None
    end = sentence.end if sentence is not None else None
    return {
        "id": f"{episode_id}_{index:04d}" if episode_id is not None and index is not None else None,
        "episode_id": episode_id, "sentence_index": index, "source": source, "stage": stage,
        "reason": rejection.code, "detail": rejection.detail,
        "other_reasons": [f"{o.code}: {o.detail}" for o in others],
        "sentences": sentences, "start": start, "end": end,
        "duration": round(end - start, 3) if start is not None and end is not None else None,
        "raw_text": sentence.text if sentence is not None else None,
    }


# ---------------------------------------------------------------------------------------------------------------
# Stage 3: process one episode (runs in a worker process or a Ray task)
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class ShardTask:
    episode: Episode
    split: str
    key: str
    work_dir: str
    config: PrepConfig


def shard_key(episode: Episode) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in episode.id)[:60]
    return f"{safe}-{hashlib.sha1(f'{episode.label_path}|{episode.id}'.encode()).hexdigest()[:8]}"


def _format_problem(episode: Episode, config: OutputConfig) -> Rejection | None:
    rate, channels = episode.metadata.get("sample_rate"), episode.metadata.get("channels")
    if rate in (None, config.expected_sample_rate) and channels in (None, config.expected_channels):
        return None
    return Rejection("format_mismatch", f"audio is {rate} Hz with {channels} channel(s); the corpus is "
                                        f"{config.expected_sample_rate} Hz with {config.expected_channels}")


@lru_cache(maxsize=2)
def _aligner(config: AlignConfig):
    from .alignment import load_aligner

    model = config.whisper_model if config.aligner == "whisper" else config.ctc_model
    return load_aligner(config.aligner, model, device=config.device)


def _align(signal: EpisodeSignal, sentences: list[Sentence], texts: list[str],
           config: AlignConfig) -> list[tuple[float, float, float] | Rejection]:
    """Refined (start, end, confidence) per sentence, or why the aligner could not place it.

    Sentences with label times are refined around them; those without are placed by the long-form mode.
    """
    from .alignment import AlignItem

    aligner = _aligner(config)
    timed = [i for i, s in enumerate(sentences) if s.start is not None and s.end is not None]
    untimed = [i for i, s in enumerate(sentences) if s.start is None or s.end is None]
    results: list = [None] * len(sentences)
    found = aligner.align(signal.audio, [AlignItem(texts[i], sentences[i].start, sentences[i].end) for i in timed])
    if untimed:
        found += aligner.align_long(signal.audio, [texts[i] for i in untimed])
    for i, alignment in zip(timed + untimed, found):
        # A placement the aligner only doubts keeps its times: filters.min_confidence (the config) decides.
        if alignment.ok or "confidence" in alignment.reason:
            results[i] = (alignment.start, alignment.end, alignment.confidence)
        else:
            results[i] = Rejection("alignment_failed", f"{alignment.method}: {alignment.reason}")
    return results


def process_episode(task: ShardTask) -> str:
    """Clean, align and filter one episode; write its kept clips and its done-marker. Returns the key."""
    episode, config = task.episode, task.config
    kept_rows: list[dict] = []
    audio_cells: list[dict] = []
    rejected: list[dict] = []
    corrections: list[tuple[float, float]] = []

    def reject(sentence: Sentence, stage: str, found: list[Rejection]) -> None:
        rejected.append(_rejection_row(episode.id, sentence.index, str(episode.audio), stage, found[0], sentence,
                                       found[1:]))

    problem = _format_problem(episode, config.output) if config.output.format_mismatch == "reject" else None
    signal = None
    if problem is None:
        try:
            signal = analyse(episode.audio.load(), config.cleaning.vad_threshold)
        except (AudioError, OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile) as e:
            problem = Rejection("bad_audio", f"cannot load audio: {getattr(e, 'reason', e)}")
    if signal is None:
        for sentence in episode.sentences:
            reject(sentence, "clean", [problem])
        return _finish(task, kept_rows, audio_cells, rejected, corrections)

    from .textnorm import is_tag_only, parse_label

    candidates: list[tuple[Sentence, Any]] = []
    for sentence in episode.sentences:
        transcript = parse_label(sentence.text)
        found = check_text(transcript.spelling, transcript.pronunciation, is_tag_only(sentence.text))
        if found is None and sentence.end is not None and sentence.end > signal.duration + 0.05:
            found = Rejection("truncated_audio", f"ends at {sentence.end:.2f} s; the decoded audio stops at "
                                                 f"{signal.duration:.2f} s")
        if found is None and sentence.start is None and config.alignment.aligner == "none":
            found = Rejection("no_times", "no times in the label and --aligner none")
        if found is not None:
            reject(sentence, "filter", [found])
        else:
            candidates.append((sentence, transcript))

    if config.alignment.aligner == "none":
        placed = [(s.start, s.end, None) for s, _ in candidates]
    else:
        _aligner(config.alignment)  # a model that cannot load stops the run; a failure on one episode does not
        try:
            placed = _align(signal, [s for s, _ in candidates], [t.pronunciation for _, t in candidates],
                            config.alignment)
        except Exception as e:  # noqa: BLE001 - reported per sentence, and the batch goes on
            placed = [Rejection("alignment_failed", f"aligner error: {type(e).__name__}: {e}")] * len(candidates)
    spans = [(p[0], p[1]) if isinstance(p, tuple) else (s.start or 0.0, s.end or 0.0)
             for (s, _), p in zip(candidates, placed)]
    overlaps = overlapping_neighbours(spans, config.filters.max_overlap)
    for i, ((sentence, transcript), place) in enumerate(zip(candidates, placed)):
        if isinstance(place, Rejection):
            reject(sentence, "align", [place])
            continue
        start, end, confidence = round(float(place[0]), 3), round(float(place[1]), 3), place[2]
        quality = segment_quality(signal, start, end, config.cleaning)
        found = [r for r in (check_duration(start, end, config.filters),
                             check_rate(transcript.pronunciation, start, end, config.filters),
                             check_confidence(confidence, config.filters)) if r is not None]
        found += check_quality(quality, config.filters)
        if i in overlaps:
            other = candidates[overlaps[i]][0]
            found.append(Rejection("overlap", f"overlaps sentence {other.index} by more than "
                                              f"{config.filters.max_overlap:g} s"))
        if found:
            reject(sentence, "filter", found)
            continue
        clip, gain_db = normalise(signal.audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)], quality.speech_db,
                                  config.cleaning)
        speaker = sentence.speaker
        utterance = Utterance(
            id=f"{episode.id}_{sentence.index:04d}", episode_id=episode.id, split=task.split,
            audio_source=str(episode.audio), start=start, end=end, text=transcript.spelling,
            text_pron=transcript.pronunciation, raw_text=sentence.text, category=episode.category,
            program=episode.program, speaker_id=speaker.id if speaker else None,
            speaker_role=speaker.role if speaker else None, age_group=speaker.age_group if speaker else None,
            sex=speaker.sex if speaker else None, condition=quality.condition,
            confidence=None if confidence is None else round(float(confidence), 4),
            label_start=sentence.start, label_end=sentence.end)
        row = utterance.to_row()
        row["quality"] = {"speech_ratio": round(quality.speech_ratio, 3), "snr_db": round(quality.snr_db, 1),
                          "clipped_fraction": round(quality.clipped_fraction, 5), "gain_db": round(gain_db, 2)}
        kept_rows.append(row)
        audio_cells.append({"bytes": flac_bytes(clip), "path": f"{utterance.id}.flac"})
        if sentence.start is not None and sentence.end is not None:
            corrections.append((round(start - sentence.start, 3), round(end - sentence.end, 3)))
    return _finish(task, kept_rows, audio_cells, rejected, corrections)


def _finish(task: ShardTask, kept_rows: list[dict], audio_cells: list[dict], rejected: list[dict],
            corrections: list[tuple[float, float]]) -> str:
    work = Path(task.work_dir)
    if kept_rows:
        _write_parquet(work / f"{task.key}.parquet", [_dataset_row(r, a) for r, a in zip(kept_rows, audio_cells)])
    write_json_atomic(work / f"{task.key}.json", {
        "episode_id": task.episode.id, "split": task.split, "category": task.episode.category,
        "audio_hours": float(task.episode.metadata.get("duration_s") or 0.0) / 3600,
        "kept": kept_rows, "rejected": rejected, "corrections": corrections})
    return task.key


# ---------------------------------------------------------------------------------------------------------------
# Parquet in the Hugging Face `datasets` layout
# ---------------------------------------------------------------------------------------------------------------

def dataset_features():
    import datasets

    types = {float: datasets.Value("float64"), str: datasets.Value("string")}
    features = {}
    for f in dataclasses.fields(Utterance):
        base = f.type.split(" | ")[0] if isinstance(f.type, str) else f.type
        features[f.name] = types[{"str": str, "float": float}.get(base, base)]
    features["audio"] = datasets.Audio(sampling_rate=SAMPLE_RATE, decode=False)
    return datasets.Features(features)


def _dataset_row(row: dict, audio: dict) -> dict:
    names = [f.name for f in dataclasses.fields(Utterance)]
    return {**{name: row[name] for name in names}, "audio": audio}


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = dataset_features().arrow_schema
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


# ---------------------------------------------------------------------------------------------------------------
# Stage 3 driver: local pool or Ray
# ---------------------------------------------------------------------------------------------------------------

def run_tasks(tasks: list[ShardTask], workers: int, ray_address: str | None) -> None:
    from tqdm import tqdm

    if not tasks:
        return
    bar = tqdm(total=len(tasks), desc="prep: clean/align/filter", unit="episode")
    if ray_address:
        import ray

        if not ray.is_initialized():
            ray.init(address=ray_address, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(process_episode)
        pending = [remote.remote(t) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
            bar.update(len(done))
    elif workers <= 1:
        for task in tasks:
            process_episode(task)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_single_thread) as pool:
            for future in as_completed([pool.submit(process_episode, t) for t in tasks]):
                future.result()
                bar.update()
    bar.close()


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------------------------
# Stages 4-5: write and report
# ---------------------------------------------------------------------------------------------------------------

def write_stage(out: Path, work: Path, keys: list[str], config: OutputConfig) -> dict[str, list[str]]:
    """Concatenate the per-episode parquet files into each split's shards, in episode order."""
    import pyarrow.parquet as pq

    shards: dict[str, list[str]] = {}
    summary = {}  # key -> (split, episode id, kept rows); the markers themselves are not kept in memory
    for key in keys:
        marker = _load_marker(work, key)
        summary[key] = (marker["split"], marker["episode_id"], len(marker["kept"]))
    schema = dataset_features().arrow_schema
    for split in SPLITS:
        split_keys = sorted((k for k in keys if summary[k][0] == split and summary[k][2]),
                            key=lambda k: summary[k][1])
        total = sum(summary[k][2] for k in split_keys)
        n_shards = max(1, -(-total // config.rows_per_shard))
        names = [f"data-{i:05d}-of-{n_shards:05d}.parquet" for i in range(n_shards)]
        split_dir = out / "dataset" / split
        split_dir.mkdir(parents=True, exist_ok=True)
        for stale in split_dir.glob("*.parquet"):
            if stale.name not in names:
                stale.unlink()
        tables = (pq.read_table(work / f"{k}.parquet", schema=schema) for k in split_keys)
        _write_shards(split_dir, names, tables, config.rows_per_shard, schema)
        shards[split] = names
    return shards


def _load_marker(work: Path, key: str) -> dict:
    return json.loads((work / f"{key}.json").read_text(encoding="utf-8"))


def _write_shards(split_dir: Path, names: list[str], tables: Iterable, rows_per_shard: int, schema) -> None:
    """Stream episode tables into shards of `rows_per_shard` rows; memory holds one episode's table at a time."""
    import pyarrow.parquet as pq

    tables = iter(tables)
    pending = None
    for name in names:
        room = rows_per_shard
        with atomic_path(split_dir / name) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            while room > 0:
                if pending is None or pending.num_rows == 0:
                    pending = next(tables, None)
                    if pending is None:
                        break
                part = pending.slice(0, room)
                writer.write_table(part)
                room -= part.num_rows
                pending = pending.slice(part.num_rows)


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


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="data_prep/config.yaml", help="YAML config (default: %(default)s)")
    parser.add_argument("--corpus", required=True, help="corpus folder, folder of zip parts, or one zip")
    parser.add_argument("--out", required=True, help="output folder (resumable: rerun to finish a killed run)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--ray-address", default=None,
                        help="run the shards on a Ray cluster ('auto', 'local' or host:port); OUT must be shared")
    parser.add_argument("--aligner", choices=ALIGNERS, default=None, help="override alignment.aligner")
    parser.add_argument("--limit-hours", type=float, default=None, help="stop reading after this much audio")


def prepare(corpus: str | os.PathLike, out: str | os.PathLike, config: PrepConfig, workers: int = 1,
            ray_address: str | None = None, limit_hours: float | None = None) -> dict:
    """Run all stages; returns the report dict."""
    out = Path(out)
    work = out / "work"
    fingerprint = config_fingerprint(config)
    stamp = work / "config.fingerprint"
    if work.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
        print(f"prep: {work} was made with another config; starting its shards afresh", file=sys.stderr)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stamp, fingerprint + "\n")

    print(f"prep [1/5 read] {corpus}", file=sys.stderr)
    episodes, read = read_stage(Path(corpus), limit_hours)
    print(f"prep [2/5 split] {len(episodes)} episodes", file=sys.stderr)
    assignment = split_stage(episodes, config.splits)
    grouped_by = grouping([EpisodeKey(e.id, e.program, e.category, 0.0) for e in episodes], config.splits)
    tasks = [ShardTask(e, assignment[e.id], shard_key(e), str(work), config) for e in episodes]
    todo = [t for t in tasks if not (work / f"{t.key}.json").exists()]
    print(f"prep [3/5 process] {len(todo)} of {len(tasks)} episodes to do "
          f"({'Ray ' + ray_address if ray_address else f'{workers} worker(s)'}, aligner {config.alignment.aligner})",
          file=sys.stderr)
    run_tasks(todo, workers, ray_address)

    print(f"prep [4/5 write] {out}/dataset, manifest.jsonl, rejected.jsonl", file=sys.stderr)
    keys = [t.key for t in sorted(tasks, key=lambda t: (t.episode.id, t.key))]
    shards = write_stage(out, work, keys, config.output)
    tally = write_manifests(out, work, keys, reader_rejections(read))

    print(f"prep [5/5 report] {out}/report.md", file=sys.stderr)
    report = build_report(read, tally, grouped_by, config, shards)
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", report_markdown(report))
    plot_corrections(tally.corrections, out / "boundary_corrections.png", config.alignment.aligner)
    return report


def write_manifests(out: Path, work: Path, keys: list[str], reader_rows: list[dict]) -> Tally:
    """manifest.jsonl and rejected.jsonl, one episode's marker at a time, in episode order."""
    tally = Tally()
    with atomic_path(out / "manifest.jsonl") as manifest_tmp, atomic_path(out / "rejected.jsonl") as rejected_tmp, \
            open(manifest_tmp, "w", encoding="utf-8") as manifest, open(rejected_tmp, "w", encoding="utf-8") as rejected:
        for row in reader_rows:
            rejected.write(json.dumps(row, ensure_ascii=False) + "\n")
            tally.add_rejected(row)
        for key in keys:
            marker = _load_marker(work, key)
            tally.add_episode(marker)
            for row in marker["kept"]:
                manifest.write(json.dumps(row, ensure_ascii=False) + "\n")
                tally.add_kept(row)
            for row in marker["rejected"]:
                rejected.write(json.dumps(row, ensure_ascii=False) + "\n")
                tally.add_rejected(row)
    return tally


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.aligner:
        config = dataclasses.replace(config, alignment=dataclasses.replace(config.alignment, aligner=args.aligner))
    started = time.perf_counter()
    report = prepare(args.corpus, args.out, config, args.workers, args.ray_address, args.limit_hours)
    print(f"prep: kept {report['sentences_kept']} of {report['sentences_read']} sentences "
          f"({report['labelled_hours_kept']:.2f} h) in {time.perf_counter() - started:.1f} s; "
          f"report: {Path(args.out) / 'report.md'}", file=sys.stderr)
    return 0 if report["accounted"] else 1
