"""What keeps fine-tuning from costing real speech: the decoder parts that train (model.decoder_trainable) and the
pull towards the start weights (train.pull_to_start, kidsasr.training.anchor)."""

from __future__ import annotations

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from kidsasr.training.anchor import PullToStart
from kidsasr.training.driver import build
from kidsasr.training.recipe import Recipe, RecipeError, validate
from kidsasr.training.surgery import freeze_whisper


def trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("parts", ["all", "cross_attention", "none"])
def test_decoder_trainable_parts(tiny_whisper, parts):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper)
    recipe = Recipe()
    recipe.model.decoder_trainable = parts
    freeze_whisper(model, validate(recipe, check_data=False))
    decoder = {n for n in trainable(model) if n.startswith("model.decoder.") or n.startswith("proj_out")}
    every = {n for n, _ in model.named_parameters() if n.startswith("model.decoder.") or n.startswith("proj_out")}
    if parts == "all":
        assert decoder == every
    elif parts == "none":
        assert decoder == set()
    else:
        assert decoder and all(".encoder_attn" in n for n in decoder)
        assert decoder == {n for n in every if ".encoder_attn" in n}  # the layer norm before it too
    assert any(n.startswith("model.encoder.") for n in trainable(model))


def test_decoder_trainable_is_checked():
    recipe = Recipe()
    recipe.model.decoder_trainable = "embeddings"
    with pytest.raises(RecipeError, match="model.decoder_trainable"):
        validate(recipe, check_data=False)


def test_pull_moves_each_weight_back_by_lr_times_strength():
    model = torch.nn.Linear(3, 2)
    frozen = model.bias.requires_grad_(False)
    pull = PullToStart(model, strength=100.0)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
        frozen.add_(1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    pull.on_step_end(None, None, None, optimizer=optimizer)
    torch.testing.assert_close(model.weight.detach() - start, torch.full_like(start, 0.9))  # 1 - 1e-3 * 100
    assert frozen.requires_grad is False and set(pull.start) == {model.weight}


def test_pulled_training_stays_nearer_the_start(prepared, tiny_whisper, tmp_path):
    def trained_drift(strength: float) -> float:
        recipe = Recipe(name="tiny")
        recipe.model.name_or_path = str(tiny_whisper)
        recipe.data.prep_dir = str(prepared)
        recipe.augment.enabled = False
        t = recipe.train
        t.output_dir, t.batch_size, t.learning_rate, t.max_steps, t.pull_to_start = \
            str(tmp_path / f"run-{strength}"), 4, 3e-3, 4, strength
        t.save_steps = t.eval_steps = 100
        setup = build(validate(recipe), tmp_path / f"run-{strength}", tmp_path / "cache")
        start = {n: p.detach().clone() for n, p in setup.trainer.model.named_parameters()}
        setup.trainer.train()
        return max(float((p.detach() - start[n]).abs().max()) for n, p in setup.trainer.model.named_parameters())

    assert trained_drift(300.0) < 0.7 * trained_drift(0.0)
