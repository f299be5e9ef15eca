"""`kidsasr train`: fine-tune Whisper (seq2seq) or wav2vec2 (CTC) from a YAML recipe.

Stages, in order:
  1. recipe    read and validate the recipe (kidsasr.recipe); overrides `SECTION.KEY=VALUE` on the command line
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
    accelerate launch --num_processes 8 -m kidsasr.cli train --recipe recipes/whisper_small_kids.yaml --data PREP
    torchrun --nproc_per_node 8 -m kidsasr.cli train --recipe recipes/whisper_small_kids.yaml --data PREP
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from transformers import (EarlyStoppingCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback,
                          Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor,
                          WhisperForConditionalGeneration, WhisperProcessor)
from transformers.modeling_outputs import BaseModelOutput
from transformers.trainer_utils import get_last_checkpoint

from .audio import SAMPLE_RATE
from .augment import Augmenter, bank_speech
from .fileio import atomic_path, write_json_atomic, write_text_atomic
from .manifest import decode_audio, load_split
from .metrics import score as score_texts
from .recipe import Recipe, RecipeError, dump_recipe, load_recipe
from .textnorm import normalize_for_cer, parse_label

PAD_CHAR, UNK_CHAR, WORD_DELIMITER = "[PAD]", "[UNK]", "|"


# ---------------------------------------------------------------------------------------------- text and scoring
def corpus_cer(refs: list[str], hyps: list[str]) -> float:
    """Corpus CER (total edits / total reference characters) under the project's scoring normalisation."""
    return score_texts([str(i) for i in range(len(refs))], refs, hyps, with_confusions=False).char.rate


def to_units(text: str, unit: str) -> str:
    """CTC target text: one symbol per Hangul syllable, or per conjoining jamo (Unicode NFD) with `jamo`."""
    text = " ".join(text.split())
    return unicodedata.normalize("NFD", text) if unit == "jamo" else text


def from_units(text: str, unit: str) -> str:
    return unicodedata.normalize("NFC", text) if unit == "jamo" else text


def build_vocab(texts: list[str], unit: str = "syllable") -> dict[str, int]:
    """CTC vocabulary from the training text: [PAD] (also the CTC blank) = 0, [UNK] = 1, word delimiter `|` = 2,
    then every symbol seen, sorted so the same text always gives the same ids."""
    symbols = sorted({ch for t in texts for ch in to_units(t, unit) if not ch.isspace()})
    if not symbols:
        raise ValueError("cannot build a CTC vocabulary: the training text is empty")
    vocab = {PAD_CHAR: 0, UNK_CHAR: 1, WORD_DELIMITER: 2}
    for ch in symbols:
        vocab.setdefault(ch, len(vocab))
    return vocab


def whisper_labels(tokenizer, text: str) -> list[int]:
    """Token ids for one transcript with the language/task prefix set on the tokenizer, minus the leading
    start-of-transcript token (the model prepends it to the decoder inputs itself):
    <|ko|> <|transcribe|> <|notimestamps|> text... <|endoftext|>."""
    ids = tokenizer(text).input_ids
    if ids and ids[0] == tokenizer.convert_tokens_to_ids("<|startoftranscript|>"):
        ids = ids[1:]
    return ids


def pad_labels(label_lists: list[list[int]]) -> torch.Tensor:
    width = max(len(x) for x in label_lists)
    out = torch.full((len(label_lists), width), -100, dtype=torch.long)
    for i, ids in enumerate(label_lists):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def pack_windows(durations: list[float], token_counts: list[int], max_seconds: float, gap: float,
                 max_tokens: int) -> list[list[int]]:
    """Greedy packing of consecutive items into windows of at most `max_seconds` (gaps included) and
    `max_tokens` label tokens (one joining space per item); an item longer than the window stands alone."""
    windows: list[list[int]] = []
    current: list[int] = []
    seconds = tokens = 0.0
    for i, (dur, n) in enumerate(zip(durations, token_counts)):
        extra = dur + (gap if current else 0.0)
        if current and (seconds + extra > max_seconds or tokens + n + 1 > max_tokens):
            windows.append(current)
            current, seconds, tokens = [], 0.0, 0.0
            extra = dur
        current.append(i)
        seconds += extra
        tokens += n + 1
    if current:
        windows.append(current)
    return windows


# ---------------------------------------------------------------------------------------------- data
@dataclass
class SplitData:
    name: str
    dataset: Any  # datasets.Dataset with an `input_length` column (seconds) and a `target` column (text)
    read: int
    rejected: dict[str, int]


def _with_targets(recipe: Recipe, ds):
    """Adds `target` (what the model learns) and `input_length` (seconds) columns. CTC learns the scored
    characters only (no punctuation, numbers spelled); Whisper learns the text as written."""
    if recipe.model.family == "wav2vec2":
        def as_target(x: str) -> str:
            return normalize_for_cer(x, keep_spaces=True)
    else:
        def as_target(x: str) -> str:
            return " ".join(x.split())
    ds = ds.add_column("target", [as_target(str(x or "")) for x in ds[recipe.data.text_field]])
    return ds.add_column("input_length", [float(e) - float(s) for s, e in zip(ds["start"], ds["end"])])


def load_training_split(recipe: Recipe, split: str, tokenizer=None, limit: int = 0) -> SplitData:
    """One prepared split, minus what cannot train, with the reasons counted (kept + rejected = read)."""
    d = recipe.data
    ds = _with_targets(recipe, load_split(d.prep_dir, split))
    read = len(ds)
    reasons: dict[str, int] = {}

    def reason_of(target: str, length: float) -> str | None:
        if not normalize_for_cer(target):
            return "no scorable text"
        if length < d.min_duration:
            return f"shorter than {d.min_duration} s"
        if length > d.max_duration:
            return f"longer than {d.max_duration} s"
        if tokenizer is not None and len(whisper_labels(tokenizer, target)) > d.max_label_tokens:
            return f"label over {d.max_label_tokens} tokens"
        return None

    verdicts = [reason_of(t, n) for t, n in zip(ds["target"], ds["input_length"])]
    for v in verdicts:
        if v:
            reasons[v] = reasons.get(v, 0) + 1
    keep = [i for i, v in enumerate(verdicts) if v is None]
    if not keep:
        raise ValueError(f"{d.prep_dir}: split {split!r}: all {read} utterances rejected ({reasons})")
    if limit and len(keep) > limit:
        step = len(keep) / limit  # an even spread over episodes, not the first few
        picked = [keep[int(i * step)] for i in range(limit)]
        reasons["over the evaluation limit"] = len(keep) - limit
        keep = picked
    ds = ds.select(keep)
    assert len(ds) + sum(reasons.values()) == read
    return SplitData(split, ds, read, reasons)


def add_bank_speech(recipe: Recipe, train: SplitData, held_out: list[str], cache_dir: Path) -> SplitData:
    """The training split plus `augment.bank_sentences` utterances spoken from the text bank (kidsasr.augment),
    none of whose sentences occurs in the held-out splits; written once to the cache folder and reused."""
    import datasets

    count = recipe.augment.bank_sentences
    path = cache_dir / f"bank-speech-{recipe.train.seed}-{count}.parquet"
    if not path.is_file():
        from tqdm import tqdm

        exclude = {normalize_for_cer(t) for t in held_out}
        rows = []
        for n, (label, audio) in enumerate(tqdm(bank_speech(count, exclude, recipe.train.seed), total=count,
                                                desc="augment: speaking text-bank sentences", unit="sentence")):
            transcript = parse_label(label)
            buf = io.BytesIO()
            sf.write(buf, audio, SAMPLE_RATE, format="FLAC")
            rows.append({"id": f"bank_{n:05d}", "raw_text": label, "text": transcript.spelling,
                         "text_pron": transcript.pronunciation, "start": 0.0, "end": len(audio) / SAMPLE_RATE,
                         "audio": {"bytes": buf.getvalue(), "path": None}})
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            datasets.Dataset.from_list(rows).to_parquet(str(tmp))
    extra = datasets.load_dataset("parquet", data_files=str(path), split="train")
    extra = _with_targets(recipe, extra.cast_column("audio", datasets.Audio(decode=False)))
    extra = extra.filter(lambda t: bool(normalize_for_cer(t)), input_columns="target")
    columns = ["id", "raw_text", "audio", "target", "input_length"]
    merged = datasets.concatenate_datasets([train.dataset.select_columns(columns), extra.select_columns(columns)])
    print(f"augment: {len(extra)} text-bank utterances added to {len(train.dataset)} from the corpus")
    return SplitData(train.name, merged, train.read + len(extra), train.rejected)


def describe(split: SplitData) -> str:
    hours = sum(split.dataset["input_length"]) / 3600
    dropped = ", ".join(f"{n} {why}" for why, n in split.rejected.items()) or "none"
    return f"{split.name}: {len(split.dataset)} of {split.read} utterances kept ({hours:.2f} h); dropped: {dropped}"


class ClipSource:
    """Decodes (and, for training, augments) clips; the augmentation draw is a pure function of
    (seed, utterance id, epoch), so a resumed run sees the same audio as an uninterrupted one."""

    def __init__(self, augmenter: Augmenter | None, seed: int):
        self.augmenter = augmenter
        self.seed = seed
        self.epoch = 0

    def __call__(self, row: dict) -> np.ndarray:
        audio = decode_audio(row["audio"])
        if self.augmenter is None:
            return audio
        digest = hashlib.sha256(f"{self.seed}:{self.epoch}:{row['id']}".encode()).digest()
        return self.augmenter(audio, np.random.default_rng(int.from_bytes(digest[:8], "little")))


class WhisperCollator:
    def __init__(self, processor, clips: ClipSource):
        self.processor = processor
        self.clips = clips

    def __call__(self, rows: list[dict]) -> dict:
        audio = [self.clips(r) for r in rows]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        labels = pad_labels([whisper_labels(self.processor.tokenizer, r["target"]) for r in rows])
        return {"input_features": features.input_features, "labels": labels}


class CTCCollator:
    def __init__(self, processor, clips: ClipSource, unit: str):
        self.processor = processor
        self.clips = clips
        self.unit = unit

    def __call__(self, rows: list[dict]) -> dict:
        audio = [self.clips(r) for r in rows]
        batch = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, padding=True,
                                                 return_attention_mask=True, return_tensors="pt")
        labels = pad_labels([self.processor.tokenizer(to_units(r["target"], self.unit)).input_ids for r in rows])
        return {"input_values": batch.input_values, "attention_mask": batch.attention_mask, "labels": labels}


# ---------------------------------------------------------------------------------------------- encoder cache
def encode_lower(model, input_features: torch.Tensor, layers: int) -> torch.Tensor:
    """Whisper encoder up to and including layer `layers` (1-based), before the final layer norm."""
    enc = model.get_encoder()
    x = torch.nn.functional.gelu(enc.conv1(input_features))
    x = torch.nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
    x = x + enc.embed_positions.weight[: x.shape[1]]
    for layer in enc.layers[:layers]:
        x = layer(x, None)
    return x


def encode_upper(model, states: torch.Tensor, layers: int):
    """The rest of the encoder from cached states: layers after `layers`, then the final layer norm."""
    enc = model.get_encoder()
    x = states.to(enc.layer_norm.weight.dtype)
    for layer in enc.layers[layers:]:
        x = layer(x, None)
    return BaseModelOutput(last_hidden_state=enc.layer_norm(x))


class CachedStates(torch.utils.data.Dataset):
    def __init__(self, states: torch.Tensor, labels: list[list[int]]):
        self.states, self.labels = states, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"encoder_state": self.states[i], "labels": self.labels[i]}


def collate_cached(rows: list[dict]) -> dict:
    return {"encoder_state": torch.stack([r["encoder_state"] for r in rows]),
            "labels": pad_labels([r["labels"] for r in rows])}


def cache_states(model, processor, recipe: Recipe, split: SplitData, clips: ClipSource, cache_dir: Path,
                 training: bool) -> CachedStates:
    """Run the frozen lower encoder once per (packed) window and keep the states (float16, on disk too, so a
    restarted run reuses them)."""
    from tqdm import tqdm

    d, t = recipe.data, recipe.train
    ds = split.dataset
    tokenizer = processor.tokenizer
    copies = recipe.augment.copies if training else 1
    key = json.dumps([recipe.model.name_or_path, recipe.model.encoder_seconds, t.encoder_cache_layer,
                      recipe.to_dict()["data"],
                      recipe.to_dict()["augment"] if training else None, t.seed, split.name, list(ds["id"])])
    path = cache_dir / f"{split.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if path.is_file():
        saved = torch.load(path)
        print(f"cache: reusing {path} ({len(saved['labels'])} windows)")
        return CachedStates(saved["states"], saved["labels"])

    windows: list[tuple[list[int], int]] = []  # (row indices, augmentation copy)
    token_counts = [len(whisper_labels(tokenizer, x)) - 3 for x in ds["target"]]  # text tokens + end token
    for copy in range(copies):
        order = np.random.default_rng([t.seed, copy]).permutation(len(ds)) if training else np.arange(len(ds))
        if training and d.pack_seconds > 0:
            groups = pack_windows([ds[int(i)]["input_length"] for i in order], [token_counts[i] for i in order],
                                  d.pack_seconds, d.pack_gap, d.max_label_tokens - 3)
            windows += [([int(order[j]) for j in g], copy) for g in groups]
        else:
            windows += [([int(i)], copy) for i in order]
    gap = np.zeros(int(d.pack_gap * SAMPLE_RATE), dtype=np.float32)
    states, labels = [], []
    batch_audio: list[np.ndarray] = []
    model.eval()

    def flush() -> None:
        feats = processor.feature_extractor(batch_audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.no_grad():
            states.append(encode_lower(model, feats.input_features.to(model.device), t.encoder_cache_layer)
                          .to("cpu", torch.float16))
        batch_audio.clear()

    for rows, copy in tqdm(windows, desc=f"cache: encoder layers 1-{t.encoder_cache_layer}, {split.name}",
                           unit="window"):
        clips.epoch = copy
        pieces = []
        for j, i in enumerate(rows):
            pieces += ([gap] if j else []) + [clips(ds[i])]
        batch_audio.append(np.concatenate(pieces)[: processor.feature_extractor.n_samples])
        labels.append(whisper_labels(tokenizer, " ".join(ds[i]["target"] for i in rows)))
        if len(batch_audio) == t.eval_batch_size:
            flush()
    if batch_audio:
        flush()
    cached = CachedStates(torch.cat(states), labels)
    with atomic_path(path) as tmp:
        torch.save({"states": cached.states, "labels": labels}, tmp)
    return cached


class CachedEncoderTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer whose batches hold cached lower-encoder states instead of log-mel features."""

    def __init__(self, *args, cache_layer: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache_layer = cache_layer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        encoded = encode_upper(model, inputs["encoder_state"], self.cache_layer)
        outputs = model(encoder_outputs=encoded, labels=inputs["labels"])
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            encoded = encode_upper(model, inputs["encoder_state"], self.cache_layer)
            loss = model(encoder_outputs=encoded, labels=inputs["labels"]).loss.detach()
            if prediction_loss_only:
                return loss, None, None
            tokens = model.generate(encoder_outputs=encoded)
        return loss, tokens, inputs["labels"]


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


# ---------------------------------------------------------------------------------------------- models
def load_whisper(recipe: Recipe):
    m = recipe.model
    name = m.name_or_path
    processor = WhisperProcessor.from_pretrained(name)
    processor.tokenizer.set_prefix_tokens(language=m.language, task=m.task, predict_timestamps=False)
    if processor.tokenizer.pad_token is None:  # hub copies name <|endoftext|>; without one, transformers 5.17's
        processor.tokenizer.pad_token = processor.tokenizer.eos_token  # Trainer unsets the model's pad_token_id
    spec_augment = m.mask_time_prob > 0 or m.mask_feature_prob > 0
    model = WhisperForConditionalGeneration.from_pretrained(
        name, apply_spec_augment=spec_augment, mask_time_prob=m.mask_time_prob, mask_time_length=m.mask_time_length,
        mask_feature_prob=m.mask_feature_prob, mask_feature_length=m.mask_feature_length, dropout=m.dropout)
    if m.decoder_layers:
        shrink_decoder(model, m.decoder_layers)
    if m.encoder_seconds:
        shorten_encoder_window(model, processor.feature_extractor, m.encoder_seconds)
    window = processor.feature_extractor.chunk_length
    if max(recipe.data.max_duration, recipe.data.pack_seconds) > window:
        raise RecipeError(f"{name} reads {window} s windows: set data.max_duration and data.pack_seconds to at most "
                          f"{window} (or model.encoder_seconds)")
    gen = model.generation_config
    gen.language, gen.task, gen.forced_decoder_ids = m.language, m.task, None
    gen.max_new_tokens, gen.num_beams = recipe.train.max_new_tokens, recipe.train.num_beams
    gen.max_length = None
    model.config.forced_decoder_ids = None
    return model, processor


def shrink_decoder(model, keep: list[int]) -> None:
    """Keep only decoder layers `keep` (increasing indices), in place: distil-whisper's student initialisation.

    The word-timestamp alignment heads that sat in kept layers are renumbered; when none did, every head of the
    last kept layer is used (what CTranslate2 and transformers assume for a model without a list).
    """
    layers = model.model.decoder.layers
    if not keep or max(keep) >= len(layers):
        raise RecipeError(f"model.decoder_layers: {keep} is not a subset of the model's {len(layers)} decoder layers")
    model.model.decoder.layers = torch.nn.ModuleList([layers[k] for k in keep])
    for new, layer in enumerate(model.model.decoder.layers):
        for attention in (layer.self_attn, layer.encoder_attn):
            attention.layer_idx = new  # the key/value cache is indexed by it
    model.config.decoder_layers = len(keep)
    gen = model.generation_config
    heads = [[keep.index(layer), head] for layer, head in getattr(gen, "alignment_heads", None) or [] if layer in keep]
    gen.alignment_heads = heads or [[len(keep) - 1, h] for h in range(model.config.decoder_attention_heads)]


def shorten_encoder_window(model, feature_extractor, seconds: float) -> None:
    """Make the encoder read `seconds` of audio instead of 30, in place (its first positions are kept).

    Every clip is padded to the encoder's window, and self-attention over the window grows with its square: on a
    CPU, two 15 s windows encode in about half the time of one 30 s window (see eval/RESULTS.md). A Whisper
    checkpoint reads a shorter window at once, but less accurately until it is fine-tuned with it.
    """
    encoder = model.model.encoder
    positions = round(seconds * SAMPLE_RATE / feature_extractor.hop_length / 2)  # the encoder halves the frames
    current = encoder.embed_positions.num_embeddings
    if seconds != int(seconds) or not 0 < positions <= current:
        raise RecipeError(f"model.encoder_seconds: {seconds} must be a whole number of seconds in 1.."
                          f"{current * 2 * feature_extractor.hop_length // SAMPLE_RATE}")
    embed = torch.nn.Embedding(positions, model.config.d_model)
    embed.weight.data.copy_(encoder.embed_positions.weight.data[:positions])
    embed.requires_grad_(False)  # Whisper's sinusoidal positions stay fixed, as in the original
    encoder.embed_positions = embed
    model.config.max_source_positions = positions
    feature_extractor.chunk_length = int(seconds)
    feature_extractor.n_samples = int(seconds) * feature_extractor.sampling_rate
    feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length


def freeze_whisper(model, recipe: Recipe) -> None:
    m = recipe.model
    enc = model.get_encoder()
    if m.frozen_encoder_layers:
        for module in (enc.conv1, enc.conv2, *enc.layers[: m.frozen_encoder_layers]):
            module.requires_grad_(False)
    if m.freeze_decoder:
        model.get_decoder().requires_grad_(False)
        model.proj_out.requires_grad_(False)


def ctc_processor(vocab: dict[str, int], out_dir: Path) -> Wav2Vec2Processor:
    """Character tokenizer (vocabulary saved as OUT/vocab.json) and feature extractor for CTC."""
    vocab_file = out_dir / "vocab.json"
    write_json_atomic(vocab_file, vocab)
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), unk_token=UNK_CHAR, pad_token=PAD_CHAR, bos_token=None,
                                     eos_token=None, word_delimiter_token=WORD_DELIMITER)
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                        do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer)


def load_ctc(recipe: Recipe, vocab: dict[str, int], out_dir: Path):
    m = recipe.model
    processor = ctc_processor(vocab, out_dir)
    model = Wav2Vec2ForCTC.from_pretrained(
        m.name_or_path, vocab_size=len(vocab), pad_token_id=vocab[PAD_CHAR], ctc_loss_reduction="mean",
        ctc_zero_infinity=True, mask_time_prob=m.mask_time_prob, mask_time_length=m.mask_time_length,
        mask_feature_prob=m.mask_feature_prob, mask_feature_length=m.mask_feature_length,
        hidden_dropout=m.dropout, ignore_mismatched_sizes=True)
    if m.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if m.frozen_encoder_layers:
        for layer in model.wav2vec2.encoder.layers[: m.frozen_encoder_layers]:
            layer.requires_grad_(False)
    return model, processor


# ---------------------------------------------------------------------------------------------- trainer
class TimeBudget(TrainerCallback):
    """Stops training (with a save and an evaluation) once `minutes` of this process's training have passed."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.deadline = math.inf

    def on_train_begin(self, args, state, control, **kwargs):
        self.deadline = time.monotonic() + self.minutes * 60

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() > self.deadline:
            print(f"train: time budget of {self.minutes} min reached at step {state.global_step}")
            control.should_training_stop = control.should_save = control.should_evaluate = True


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
    if m.family == "whisper":
        model, processor = load_whisper(recipe)
        freeze_whisper(model, recipe)
    if splits is None:
        tokenizer = processor.tokenizer if m.family == "whisper" else None
        splits = {"train": load_training_split(recipe, recipe.data.train_split, tokenizer),
                  "dev": load_training_split(recipe, recipe.data.dev_split, tokenizer,
                                             recipe.data.max_dev_utterances)}
        for split in splits.values():
            print("data: " + describe(split))
        if recipe.augment.enabled and recipe.augment.bank_sentences:
            held_out = [text for name in (recipe.data.dev_split, recipe.data.test_split)
                        if any((Path(recipe.data.prep_dir) / "dataset" / name).glob("*.parquet"))
                        for text in load_split(recipe.data.prep_dir, name)["raw_text"]]
            splits["train"] = add_bank_speech(recipe, splits["train"], held_out, cache_dir)
    if m.family == "wav2vec2":
        model, processor = load_ctc(recipe, build_vocab(list(splits["train"].dataset["target"]), m.vocab_unit),
                                    out_dir)

    packed = packs_audio(recipe)
    if cached:
        datasets = {name: cache_states(model, processor, recipe, split, clips if name == "train" else eval_clips,
                                       cache_dir, training=name == "train") for name, split in splits.items()}
        collator = eval_collator = collate_cached
    elif packed:
        from .packed import WindowCollator

        datasets = {name: audio_windows(recipe, processor, split, clips if name == "train" else eval_clips,
                                        training=name == "train") for name, split in splits.items()}
        collator = eval_collator = WindowCollator(processor.feature_extractor.n_samples, pad_labels)
    else:
        datasets = {name: split.dataset for name, split in splits.items()}
        if m.family == "whisper":
            collator, eval_collator = WhisperCollator(processor, clips), WhisperCollator(processor, eval_clips)
        else:
            collator = CTCCollator(processor, clips, m.vocab_unit)
            eval_collator = CTCCollator(processor, eval_clips, m.vocab_unit)
    has_dev = "dev" in datasets
    extra = {"cache_layer": t.encoder_cache_layer} if cached else \
        {"feature_extractor": processor.feature_extractor} if packed else {"eval_collator": eval_collator}
    args = training_arguments(recipe, out_dir, has_dev=has_dev, cached=cached or packed)
    trainer_class = CachedEncoderTrainer if cached else KidsTrainer
    if packed:
        from .packed import PackedAudioTrainer as trainer_class
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=datasets.get("train"),
        eval_dataset=datasets.get("dev"),
        data_collator=collator,
        processing_class=processor,
        compute_metrics=_metrics_fn(processor, m.family, m.vocab_unit),
        callbacks=[EpochTracker(clips)] + ([TimeBudget(t.max_minutes)] if t.max_minutes else [])
        + ([EarlyStoppingCallback(t.early_stopping_patience)] if args.load_best_model_at_end else []),
        **extra,
    )
    return Setup(recipe, trainer, processor, splits, datasets, clips)


def packs_audio(recipe: Recipe) -> bool:
    """Whisper trained on raw audio packed into windows, features made on the device (kidsasr.packed)."""
    return recipe.model.family == "whisper" and recipe.train.encoder_cache_layer == 0 and recipe.data.pack_seconds > 0


def audio_windows(recipe: Recipe, processor, split: SplitData, clips: ClipSource, training: bool):
    """A split as kidsasr.packed.AudioWindows: training utterances packed into windows, others one per window."""
    from .packed import AudioWindows, plan_windows

    ds = split.dataset
    groups, labels = plan_windows(list(ds["input_length"]), list(ds["target"]), processor.tokenizer, recipe.data,
                                  recipe.train.seed, pack=training)
    return AudioWindows(ds, groups, labels, clips, recipe.data.pack_gap, processor.feature_extractor.n_samples)


def last_checkpoint(out_dir: Path) -> str | None:
    return get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None


# ---------------------------------------------------------------------------------------------- evaluation and export
def score(setup: Setup, split_name: str) -> float:
    result = setup.trainer.predict(setup.datasets[split_name], metric_key_prefix=split_name)
    return float(result.metrics[f"{split_name}_cer"])


def write_model_card(path: Path, recipe: Recipe, results: dict) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    data = results["data"]
    lines = [
        f"# {recipe.name}: {recipe.model.name_or_path} fine-tuned on Korean children's broadcast speech", "",
        recipe.description.strip(), "",
        "## Data", "",
        f"Prepared corpus: `{recipe.data.prep_dir}` (kidsasr prep), text field `{recipe.data.text_field}`."
        + (f" The train row includes {recipe.augment.bank_sentences} utterances spoken from the kidsasr text bank"
           " (sentences that occur in dev or test excluded)." if recipe.augment.enabled and
           recipe.augment.bank_sentences else ""), "",
        "| split | utterances kept | of read | hours |", "| --- | --- | --- | --- |",
        *[f"| {k} | {v['kept']} | {v['read']} | {v['hours']:.2f} |" for k, v in data.items()], "",
        "## Results (CER, kidsasr scoring normalisation)", "",
        "| model | dev CER | test CER |", "| --- | --- | --- |",
        f"| zero-shot `{recipe.model.name_or_path}` | - | {pct(results.get('zero_shot_test_cer'))} |",
        f"| this model | {pct(results.get('dev_cer'))} | {pct(results.get('test_cer'))} |", "",
        f"Training: {results['global_step']} steps, {results['train_minutes']:.1f} min "
        f"({results['device']}).", "",
        "## Recipe", "", "```yaml", dump_recipe(recipe).rstrip(), "```", "",
        "## Use", "",
        "```python\nfrom kidsasr.models import load_recognizer\n"
        f"recognizer = load_recognizer(\"{path.parent.name}/best\", backend=\"transformers\")\n```", "",
    ]
    write_text_atomic(path / "README.md", "\n".join(lines))


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
        from .export import export_ct2

        results["ct2"] = str(export_ct2(str(best), out_dir / "ct2", quantization=recipe.export.quantization))
    return best


# ---------------------------------------------------------------------------------------------- the stage
def train(recipe: Recipe, out_dir: str | Path | None = None, resume: bool = True) -> dict:
    out = Path(out_dir or recipe.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "recipe.yaml", dump_recipe(recipe))
    started = time.monotonic()
    setup = build(recipe, out, out / "cache")
    checkpoint = last_checkpoint(out) if resume else None
    if checkpoint:
        print(f"train: resuming from {checkpoint}")
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
    if recipe.export.evaluate_test:
        tokenizer = setup.processor.tokenizer if recipe.model.family == "whisper" else None
        test = load_training_split(recipe, recipe.data.test_split, tokenizer, recipe.data.max_test_utterances)
        print("data: " + describe(test))
        setup.splits["test"] = test
        results["data"]["test"] = {"kept": len(test.dataset), "read": test.read,
                                   "hours": sum(test.dataset["input_length"]) / 3600}
        if recipe.train.encoder_cache_layer:
            setup.datasets["test"] = cache_states(setup.trainer.model, setup.processor, recipe, test,
                                                  ClipSource(None, 0), out / "cache", training=False)
        elif packs_audio(recipe):
            setup.datasets["test"] = audio_windows(recipe, setup.processor, test, ClipSource(None, 0), training=False)
        else:
            setup.datasets["test"] = test.dataset
        results["test_cer"] = score(setup, "test")
        if recipe.export.evaluate_zero_shot and recipe.model.family == "whisper":
            baseline = build(zero_shot_recipe(recipe), out / "zero-shot", out / "cache", splits={"test": test})
            results["zero_shot_test_cer"] = score(baseline, "test")
            shutil.rmtree(out / "zero-shot", ignore_errors=True)
    if not setup.trainer.is_world_process_zero():  # every process scores (predict gathers), one exports
        return {}
    best = export_best(setup, out, results)
    results["best"] = str(best)
    results["total_minutes"] = (time.monotonic() - started) / 60
    write_json_atomic(out / "results.json", results)
    return results


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
        print(f"kidsasr train: {e}")
        return 2
    results = train(recipe, resume=not args.no_resume)
    if results:
        pct = {k: f"{100 * v:.1f}%" for k, v in results.items() if k.endswith("_cer")}
        print(f"train: done in {results['total_minutes']:.1f} min ({results['train_minutes']:.1f} min training, "
              f"{results['global_step']} steps); CER {pct}; model in {results['best']}")
    return 0
