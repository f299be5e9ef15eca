"""`kidsasr prep`: run every stage of kidsasr.prep.pipeline over a corpus, on a process pool or a Ray cluster,
with done-markers so a killed run resumes (see kidsasr.prep.pipeline for the stages)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

from ..fileio import write_json_atomic, write_text_atomic
from .config import ALIGNERS, PrepConfig, config_fingerprint, load_config
from .output import write_manifests, write_stage
from .pipeline import ShardTask, process_episode, read_stage, reader_rejections, shard_key, split_stage
from .report import build_report, plot_corrections, report_markdown
from .splits import EpisodeKey, grouping


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
