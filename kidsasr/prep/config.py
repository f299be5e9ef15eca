"""The data-prep recipe's settings (data_prep/config.yaml): one dataclass per stage; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import dataclass, field
from typing import Iterable, Literal

from .. import config
from ..constants import DEFAULT_MODEL, SAMPLE_RATE
from .cleaning import CleaningConfig
from .filters import FilterConfig
from .splits import SplitConfig

Aligner = Literal["whisper", "ctc", "none"]
ALIGNERS = typing.get_args(Aligner)


@dataclass(frozen=True)
class AlignConfig:
    aligner: Aligner = "whisper"  # whisper | ctc | none (keep the label times)
    whisper_model: str = DEFAULT_MODEL
    ctc_model: str | None = None  # any wav2vec2 CTC model id or path
    device: str = "cpu"


@dataclass(frozen=True)
class OutputConfig:
    rows_per_shard: int = 2000
    expected_sample_rate: int = SAMPLE_RATE
    expected_channels: int = 1
    format_mismatch: Literal["convert", "reject"] = "convert"  # audio whose rate/channels differ from the above


@dataclass(frozen=True)
class PrepConfig:
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    alignment: AlignConfig = field(default_factory=AlignConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> PrepConfig:
    """YAML (plus dotted overrides) -> PrepConfig; an unknown key or a wrong type is an error naming it."""
    return config.load(PrepConfig, path, overrides)


def config_fingerprint(config: PrepConfig) -> str:
    return hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:16]
