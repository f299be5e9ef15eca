"""The GPU check's baseline: plain transformers fine-tuning in the shape of transformers' speech-recognition example
(examples/pytorch/speech-recognition/run_speech_recognition_seq2seq.py).

As in the example: log-mel features and label ids are computed up front with `Dataset.map` (one process, the
example's default), utterances are filtered by duration, `DataCollatorSpeechSeq2SeqWithPadding` pads them, and a
stock `Seq2SeqTrainer` trains the whole model, with the same data-loader workers as kidsasr (kept between epochs).
Differences, each needed to run here: the audio is read from kidsasr prep's parquet shards and decoded with
soundfile (datasets' own audio decoding needs torchcodec); the trainer counts the utterances it trains on (for
utterances per second), which does not change what it computes; a tokenizer without a pad token (the project's
offline copy of whisper-base) gets <|endoftext|>, as the hub's copy names it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from transformers import (AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoProcessor, AutoTokenizer,
                          Seq2SeqTrainer, Seq2SeqTrainingArguments)


@dataclass
class DataCollatorSpeechSeq2SeqWithPadding:
    """The example's collator, unchanged."""

    processor: Any
    decoder_start_token_id: int
    forward_attention_mask: bool

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        model_input_name = self.processor.model_input_names[0]
        input_features = [{model_input_name: feature[model_input_name]} for feature in features]
        label_features = [{"input_ids": feature["labels"]} for feature in features]
        batch = self.processor.feature_extractor.pad(input_features, return_tensors="pt")
        if self.forward_attention_mask:
            batch["attention_mask"] = torch.LongTensor([feature["attention_mask"] for feature in features])
        labels_batch = self.processor.tokenizer.pad(label_features, return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == self.decoder_start_token_id).all().cpu().item():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch


class CountingSeq2SeqTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that counts the utterances it trains on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.utterances_seen = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.utterances_seen += int(inputs["labels"].shape[0])
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)


@dataclass
class BaselineSettings:
    model: str
    prep_dir: str
    out_dir: str
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    lr_scheduler: str
    weight_decay: float
    bf16: bool
    workers: int
    seed: int
    language: str = "ko"
    task: str = "transcribe"
    text_field: str = "text"
    min_duration: float = 0.0
    max_duration: float = 30.0


def load_train_split(prep_dir: str):
    """The training split's parquet shards as a datasets.Dataset, audio left undecoded."""
    import datasets

    files = sorted(str(p) for p in (Path(prep_dir) / "dataset" / "train").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{prep_dir}: no parquet shards under dataset/train")
    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    return ds.cast_column("audio", datasets.Audio(decode=False))


def build_trainer(s: BaselineSettings) -> tuple[CountingSeq2SeqTrainer, Any, int]:
    """The example's data preparation, model and trainer; returns (trainer, processor, training utterances)."""
    feature_extractor = AutoFeatureExtractor.from_pretrained(s.model)
    tokenizer = AutoTokenizer.from_pretrained(s.model)
    tokenizer.set_prefix_tokens(language=s.language, task=s.task)
    if tokenizer.pad_token is None:  # the hub's copy names <|endoftext|>; the offline rebuild names none
        tokenizer.pad_token = tokenizer.eos_token
    processor = AutoProcessor.from_pretrained(s.model)
    processor.tokenizer = tokenizer
    model = AutoModelForSpeechSeq2Seq.from_pretrained(s.model)
    model.generation_config.language, model.generation_config.task = s.language, s.task
    model.generation_config.forced_decoder_ids = None
    model.config.forced_decoder_ids = None

    raw = load_train_split(s.prep_dir)
    model_input_name = feature_extractor.model_input_names[0]

    def prepare_dataset(batch):
        audio, rate = sf.read(io.BytesIO(batch["audio"]["bytes"]), dtype="float32")
        inputs = feature_extractor(audio, sampling_rate=rate)
        batch[model_input_name] = inputs.get(model_input_name)[0]
        batch["input_length"] = len(audio)
        batch["labels"] = tokenizer(batch[s.text_field]).input_ids
        return batch

    # one process: forking a process that holds CUDA and data-loader threads can hang (seen here on CPU)
    vectorized = raw.map(prepare_dataset, remove_columns=raw.column_names, desc="baseline: log-mel features")
    low, high = s.min_duration * feature_extractor.sampling_rate, s.max_duration * feature_extractor.sampling_rate
    vectorized = vectorized.filter(lambda n: low < n < high, input_columns=["input_length"])
    collator = DataCollatorSpeechSeq2SeqWithPadding(processor, model.config.decoder_start_token_id,
                                                    forward_attention_mask=False)
    args = Seq2SeqTrainingArguments(
        output_dir=s.out_dir, per_device_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
        warmup_steps=s.warmup_steps, lr_scheduler_type=s.lr_scheduler, weight_decay=s.weight_decay,
        max_steps=s.steps, bf16=s.bf16, use_cpu=not torch.cuda.is_available(), seed=s.seed,
        logging_steps=max(1, s.steps // 10), save_strategy="no", report_to="none",
        dataloader_num_workers=s.workers, dataloader_persistent_workers=s.workers > 0, disable_tqdm=True)
    trainer = CountingSeq2SeqTrainer(model=model, args=args, train_dataset=vectorized,
                                     processing_class=feature_extractor, data_collator=collator)
    return trainer, processor, len(vectorized)

