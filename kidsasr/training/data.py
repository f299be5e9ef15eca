"""Training data: CTC units and vocabulary, Whisper label tokens, the prepared splits minus what cannot train,
and text-bank speech added to the training split."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from ..constants import SAMPLE_RATE
from ..fileio import atomic_path
from ..manifest import load_split
from ..textnorm import normalize_for_cer, parse_label
from .augment import bank_speech
from .recipe import Recipe

PAD_CHAR, UNK_CHAR, WORD_DELIMITER = "[PAD]", "[UNK]", "|"


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
    """The training split plus `augment.bank_sentences` utterances spoken from the text bank (kidsasr.training.augment),
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
