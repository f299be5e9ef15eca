"""The standing real-speech score: a model and the zero-shot baseline on the report half of the real read-speech
set (kidsasr.evaluation.real_speech), with a paired bootstrap and a breakdown by room.

`kidsasr eval` runs it beside the synthetic split whenever the set is found (../shared/real-speech, or
--real-speech PATH / $KIDSASR_REAL_SPEECH), and says plainly that it skipped it otherwise; `kidsasr train` puts the
figures in the model card.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..fileio import write_jsonl_atomic
from .real_speech import read_speech_manifest, read_speech_split, skip_message
from .scoring import evaluate
from .inputs import EvalInputError
from .sources import LabelledSet, open_labelled
from .transcription import transcribe_cached

HALF = "report"


def select_half(labelled: LabelledSet, manifest: Path, half: str) -> LabelledSet:
    """The utterances of one half ("tune" or "report") of the read-speech manifest; an id it lacks is an error."""
    halves = read_speech_split(manifest)
    unknown = [u.id for u in labelled.utterances if u.id not in halves]
    if unknown:
        raise EvalInputError(f"{manifest}: {len(unknown)} utterance(s) not in the read-speech manifest, e.g. "
                             f"{unknown[0]}")
    keep = [k for k, u in enumerate(labelled.utterances) if halves[u.id] == half]
    return replace(labelled, utterances=[labelled.utterances[k] for k in keep],
                   metadata=[labelled.metadata[k] for k in keep],
                   audio=None if labelled.audio is None else [labelled.audio[k] for k in keep])


def score_real_speech(model: str, out: Path, baseline: str | None = None, backend: str = "auto",
                      baseline_backend: str = "auto", real_speech: str | Path | None = None, device: str = "cpu",
                      compute_type: str = "int8", batch_size: int = 8, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Score `model` (and `baseline`) on the report half; {"skipped": why} when the set is not there.

    Hypotheses are cached under `out` (one file per model), per-utterance rows go to `out/utterances.jsonl`.
    """
    manifest = read_speech_manifest(real_speech)
    if manifest is None:
        return {"skipped": skip_message(real_speech)}
    labelled = select_half(open_labelled(manifest, "test"), manifest, HALF)
    ids = [u.id for u in labelled.utterances]

    def hyps(name: str, which_backend: str) -> tuple[list[str | None], dict]:
        t = transcribe_cached(labelled, ids, name, which_backend, out, device, compute_type, batch_size)
        return [t.texts.get(i) for i in ids], {"real_time_factor": t.real_time_factor,
                                               "transcription_failures": t.failures}

    model_hyps, model_extra = hyps(model, backend)
    base_hyps, base_extra = hyps(baseline, baseline_backend) if baseline else (None, {})
    result, per_utt = evaluate(labelled.utterances, model_hyps, base_hyps, "text", n_resamples, seed,
                               labelled.metadata)
    result["model"].update(model_extra)
    if baseline:
        result["baseline"].update(base_extra)
    write_jsonl_atomic(out / "utterances.jsonl", per_utt)
    return {"manifest": str(manifest), "half": HALF, "model_name": model, "baseline_name": baseline,
            **{k: v for k, v in result.items() if k != "breakdowns"},
            "by_room": {system: rows["room"] for system, rows in result["breakdowns"].items() if "room" in rows}}
