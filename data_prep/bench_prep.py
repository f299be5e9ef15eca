"""`make bench-prep`: data-prep throughput and memory, each beside a naive baseline run in the same script.

Figures (every run is a fresh child process; CPU time and peak RSS come from os.wait4 on that child):
  1. cleaning alone: `kidsasr prep --aligner none` (decode, batched silero-vad, measurements, filters, FLAC,
     parquet) on 1 h and on 10 h of the bench corpus: audio hours per CPU-hour and peak RSS.
  2. baseline cleaning: the notebook way, librosa.load of whole files kept in a list, silero-vad's JIT model
     frame by frame (get_speech_timestamps), per-sentence RMS normalisation and FLAC, on a slice.
  3. baseline memory: the same naive load-everything pattern (decode only) on 1 h and 10 h.
  4. cleaning + alignment: `kidsasr prep` with the whisper aligner on a slice.
Goals (issue 4): cleaning >= 300x real time per core; peak RSS for 10 h within 20% of that for 1 h.
Results are printed, written to OUT/bench_prep.json and appended to eval/RESULTS.md ("Data prep").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data_prep" / "config.yaml"


def child(argv: list[str], env: dict | None = None) -> dict:
    """Run a child process; its CPU seconds (user + sys), wall seconds and peak RSS (MiB)."""
    import time

    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, stdout=out,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (Popen.wait would discard it)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(argv)} failed:\n{err.read().decode(errors='replace')[-3000:]}")
        return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024,
                "stdout": out.read().decode(errors="replace")}


def run_prep(corpus: Path, out: Path, hours: float, aligner: str) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    result = child([sys.executable, "-m", "kidsasr.cli", "prep", "--config", str(CONFIG), "--corpus", str(corpus),
                    "--out", str(out), "--aligner", aligner, "--limit-hours", str(hours)])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    result.update(audio_hours=report["audio_hours_read"], sentences=report["sentences_read"])
    return result


def run_baseline(corpus: Path, hours: float, decode_only: bool) -> dict:
    result = child([sys.executable, __file__, "--naive-child", str(corpus), "--hours", str(hours)]
                   + (["--decode-only"] if decode_only else []))
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    return result


def naive_pipeline(corpus: Path, hours: float, decode_only: bool) -> None:
    """The baseline, in this (child) process: load everything, then clean it. Prints its audio hours as JSON."""
    import io
    import time

    import librosa
    import numpy as np
    import soundfile as sf
    import torch

    from kidsasr.corpus.reader import ReadReport
    from kidsasr.corpus.related import read_any

    torch.set_num_threads(1)
    if not decode_only:
        from silero_vad import get_speech_timestamps, load_silero_vad

        vad = load_silero_vad()
    started = time.process_time()  # imports and model loading excluded, as in the marginal figure for prep
    loaded, total = [], 0.0
    for episode in read_any(corpus, ReadReport()):
        if episode.audio.member is not None:
            raise SystemExit("the naive baseline reads extracted folders only")
        audio, _ = librosa.load(episode.audio.path, sr=16000, mono=True)
        loaded.append((episode, audio))
        total += audio.size / 16000 / 3600
        if total >= hours:
            break
    if not decode_only:
        clips = []
        for episode, audio in loaded:
            get_speech_timestamps(torch.from_numpy(audio), vad)
            for s in episode.sentences:
                clip = audio[int(s.start * 16000): int(s.end * 16000)]
                clip = clip - clip.mean()
                clip = clip * (10 ** (-23 / 20) / max(float(np.sqrt(np.mean(clip ** 2))), 1e-6))
                buf = io.BytesIO()
                sf.write(buf, np.clip(clip, -1, 1), 16000, format="FLAC", subtype="PCM_16")
                clips.append(buf.getvalue())
    print(json.dumps({"audio_hours": total, "work_cpu_s": time.process_time() - started}))


def speed(r: dict) -> float:
    """Audio seconds per CPU second (= audio hours per CPU-hour = times real time per core), whole process."""
    return r["audio_hours"] * 3600 / r["cpu_s"]


def results_markdown(figures: dict, args: argparse.Namespace) -> str:
    small, large = figures["clean_small"], figures["clean_large"]
    naive, align = figures["naive_clean"], figures.get("clean_align")
    naive_small, naive_large = figures["naive_load_small"], figures["naive_load_large"]
    # Steady state: the extra CPU the large run needed for its extra audio (startup and model loading cancel).
    marginal = (large["audio_hours"] - small["audio_hours"]) * 3600 / max(large["cpu_s"] - small["cpu_s"], 1e-9)
    naive_work = naive["audio_hours"] * 3600 / naive["work_cpu_s"]
    lines = [
        f"\n## Data prep ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `make bench-prep`)\n",
        f"Corpus `{args.corpus}`; one worker, OMP_NUM_THREADS=1; CPU time (user + sys) and peak RSS of each child "
        "process from `os.wait4`. x RT/core = audio seconds per CPU second (= audio hours per CPU-hour). The machine "
        "was shared: compare within this run.\n",
        "| run | audio h | CPU s (whole process) | x RT/core (whole process) | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def row(name: str, r: dict) -> str:
        return f"| {name} | {r['audio_hours']:.2f} | {r['cpu_s']:.1f} | {speed(r):.0f} | {r['peak_rss_mib']:.0f} |"

    lines += [row("kidsasr prep, cleaning only (`--aligner none`)", small),
              row("kidsasr prep, cleaning only (`--aligner none`)", large),
              row("baseline: librosa.load all + silero JIT frame by frame + RMS norm + FLAC", naive)]
    if align:
        lines.append(row("kidsasr prep, cleaning + whisper-base alignment (CPU)", align))
    lines += [row("baseline memory: librosa.load everything (decode only)", naive_small),
              row("baseline memory: librosa.load everything (decode only)", naive_large), ""]
    ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
    lines += [
        f"- Cleaning, steady state (CPU of the {large['audio_hours']:.1f} h run minus the {small['audio_hours']:.1f} h "
        f"run, per extra audio): **{marginal:.0f}x real time per core** vs {naive_work:.0f}x for the baseline's "
        f"processing loop (imports and model load excluded): {marginal / naive_work:.1f}x faster. "
        f"Goal >= 300x: {'met' if marginal >= 300 else 'NOT met'}.",
        f"- Peak RSS {large['peak_rss_mib']:.0f} MiB for {large['audio_hours']:.1f} h vs {small['peak_rss_mib']:.0f} MiB "
        f"for {small['audio_hours']:.1f} h: ratio **{ratio:.2f}** (goal <= 1.20: {'met' if ratio <= 1.2 else 'NOT met'}); "
        f"the naive load-everything grows {naive_large['peak_rss_mib'] / naive_small['peak_rss_mib']:.2f}x.",
    ]
    if align:
        lines.append(f"- Cleaning + whisper-base alignment: {speed(align):.1f} audio hours per CPU-hour (whole "
                     f"process, {align['audio_hours']:.2f} h slice).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "work" / "corpus-bench",
                        help="bench corpus (generated with `kidsasr synth --size bench` when missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "work" / "bench-prep")
    parser.add_argument("--small-hours", type=float, default=1.0)
    parser.add_argument("--large-hours", type=float, default=10.0)
    parser.add_argument("--baseline-hours", type=float, default=0.25, help="slice for the slow naive cleaning")
    parser.add_argument("--align-hours", type=float, default=0.1, help="slice for cleaning + alignment (0: skip)")
    parser.add_argument("--results", type=Path, default=ROOT / "eval" / "RESULTS.md")
    parser.add_argument("--no-results", action="store_true", help="do not append to the results file")
    parser.add_argument("--naive-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hours", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--decode-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_child:
        naive_pipeline(args.naive_child, args.hours, args.decode_only)
        return 0
    if not args.corpus.exists():
        print(f"bench-prep: generating the bench corpus in {args.corpus}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "kidsasr.cli", "synth", "--size", "bench", "--seed", "0",
                        "--out", str(args.corpus)], check=True)
    figures = {}
    steps = [("clean_small", lambda: run_prep(args.corpus, args.out / "clean-small", args.small_hours, "none")),
             ("clean_large", lambda: run_prep(args.corpus, args.out / "clean-large", args.large_hours, "none")),
             ("naive_clean", lambda: run_baseline(args.corpus, args.baseline_hours, decode_only=False)),
             ("naive_load_small", lambda: run_baseline(args.corpus, args.small_hours, decode_only=True)),
             ("naive_load_large", lambda: run_baseline(args.corpus, args.large_hours, decode_only=True))]
    if args.align_hours > 0:
        steps.append(("clean_align", lambda: run_prep(args.corpus, args.out / "clean-align", args.align_hours,
                                                      "whisper")))
    for name, step in steps:
        print(f"bench-prep: {name} ...", file=sys.stderr, flush=True)
        result = step()
        result.pop("stdout", None)
        figures[name] = result
        print(f"bench-prep: {name}: {result['audio_hours']:.2f} h audio, {result['cpu_s']:.1f} CPU s "
              f"({speed(result):.0f}x real time per core), peak RSS {result['peak_rss_mib']:.0f} MiB",
              file=sys.stderr, flush=True)
    from kidsasr.fileio import write_json_atomic

    write_json_atomic(args.out / "bench_prep.json", figures)
    text = results_markdown(figures, args)
    print(text)
    if not args.no_results:
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
