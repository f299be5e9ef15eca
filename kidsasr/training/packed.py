"""Whisper training on packed audio windows with log-mel features computed on the training device.

The GPU path of `kidsasr train` (Whisper, `data.pack_seconds > 0`, no encoder cache). Whisper's encoder always
reads a full window (30 s for a hub checkpoint), so an utterance of 4 s costs as much encoder work as one of
30 s. Packing consecutive utterances (with `data.pack_gap` of silence between them) into windows of at most
`data.pack_seconds` fills that window: a step of B windows trains on several times B utterances for about the
cost of B, and the decoder reads one long label per window instead of mostly padding.

The data loader's workers only decode (and augment) audio and join it into windows; the log-mel spectrogram
of the whole batch is computed in one go on the training device (`log_mel`, the same arithmetic as the
feature extractor's own torch path), so the CPU work per window is a FLAC decode and a copy.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Seq2SeqTrainer

from ..constants import SAMPLE_RATE
from .collators import ClipSource, pad_labels
from .data import SplitData, whisper_labels
from .encoder_cache import pack_utterances
from .recipe import Recipe


def log_mel(audio: torch.Tensor, feature_extractor) -> torch.Tensor:
    """Whisper log-mel features of a batch of windows (B, n_samples) on the audio's own device, in float32.

    What `WhisperFeatureExtractor._torch_extract_fbank_features` computes (no dither), kept on the device:
    power STFT, mel filter bank, log10, an 8-decade floor under each window's maximum, then (x + 4) / 4.
    """
    fe = feature_extractor
    with torch.autocast(device_type=audio.device.type, enabled=False):
        waveform = audio.float()
        window = torch.hann_window(fe.n_fft, device=waveform.device)
        stft = torch.stft(waveform, fe.n_fft, fe.hop_length, window=window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        filters = torch.as_tensor(fe.mel_filters, dtype=torch.float32, device=waveform.device)
        log_spec = torch.clamp(filters.T @ power, min=1e-10).log10()
        floor = log_spec.amax(dim=(1, 2), keepdim=True) - 8.0
        return (torch.maximum(log_spec, floor) + 4.0) / 4.0


def plan_windows(lengths: list[float], targets: list[str], tokenizer, data, seed: int, copy: int = 0,
                 pack: bool = True) -> tuple[list[list[int]], list[list[int]]]:
    """Row indices and label ids of each window. Packing (`pack` and `data.pack_seconds > 0`) takes the rows in a
    seeded random order (one per augmentation copy) and fills windows of at most `data.pack_seconds` and
    `data.max_label_tokens`; otherwise every row is its own window, in order."""
    if not (pack and data.pack_seconds > 0):
        return [[i] for i in range(len(targets))], [whisper_labels(tokenizer, t) for t in targets]
    order = np.random.default_rng([seed, copy]).permutation(len(targets))
    token_counts = [len(whisper_labels(tokenizer, targets[i])) - 3 for i in order]  # text tokens + end token
    groups = pack_utterances([lengths[i] for i in order], token_counts, data.pack_seconds, data.pack_gap,
                          data.max_label_tokens - 3)
    groups = [[int(order[j]) for j in g] for g in groups]
    return groups, [whisper_labels(tokenizer, " ".join(targets[i] for i in g)) for g in groups]


def packs_audio(recipe: Recipe) -> bool:
    """Whisper trained on raw audio packed into windows, features made on the device (this module)."""
    return recipe.model.family == "whisper" and recipe.train.encoder_cache_layer == 0 and recipe.data.pack_seconds > 0


def audio_windows(recipe: Recipe, processor, split: SplitData, clips: ClipSource, training: bool) -> "AudioWindows":
    """A split as AudioWindows: training utterances packed into windows, the others one per window."""
    ds = split.dataset
    groups, labels = plan_windows(list(ds["input_length"]), list(ds["target"]), processor.tokenizer, recipe.data,
                                  recipe.train.seed, pack=training)
    return AudioWindows(ds, groups, labels, clips, recipe.data.pack_gap, processor.feature_extractor.n_samples)


class AudioWindows(torch.utils.data.Dataset):
    """Windows of one or more utterances of a split, decoded (and, for training, augmented) when read.

    `groups` lists the row indices of each window (see `plan_windows`); item i is the window's audio (the clips
    joined with `gap_seconds` of silence, cut to `max_samples`), its label token ids and its utterance count.
    """

    def __init__(self, dataset, groups: list[list[int]], labels: list[list[int]], clips, gap_seconds: float,
                 max_samples: int):
        self.dataset, self.groups, self.labels, self.clips = dataset, groups, labels, clips
        self.gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
        self.max_samples = max_samples

    def __len__(self) -> int:
        return len(self.groups)

    def utterances(self) -> int:
        return sum(len(g) for g in self.groups)

    def __getitem__(self, i: int) -> dict:
        pieces: list[np.ndarray] = []
        for j, row in enumerate(self.groups[i]):
            pieces += ([self.gap] if j else []) + [self.clips(self.dataset[row])]
        return {"audio": np.concatenate(pieces)[: self.max_samples], "labels": self.labels[i],
                "utterances": len(self.groups[i])}


def collate_windows(rows: list[dict], max_samples: int) -> dict:
    """A batch: audio zero-padded to the encoder window (B, max_samples), labels padded with -100."""
    audio = torch.zeros(len(rows), max_samples, dtype=torch.float32)
    for i, row in enumerate(rows):
        audio[i, : len(row["audio"])] = torch.from_numpy(row["audio"])
    return {"audio": audio, "labels": pad_labels([r["labels"] for r in rows]),
            "utterances": torch.tensor([r["utterances"] for r in rows])}


class WindowCollator:
    """Picklable collator for the data loader's worker processes."""

    def __init__(self, max_samples: int):
        self.max_samples = max_samples

    def __call__(self, rows: list[dict]) -> dict:
        return collate_windows(rows, self.max_samples)


class PackedAudioTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer whose batches hold raw audio windows; features are made on the device, and the number of
    utterances trained on is counted (`utterances_seen`), for utterances per second."""

    def __init__(self, *args, feature_extractor, **kwargs):
        super().__init__(*args, **kwargs)
        self.feature_extractor = feature_extractor
        self.utterances_seen = 0

    def _features(self, inputs: dict) -> torch.Tensor:
        return log_mel(inputs["audio"], self.feature_extractor)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.utterances_seen += int(inputs["utterances"].sum())
        outputs = model(input_features=self._features(inputs), labels=inputs["labels"])
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        inputs = self._prepare_inputs(inputs)
        features = self._features(inputs)
        with torch.no_grad(), self.autocast_smart_context_manager():
            loss = model(input_features=features, labels=inputs["labels"]).loss.detach()
            if prediction_loss_only:
                return loss, None, None
            tokens = model.generate(input_features=features)
        return loss, tokens, inputs["labels"]
