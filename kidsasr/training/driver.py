"""`kidsasr train`: fine-tune Whisper (seq2seq) or wav2vec2 (CTC) from a YAML recipe.

Stages, in order:
  1. recipe    read and validate the recipe (kidsasr.training.recipe); overrides `SECTION.KEY=VALUE` on the command line
  2. data      load the prepared splits (kidsasr.manifest.load_split), drop what cannot train (too short or long,
               empty text, labels over the token limit) and say how many were kept
  3. model     load the model, freeze the configured parts, set SpecAugment from the recipe
  4. cache     (Whisper with `train.encoder_cache_layer: K`) augment, pack utterances into windows of up to
               `data.pack_seconds`, and run the frozen encoder layers 1..K once, saving their states: the trained
               upper layers then start from an exact cache, which is what makes the CPU demo fit in minutes
  5. train     transformers Seq2SeqTrainer: checkpoints every `train.save_steps` under OUT/checkpoint-N, dev CER
               every `train.eval_steps` with early stopping, TensorBoard logs under OUT/runs; a run that is killed
               and started again with the same command resumes from the last checkpoint (same step, same data order)
  6. evaluate  the best model on dev and test, and the zero-shot model on test, by CER
  7. export    OUT/best (model, processor, generation config, README.md model card), OUT/ct2 (CTranslate2 int8),
               OUT/results.json

Multi-GPU: the same command under a launcher, one process per GPU; the batch size is per GPU:
    accelerate launch --multi_gpu --num_processes 8 -m kidsasr.cli train --recipe recipes/whisper_small_kids.yaml
    torchrun --nproc_per_node 8 -m kidsasr.cli train --recipe recipes/whisper_small_kids.yaml --data PREP
The processes agree on every stop decision (AgreedStop: a time budget read off one process's clock, early
stopping), the one-off work (text-bank speech, encoder cache, CTC vocabulary) is done by the first process of each
machine while the others wait and then read it, and only the first process prints, writes the recipe and exports.
On CPUs (tests), `accelerate launch --multi_gpu --num_processes 2` starts two gloo processes; `--cpu` starts one.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from transformers import (EarlyStoppingCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback)
from transformers.trainer_utils import get_last_checkpoint

from ..constants import DEFAULT_MODEL
from ..evaluation.metrics import score as score_texts
from ..fileio import BusyError, remove_stale_parts, run_lock, write_json_atomic, write_text_atomic
from ..manifest import load_split
from .anchor import PullToStart
from .augment import Augmenter
from .collators import CTCCollator, ClipSource, WhisperCollator
from .data import (SplitData, add_bank_speech, build_vocab, describe, from_units, load_training_split,
                   weigh_reviewed)
from .encoder_cache import CachedEncoderTrainer, cache_states, collate_cached
from .model_card import ensemble_text, write_model_card
from .packed import PackedAudioTrainer, WindowCollator, audio_windows, packs_audio
from .recipe import Recipe, RecipeError, dump_recipe, load_recipe, resume_conflicts
from .surgery import freeze_whisper, load_ctc, load_whisper
from .weight_ensemble import interpolate_, snapshot


def corpus_cer(refs: list[str], hyps: list[str]) -> float:
    """Corpus CER (total edits / total reference characters) under the project's scoring normalisation."""
    return score_texts([str(i) for i in range(len(refs))], refs, hyps, with_confusions=False).char.rate


class KidsTrainer(Seq2SeqTrainer):
    """The stock Seq2SeqTrainer, except that evaluation and test batches are never augmented."""

    def __init__(self, *args, eval_collator, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_collator = eval_collator

    def get_eval_dataloader(self, eval_dataset=None):
        with self._collating_with(self.eval_collator):
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self._collating_with(self.eval_collator):
            return super().get_test_dataloader(test_dataset)

    @contextlib.contextmanager
    def _collating_with(self, collator):
        train_collator, self.data_collator = self.data_collator, collator
        try:
            yield
        finally:
            self.data_collator = train_collator


class TimeBudget(TrainerCallback):
    """Stops training (with a save and an evaluation) once `minutes` of this process's training have passed; with
    several processes, AgreedStop makes the first one to run out stop them all at the same step."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.deadline = math.inf

    def on_train_begin(self, args, state, control, **kwargs):
        self.deadline = time.monotonic() + self.minutes * 60

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() > self.deadline:
            print(f"train: time budget of {self.minutes} min reached at step {state.global_step} "
                  f"(process {args.process_index})")
            control.should_training_stop = control.should_save = control.should_evaluate = True


class AgreedStop(TrainerCallback):
    """Every process takes the decisions any one of them took (stop, save, evaluate), so none goes on alone into a
    collective the others never join. Registered after the callbacks that decide, it runs after them."""

    FLAGS = ("should_training_stop", "should_save", "should_evaluate")

    def on_step_end(self, args, state, control, **kwargs):
        agree(args, control, self.FLAGS)

    def on_evaluate(self, args, state, control, **kwargs):
        agree(args, control, self.FLAGS[:1])


def agree(args, control, flags: tuple[str, ...]) -> None:
    """OR the named control flags over all processes (a no-op in a single process)."""
    if args.world_size < 2 or not (dist.is_available() and dist.is_initialized()):
        return
    values = torch.tensor([int(getattr(control, f)) for f in flags], dtype=torch.int32, device=args.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    for flag, value in zip(flags, values.tolist()):
        setattr(control, flag, bool(value))


class EpochTracker(TrainerCallback):
    """Ties the augmentation draw to the epoch, so a resumed epoch sees the same audio."""

    def __init__(self, clips: ClipSource):
        self.clips = clips

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.clips.epoch = int(state.epoch or 0)


def training_arguments(recipe: Recipe, out_dir: Path, has_dev: bool, cached: bool) -> Seq2SeqTrainingArguments:
    t = recipe.train
    cuda = torch.cuda.is_available()
    # periodic dev evaluation only when it can happen before the end; the final dev score is taken after training
    periodic = has_dev and (t.max_steps == -1 or t.eval_steps < t.max_steps)
    return Seq2SeqTrainingArguments(
        output_dir=str(out_dir),
        seed=t.seed,
        data_seed=t.seed,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_steps=t.max_steps,
        num_train_epochs=t.num_epochs,
        bf16=t.bf16 and cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        **({"gradient_checkpointing": True} if recipe.model.gradient_checkpointing else {}),
        train_sampling_strategy="group_by_length" if t.group_by_length and not cached else "random",
        length_column_name="input_length",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if periodic else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=periodic and t.early_stopping_patience > 0,
        metric_for_best_model="cer",
        greater_is_better=False,
        predict_with_generate=recipe.model.family == "whisper",
        report_to=["tensorboard"],
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=t.dataloader_workers,
        dataloader_persistent_workers=t.dataloader_workers > 0,
        disable_tqdm=False,
    )


@dataclass
class Setup:
    """Everything a Trainer needs, built from a recipe: the Trainer itself plus what evaluation reuses."""

    recipe: Recipe
    trainer: Any
    processor: Any
    splits: dict[str, SplitData]
    datasets: dict[str, Any]  # split name -> what the Trainer iterates (datasets.Dataset or CachedStates)
    clips: ClipSource


def _metrics_fn(processor, family: str, unit: str):
    tokenizer = processor.tokenizer

    def compute(pred) -> dict:
        preds, label_ids = pred.predictions, np.array(pred.label_ids)
        if isinstance(preds, tuple):
            preds = preds[0]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        label_ids = np.where(label_ids == -100, pad, label_ids)
        if family == "whisper":
            preds = np.where(preds == -100, pad, preds)
            hyps = tokenizer.batch_decode(preds, skip_special_tokens=True)
            refs = tokenizer.batch_decode(label_ids, skip_special_tokens=True)
        else:
            hyps = [from_units(x, unit) for x in tokenizer.batch_decode(np.argmax(preds, axis=-1))]
            refs = [from_units(x, unit) for x in tokenizer.batch_decode(label_ids, group_tokens=False)]
        return {"cer": corpus_cer(refs, hyps)}

    return compute


def build(recipe: Recipe, out_dir: Path, cache_dir: Path, splits: dict[str, SplitData] | None = None) -> Setup:
    """Data, model and Trainer for a recipe (stages 2-4). With `splits` given, only those are used (scoring)."""
    t, m = recipe.train, recipe.model
    if t.threads:
        torch.set_num_threads(t.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = ClipSource(Augmenter(recipe.augment) if recipe.augment.enabled else None, t.seed)
    eval_clips = ClipSource(None, t.seed)
    cached = t.encoder_cache_layer > 0
    packed = packs_audio(recipe)
    has_dev = splits is None or "dev" in splits
    args = training_arguments(recipe, out_dir, has_dev=has_dev, cached=cached or packed)
    main = args.process_index == 0
    if m.family == "whisper":
        model, processor = load_whisper(recipe)
        freeze_whisper(model, recipe)
    if splits is None:
        tokenizer = processor.tokenizer if m.family == "whisper" else None
        splits = {"train": load_training_split(recipe, recipe.data.train_split, tokenizer),
                  "dev": load_training_split(recipe, recipe.data.dev_split, tokenizer,
                                             recipe.data.max_dev_utterances)}
        for split in splits.values():
            if main:
                print("data: " + describe(split))
        splits["train"] = weigh_reviewed(recipe, splits["train"], verbose=main)
        if recipe.augment.enabled and recipe.augment.bank_sentences:
            held_out = [text for name in (recipe.data.dev_split, recipe.data.test_split)
                        if any((Path(recipe.data.prep_dir) / "dataset" / name).glob("*.parquet"))
                        for text in load_split(recipe.data.prep_dir, name)["raw_text"]]
            with args.main_process_first(desc="text-bank speech"):  # spoken once, read by the others
                splits["train"] = add_bank_speech(recipe, splits["train"], held_out, cache_dir, verbose=main)
    if m.family == "wav2vec2":
        with args.main_process_first(desc="CTC vocabulary"):
            model, processor = load_ctc(recipe, build_vocab(list(splits["train"].dataset["target"]),
                                                            m.vocab_unit), out_dir)

    if cached:
        model.to(args.device)  # the frozen layers run on the training device, not on the CPU before the Trainer
        with args.main_process_first(desc="encoder cache"):  # computed once, loaded by the others
            datasets = {name: cache_states(model, processor, recipe, split,
                                           clips if name == "train" else eval_clips, cache_dir,
                                           training=name == "train", verbose=main)
                        for name, split in splits.items()}
        collator = eval_collator = collate_cached
    elif packed:
        datasets = {name: audio_windows(recipe, processor, split, clips if name == "train" else eval_clips,
                                        training=name == "train") for name, split in splits.items()}
        collator = eval_collator = WindowCollator(processor.feature_extractor.n_samples)
    else:
        datasets = {name: split.dataset for name, split in splits.items()}
        if m.family == "whisper":
            collator, eval_collator = WhisperCollator(processor, clips), WhisperCollator(processor, eval_clips)
        else:
            collator = CTCCollator(processor, clips, m.vocab_unit)
            eval_collator = CTCCollator(processor, eval_clips, m.vocab_unit)
    extra = {"cache_layer": t.encoder_cache_layer} if cached else \
        {"feature_extractor": processor.feature_extractor} if packed else {"eval_collator": eval_collator}
    trainer = (CachedEncoderTrainer if cached else PackedAudioTrainer if packed else KidsTrainer)(
        model=model,
        args=args,
        train_dataset=datasets.get("train"),
        eval_dataset=datasets.get("dev"),
        data_collator=collator,
        processing_class=processor,
        compute_metrics=_metrics_fn(processor, m.family, m.vocab_unit),
        callbacks=[EpochTracker(clips)] + ([TimeBudget(t.max_minutes)] if t.max_minutes else [])
        + ([EarlyStoppingCallback(t.early_stopping_patience)] if args.load_best_model_at_end else [])
        + ([PullToStart(model, t.pull_to_start)] if t.pull_to_start else [])
        + [AgreedStop()],
        **extra,
    )
    return Setup(recipe, trainer, processor, splits, datasets, clips)


def last_checkpoint(out_dir: Path) -> str | None:
    return get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None


def score(setup: Setup, split_name: str) -> float:
    result = setup.trainer.predict(setup.datasets[split_name], metric_key_prefix=split_name)
    return float(result.metrics[f"{split_name}_cer"])


def export_best(setup: Setup, out_dir: Path, results: dict) -> Path:
    """OUT/best (written beside and renamed into place) and, for Whisper, OUT/ct2."""
    recipe, model = setup.recipe, setup.trainer.model
    best = out_dir / "best"
    staging = out_dir / ".best.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    setup.processor.save_pretrained(staging)
    write_model_card(staging, recipe, results)
    shutil.rmtree(best, ignore_errors=True)
    os.replace(staging, best)
    if recipe.model.family == "whisper" and recipe.export.ct2:
        from ..asr.export import export_ct2

        results["ct2"] = str(export_ct2(str(best), out_dir / "ct2", quantization=recipe.export.quantization))
    return best


def train(recipe: Recipe, out_dir: str | Path | None = None, resume: bool = True) -> dict:
    out = Path(out_dir or recipe.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume and last_checkpoint(out) and (out / "recipe.yaml").is_file():
        conflicts = resume_conflicts(yaml.safe_load((out / "recipe.yaml").read_text(encoding="utf-8")) or {}, recipe)
        if conflicts:
            raise RecipeError(f"{out}: its checkpoints were trained with another recipe ({'; '.join(conflicts)}); "
                              "rerun with --no-resume to train from the start, or give another --out")
    started = time.monotonic()
    setup = build(recipe, out, out / "cache")
    main = setup.trainer.is_world_process_zero()
    if main:
        write_text_atomic(out / "recipe.yaml", dump_recipe(recipe))
    alpha, encoder_alpha = recipe.export.weight_ensemble_alpha, recipe.export.weight_ensemble_encoder_alpha
    alpha_by_prefix = {} if encoder_alpha is None else {"model.encoder.": encoder_alpha}
    # the freshly built model, before a resumed run loads its checkpoint: the start model whatever is resumed
    start_weights = snapshot(setup.trainer.model, "cpu") if min([alpha, *alpha_by_prefix.values()]) < 1 else None
    checkpoint = last_checkpoint(out) if resume else None
    if checkpoint and main:
        print(f"train: resuming from {checkpoint}")
    if main:
        print(f"train: {recipe.name}, writing checkpoints and TensorBoard logs under {out}")
    train_started = time.monotonic()
    setup.trainer.train(resume_from_checkpoint=checkpoint)
    train_minutes = (time.monotonic() - train_started) / 60

    results: dict[str, Any] = {
        "recipe": recipe.source, "global_step": setup.trainer.state.global_step,
        "train_minutes": train_minutes, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "data": {k: {"kept": len(s.dataset), "read": s.read, "hours": sum(s.dataset["input_length"]) / 3600}
                 for k, s in setup.splits.items()},
    }
    if "dev" in setup.datasets:
        state = setup.trainer.state
        last_eval = [h for h in state.log_history if "eval_cer" in h and h["step"] == state.global_step]
        results["dev_cer"] = state.best_metric if setup.trainer.args.load_best_model_at_end and \
            state.best_metric is not None else last_eval[-1]["eval_cer"] if last_eval else score(setup, "dev")
        results["dev_curve"] = [(h["step"], h["eval_cer"]) for h in state.log_history if "eval_cer" in h]
    if start_weights is not None:
        interpolate_(setup.trainer.model, start_weights, snapshot(setup.trainer.model), alpha, alpha_by_prefix)
        results["weight_ensemble"] = {"alpha": alpha, **({"encoder_alpha": encoder_alpha} if alpha_by_prefix else {})}
        if main:
            print(f"train: exporting start + alpha x (fine-tuned - start), {ensemble_text(results)}")
    if recipe.export.evaluate_test:
        tokenizer = setup.processor.tokenizer if recipe.model.family == "whisper" else None
        test = load_training_split(recipe, recipe.data.test_split, tokenizer, recipe.data.max_test_utterances)
        if main:
            print("data: " + describe(test))
        setup.splits["test"] = test
        results["data"]["test"] = {"kept": len(test.dataset), "read": test.read,
                                   "hours": sum(test.dataset["input_length"]) / 3600}
        if recipe.train.encoder_cache_layer:
            with setup.trainer.args.main_process_first(desc="encoder cache, test"):
                setup.datasets["test"] = cache_states(setup.trainer.model, setup.processor, recipe, test,
                                                      ClipSource(None, 0), out / "cache", training=False,
                                                      verbose=main)
        elif packs_audio(recipe):
            setup.datasets["test"] = audio_windows(recipe, setup.processor, test, ClipSource(None, 0), training=False)
        else:
            setup.datasets["test"] = test.dataset
        results["test_cer"] = score(setup, "test")
        if recipe.export.evaluate_zero_shot and recipe.model.family == "whisper":
            baseline = build(zero_shot_recipe(recipe), out / "zero-shot", out / "cache", splits={"test": test})
            results["zero_shot_test_cer"] = score(baseline, "test")
            if main:
                shutil.rmtree(out / "zero-shot", ignore_errors=True)
    if not main:  # every process scores (predict gathers), one exports
        return {}
    best = export_best(setup, out, results)
    results["best"] = str(best)
    if recipe.export.evaluate_real_speech:
        results["real_speech"] = score_real(recipe, out, results)
        write_model_card(best, recipe, results)
    results["total_minutes"] = (time.monotonic() - started) / 60
    write_json_atomic(out / "results.json", results)
    return results


def score_real(recipe: Recipe, out: Path, results: dict) -> dict:
    """The exported model (its CTranslate2 copy when there is one) and, for Whisper, zero-shot whisper-base on the
    report half of the real read speech; {"skipped": why} when the set is not found."""
    from ..evaluation.real_score import score_real_speech

    if recipe.model.family == "whisper":
        model, backend = (results["ct2"], "ct2") if results.get("ct2") else (results["best"], "transformers")
        baseline = DEFAULT_MODEL  # the bar every recipe must clear on real speech, whatever it starts from
    else:
        model, backend, baseline = results["best"], "ctc", None
    real = score_real_speech(model, out / "real-speech", baseline, backend, "ct2")
    print(f"train: {real['skipped']}" if "skipped" in real else
          f"train: real read speech ({real['utterances']} clips): CER {100 * real['model']['cer']['estimate']:.1f}%"
          + (f", zero-shot {100 * real['baseline']['cer']['estimate']:.1f}%" if baseline else ""))
    return real


def zero_shot_recipe(recipe: Recipe) -> Recipe:
    """The recipe's starting model untrained, for the zero-shot row: in the recipe's encoder window (the data is
    cut to it) but with its whole decoder (a student's pruned decoder is only an initialisation)."""
    return replace(recipe, model=replace(recipe.model, decoder_layers=[]))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="YAML recipe (recipes/*.yaml)")
    parser.add_argument("--data", help="prepared data folder (`kidsasr prep --out`); overrides data.prep_dir")
    parser.add_argument("--out", help="output folder; overrides train.output_dir")
    parser.add_argument("--no-resume", action="store_true",
                        help="start from scratch even when OUT holds checkpoints (default: resume from the last)")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help="recipe overrides, e.g. train.max_steps=20 augment.enabled=false")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.prep_dir={args.data}")
    if args.out:
        overrides.append(f"train.output_dir={args.out}")
    try:
        recipe = load_recipe(args.recipe, overrides)
    except RecipeError as e:
        print(f"kidsasr train: {e}", file=sys.stderr)
        return 2
    out = Path(recipe.train.output_dir)
    # one run per output folder; under accelerate/torchrun only the first process takes the lock
    first = int(os.environ.get("RANK", "0")) == 0
    try:
        with run_lock(out, "train") if first else contextlib.nullcontext():
            if first:
                remove_stale_parts(out)
                if args.no_resume:  # else a later resume of this run could pick up a checkpoint of the old one
                    for old in sorted(out.glob("checkpoint-*")):
                        print(f"kidsasr train: --no-resume: removing {old}")
                        shutil.rmtree(old)
            results = train(recipe, resume=not args.no_resume)
    except (BusyError, RecipeError) as e:
        print(f"kidsasr train: {e}", file=sys.stderr)
        return 2
    if results:
        pct = {k: f"{100 * v:.1f}%" for k, v in results.items() if k.endswith("_cer")}
        print(f"train: done in {results['total_minutes']:.1f} min ({results['train_minutes']:.1f} min training, "
              f"{results['global_step']} steps); CER {pct}; model in {results['best']}")
    return 0
