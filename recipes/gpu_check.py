#!/usr/bin/env python3
"""`make gpu-check`: kidsasr's Whisper fine-tuning against a plain transformers baseline on one GPU (issue 20).

What it does, in order (recipes/GPU.md says how it travels to the lent GPU machine and what it reports):
  1. prints the device (and stops at once, with one line, when there is no CUDA GPU and no --allow-cpu);
  2. zero-shot CER of the start model on the prepared dev and test splits and on both halves of the real
     read-speech set (kidsasr.evaluation.real_speech: `tune` guards, `report` is reported);
  3. kidsasr: `kidsasr.training.driver.build` on recipes/whisper_base_kids.yaml (overridden: the check's steps, batch,
     warmup, bf16, no audio augmentation so both systems see the same data), `trainer.train()`, then kidsasr's
     guard against real-speech damage (kidsasr.training.weight_ensemble on the `tune` half);
  4. the baseline (recipes/gpu_baseline.py): the transformers speech-recognition example's shape, same model,
     data, full fine-tune, batch, steps, learning-rate schedule and precision;
  5. the report: utterances/s and peak GPU memory of both, their ratio, dev/test CER, zero-shot CER, real
     read-speech CER (report half), and which goals were met: report.json and report.md under --out, rewritten
     after every stage so a run cut short still leaves what it measured.

  python recipes/gpu_check.py --model M --data PREP --real-speech DIR --out OUT            # on the GPU
  python recipes/gpu_check.py --data PREP --real-speech DIR --allow-cpu --tiny --steps 2   # CPU dry run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = ROOT / "recipes" / "whisper_base_kids.yaml"
NO_GPU = ("gpu_check: no CUDA GPU is visible (torch {torch}); run it on the GPU machine as recipes/GPU.md says, "
          "or add --allow-cpu for a CPU dry run")
GOAL_SPEEDUP, GOAL_TEST_CER = 1.3, 0.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="openai/whisper-base", help="start model: hub id or local folder")
    p.add_argument("--data", required=True, help="a `kidsasr prep` output folder (dataset/{train,dev,test})")
    p.add_argument("--real-speech", default=None,
                   help="the korean-read folder (manifest.jsonl + FLAC), default $KIDSASR_REAL_SPEECH/korean-read or "
                        "../shared/real-speech/korean-read; 'none' to skip real speech")
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="kidsasr recipe for the kidsasr side")
    p.add_argument("--out", default=str(ROOT / "work" / "gpu-check"), help="report folder (report.json, report.md)")
    p.add_argument("--work", default=None, help="scratch folder for checkpoints and caches (default: OUT/work)")
    p.add_argument("--steps", type=_positive_int, default=80, help="optimizer steps, both systems")
    p.add_argument("--batch-size", type=_positive_int, default=16,
                   help="per step, both systems (kidsasr: packed 30 s windows; baseline: utterances)")
    p.add_argument("--learning-rate", type=_positive_float, default=None, help="default: the recipe's")
    p.add_argument("--warmup-steps", type=_non_negative_int, default=None, help="default: a tenth of --steps")
    p.add_argument("--workers", type=_non_negative_int, default=8, help="data-loader workers, both systems")
    p.add_argument("--eval-limit", type=_non_negative_int, default=200,
                   help="at most this many dev and test utterances each (0: all)")
    p.add_argument("--real-limit", type=_non_negative_int, default=0,
                   help="at most this many real read-speech clips per half (0: all; dry runs)")
    p.add_argument("--eval-batch-size", type=_positive_int, default=64)
    p.add_argument("--max-new-tokens", type=_positive_int, default=128)
    p.add_argument("--alphas", type=_alphas, default=[1.0, 0.8, 0.6, 0.4, 0.2],
                   help="kidsasr's weight-ensemble weights tried against the real-speech tune half, comma-separated")
    p.add_argument("--timing-skip", type=_non_negative_int, default=5,
                   help="first steps left out of utterances/s (start-up, kernel selection)")
    p.add_argument("--allow-cpu", action="store_true", help="run on CPU when no GPU is visible (dry run)")
    p.add_argument("--tiny", action="store_true",
                   help="a tiny random-initialised Whisper with the model's tokenizer instead of the model (dry run)")
    args = p.parse_args(argv)
    if args.timing_skip >= args.steps:
        args.timing_skip = 0
    if args.warmup_steps is None:
        args.warmup_steps = args.steps // 10
    if args.work is None:
        args.work = str(Path(args.out) / "work")
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {text})")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {text})")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def _alphas(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (got {text})") from e
    if not values or not all(0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected weights in (0, 1] (got {text})")
    return values


def require_device(allow_cpu: bool) -> str:
    """'cuda', or 'cpu' with --allow-cpu; otherwise one line on stderr and exit status 2 (no heavy imports first)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if allow_cpu:
        return "cpu"
    print(NO_GPU.format(torch=torch.__version__), file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------------------------------------ report
@dataclass
class SystemResult:
    name: str
    steps: int = 0
    batch: str = ""
    train_items: int = 0  # windows (kidsasr) or utterances (baseline) in the training set
    train_utterances: int = 0
    utterances_seen: int = 0
    train_seconds: float = 0.0
    timed_steps: int = 0
    utterances_per_second: float = 0.0
    steps_per_second: float = 0.0
    peak_memory_gib: float = 0.0  # most memory allocated during training, less what was held before it began
    peak_reserved_gib: float = 0.0
    held_before_gib: float = 0.0  # allocated when training began (left over from earlier stages)
    prepare_seconds: float = 0.0
    final_loss: float | None = None
    cer: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    out: Path
    data: dict = field(default_factory=dict)

    def set(self, key: str, value) -> None:
        self.data[key] = value
        self.write()

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.out / "report.json", json.dumps(self.data, indent=2, ensure_ascii=False, default=str))
        _atomic_write(self.out / "report.md", render_markdown(self.data))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def goals(data: dict) -> dict[str, bool | None]:
    """Issue 20's goals, each True/False, or None while a figure it needs is missing."""
    k, b, z = data.get("kidsasr", {}), data.get("baseline", {}), data.get("zero_shot", {})
    kc, bc, zc = k.get("cer", {}), b.get("cer", {}), z.get("cer", {})

    def ok(cond):
        try:
            return bool(cond())
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    return {
        f"kidsasr >= {GOAL_SPEEDUP}x the baseline's utterances/s":
            ok(lambda: k["utterances_per_second"] / b["utterances_per_second"] >= GOAL_SPEEDUP),
        "kidsasr peak GPU memory <= the baseline's":
            ok(lambda: k["peak_memory_gib"] <= b["peak_memory_gib"]) if k.get("peak_memory_gib") else None,
        "kidsasr test CER <= the baseline's": ok(lambda: kc["test"] <= bc["test"]),
        f"kidsasr test CER <= {GOAL_TEST_CER:.0%}": ok(lambda: kc["test"] <= GOAL_TEST_CER),
        "kidsasr real read-speech CER (report half) <= zero-shot's": ok(lambda: kc["real_report"] <= zc["real_report"]),
    }


def render_markdown(data: dict) -> str:
    d = data.get("device", {})
    s = data.get("settings", {})
    lines = ["# GPU check: kidsasr vs a plain transformers Seq2SeqTrainer", "",
             f"Device: {d.get('name', '?')} ({d.get('kind', '?')}), torch {d.get('torch', '?')}, "
             f"transformers {d.get('transformers', '?')}; started {data.get('started', '?')}; "
             f"{data.get('elapsed_seconds', 0):.0f} s so far.", ""]
    if s:
        lines += [f"Settings: {s.get('steps')} steps, batch {s.get('batch_size')}, learning rate "
                  f"{s.get('learning_rate')}, warmup {s.get('warmup_steps')}, {s.get('precision')}; data "
                  f"`{s.get('data')}`; model `{s.get('model')}`" + (" (tiny random dry-run model)" if s.get("tiny")
                                                                    else "") + ".", ""]
    systems = [(name, data[name]) for name in ("zero_shot", "kidsasr", "baseline") if name in data]
    if systems:
        lines += ["| system | utterances/s | peak GPU memory GiB | train s (timed steps) | dev CER | test CER | "
                  "real read CER (report half) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in systems:
            c = r.get("cer", {})
            speed = f"{r['utterances_per_second']:.1f}" if r.get("utterances_per_second") else "-"
            memory = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") else "-"
            timed = f"{r['train_seconds']:.1f} ({r['timed_steps']})" if r.get("timed_steps") else "-"
            lines.append(f"| {name} | {speed} | {memory} | {timed} | {_pct(c.get('dev'))} | {_pct(c.get('test'))} | "
                         f"{_pct(c.get('real_report'))} |")
        lines.append("")
    k, b = data.get("kidsasr", {}), data.get("baseline", {})
    if k.get("utterances_per_second") and b.get("utterances_per_second"):
        lines += [f"kidsasr / baseline: **{k['utterances_per_second'] / b['utterances_per_second']:.2f}x** "
                  f"utterances/s, peak memory {k['peak_memory_gib']:.2f} vs {b['peak_memory_gib']:.2f} GiB.", ""]
    for name, r in systems:
        for note in r.get("notes", []):
            lines.append(f"- {name}: {note}")
    lines += ["", "## Goals (issue 20)", ""]
    for goal, met in goals(data).items():
        lines.append(f"- {'met' if met else 'NOT met' if met is False else 'not measured'}: {goal}")
    if data.get("error"):
        lines += ["", f"**Stopped early:** {data['error']}"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ measuring
def step_clock(count, synchronize):
    """A TrainerCallback recording (step, seconds, utterances so far) after every optimizer step."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[int, float, int]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            synchronize()
            self.marks = [(0, time.perf_counter(), count())]

        def on_step_end(self, args, state, control, **kwargs):
            synchronize()
            self.marks.append((state.global_step, time.perf_counter(), count()))

    return StepClock()


def throughput(marks: list[tuple[int, float, int]], skip: int) -> tuple[float, float, int, float]:
    """(utterances/s, steps/s, timed steps, seconds) over the steps after the first `skip`."""
    if len(marks) < 2:
        return 0.0, 0.0, 0, 0.0
    first = marks[min(skip, len(marks) - 2)]
    last = marks[-1]
    seconds = last[1] - first[1]
    steps = last[0] - first[0]
    if seconds <= 0:
        return 0.0, 0.0, steps, seconds
    return (last[2] - first[2]) / seconds, steps / seconds, steps, seconds


class Evaluator:
    """Greedy batched transcription with one procedure for every system: clips padded to the encoder window,
    log-mel on the device (kidsasr.training.packed.log_mel), bf16 autocast on a GPU, CER by kidsasr's scoring policy."""

    def __init__(self, device: str, batch_size: int, max_new_tokens: int, language: str, task: str):
        self.device, self.batch_size, self.max_new_tokens = device, batch_size, max_new_tokens
        self.language, self.task = language, task

    def transcribe(self, model, processor, clips: list) -> list[str]:
        import numpy as np
        import torch

        from kidsasr.training.packed import log_mel

        fe = processor.feature_extractor
        model.eval()
        bf16 = self.device == "cuda" and torch.cuda.is_bf16_supported()
        order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
        texts: list[str] = [""] * len(clips)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            audio = np.zeros((len(idx), fe.n_samples), dtype=np.float32)
            for row, i in enumerate(idx):
                clip = clips[i][: fe.n_samples]
                audio[row, : len(clip)] = clip
            with torch.no_grad(), torch.autocast(self.device, dtype=torch.bfloat16, enabled=bf16):
                features = log_mel(torch.from_numpy(audio).to(self.device), fe)
                ids = model.generate(input_features=features, language=self.language, task=self.task,
                                     max_new_tokens=self.max_new_tokens)
            for i, text in zip(idx, processor.tokenizer.batch_decode(ids, skip_special_tokens=True)):
                texts[i] = text
        return texts

    def cer(self, model, processor, eval_set: dict) -> float:
        from kidsasr.training.driver import corpus_cer

        return corpus_cer(eval_set["refs"], self.transcribe(model, processor, eval_set["clips"]))

    def score_all(self, model, processor, sets: dict[str, dict], names: list[str]) -> dict[str, float]:
        return {name: self.cer(model, processor, sets[name]) for name in names if name in sets}


def memory_stats(device: str) -> tuple[float, float]:
    """(most allocated, most reserved) GiB since the last fresh_memory."""
    import torch

    if device != "cuda":
        return 0.0, 0.0
    return torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30


def fresh_memory(device: str) -> float:
    """Free what can be freed, restart the peak counters; returns the GiB still allocated."""
    import torch

    gc.collect()
    if device != "cuda":
        return 0.0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() / 2**30


# ------------------------------------------------------------------------------------------------ stages
def describe_device(device: str) -> dict:
    import torch
    import transformers

    info = {"kind": device, "torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    else:
        info["name"] = "CPU (dry run)"
    return info


def make_tiny_model(source: str, folder: Path) -> str:
    """A random-initialised 2+2-layer Whisper with the source model's tokenizer, features and generation config."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(source)
    config = WhisperConfig(vocab_size=len(processor.tokenizer), d_model=32, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, num_mel_bins=processor.feature_extractor.feature_size,
                           max_source_positions=1500, max_target_positions=448, pad_token_id=50257,
                           bos_token_id=50257, eos_token_id=50257, decoder_start_token_id=50258)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    GenerationConfig.from_pretrained(source).save_pretrained(folder)
    return str(folder)


def spread(items: list, limit: int) -> list:
    """At most `limit` items (0: all), evenly spread over the list."""
    if not limit or len(items) <= limit:
        return items
    return [items[int(i * len(items) / limit)] for i in range(limit)]


def load_eval_sets(recipe, processor, real_dir: str, limit: int, real_limit: int = 0) -> dict[str, dict]:
    """dev and test (kidsasr's own filters, at most `limit` each, spread evenly) and the real read-speech halves."""
    import soundfile as sf

    from kidsasr.manifest import decode_audio
    from kidsasr.evaluation.real_speech import load_half
    from kidsasr.training.data import load_training_split

    sets = {}
    for name in ("dev", "test"):
        split = load_training_split(recipe, getattr(recipe.data, f"{name}_split"), processor.tokenizer, limit)
        ds = split.dataset
        sets[name] = {"clips": [decode_audio(a) for a in ds["audio"]], "refs": list(ds["target"])}
    if real_dir.lower() != "none":
        for half in ("tune", "report"):
            clips = spread(load_half(real_dir, half), real_limit)
            sets[f"real_{half}"] = {"clips": [sf.read(c.audio, dtype="float32")[0] for c in clips],
                                    "refs": [c.text for c in clips]}
    return sets


def kidsasr_recipe(args, model: str, device: str):
    from kidsasr.training.recipe import load_recipe

    overrides = [f"model.name_or_path={model}", f"data.prep_dir={args.data}",
                 f"train.output_dir={Path(args.work) / 'kidsasr'}", f"train.max_steps={args.steps}",
                 f"train.batch_size={args.batch_size}", f"train.eval_batch_size={args.eval_batch_size}",
                 f"train.warmup_steps={args.warmup_steps}", "train.bf16=true",
                 f"train.eval_steps={args.steps}", f"train.save_steps={args.steps}",
                 f"train.logging_steps={max(1, args.steps // 10)}", f"train.dataloader_workers={args.workers}",
                 f"train.max_new_tokens={args.max_new_tokens}", "augment.enabled=false", "export.ct2=false"]
    if args.learning_rate:
        overrides.append(f"train.learning_rate={args.learning_rate}")
    return load_recipe(args.recipe, overrides)


def train_kidsasr(args, recipe, device: str, report: Report) -> tuple[object, object, SystemResult]:
    from kidsasr.training.driver import build

    result = SystemResult("kidsasr", steps=args.steps)
    result.held_before_gib = fresh_memory(device)
    began = time.perf_counter()
    out = Path(recipe.train.output_dir)
    setup = build(recipe, out, out / "cache")
    trainer = setup.trainer
    train_set = setup.datasets["train"]
    if not hasattr(trainer, "utterances_seen"):
        raise SystemExit("gpu_check: the recipe does not train on packed audio windows (set data.pack_seconds)")
    result.train_items, result.train_utterances = len(train_set), train_set.utterances()
    result.batch = f"{args.batch_size} windows of <= {recipe.data.pack_seconds:g} s"
    timed_train(trainer, args, device, result, began)
    result.notes.append(f"{result.train_utterances} training utterances packed into {result.train_items} windows "
                        f"({result.train_utterances / max(result.train_items, 1):.1f} per window); "
                        f"gradient checkpointing {'on' if recipe.model.gradient_checkpointing else 'off'}; "
                        f"SpecAugment time {recipe.model.mask_time_prob}, feature {recipe.model.mask_feature_prob}; "
                        f"dropout {recipe.model.dropout}")
    report.set("kidsasr", asdict(result))
    model = trainer.model
    trainer.accelerator.free_memory()  # drops the prepared data loaders, so their persistent workers end
    return model, setup.processor, result


def timed_train(trainer, args, device: str, result: SystemResult, began: float) -> None:
    """Train with the step clock on (set-up time counted up to here), then fill the result's figures."""
    import torch

    clock = step_clock(lambda: trainer.utterances_seen,
                       torch.cuda.synchronize if device == "cuda" else (lambda: None))
    trainer.add_callback(clock)
    result.prepare_seconds = time.perf_counter() - began
    trainer.train()
    fill_training(result, clock.marks, args.timing_skip, trainer, device)


def fill_training(result: SystemResult, marks, skip: int, trainer, device: str) -> None:
    ups, sps, steps, seconds = throughput(marks, skip)
    result.utterances_per_second, result.steps_per_second = ups, sps
    result.timed_steps, result.train_seconds = steps, seconds
    result.utterances_seen = marks[-1][2] if marks else 0
    peak, reserved = memory_stats(device)
    result.peak_memory_gib, result.peak_reserved_gib = peak - result.held_before_gib, reserved
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result.final_loss = losses[-1] if losses else None
    result.notes.append(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "no loss logged")


def train_baseline(args, recipe, model: str, device: str, report: Report):
    import torch

    import gpu_baseline

    result = SystemResult("baseline", steps=args.steps, batch=f"{args.batch_size} utterances")
    result.held_before_gib = fresh_memory(device)
    began = time.perf_counter()
    settings = gpu_baseline.BaselineSettings(
        model=model, prep_dir=args.data, out_dir=str(Path(args.work) / "baseline"), steps=args.steps,
        batch_size=args.batch_size, learning_rate=recipe.train.learning_rate, warmup_steps=args.warmup_steps,
        lr_scheduler=recipe.train.lr_scheduler, weight_decay=recipe.train.weight_decay,
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(), workers=args.workers, seed=recipe.train.seed,
        language=recipe.model.language, task=recipe.model.task, text_field=recipe.data.text_field,
        min_duration=recipe.data.min_duration, max_duration=recipe.data.max_duration)
    trainer, processor, n = gpu_baseline.build_trainer(settings)
    result.train_items = result.train_utterances = n
    timed_train(trainer, args, device, result, began)
    result.notes.append(f"{n} training utterances, features computed up front in {result.prepare_seconds:.1f} s")
    report.set("baseline", asdict(result))
    model = trainer.model
    trainer.accelerator.free_memory()
    return model, processor, result


def run(args: argparse.Namespace, device: str) -> dict:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from kidsasr.training.weight_ensemble import choose_alpha, snapshot

    started = time.perf_counter()
    out = Path(args.out)
    work = Path(args.work)
    report = Report(out)
    report.data["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    info = describe_device(device)
    print(f"gpu_check: device {info['name']} ({device}), torch {info['torch']}, transformers {info['transformers']}",
          flush=True)
    report.set("device", info)

    model = make_tiny_model(args.model, work / "tiny-model") if args.tiny else args.model
    recipe = kidsasr_recipe(args, model, device)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    report.set("settings", {"steps": args.steps, "batch_size": args.batch_size,
                            "learning_rate": recipe.train.learning_rate, "warmup_steps": args.warmup_steps,
                            "lr_scheduler": recipe.train.lr_scheduler, "precision": "bf16" if bf16 else "fp32",
                            "workers": args.workers, "data": args.data, "model": args.model, "tiny": args.tiny,
                            "recipe": str(args.recipe), "eval_limit": args.eval_limit, "real_limit": args.real_limit,
                            "max_new_tokens": args.max_new_tokens, "alphas": args.alphas})

    def stage(name: str) -> None:
        report.data["elapsed_seconds"] = time.perf_counter() - started
        print(f"gpu_check: [{report.data['elapsed_seconds']:6.1f} s] {name}", flush=True)
        report.write()

    stage("loading evaluation sets")
    processor = WhisperProcessor.from_pretrained(model)
    sets = load_eval_sets(recipe, processor, args.real_speech, args.eval_limit, args.real_limit)
    report.set("eval_sets", {name: len(s["refs"]) for name, s in sets.items()})
    evaluator = Evaluator(device, args.eval_batch_size, args.max_new_tokens, recipe.model.language,
                          recipe.model.task)
    scored = ["dev", "test", "real_report"]

    stage("zero-shot")
    start_model = WhisperForConditionalGeneration.from_pretrained(model).to(device)
    zero = evaluator.score_all(start_model, processor, sets, scored + ["real_tune"])
    report.set("zero_shot", asdict(SystemResult("zero_shot", cer=zero)))
    start_weights = snapshot(start_model, "cpu")  # off the GPU while the others train
    del start_model

    stage("kidsasr: training")
    tuned, kid_processor, kid = train_kidsasr(args, recipe, device, report)
    kid.notes.append(f"test CER of the fine-tuned weights before the guard: "
                     f"{_pct(evaluator.cer(tuned, kid_processor, sets['test']))}")
    if "real_tune" in sets:
        stage("kidsasr: weight-ensemble guard on the real-speech tune half")
        choice = choose_alpha(tuned, start_weights, snapshot(tuned),
                              lambda m: evaluator.cer(m, kid_processor, sets["real_tune"]), zero["real_tune"],
                              args.alphas)
        kid.notes.append(f"weight ensemble: alpha {choice.alpha:g} chosen (real tune-half CER "
                         f"{_pct(choice.guard_score)} vs zero-shot {_pct(choice.limit)}; tried "
                         + ", ".join(f"{a:g}: {_pct(s)}" for a, s in choice.tried) + ")")
    stage("kidsasr: scoring")
    kid.cer = evaluator.score_all(tuned, kid_processor, sets, scored)
    report.set("kidsasr", asdict(kid))
    del tuned, start_weights
    fresh_memory(device)

    stage("baseline: features and training")
    base_model, base_processor, base = train_baseline(args, recipe, model, device, report)
    stage("baseline: scoring")
    base.cer = evaluator.score_all(base_model, base_processor, sets, scored)
    report.set("baseline", asdict(base))
    del base_model
    fresh_memory(device)

    report.data["goals"] = goals(report.data)
    stage("done")
    print((out / "report.md").read_text(encoding="utf-8"))
    return report.data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = require_device(args.allow_cpu)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_baseline beside this file
    sys.path.insert(0, str(ROOT))  # kidsasr from this checkout
    if args.real_speech is None:
        from kidsasr.evaluation.real_speech import real_speech_root

        args.real_speech = str(real_speech_root() / "korean-read")
    if not (Path(args.data) / "dataset").is_dir():
        print(f"gpu_check: --data {args.data}: no dataset/ folder (a `kidsasr prep` output)", file=sys.stderr)
        return 2
    if args.real_speech.lower() != "none" and not (Path(args.real_speech) / "manifest.jsonl").is_file():
        print(f"gpu_check: --real-speech {args.real_speech}: no manifest.jsonl (or pass --real-speech none)",
              file=sys.stderr)
        return 2
    os.environ.setdefault("HF_DATASETS_CACHE", str(Path(args.work) / "datasets-cache"))  # before datasets loads
    try:
        run(args, device)
    except BaseException as e:  # the report keeps what was measured, and says where it stopped
        report_path = Path(args.out) / "report.json"
        if report_path.is_file():
            data = json.loads(report_path.read_text(encoding="utf-8"))
            data["error"] = f"{type(e).__name__}: {e}"
            Report(Path(args.out), data).write()
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
