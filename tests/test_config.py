"""kidsasr.config: the one loader behind recipes, the prep config, style profiles and decode options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from kidsasr import config
from kidsasr.asr.models import DecodeOptions
from kidsasr.config import ConfigError
from kidsasr.prep.config import load_config
from kidsasr.subtitles.cues import load_style
from kidsasr.training.recipe import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Inner:
    rate: float = 1.0
    steps: list[int] = field(default_factory=list)
    mode: Literal["fast", "slow"] = "fast"
    path: str | None = None


@dataclass
class Outer:
    name: str = "x"
    enabled: bool = True
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize("spelling, value", [("1e-4", 1e-4), ("-1e-4", -1e-4), ("1E5", 1e5), ("+2.5", 2.5),
                                             (".5", 0.5), (3, 3.0), (1.5e-3, 1.5e-3)])
def test_every_yaml_number_spelling_is_a_float(spelling, value):
    loaded = config.from_mapping(Outer, {"inner": {"rate": spelling}}, "t.yaml")
    assert loaded.inner.rate == value and isinstance(loaded.inner.rate, float)


@pytest.mark.parametrize("values, message", [
    ({"inner": {"rte": 1}}, r"t.yaml: inner.rte: unknown key \(allowed: mode, path, rate, steps\)"),
    ({"inner": {"rate": "fast"}}, "t.yaml: inner.rate: expected a number"),
    ({"inner": {"rate": float("inf")}}, "t.yaml: inner.rate: expected a finite number"),
    ({"inner": {"rate": float("nan")}}, "t.yaml: inner.rate: expected a finite number"),
    ({"inner": {"rate": True}}, "t.yaml: inner.rate: expected a number"),
    ({"inner": {"steps": [1, "2"]}}, r"t.yaml: inner.steps\[1\]: expected an integer"),
    ({"inner": {"mode": "medium"}}, "t.yaml: inner.mode: must be one of"),
    ({"inner": 5}, "t.yaml: inner: expected a mapping"),
    ({"enabled": "yes"}, "t.yaml: enabled: expected true/false"),
    ({"name": 3}, "t.yaml: name: expected a string"),
])
def test_wrong_keys_and_types_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        config.from_mapping(Outer, values, "t.yaml")


def test_optional_nested_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  rate: 1.0e-3\n  path: null\n")
    loaded = config.load(Outer, path, ["inner.steps=[1, 2]", "inner.path=/tmp/x", "enabled=false", "inner.rate=2e-5"])
    assert loaded == Outer("x", False, Inner(2e-5, [1, 2], "fast", "/tmp/x"))
    path.write_text("inner:\n")
    assert config.load(Outer, path) == Outer()
    with pytest.raises(ConfigError, match="override 'inner.rate': expected SECTION.KEY=VALUE"):
        config.load(Outer, path, ["inner.rate"])
    with pytest.raises(ConfigError, match=r"c.yaml: inner.rte: unknown key"):
        config.load(Outer, path, ["inner.rte=1"])


def test_every_config_goes_through_the_loader(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("alignment:\n  aligner: dtw\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: alignment.aligner: must be one of \('whisper', 'ctc', 'none'\)"):
        load_config(bad)
    assert load_config(ROOT / "data_prep" / "config.yaml", ["filters.min_duration=1e-1"]).filters.min_duration == 0.1
    bad.write_text("max_cps: .inf\n")
    with pytest.raises(ConfigError, match="bad.yaml: max_cps: expected a finite number"):
        load_style(bad)
    bad.write_text("max_cps: -1\n")
    with pytest.raises(ConfigError, match="bad.yaml: style bad: max_cps must be a non-negative number"):
        load_style(bad)
    with pytest.raises(RecipeError, match="demo_cpu.yaml: train.learning_rate: expected a number"):
        load_recipe(ROOT / "recipes" / "demo_cpu.yaml", ["train.learning_rate=fast"], check_data=False)
    recipe = load_recipe(ROOT / "recipes" / "demo_cpu.yaml", ["train.learning_rate=1e-4"], check_data=False)
    assert recipe.train.learning_rate == 1e-4
    with pytest.raises(ConfigError, match="decode options: beam_size: expected an integer"):
        DecodeOptions.from_kwargs({"beam_size": "5"})


SHIPPED_CONFIGS = sorted((ROOT / "data_prep").glob("*.yaml")) + sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path):
    """Every YAML in data_prep/ (prep configs) and recipes/ (training recipes) passes the loader's validation, so
    no Makefile target dies on a stale key (data_prep/gpu_check.yaml held two removed cleaning keys)."""
    if path.parent.name == "data_prep":
        loaded = load_config(path)
        reference = load_config(ROOT / "data_prep" / "config.yaml")
        assert (loaded.cleaning, loaded.alignment, loaded.filters) == (
            reference.cleaning, reference.alignment, reference.filters)
    else:
        assert load_recipe(path, check_data=False).name == path.stem
