"""Prep output: per-episode parquet in the Hugging Face `datasets` layout, the split shards, and
manifest.jsonl / rejected.jsonl written one episode marker at a time (stage 4 of `kidsasr prep`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable

from ..constants import SAMPLE_RATE
from ..fileio import atomic_path
from ..manifest import SPLITS, Utterance
from .config import OutputConfig
from .report import Tally


def dataset_features():
    import datasets

    types = {float: datasets.Value("float64"), str: datasets.Value("string")}
    features = {}
    for f in dataclasses.fields(Utterance):
        base = f.type.split(" | ")[0] if isinstance(f.type, str) else f.type
        features[f.name] = types[{"str": str, "float": float}.get(base, base)]
    features["audio"] = datasets.Audio(sampling_rate=SAMPLE_RATE, decode=False)
    return datasets.Features(features)


def dataset_row(row: dict, audio: dict) -> dict:
    names = [f.name for f in dataclasses.fields(Utterance)]
    return {**{name: row[name] for name in names}, "audio": audio}


def write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = dataset_features().arrow_schema
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


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
