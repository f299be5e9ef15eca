"""What keeps fine-tuning from costing real speech: the decoder parts that train (model.decoder_trainable), the
pull towards the start weights (train.pull_to_start, kidsasr.training.anchor) and the weight-space ensemble with
the start model that is exported (export.weight_ensemble_alpha)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from kidsasr.training.anchor import PullToStart
from kidsasr.training.driver import build, train
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


def test_export_is_the_weight_ensemble_with_the_start_model_also_when_resumed(prepared, tiny_whisper, tmp_path):
    def run(alpha: float, encoder_alpha: float | None = None) -> dict:
        recipe = Recipe(name="tiny")
        recipe.model.name_or_path = str(tiny_whisper)
        recipe.data.prep_dir = str(prepared)
        recipe.augment.enabled = False
        t = recipe.train
        t.output_dir, t.batch_size, t.learning_rate, t.max_steps, t.save_steps, t.eval_steps = \
            str(tmp_path / "run"), 4, 3e-3, 3, 3, 100
        recipe.export.ct2 = recipe.export.evaluate_test = recipe.export.evaluate_real_speech = False
        recipe.export.weight_ensemble_alpha, recipe.export.weight_ensemble_encoder_alpha = alpha, encoder_alpha
        return train(validate(recipe))

    def weights(path) -> dict[str, torch.Tensor]:
        return WhisperForConditionalGeneration.from_pretrained(path).state_dict()

    assert "weight_ensemble" not in run(1.0)
    tuned = weights(tmp_path / "run" / "best")
    # the same folder: the run resumes from its last checkpoint (training is done) and exports the ensemble
    results = run(0.25, encoder_alpha=0.5)
    ensemble, start = weights(tmp_path / "run" / "best"), weights(tiny_whisper)
    moved = [name for name in tuned if not torch.equal(tuned[name], start[name])]
    assert any(n.startswith("model.encoder.") for n in moved) and any(n.startswith("model.decoder.") for n in moved)
    for name in moved:
        alpha = 0.5 if name.startswith("model.encoder.") else 0.25
        torch.testing.assert_close(ensemble[name], start[name] + alpha * (tuned[name] - start[name]))
    assert results["weight_ensemble"] == {"alpha": 0.25, "encoder_alpha": 0.5}
    card = (tmp_path / "run" / "best" / "README.md").read_text()
    assert "start + alpha x (fine-tuned - start), alpha 0.25, encoder 0.5" in card
    assert json.loads((tmp_path / "run" / "results.json").read_text())["weight_ensemble"]["alpha"] == 0.25


@pytest.mark.parametrize("key, value, family", [("weight_ensemble_alpha", 0.0, "whisper"),
                                                ("weight_ensemble_alpha", 1.5, "whisper"),
                                                ("weight_ensemble_encoder_alpha", 0.0, "whisper"),
                                                ("weight_ensemble_encoder_alpha", 0.5, "wav2vec2")])
def test_weight_ensemble_alphas_are_checked(key, value, family):
    recipe = Recipe()
    recipe.model.family = family
    setattr(recipe.export, key, value)
    with pytest.raises(RecipeError, match=f"export.{key}"):
        validate(recipe, check_data=False)
