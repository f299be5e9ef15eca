"""`kidsasr train` recipes and `kidsasr eval` inputs under hostile values (issue 18): number spellings, infinite
epochs, a section overridden by a scalar, errors on stderr, reversed subtitle cues, empty or unmatched
hypotheses files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kidsasr.cli import main
from kidsasr.training.recipe import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "demo_cpu.yaml"


# ---- case 9: every YAML number spelling is a number ------------------------------------------------------------


@pytest.mark.parametrize("text,value", [("1e-4", 1e-4), ("-1e-4", -1e-4), ("1E-4", 1e-4), ("+2e-5", 2e-5),
                                        ("3e5", 3e5), ("1_000.5", 1000.5)])
def test_every_number_spelling_reads_as_a_number(text, value):
    if value > 0:
        recipe = load_recipe(RECIPE, [f"train.learning_rate={text}"], check_data=False)
        assert recipe.train.learning_rate == pytest.approx(value)
    else:
        with pytest.raises(RecipeError, match=r"train.learning_rate: must be > 0 \(got -0.0001\)"):
            load_recipe(RECIPE, [f"train.learning_rate={text}"], check_data=False)


def test_number_spellings_in_a_recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\ntrain:\n  learning_rate: 1e-4\n  weight_decay: 1.0e-2\n  num_epochs: 2\n")
    recipe = load_recipe(path, check_data=False)
    assert (recipe.train.learning_rate, recipe.train.weight_decay, recipe.train.num_epochs) == (1e-4, 0.01, 2.0)


# ---- case 10: infinite and not-a-number values are refused ------------------------------------------------------


@pytest.mark.parametrize("override,key", [("train.num_epochs=.inf", "train.num_epochs"),
                                          ("train.learning_rate=.nan", "train.learning_rate"),
                                          ("train.max_minutes=.inf", "train.max_minutes"),
                                          ("data.pack_gap=.inf", "data.pack_gap"),
                                          ("augment.noise_snr_db=[5, .inf]", "augment.noise_snr_db")])
def test_infinite_or_nan_values_are_refused_by_name(override, key):
    with pytest.raises(RecipeError, match=key.replace(".", r"\.") + ".*finite"):
        load_recipe(RECIPE, [override], check_data=False)


# ---- case 11: an override that replaces a section is blamed, not the --out override after it ------------------


def test_scalar_over_a_section_names_the_users_override(capsys, tmp_path):
    code = main(["train", "--recipe", str(RECIPE), "--out", str(tmp_path / "o"), "train=5"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'train=5'" in err and "train is a section" in err
    assert "output_dir" not in err


# ---- also required: train writes its errors to stderr -----------------------------------------------------------


def test_train_errors_go_to_stderr(capsys):
    assert main(["train", "--recipe", str(RECIPE), "train.lerning_rate=1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "train.lerning_rate: unknown key" in captured.err


def test_a_model_folder_that_does_not_exist_is_named_by_train(capsys, tmp_path):
    assert main(["train", "--recipe", str(RECIPE), f"model.name_or_path={tmp_path / 'no' / 'model'}"]) == 2
    assert "model.name_or_path: no such folder" in capsys.readouterr().err


# ---- case 8: reversed cues are reported by number, not an AssertionError from suber -----------------------------


VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n안녕하세요\n\n00:00:05.000 --> 00:00:03.000\n거꾸로예요\n"
LABEL = {"media_info": {"sentence_list": [{"sentence": "안녕하세요", "start": "0:00:01.000", "end": "0:00:02.000"},
                                          {"sentence": "거꾸로예요", "start": "0:00:03.000", "end": "0:00:05.000"}]}}


@pytest.mark.parametrize("reversed_in", ["subtitles", "reference"])
def test_reversed_cue_times_are_reported_by_number(tmp_path, capsys, reversed_in):
    good = VTT.replace("00:00:05.000 --> 00:00:03.000", "00:00:03.000 --> 00:00:05.000")
    subs, ref = tmp_path / "s.vtt", tmp_path / "r.vtt"
    subs.write_text(VTT if reversed_in == "subtitles" else good, encoding="utf-8")
    ref.write_text(good if reversed_in == "subtitles" else VTT, encoding="utf-8")
    assert main(["eval", "--subtitles", str(subs), "--reference", str(ref)]) == 2
    err = capsys.readouterr().err
    bad = subs if reversed_in == "subtitles" else ref
    assert f"{bad}: cue 2 ends (00:00:03.000) before it starts (00:00:05.000)" in err
    assert "AssertionError" not in err and "Traceback" not in err


def test_reversed_sentence_in_a_label_reference_is_reported(tmp_path, capsys):
    subs, ref = tmp_path / "s.vtt", tmp_path / "r.json"
    subs.write_text(VTT.replace("00:00:05.000 --> 00:00:03.000", "00:00:03.000 --> 00:00:05.000"), encoding="utf-8")
    doc = json.loads(json.dumps(LABEL))
    doc["media_info"]["sentence_list"][1].update(start="0:00:05.000", end="0:00:03.000")
    ref.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert main(["eval", "--subtitles", str(subs), "--reference", str(ref)]) == 2
    assert f"{ref}: sentence 2 ends" in capsys.readouterr().err


# ---- case 15: hypotheses files that match nothing are errors with no RESULTS.md row ------------------------------


@pytest.fixture()
def manifest(tmp_path) -> Path:
    rows = [{"id": f"ep1_{k:04d}", "episode_id": "ep1", "split": "test", "audio_source": "ep1.wav", "start": 0.0,
             "end": 1.0, "text": text, "text_pron": text, "raw_text": text}
            for k, text in enumerate(["안녕하세요", "사과 주세요"])]
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("content,message", [
    ("", "no hypotheses"), ("\n\n", "no hypotheses"),
    ('{"id": "other_0000", "text": "x"}\n', "not in the references")])
def test_empty_or_unmatched_hyps_are_errors_with_no_results_row(tmp_path, manifest, capsys, content, message):
    hyps = tmp_path / "hyps.jsonl"
    hyps.write_text(content, encoding="utf-8")
    results = tmp_path / "RESULTS.md"
    code = main(["eval", "--hyps", str(hyps), "--data", str(manifest), "--results-md", str(results),
                 "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and str(hyps) in captured.err
    assert not results.exists()


def test_hyps_run_does_not_call_the_model_the_baseline(tmp_path, manifest, capsys):
    hyps = tmp_path / "hyps.jsonl"
    hyps.write_text('{"id": "ep1_0000", "text": "안녕하세요"}\n{"id": "ep1_0001", "text": "사과 주세요"}\n',
                    encoding="utf-8")
    assert main(["eval", "--hyps", str(hyps), "--data", str(manifest), "--results-md", "none", "--bootstrap", "50",
                 "--out", str(tmp_path / "run")]) == 0
    assert "baseline" not in capsys.readouterr().out.split("[3/4]")[0]


def test_export_names_a_model_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no" / "model"
    assert main(["export", str(missing), "-o", str(tmp_path / "ct2")]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such model folder" in err and "Repo id" not in err
    assert not (tmp_path / "ct2").exists()
