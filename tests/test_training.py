from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (TrainerCallback, Wav2Vec2Config, Wav2Vec2ForCTC, WhisperForConditionalGeneration,
                          WhisperProcessor)

from kidsasr.constants import SAMPLE_RATE
from kidsasr.manifest import load_split
from kidsasr.training.collators import CTCCollator, ClipSource, WhisperCollator, pad_labels
from kidsasr.training.data import build_vocab, from_units, load_training_split, to_units, whisper_labels
from kidsasr.training.driver import build, last_checkpoint, score, train, zero_shot_recipe
from kidsasr.training.encoder_cache import encode_lower, encode_upper, pack_utterances
from kidsasr.cli import main as kidsasr_main
from kidsasr.training.recipe import Recipe, RecipeError, dump_recipe, load_recipe, validate
from kidsasr.training.surgery import ctc_processor, shrink_decoder

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
WHISPER_BASE = "openai/whisper-base"


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    config = Wav2Vec2Config(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
                            feat_extract_norm="layer")
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def recipe_for(tmp_path: Path, prepared: Path, model_path: Path, family: str = "whisper", **sections) -> Recipe:
    recipe = Recipe(name="tiny")
    recipe.model.family = family
    recipe.model.name_or_path = str(model_path)
    recipe.data.prep_dir = str(prepared)
    recipe.augment.enabled = False
    t = recipe.train
    t.output_dir, t.batch_size, t.eval_batch_size, t.learning_rate = str(tmp_path / "run"), 4, 4, 3e-3
    t.max_steps, t.logging_steps, t.eval_steps, t.save_steps, t.max_new_tokens = 6, 1, 100, 100, 8
    t.warmup_steps, t.group_by_length = 0, family == "whisper"
    recipe.export.ct2 = False
    recipe.export.evaluate_real_speech = False  # tiny random models: the standing score is tested on its own
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(recipe, section), key, value)
    return validate(recipe)


def losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


# ------------------------------------------------------------------------------------------------ recipes
@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    recipe = load_recipe(path, check_data=False)
    assert recipe.name == path.stem
    if recipe.model.family == "whisper":
        assert (recipe.model.language, recipe.model.task) == ("ko", "transcribe")


def test_recipe_set_is_complete():
    names = {p.stem for p in RECIPES.glob("*.yaml")}
    assert {"whisper_base_kids", "whisper_small_kids", "whisper_large_v3_kids", "wav2vec2_xlsr_kids", "demo_cpu",
            "bench_cpu", "distil_cpu", "fast_cpu"} <= names


@pytest.mark.parametrize("override, key", [
    ("train.lerning_rate=0.1", "train.lerning_rate: unknown key"),
    ("optimizer.lr=0.1", "optimizer: unknown key"),
    ("train.learning_rate=-1", "train.learning_rate: must be > 0"),
    ("train.batch_size=0", "train.batch_size: must be >= 1"),
    ("train.batch_size=four", "train.batch_size: expected an integer"),
    ("augment.pitch_prob=1.5", "augment.pitch_prob: must be in [0, 1]"),
    ("augment.noise_snr_db=[30, 5]", "augment.noise_snr_db: expected [min, max]"),
    ("augment.reverb_prob=-0.1", "augment.reverb_prob: must be in [0, 1]"),
    ("augment.reverb_rt60=[0.5, 3.0]", "augment.reverb_rt60: expected [min, max]"),
    ("model.family=rnnt", "model.family: must be one of"),
    ("data.max_duration=45", "data.max_duration: Whisper's encoder reads at most 30 s"),
    ("model.encoder_seconds=15", "data.max_duration: Whisper's encoder reads at most 15 s"),
    ("model.encoder_seconds=45", "model.encoder_seconds: must be in 0..30"),
    ("train.encoder_cache_layer=6", "train.encoder_cache_layer: cached layers must be frozen"),
    ("augment.music_dir=/no/such/music", "augment.music_dir: no such folder"),
    ("data.prep_dir=/no/such/prep", "data.prep_dir: no such folder"),
    ("model.name_or_path=/no/such/model", "model.name_or_path: no such folder"),
    ("model.decoder_layers=[5, 0]", "model.decoder_layers: must be increasing"),
])
def test_recipe_errors_name_the_key(override, key):
    with pytest.raises(RecipeError, match=key.replace("[", r"\[").replace("]", r"\]")) as err:
        load_recipe(RECIPES / "demo_cpu.yaml", [override],
                    check_data=override.startswith(("data.prep_dir", "model.name_or_path")))
    assert "demo_cpu.yaml" in str(err.value)


def test_missing_split_is_named(tmp_path):
    (tmp_path / "dataset" / "train").mkdir(parents=True)
    with pytest.raises(RecipeError, match="data.train_split: no parquet shards"):
        load_recipe(RECIPES / "demo_cpu.yaml", [f"data.prep_dir={tmp_path}"])


def test_overrides_are_typed():
    recipe = load_recipe(RECIPES / "demo_cpu.yaml", ["train.max_steps=7", "augment.enabled=false"], check_data=False)
    assert recipe.train.max_steps == 7 and recipe.augment.enabled is False


# ------------------------------------------------------------------------------------------------ text and labels
def test_syllable_and_jamo_vocabularies():
    texts = ["나는 사과", "사과 좋아"]
    syllables = build_vocab(texts, "syllable")
    assert list(syllables)[:3] == ["[PAD]", "[UNK]", "|"] and syllables["[PAD]"] == 0
    assert set(syllables) - {"[PAD]", "[UNK]", "|"} == set("나는사과좋아")
    jamo = build_vocab(texts, "jamo")
    assert "ㅅ" not in jamo and "\u1109" in jamo  # conjoining choseong SIOS, not the compatibility letter
    assert len(jamo) - 3 < len(set("".join(to_units(t, "jamo") for t in texts)))
    unit_text = to_units("사과 좋아", "jamo")
    assert len(unit_text) > len("사과 좋아") and from_units(unit_text, "jamo") == "사과 좋아"
    with pytest.raises(ValueError, match="empty"):
        build_vocab(["  "], "syllable")


def test_ctc_tokenizer_round_trip(tmp_path):
    vocab = build_vocab(["사과 좋아"], "jamo")
    tok = ctc_processor(vocab, tmp_path).tokenizer
    ids = tok(to_units("사과 좋아", "jamo")).input_ids
    assert vocab["|"] in ids and vocab["[PAD]"] not in ids
    assert from_units(tok.decode(ids, group_tokens=False), "jamo") == "사과 좋아"


def test_whisper_labels_carry_the_korean_prefix_and_pad_with_minus_100():
    processor = WhisperProcessor.from_pretrained(WHISPER_BASE)
    tok = processor.tokenizer
    tok.set_prefix_tokens(language="ko", task="transcribe", predict_timestamps=False)
    labels = whisper_labels(tok, "사과 세 개")
    assert tok.convert_ids_to_tokens(labels[:3]) == ["<|ko|>", "<|transcribe|>", "<|notimestamps|>"]
    assert labels[-1] == tok.eos_token_id and "<|startoftranscript|>" not in tok.convert_ids_to_tokens(labels)
    assert tok.decode(labels, skip_special_tokens=True) == "사과 세 개"
    batch = pad_labels([labels, labels[:5]])
    assert batch.shape == (2, len(labels)) and (batch[1, 5:] == -100).all()


def test_whisper_collator_shapes(prepared):
    processor = WhisperProcessor.from_pretrained(WHISPER_BASE)
    processor.tokenizer.set_prefix_tokens(language="ko", task="transcribe", predict_timestamps=False)
    recipe = load_recipe(RECIPES / "demo_cpu.yaml", [f"data.prep_dir={prepared}"])
    split = load_training_split(recipe, "train", processor.tokenizer)
    rows = [split.dataset[i] for i in range(3)]
    batch = WhisperCollator(processor, ClipSource(None, 0))(rows)
    assert batch["input_features"].shape == (3, 80, 3000)
    assert batch["labels"].shape[0] == 3 and (batch["labels"][:, 0] == 50264).all()  # <|ko|>
    assert (batch["labels"] == -100).any() or len({len(r["target"]) for r in rows}) == 1


def test_ctc_collator_shapes(prepared, tmp_path):
    recipe = load_recipe(RECIPES / "wav2vec2_xlsr_kids.yaml", [f"data.prep_dir={prepared}"])
    split = load_training_split(recipe, "train")
    assert all(" " not in t or "|" not in t for t in split.dataset["target"])
    processor = ctc_processor(build_vocab(list(split.dataset["target"]), "syllable"), tmp_path)
    rows = [split.dataset[i] for i in range(3)]
    batch = CTCCollator(processor, ClipSource(None, 0), "syllable")(rows)
    longest = max(int(round(r["input_length"] * SAMPLE_RATE)) for r in rows)
    assert batch["input_values"].shape == (3, longest) == batch["attention_mask"].shape
    assert batch["labels"].shape[0] == 3 and (batch["labels"][batch["labels"] != -100] >= 2).all()


def test_pack_utterances_respects_seconds_and_tokens():
    windows = pack_utterances([10, 10, 10, 35, 5, 5], [10, 10, 200, 10, 10, 10], 30.0, 0.5, 100)
    assert windows == [[0, 1], [2], [3], [4, 5]]
    assert sum(windows, []) == list(range(6))


# ------------------------------------------------------------------------------------------------ data errors
def test_all_rejected_split_is_a_clear_error(prepared, tiny_whisper, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_whisper, data={"min_duration": 29.0})
    with pytest.raises(ValueError, match=r"split 'train': all \d+ utterances rejected .*shorter than 29.0 s"):
        load_training_split(recipe, "train")


def test_kept_plus_rejected_is_read(prepared, tiny_whisper, tmp_path):
    rows = load_split(prepared, "train")
    median = float(np.median([e - s for s, e in zip(rows["start"], rows["end"])]))
    recipe = recipe_for(tmp_path, prepared, tiny_whisper, data={"max_duration": median})
    split = load_training_split(recipe, "train")
    assert 0 < len(split.dataset) < split.read
    assert len(split.dataset) + sum(split.rejected.values()) == split.read == len(load_split(prepared, "train"))


def test_split_without_shards_is_a_clear_error(prepared, tiny_whisper, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_whisper, data={"test_split": "holdout"})
    with pytest.raises(FileNotFoundError, match="no parquet shards for split 'holdout'"):
        load_training_split(recipe, "holdout")


# ------------------------------------------------------------------------------------------------ models train
def test_shrink_decoder_keeps_the_chosen_layers_and_their_alignment_heads(tiny_whisper, tmp_path):
    from kidsasr.asr.export import export_ct2

    teacher = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).eval()
    student = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).eval()
    student.generation_config.alignment_heads = [[0, 1], [1, 0]]
    shrink_decoder(student, [1])
    assert student.config.decoder_layers == 1 and len(student.model.decoder.layers) == 1
    torch.testing.assert_close(student.model.decoder.layers[0].fc1.weight, teacher.model.decoder.layers[1].fc1.weight)
    assert student.generation_config.alignment_heads == [[0, 0]]
    features = torch.randn(1, 80, 3000)
    with torch.no_grad():  # cached generation indexes its key/value cache by the renumbered layers
        tokens = student.generate(features, max_new_tokens=4, do_sample=False)
    assert tokens.shape[-1] >= 2
    student.save_pretrained(tmp_path / "student")
    WhisperProcessor.from_pretrained(tiny_whisper).save_pretrained(tmp_path / "student")
    ct2 = export_ct2(str(tmp_path / "student"), tmp_path / "student-ct2")
    config = json.loads((ct2 / "config.json").read_text())
    assert config["alignment_heads"] == [[0, 0]]

    other = WhisperForConditionalGeneration.from_pretrained(tiny_whisper)
    other.generation_config.alignment_heads = [[1, 1]]
    shrink_decoder(other, [0])  # no head in the kept layer: every head of the last kept layer
    assert other.generation_config.alignment_heads == [[0, 0], [0, 1]]
    with pytest.raises(RecipeError, match="model.decoder_layers"):
        shrink_decoder(WhisperForConditionalGeneration.from_pretrained(tiny_whisper), [0, 2])


def test_shortened_encoder_window_trains_exports_and_bounds_clips(prepared, tiny_whisper, tmp_path):
    from kidsasr.asr.export import export_ct2
    from kidsasr.asr.models import CT2Whisper

    recipe = recipe_for(tmp_path, prepared, tiny_whisper, model={"encoder_seconds": 15, "frozen_encoder_layers": 1},
                        data={"max_duration": 15.0, "pack_seconds": 15.0}, train={"encoder_cache_layer": 1})
    setup = build(recipe, tmp_path / "run", tmp_path / "cache")
    model = setup.trainer.model
    assert model.config.max_source_positions == 750 and model.model.encoder.embed_positions.num_embeddings == 750
    full = WhisperForConditionalGeneration.from_pretrained(tiny_whisper)
    torch.testing.assert_close(model.model.encoder.embed_positions.weight,
                               full.model.encoder.embed_positions.weight[:750])
    assert not model.model.encoder.embed_positions.weight.requires_grad
    assert setup.trainer.train_dataset.states.shape[1] == 750  # cached states of 15 s windows
    setup.trainer.train()
    assert np.isfinite(losses(setup.trainer)).all()
    best = tmp_path / "short"
    model.save_pretrained(best)
    setup.processor.save_pretrained(best)
    assert WhisperProcessor.from_pretrained(best).feature_extractor.n_samples == 15 * 16000
    recognizer = CT2Whisper(str(export_ct2(str(best), tmp_path / "short-ct2")))
    assert recognizer.clip_seconds == 15.0
    assert len(recognizer.transcribe_batch([np.ones(15 * 16000, np.float32) * 0.01])) == 1
    with pytest.raises(ValueError, match="at most 15 s for this model"):
        recognizer.transcribe_batch([np.zeros(20 * 16000, np.float32)])

    start_at_15 = recipe_for(tmp_path, prepared, best)  # max_duration 30 > the model's window
    with pytest.raises(RecipeError, match="reads 15 s windows"):
        build(start_at_15, tmp_path / "again", tmp_path / "cache")


def test_encoder_cache_is_exact(tiny_whisper):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).eval()
    features = torch.randn(2, 80, 3000)
    with torch.no_grad():
        full = model.get_encoder()(features).last_hidden_state
        split = encode_upper(model, encode_lower(model, features, 1), 1).last_hidden_state
    torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)


def test_tiny_whisper_trains_with_dev_cer_and_early_stopping(prepared, tiny_whisper, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_whisper,
                        train={"eval_steps": 3, "save_steps": 3, "early_stopping_patience": 2})
    setup = build(recipe, tmp_path / "run", tmp_path / "cache")
    setup.trainer.train()
    seen = losses(setup.trainer)
    assert len(seen) == 6 and np.mean(seen[-2:]) < seen[0]
    curve = [h["eval_cer"] for h in setup.trainer.state.log_history if "eval_cer" in h]
    assert len(curve) == 2 and all(c >= 0 for c in curve)
    assert setup.trainer.state.best_metric == min(curve)
    assert list((tmp_path / "run" / "runs").rglob("events.out.tfevents.*"))


def test_tiny_wav2vec2_loss_goes_down(prepared, tiny_wav2vec2, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_wav2vec2, family="wav2vec2",
                        model={"mask_time_prob": 0.0}, train={"learning_rate": 1e-3, "max_steps": 8})
    setup = build(recipe, tmp_path / "run", tmp_path / "cache")
    setup.trainer.train()
    seen = losses(setup.trainer)
    assert np.mean(seen[-2:]) < seen[0]
    assert score(setup, "dev") >= 0
    assert json.loads((tmp_path / "run" / "vocab.json").read_text())["|"] == 2


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def record_batches(trainer) -> list[list[int]]:
    """The label rows each optimisation step sees."""
    seen: list[list[int]] = []
    step = trainer.training_step

    def recording(model, inputs, *args, **kwargs):
        seen.append(inputs["labels"][:, :6].tolist())
        return step(model, inputs, *args, **kwargs)

    trainer.training_step = recording
    return seen


def test_killed_run_resumes_with_the_same_step_and_data_order(prepared, tiny_whisper, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_whisper, train={"max_steps": 4, "save_steps": 2, "batch_size": 2},
                        augment={"enabled": True, "noise_prob": 1.0})
    straight = build(recipe, tmp_path / "straight", tmp_path / "cache")
    straight_batches = record_batches(straight.trainer)
    straight.trainer.train()

    interrupted = build(recipe, tmp_path / "resumed", tmp_path / "cache")
    interrupted.trainer.add_callback(StopAt(2))
    interrupted.trainer.train()
    assert interrupted.trainer.state.global_step == 2
    checkpoint = last_checkpoint(tmp_path / "resumed")
    assert checkpoint and checkpoint.endswith("checkpoint-2")

    resumed = build(recipe, tmp_path / "resumed", tmp_path / "cache")
    resumed_batches = record_batches(resumed.trainer)
    resumed.trainer.train(resume_from_checkpoint=checkpoint)
    assert resumed.trainer.state.global_step == 4
    assert resumed_batches == straight_batches[2:]
    assert losses(resumed.trainer)[-1] == pytest.approx(losses(straight.trainer)[-1], rel=1e-4)


def test_a_run_folder_resumes_only_the_recipe_its_checkpoints_came_from(prepared, tiny_whisper, tmp_path, capsys):
    first = recipe_for(tmp_path, prepared, tiny_whisper, train={"max_steps": 4, "save_steps": 2},
                       export={"evaluate_test": False})
    assert train(first)["global_step"] == 4
    out = Path(first.train.output_dir)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    changed = recipe_for(tmp_path, prepared, tiny_whisper, train={"max_steps": 4, "save_steps": 2,
                                                                  "learning_rate": 1e-3},
                         export={"evaluate_test": False})
    with pytest.raises(RecipeError, match=r"train\.learning_rate: 0\.003 -> 0\.001.*--no-resume"):
        train(changed)
    # where things go, how often it logs, what is exported: the run resumes (training is done) and exports
    moved = recipe_for(tmp_path, prepared, tiny_whisper, train={"max_steps": 4, "save_steps": 2, "eval_steps": 50},
                       export={"evaluate_test": False, "weight_ensemble_alpha": 0.5})
    assert train(moved)["weight_ensemble"] == {"alpha": 0.5}

    yaml_file = tmp_path / "changed.yaml"
    yaml_file.write_text(dump_recipe(changed), encoding="utf-8")
    assert kidsasr_main(["train", "--recipe", str(yaml_file)]) == 2
    assert "--no-resume" in capsys.readouterr().err
    # --no-resume trains from the start and drops the old run's checkpoints, which a later resume could pick up
    assert kidsasr_main(["train", "--recipe", str(yaml_file), "--no-resume", "train.max_steps=1",
                         "train.save_steps=1"]) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]


def test_cached_encoder_run_exports_a_model_card(prepared, tiny_whisper, tmp_path):
    recipe = recipe_for(tmp_path, prepared, tiny_whisper, model={"frozen_encoder_layers": 1, "decoder_layers": [1]},
                        data={"pack_seconds": 30.0, "max_test_utterances": 4, "max_dev_utterances": 4},
                        train={"encoder_cache_layer": 1, "max_steps": 3, "save_steps": 2})
    recipe.export.ct2 = True
    results = train(recipe)
    out = Path(recipe.train.output_dir)
    assert results["global_step"] == 3 and 0 <= results["dev_cer"] and "zero_shot_test_cer" in results
    baseline = zero_shot_recipe(recipe)  # scored with the whole decoder: the student's is an initialisation
    assert baseline.model.decoder_layers == [] and recipe.model.decoder_layers == [1]
    assert baseline.model.encoder_seconds == recipe.model.encoder_seconds
    best = out / "best"
    card = (best / "README.md").read_text()
    assert "| this model |" in card and "zero-shot" in card and "demo" not in card.split("## Recipe")[0]
    generation = json.loads((best / "generation_config.json").read_text())
    assert generation["language"] == "ko" and generation["task"] == "transcribe"
    assert (best / "tokenizer.json").is_file() or (best / "vocab.json").is_file()
    assert (out / "ct2" / "model.bin").is_file()
    assert json.loads((out / "results.json").read_text())["test_cer"] == results["test_cer"]
    shutil.rmtree(out)
