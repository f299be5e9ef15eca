"""The data-prep recipe's settings (data_prep/config.yaml): one dataclass per stage; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..audio import SAMPLE_RATE
from .cleaning import CleaningConfig
from .filters import FilterConfig
from .splits import SplitConfig

ALIGNERS = ("whisper", "ctc", "none")


@dataclass(frozen=True)
class AlignConfig:
    aligner: str = "whisper"  # whisper | ctc | none (keep the label times)
    whisper_model: str = "openai/whisper-base"
    ctc_model: str | None = None  # any wav2vec2 CTC model id or path
    device: str = "cpu"


@dataclass(frozen=True)
class OutputConfig:
    rows_per_shard: int = 2000
    expected_sample_rate: int = SAMPLE_RATE
    expected_channels: int = 1
    format_mismatch: str = "convert"  # convert | reject: audio whose rate/channels differ from the above


@dataclass(frozen=True)
class PrepConfig:
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    alignment: AlignConfig = field(default_factory=AlignConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def _from_dict(cls: type, data: Any, where: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
        else:
            values[name] = value
    return cls(**values)


def load_config(path: str | os.PathLike) -> PrepConfig:
    """YAML -> PrepConfig; a key the dataclasses do not know is an error naming it."""
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    config = _from_dict(PrepConfig, data, str(path))
    if config.alignment.aligner not in ALIGNERS:
        raise ValueError(f"{path}: alignment.aligner must be one of {ALIGNERS}, not {config.alignment.aligner!r}")
    if config.output.format_mismatch not in ("convert", "reject"):
        raise ValueError(f"{path}: output.format_mismatch must be 'convert' or 'reject'")
    return config


def config_fingerprint(config: PrepConfig) -> str:
    return hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:16]
