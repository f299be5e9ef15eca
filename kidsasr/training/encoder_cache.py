"""The frozen lower Whisper encoder run once per packed window, its states cached, and a Trainer that trains
the upper layers and the decoder from the cache (exact: the frozen layers see the same input)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from transformers import (Seq2SeqTrainer)
from transformers.modeling_outputs import BaseModelOutput

from ..constants import SAMPLE_RATE
from ..fileio import atomic_path
from .collators import ClipSource, pad_labels
from .data import SplitData, whisper_labels
from .recipe import Recipe


def pack_utterances(durations: list[float], token_counts: list[int], max_seconds: float, gap: float,
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
            groups = pack_utterances([ds[int(i)]["input_length"] for i in order], [token_counts[i] for i in order],
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
