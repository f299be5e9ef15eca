"""The model card (README.md) written beside an exported model."""

from __future__ import annotations

from pathlib import Path

from ..evaluation.reports import real_speech_section
from ..fileio import write_text_atomic
from .recipe import Recipe, dump_recipe


def ensemble_text(results: dict) -> str:
    """How the exported weights were mixed, e.g. "alpha 0.35, encoder 0.75"."""
    mix = results["weight_ensemble"]
    return f"alpha {mix['alpha']:g}" + (f", encoder {mix['encoder_alpha']:g}" if "encoder_alpha" in mix else "")


def write_model_card(path: Path, recipe: Recipe, results: dict) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    data = results["data"]
    lines = [
        f"# {recipe.name}: {recipe.model.name_or_path} fine-tuned on Korean children's broadcast speech", "",
        recipe.description.strip(), "",
        "## Data", "",
        f"Prepared corpus: `{recipe.data.prep_dir}` (kidsasr prep), text field `{recipe.data.text_field}`."
        + (f" The train row includes {recipe.augment.bank_sentences} utterances spoken from the kidsasr text bank"
           " (sentences that occur in dev or test excluded)." if recipe.augment.enabled and
           recipe.augment.bank_sentences else ""), "",
        "| split | utterances kept | of read | hours |", "| --- | --- | --- | --- |",
        *[f"| {k} | {v['kept']} | {v['read']} | {v['hours']:.2f} |" for k, v in data.items()], "",
        "## Results (CER, kidsasr scoring normalisation)", "",
        "| model | dev CER | test CER |", "| --- | --- | --- |",
        f"| zero-shot `{recipe.model.name_or_path}` | - | {pct(results.get('zero_shot_test_cer'))} |",
        f"| this model | {pct(results.get('dev_cer'))} | {pct(results.get('test_cer'))} |", "",
        *real_speech_section(results.get("real_speech") or {"skipped": "real read speech: not scored "
                                                                          "(export.evaluate_real_speech: false)"}),
        f"Training: {results['global_step']} steps, {results['train_minutes']:.1f} min "
        f"({results['device']})."
        + (f" Exported weights: start + alpha x (fine-tuned - start), {ensemble_text(results)}: a weight-space"
           " ensemble with the start model (export.weight_ensemble_*); the dev CER is the fine-tuned weights',"
           " the test and real-speech CER the exported weights'." if "weight_ensemble" in results else ""), "",
        "## Recipe", "", "```yaml", dump_recipe(recipe).rstrip(), "```", "",
        "## Use", "",
        "```python\nfrom kidsasr.asr.models import load_recognizer\n"
        f"recognizer = load_recognizer(\"{path.parent.name}/best\", backend=\"transformers\")\n```", "",
    ]
    write_text_atomic(path / "README.md", "\n".join(lines))
