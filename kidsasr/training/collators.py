"""Batches for the Trainer: clips decoded (and augmented, deterministically per epoch) into features and
padded labels."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..manifest import decode_audio
from .augment import Augmenter
from .data import to_units, whisper_labels


def pad_labels(label_lists: list[list[int]]) -> torch.Tensor:
    width = max(len(x) for x in label_lists)
    out = torch.full((len(label_lists), width), -100, dtype=torch.long)
    for i, ids in enumerate(label_lists):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


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
