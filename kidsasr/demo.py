"""`kidsasr demo`: every stage end to end on the built-in demo corpus, resumable stage by stage.

  1 synth     generate about 30 minutes of children's-broadcast audio with labels   -> WORK/corpus-demo
  2 prep      clean, align, filter, split into training manifests                   -> WORK/prep-demo
  3 train     fine-tune openai/whisper-base on CPU (recipes/demo_cpu.yaml)          -> WORK/train-demo
  4 eval      zero-shot vs fine-tuned CER on the held-out test split                -> eval/results/demo-...
  5 subtitle  subtitle one held-out test episode with the fine-tuned model          -> WORK/subtitles
Each stage keeps its own done-markers, so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .cli import main as kidsasr_main
from .constants import DEFAULT_MODEL
from .fileio import read_jsonl


@dataclass
class Stage:
    name: str
    what: str
    writes: Path
    argv: list[str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("work"), help="folder for every stage's output")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated demo corpus")
    parser.add_argument("--recipe", type=Path, default=Path("recipes/demo_cpu.yaml"),
                        help="training recipe (default %(default)s, in the checkout)")
    parser.add_argument("--prep-config", type=Path, default=Path("data_prep/config.yaml"),
                        help="data-prep config (default %(default)s)")
    parser.add_argument("--results-dir", type=Path, default=Path("eval/results"),
                        help="where the evaluation run folder goes (default %(default)s)")
    parser.add_argument("--results-md", default="eval/RESULTS.md", help="table that gets the run's row")
    parser.add_argument("--baseline", default=DEFAULT_MODEL, help="zero-shot model the demo compares with")


def test_episode(prep_dir: Path) -> str:
    """The audio of the first held-out test episode in the prep manifest."""
    for row in read_jsonl(prep_dir / "manifest.jsonl"):
        if row["split"] == "test":
            return row["audio_source"]
    raise RuntimeError(f"{prep_dir / 'manifest.jsonl'}: no test episode to subtitle")


def run(args: argparse.Namespace) -> int:
    work: Path = args.work
    corpus, prep, train = work / "corpus-demo", work / "prep-demo", work / "train-demo"
    results = args.results_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    stages = [
        Stage("synth", "generating the demo corpus (espeak-ng child voices, music, noise, labels)", corpus,
              ["synth", "--size", "demo", "--seed", str(args.seed), "--out", str(corpus)]),
        Stage("prep", "cleaning, aligning and filtering the corpus into train/dev/test", prep,
              ["prep", "--config", str(args.prep_config), "--corpus", str(corpus),
               "--out", str(prep)]),
        Stage("train", f"fine-tuning {args.baseline} on CPU ({args.recipe.name})", train,
              ["train", "--recipe", str(args.recipe), "--data", str(prep), "--out", str(train)]),
        Stage("eval", "scoring zero-shot and fine-tuned CER on the held-out test split", results,
              ["eval", "--model", str(train / "best"), "--baseline", args.baseline, "--data", str(prep),
               "--split", "test", "--out", str(results), "--results-md", args.results_md]),
    ]
    started = time.monotonic()
    total = len(stages) + 1
    for number, stage in enumerate(stages, 1):
        if code := run_stage(stage, number, total):
            return code
    try:
        episode = test_episode(prep)
    except (OSError, RuntimeError) as e:
        print(f"demo stopped: {e}", file=sys.stderr)
        return 1
    vtt = work / "subtitles" / (Path(episode.split("!")[-1]).stem + ".vtt")
    subtitle = Stage("subtitle", f"subtitling held-out episode {episode}", vtt,
                     ["subtitle", episode, "-o", str(vtt), "--model", str(train / "ct2")])
    if code := run_stage(subtitle, total, total):
        return code
    print(f"\nDemo finished in {(time.monotonic() - started) / 60:.1f} min.\n"
          f"  report:    {results / 'report.md'}\n  model:     {train / 'best'}\n  subtitles: {vtt}\n"
          "  preview:   open subtitle/preview.html (in the checkout) and pick the episode and its VTT")
    return 0


def run_stage(stage: Stage, number: int, total: int) -> int:
    """Run one stage through the command line; its exit status (a failure said on stderr, naming the stage)."""
    print(f"\n== [{number}/{total}] {stage.name}: {stage.what}\n   writing to {stage.writes}", flush=True)
    stage_start = time.monotonic()
    try:
        code = kidsasr_main(stage.argv)
    except SystemExit as e:  # a stage's own argument check
        code = e.code if isinstance(e.code, int) else 2
    if code != 0:
        print(f"demo stopped: stage {stage.name} failed (exit {code}); rerun `make demo` to resume",
              file=sys.stderr)
        return code
    print(f"   {stage.name} done in {time.monotonic() - stage_start:.0f} s", flush=True)
    return 0
