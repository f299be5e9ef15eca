"""Training recipes: YAML files validated into typed dataclasses before any model is loaded.

A recipe has five sections (`model`, `data`, `augment`, `train`, `export`) whose keys are the fields below.
Unknown keys, wrong types, impossible values and missing files raise RecipeError naming the key, e.g.
`recipes/x.yaml: train.learning_rate: must be > 0 (got -1.0)`. Command-line overrides use dotted keys
(`train.max_steps=20`) and go through the same validation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import config
from ..asr.export import looks_local
from ..constants import DEFAULT_MODEL

MODEL_FAMILIES = ("whisper", "wav2vec2")
VOCAB_UNITS = ("syllable", "jamo")
DECODER_TRAINABLE = ("all", "cross_attention", "none")
TEXT_FIELDS = ("text", "text_pron")


class RecipeError(config.ConfigError):
    """A recipe that cannot run, with the file and the offending key."""


@dataclass
class ModelConfig:
    family: str = "whisper"  # whisper (seq2seq) | wav2vec2 (CTC)
    name_or_path: str = DEFAULT_MODEL  # any hub id or local folder
    language: str = "ko"  # Whisper only
    task: str = "transcribe"  # Whisper only
    vocab_unit: str = "syllable"  # CTC only: syllable | jamo
    freeze_feature_encoder: bool = True  # CTC only: the convolutional front end
    frozen_encoder_layers: int = 0  # lower encoder layers kept fixed (with the convolutional front end)
    # Whisper only: which decoder weights train: all | cross_attention (its attention over the encoder and that
    # attention's layer norm; the token embeddings, self-attention and feed-forward layers, its language model,
    # stay as they were) | none
    decoder_trainable: str = "all"
    # Whisper only: keep just these decoder layers of the start model, in order (distil-whisper's shrink and
    # fine-tune, e.g. [0, 5] of whisper-base's six); each decoding step and each word alignment then costs about
    # half. Empty keeps every layer.
    decoder_layers: list[int] = field(default_factory=list)
    # Whisper only: seconds of audio the encoder reads per clip (0: the start model's, 30 for a hub checkpoint).
    # A 15 s window encodes a second of audio in about half the CPU time of a 30 s one; fine-tune with it.
    encoder_seconds: int = 0
    gradient_checkpointing: bool = False
    # SpecAugment, applied by the model itself during training (Whisper and wav2vec2 configs both carry it)
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    dropout: float = 0.0


@dataclass
class DataConfig:
    prep_dir: str = "work/prep-demo"  # a `kidsasr prep` output folder
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"
    text_field: str = "text"  # text (spelling, for subtitles) | text_pron (numbers in Hangul, for CTC)
    min_duration: float = 0.3
    max_duration: float = 30.0
    max_label_tokens: int = 440  # Whisper's decoder holds 448 positions
    pack_seconds: float = 0.0  # > 0: concatenate consecutive utterances into windows of at most this long
    pack_gap: float = 0.3  # silence between packed utterances, seconds
    max_dev_utterances: int = 0  # 0 = the whole dev split
    max_test_utterances: int = 0  # 0 = the whole test split
    # each training utterance from subtitles reviewed in `kidsasr review` (manifest source "review") is seen this
    # many times per epoch; 1 weighs it like any other utterance
    review_weight: int = 1


@dataclass
class AugmentConfig:
    enabled: bool = True
    copies: int = 1  # cached-encoder training: augmented copies of the training set, made once before caching
    speed_prob: float = 0.0
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.1])
    pitch_prob: float = 0.0
    pitch_semitones: list[float] = field(default_factory=lambda: [-2.0, 4.0])  # a uniform range
    formant_prob: float = 0.0
    formant_ratio: list[float] = field(default_factory=lambda: [1.0, 1.2])  # vocal-tract scale range
    reverb_prob: float = 0.0
    reverb_rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])  # seconds, a uniform range
    noise_prob: float = 0.0
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])
    music_prob: float = 0.0
    music_snr_db: list[float] = field(default_factory=lambda: [5.0, 20.0])
    music_dir: str = ""  # folder of music/noise beds (wav/flac); empty = generated tonal beds
    bank_sentences: int = 0  # extra training utterances spoken from the text bank (dev/test sentences excluded)


@dataclass
class TrainConfig:
    output_dir: str = "work/train-demo"
    seed: int = 0
    max_steps: int = -1  # > 0 overrides num_epochs
    num_epochs: float = 3.0
    max_minutes: float = 0.0  # > 0: stop (and save) once this much training time has passed
    batch_size: int = 16
    eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    pull_to_start: float = 0.0  # > 0: L2-SP towards the start weights (kidsasr.training.anchor)
    bf16: bool = True  # used only where a GPU supports it
    group_by_length: bool = True
    logging_steps: int = 10
    eval_steps: int = 500
    save_steps: int = 500
    save_total_limit: int = 2
    early_stopping_patience: int = 0  # 0 = no early stopping
    encoder_cache_layer: int = 0  # > 0: cache Whisper encoder states after this many layers (CPU demo)
    max_new_tokens: int = 128
    num_beams: int = 1
    dataloader_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default


@dataclass
class ExportConfig:
    ct2: bool = True  # CTranslate2 export (Whisper only)
    quantization: str = "int8"
    evaluate_test: bool = True
    evaluate_zero_shot: bool = True
    # the model and the zero-shot model on the report half of the real read speech, when the set is found
    # (kidsasr.evaluation.real_score); the model card shows it or says it was skipped
    evaluate_real_speech: bool = True
    # < 1: export start + alpha * (fine-tuned - start) instead of the fine-tuned weights, a weight-space ensemble
    # with the start model (WiSE-FT, kidsasr.training.weight_ensemble); test and real-speech scores are the export's.
    # The Whisper encoder takes weight_ensemble_encoder_alpha when it is set.
    weight_ensemble_alpha: float = 1.0
    weight_ensemble_encoder_alpha: float | None = None


@dataclass
class Recipe:
    name: str = "recipe"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: str = ""  # the YAML file it came from (not a YAML key)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


def _check_range(where: str, key: str, pair: list[float], low: float, high: float) -> None:
    if len(pair) != 2 or not (low <= pair[0] <= pair[1] <= high):
        raise RecipeError(f"{where}: {key}: expected [min, max] with {low} <= min <= max <= {high} (got {pair})")


def validate(recipe: Recipe, check_data: bool = True) -> Recipe:
    """Impossible values and missing files, each named by its key. Returns the recipe."""
    where = recipe.source or "recipe"

    def need(ok: bool, key: str, rule: str, value) -> None:
        if not ok:
            raise RecipeError(f"{where}: {key}: {rule} (got {value!r})")

    m, d, a, t, e = recipe.model, recipe.data, recipe.augment, recipe.train, recipe.export
    need(m.family in MODEL_FAMILIES, "model.family", f"must be one of {MODEL_FAMILIES}", m.family)
    need(bool(m.name_or_path), "model.name_or_path", "must name a model", m.name_or_path)
    need(m.decoder_trainable in DECODER_TRAINABLE, "model.decoder_trainable", f"must be one of {DECODER_TRAINABLE}",
         m.decoder_trainable)
    need(m.decoder_trainable == "all" or m.family == "whisper", "model.decoder_trainable", "Whisper only",
         m.decoder_trainable)
    need(m.vocab_unit in VOCAB_UNITS, "model.vocab_unit", f"must be one of {VOCAB_UNITS}", m.vocab_unit)
    need(m.frozen_encoder_layers >= 0, "model.frozen_encoder_layers", "must be >= 0", m.frozen_encoder_layers)
    need(m.decoder_layers == sorted(set(m.decoder_layers)) and min(m.decoder_layers, default=0) >= 0,
         "model.decoder_layers", "must be increasing layer indices from 0", m.decoder_layers)
    need(not m.decoder_layers or m.family == "whisper", "model.decoder_layers", "Whisper only", m.decoder_layers)
    need(0 <= m.encoder_seconds <= 30, "model.encoder_seconds", "must be in 0..30 (0: the model's own)",
         m.encoder_seconds)
    need(not m.encoder_seconds or m.family == "whisper", "model.encoder_seconds", "Whisper only", m.encoder_seconds)
    window = m.encoder_seconds or 30.0
    for key in ("mask_time_prob", "mask_feature_prob", "dropout"):
        need(0.0 <= getattr(m, key) <= 1.0, f"model.{key}", "must be in [0, 1]", getattr(m, key))
    for key in ("mask_time_length", "mask_feature_length"):
        need(getattr(m, key) >= 1, f"model.{key}", "must be >= 1", getattr(m, key))

    need(d.text_field in TEXT_FIELDS, "data.text_field", f"must be one of {TEXT_FIELDS}", d.text_field)
    need(0.0 <= d.min_duration < d.max_duration, "data.min_duration", "must be >= 0 and < data.max_duration",
         d.min_duration)
    need(d.max_duration <= window or m.family != "whisper", "data.max_duration",
         f"Whisper's encoder reads at most {window:g} s", d.max_duration)
    need(0 < d.max_label_tokens <= 448 or m.family != "whisper", "data.max_label_tokens",
         "must be in 1..448 for Whisper", d.max_label_tokens)
    need(d.pack_seconds == 0 or (m.family == "whisper" and 0 < d.pack_seconds <= window), "data.pack_seconds",
         f"must be 0, or in (0, {window:g}] (the encoder window) for Whisper", d.pack_seconds)
    need(d.pack_gap >= 0, "data.pack_gap", "must be >= 0", d.pack_gap)
    need(d.max_dev_utterances >= 0, "data.max_dev_utterances", "must be >= 0", d.max_dev_utterances)
    need(d.max_test_utterances >= 0, "data.max_test_utterances", "must be >= 0", d.max_test_utterances)
    need(d.review_weight >= 1, "data.review_weight", "must be >= 1", d.review_weight)
    if check_data:  # the files the recipe reads: a start model made by another recipe may not exist yet
        need(not looks_local(m.name_or_path) or Path(m.name_or_path).expanduser().exists(), "model.name_or_path",
             "no such folder", m.name_or_path)
        prep = Path(d.prep_dir)
        need(prep.is_dir(), "data.prep_dir", "no such folder (run `kidsasr prep` or pass --data)", d.prep_dir)
        for key in ("train_split", "dev_split"):
            split = getattr(d, key)
            shards = sorted((prep / "dataset" / split).glob("*.parquet"))
            need(bool(shards), f"data.{key}", f"no parquet shards under {prep / 'dataset' / split}: no utterances to "
                                              f"use (see {prep / 'report.md'})", split)
            need(split_rows(shards) > 0, f"data.{key}", f"no utterances in the parquet shards under "
                                                        f"{prep / 'dataset' / split} (see {prep / 'report.md'})", split)

    need(a.copies >= 1, "augment.copies", "must be >= 1", a.copies)
    need(a.bank_sentences >= 0, "augment.bank_sentences", "must be >= 0", a.bank_sentences)
    for key in ("speed", "pitch", "formant", "reverb", "noise", "music"):
        prob = getattr(a, f"{key}_prob")
        need(0.0 <= prob <= 1.0, f"augment.{key}_prob", "must be in [0, 1]", prob)
    need(bool(a.speed_factors) and all(0.5 <= s <= 2.0 for s in a.speed_factors), "augment.speed_factors",
         "must be a non-empty list of factors in [0.5, 2]", a.speed_factors)
    _check_range(where, "augment.pitch_semitones", a.pitch_semitones, -12.0, 12.0)
    _check_range(where, "augment.formant_ratio", a.formant_ratio, 0.7, 1.5)
    _check_range(where, "augment.reverb_rt60", a.reverb_rt60, 0.1, 2.0)
    _check_range(where, "augment.noise_snr_db", a.noise_snr_db, -10.0, 60.0)
    _check_range(where, "augment.music_snr_db", a.music_snr_db, -10.0, 60.0)
    need(not a.music_dir or Path(a.music_dir).is_dir(), "augment.music_dir", "no such folder", a.music_dir)

    need(t.max_steps == -1 or t.max_steps > 0, "train.max_steps", "must be -1 (use num_epochs) or > 0", t.max_steps)
    need(t.num_epochs > 0, "train.num_epochs", "must be > 0", t.num_epochs)
    need(t.max_minutes >= 0, "train.max_minutes", "must be >= 0", t.max_minutes)
    for key in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "logging_steps", "eval_steps",
                "save_steps", "save_total_limit", "max_new_tokens", "num_beams"):
        need(getattr(t, key) >= 1, f"train.{key}", "must be >= 1", getattr(t, key))
    need(t.learning_rate > 0, "train.learning_rate", "must be > 0", t.learning_rate)
    need(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0", t.warmup_steps)
    need(t.weight_decay >= 0, "train.weight_decay", "must be >= 0", t.weight_decay)
    need(t.pull_to_start >= 0, "train.pull_to_start", "must be >= 0", t.pull_to_start)
    need(t.early_stopping_patience >= 0, "train.early_stopping_patience", "must be >= 0", t.early_stopping_patience)
    need(t.encoder_cache_layer >= 0, "train.encoder_cache_layer", "must be >= 0", t.encoder_cache_layer)
    need(t.encoder_cache_layer == 0 or m.family == "whisper", "train.encoder_cache_layer",
         "encoder-state caching is for Whisper only", t.encoder_cache_layer)
    need(t.encoder_cache_layer <= m.frozen_encoder_layers, "train.encoder_cache_layer",
         "cached layers must be frozen: set model.frozen_encoder_layers >= train.encoder_cache_layer",
         t.encoder_cache_layer)
    need(t.save_steps % t.eval_steps == 0 or t.early_stopping_patience == 0, "train.save_steps",
         "must be a multiple of train.eval_steps when early stopping keeps the best checkpoint", t.save_steps)
    need(t.dataloader_workers >= 0, "train.dataloader_workers", "must be >= 0", t.dataloader_workers)
    need(t.threads >= 0, "train.threads", "must be >= 0", t.threads)
    need(0 < e.weight_ensemble_alpha <= 1, "export.weight_ensemble_alpha", "must be in (0, 1]",
         e.weight_ensemble_alpha)
    if e.weight_ensemble_encoder_alpha is not None:
        need(0 < e.weight_ensemble_encoder_alpha <= 1, "export.weight_ensemble_encoder_alpha", "must be in (0, 1]",
             e.weight_ensemble_encoder_alpha)
        need(m.family == "whisper", "export.weight_ensemble_encoder_alpha", "is for Whisper only",
             e.weight_ensemble_encoder_alpha)
    need(e.quantization in ("int8", "int8_float16", "int8_bfloat16", "float16", "bfloat16", "float32"),
         "export.quantization", "must be a CTranslate2 quantization", e.quantization)
    return recipe


def split_rows(shards: list[Path]) -> int:
    """Rows in a split's parquet shards, from their footers (nothing is decoded)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(shard).metadata.num_rows for shard in shards)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (), check_data: bool = True) -> Recipe:
    recipe = config.load(Recipe, path, overrides, skip=("source",), error=RecipeError)
    recipe.source = str(path)
    return validate(recipe, check_data=check_data)


# keys a resumed run may change: where things are, how often it reports and saves, what is exported
RESUMABLE_CHANGES = ("name", "description", "data.prep_dir", "train.output_dir", "train.max_minutes",
                     "train.logging_steps", "train.eval_steps", "train.save_steps", "train.save_total_limit",
                     "train.eval_batch_size", "train.threads", "train.dataloader_workers", "export.")


def resume_conflicts(written: dict, recipe: Recipe) -> list[str]:
    """'key: old -> new' for each key of the recipe a run folder's checkpoints were trained with (its
    recipe.yaml, `written`) that this recipe changes, apart from RESUMABLE_CHANGES."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in d.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
        return out

    old, new = flat(written), flat(recipe.to_dict())
    return [f"{key}: {old[key]!r} -> {new[key]!r}" for key in new
            if key in old and old[key] != new[key] and not key.startswith(RESUMABLE_CHANGES)]


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), allow_unicode=True, sort_keys=False)

