"""kidsasr.training.packed (audio windows, log-mel on the device) and kidsasr.training.weight_ensemble."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from kidsasr.training.collators import ClipSource
from kidsasr.training.data import load_training_split, whisper_labels
from kidsasr.training.packed import audio_windows, collate_windows, log_mel, plan_windows
from kidsasr.training.recipe import Recipe
from kidsasr.training.weight_ensemble import choose_alpha, interpolate_, snapshot


def test_log_mel_is_the_feature_extractors_log_mel():
    fe = WhisperFeatureExtractor()
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 48000)]
    expected = fe(clips, sampling_rate=16000, return_tensors="np").input_features
    audio = torch.zeros(2, fe.n_samples)
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = torch.from_numpy(clip)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the features stay float32 under autocast
        got = log_mel(audio, fe)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert np.abs(got.numpy() - expected).max() < 1e-3


def test_training_windows_pack_utterances_and_evaluation_keeps_them_apart(prepared, tiny_whisper):
    from transformers import WhisperProcessor

    processor = WhisperProcessor.from_pretrained(tiny_whisper)
    processor.tokenizer.set_prefix_tokens(language="ko", task="transcribe", predict_timestamps=False)
    recipe = Recipe()
    recipe.data.prep_dir, recipe.data.pack_seconds, recipe.data.pack_gap = str(prepared), 30.0, 0.3
    train = load_training_split(recipe, "train", processor.tokenizer)
    windows = audio_windows(recipe, processor, train, ClipSource(None, 0), training=True)
    lengths = train.dataset["input_length"]
    assert windows.utterances() == len(train.dataset) > len(windows)
    assert sorted(i for g in windows.groups for i in g) == list(range(len(train.dataset)))
    for group in windows.groups:
        assert sum(lengths[i] for i in group) + 0.3 * (len(group) - 1) <= 30.0 or len(group) == 1
    item = windows[0]
    assert item["utterances"] == len(windows.groups[0]) and len(item["audio"]) <= processor.feature_extractor.n_samples
    assert item["labels"] == whisper_labels(processor.tokenizer, " ".join(train.dataset["target"][i]
                                                                          for i in windows.groups[0]))
    dev = audio_windows(recipe, processor, load_training_split(recipe, "dev", processor.tokenizer),
                        ClipSource(None, 0), training=False)
    assert all(len(g) == 1 for g in dev.groups)
    batch = collate_windows([windows[0], windows[1]], processor.feature_extractor.n_samples)
    assert batch["audio"].shape == (2, processor.feature_extractor.n_samples)
    assert batch["utterances"].tolist() == [len(windows.groups[0]), len(windows.groups[1])]
    lens = [len(windows[i]["labels"]) for i in (0, 1)]
    short = lens.index(min(lens))
    assert batch["labels"].shape == (2, max(lens)) and (batch["labels"][short, min(lens):] == -100).all()


def test_plan_windows_is_seeded_and_respects_the_token_limit(tiny_whisper):
    from transformers import WhisperProcessor

    tokenizer = WhisperProcessor.from_pretrained(tiny_whisper).tokenizer
    recipe = Recipe()
    recipe.data.pack_seconds, recipe.data.max_label_tokens = 30.0, 40
    targets = ["가나다라마바사 아자차카타파하"] * 12
    groups, labels = plan_windows([2.0] * 12, targets, tokenizer, recipe.data, seed=0)
    assert plan_windows([2.0] * 12, targets, tokenizer, recipe.data, seed=0)[0] == groups
    assert plan_windows([2.0] * 12, targets, tokenizer, recipe.data, seed=1)[0] != groups
    assert len(groups) > 1 and all(len(ids) <= 40 for ids in labels)


def test_weight_ensemble_interpolates_and_keeps_the_largest_safe_weight():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    start = snapshot(model, "cpu")
    with torch.no_grad():
        model.weight.add_(1.0)
    tuned = snapshot(model)
    interpolate_(model, start, tuned, 0.5)
    assert torch.allclose(model.weight, start["weight"] + 0.5)
    tried = []

    def guard(m) -> float:  # worse the further from the start: only alpha <= 0.4 is as good as the start
        tried.append(round(float((m.weight.detach() - start["weight"]).mean()), 3))
        return 0.10 + max(0.0, tried[-1] - 0.4)

    choice = choose_alpha(model, start, tuned, guard, limit=0.10, alphas=[1.0, 0.6, 0.4, 0.2])
    assert choice.alpha == 0.4 and tried == [1.0, 0.6, 0.4]
    assert torch.allclose(model.weight, start["weight"] + 0.4)
    fallback = choose_alpha(model, start, tuned, lambda m: 1.0, limit=0.10, alphas=[1.0])
    assert fallback.alpha == 0.0 and torch.allclose(model.weight, start["weight"])
    with pytest.raises(ValueError):
        interpolate_(model, start, tuned, 1.5)
