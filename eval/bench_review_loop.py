"""`make bench-review`: the review loop measured on generated episodes (issue 19, item 4).

1. A start model: whisper-base fine-tuned briefly on a generated demo corpus (seed 0; recipes/demo_cpu.yaml, fewer
   steps), and its cue confidence calibrated on that corpus's dev episodes (`kidsasr calibrate`).
2. A second generated corpus (seed 1) is split by episode: the review episodes and the held-out episodes.
3. The start model subtitles the review episodes (`kidsasr subtitle`'s path). A simulated editor
   (kidsasr.review.simulate) retypes and retimes the sentences of the cues the review page flags, marks them reviewed
   and saves through the editor's save path (kidsasr.review.document.save). The control saves the same cues, same
   times, with the machine's text.
4. Both are prepped as `source: review` (only reviewed cues; the text-dependent filters off, so both keep the same
   audio) and the start model is fine-tuned on each with recipes/review_loop_cpu.yaml, same seed and steps.
5. The three models transcribe the held-out utterances; CER with 95% bootstrap intervals, and paired bootstrap
   differences (kidsasr.evaluation.metrics).

Everything is written under --work and reused on a rerun (delete a stage's folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREP_CONFIG = ROOT / "data_prep" / "config.yaml"
START_RECIPE = ROOT / "recipes" / "demo_cpu.yaml"
LOOP_RECIPE = ROOT / "recipes" / "review_loop_cpu.yaml"
QUIET_EXPORT = ["export.ct2=false", "export.evaluate_test=false", "export.evaluate_zero_shot=false",
                "export.evaluate_real_speech=false"]
SYSTEMS = ("corrected", "control")


def kidsasr(*argv: str | Path) -> None:
    from kidsasr.cli import main

    rc = main([str(a) for a in argv])
    if rc:
        raise SystemExit(f"bench-review: `kidsasr {' '.join(map(str, argv[:1]))}` failed ({rc})")


def prep(corpus: Path, out: Path, *overrides: str) -> list[dict]:
    """`kidsasr prep` with the label times (aligner none); the manifest rows."""
    from kidsasr.fileio import read_jsonl
    from kidsasr.prep.config import load_config
    from kidsasr.prep.runner import prepare

    if not (out / "manifest.jsonl").is_file():
        prepare([corpus], out, load_config(PREP_CONFIG, ["alignment.aligner=none", *overrides]))
    return list(read_jsonl(out / "manifest.jsonl"))


def train(recipe: Path, data: Path, out: Path, *overrides: str) -> Path:
    if not (out / "best").is_dir():
        kidsasr("train", "--recipe", recipe, "--data", data, "--out", out, "--no-resume", *overrides)
    return out / "best"


def true_sentences(corpus: Path) -> dict[str, list]:
    """Per generated episode, its sentences as an editor would type them: true times (truth.jsonl), spelling."""
    from kidsasr.evaluation.boundaries import sentences_with_truth
    from kidsasr.review.calibration import Utterance
    from kidsasr.textnorm import parse_label

    found = {}
    for episode, pairs in sentences_with_truth(corpus):
        found[episode.id] = ([Utterance(r["true_start"], r["true_end"], parse_label(s.text).spelling)
                              for s, r in pairs], episode.audio.path)
    return found


def review_episodes(episodes: list[str], truth: dict, start: Path, work: Path) -> dict:
    """Subtitle each episode with the start model, simulate the editor, save both reviews; what was reviewed."""
    from kidsasr.asr.models import load_recognizer
    from kidsasr.review.document import load_document, review_files, save
    from kidsasr.review.simulate import is_weak, simulate_review
    from kidsasr.subtitles.cues import load_style
    from kidsasr.subtitles.runner import subtitle_file

    recognizer = None
    counts = {"episodes": len(episodes), "cues": 0, "flagged": 0, "reviewed": 0}
    for name in episodes:
        sentences, audio = truth[name]
        folders = {f: work / f for f in ("machine", *SYSTEMS)}
        media = f"{name}{Path(audio).suffix}"
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / media).exists():
                (folder / media).symlink_to(Path(audio).resolve())
        machine = folders["machine"] / f"{name}.vtt"
        if not machine.is_file():
            recognizer = recognizer or load_recognizer(str(start))
            result = subtitle_file(folders["machine"] / media, machine, recognizer)
            if result.status != "done":
                raise SystemExit(f"bench-review: {name}: {result.reason}")
        document = load_document(review_files(machine))
        flags = [is_weak(c, document.weak_threshold, document.error_threshold) for c in document.cues]
        review = simulate_review(document.cues, flags, sentences)
        counts["cues"] += len(document.cues)
        counts["flagged"] += review.flagged
        counts["reviewed"] += sum(c.reviewed for c in review.corrected)
        control_edits = [{"action": "reviewed", "cue": n} for n, c in enumerate(review.control, 1) if c.reviewed]
        for system, cues, edits in (("corrected", review.corrected, review.edits),
                                    ("control", review.control, control_edits)):
            files = review_files(machine, folders[system])
            if not files.vtt.is_file():
                save(cues, files, document.style or load_style("kids"), edits, media,
                     document.weak_threshold, document.error_threshold)
    return counts


def hours(rows: list[dict]) -> float:
    return sum(r["end"] - r["start"] for r in rows) / 3600


def score_models(models: dict[str, Path], data: Path, out: Path, resamples: int) -> dict:
    """CER of each model on the held-out split with its interval; paired differences against `corrected`."""
    from kidsasr.evaluation import metrics
    from kidsasr.evaluation.inputs import align_hypotheses
    from kidsasr.evaluation.sources import open_labelled
    from kidsasr.evaluation.transcription import transcribe_cached

    labelled = open_labelled(data, "test")
    utterances = labelled.utterances
    ids, refs = [u.id for u in utterances], [u.text for u in utterances]
    scores = {}
    for name, model in models.items():
        hyps = transcribe_cached(labelled, ids, str(model), "auto", out / name).texts
        scores[name] = metrics.score(ids, refs, align_hypotheses(utterances, hyps, name), with_confusions=False)
    char = {name: s.char for name, s in scores.items()}
    result = {"utterances": len(ids), "hours": sum(u.end - u.start for u in utterances) / 3600,
              "cer": {name: metrics.bootstrap_ci(c.errors, c.ref_len, resamples).as_dict() for name, c in char.items()}}
    result["corrected_minus"] = {
        name: metrics.paired_bootstrap(char["corrected"].errors, char[name].errors, char["corrected"].ref_len,
                                       resamples).as_dict() for name in models if name != "corrected"}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("work/review-loop"))
    parser.add_argument("--start-steps", type=int, default=40, help="steps of the start model's fine-tune")
    parser.add_argument("--bank-sentences", type=int, default=200, help="text-bank utterances in the start model's")
    parser.add_argument("--held-out", type=float, default=0.4, help="share of the second corpus held out")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    from kidsasr.synth.generator import generate

    work = args.work.resolve()
    corpora = {seed: generate("demo", seed, work / f"corpus-{seed}") for seed in (0, 1)}

    # 1. the start model and its calibration
    prep_start = work / "prep-start"
    prep(corpora[0], prep_start, "splits.dev=0.15", "splits.test=0.0")
    start = train(START_RECIPE, prep_start, work / "start", f"train.max_steps={args.start_steps}",
                  "train.max_minutes=0", f"augment.bank_sentences={args.bank_sentences}", "data.max_dev_utterances=16",
                  "train.save_steps=1000", *QUIET_EXPORT)
    if not (start / "confidence_calibration.json").is_file():
        kidsasr("calibrate", "--model", start, "--data", prep_start, "--split", "dev", "--work", work / "calibrate")

    # 2-3. review episodes and held-out episodes; the simulated editor
    loop_rows = prep(corpora[1], work / "prep-loop", "splits.dev=0.0", f"splits.test={args.held_out}")
    episodes = sorted({r["episode_id"] for r in loop_rows if r["split"] == "train"})
    counts = review_episodes(episodes, true_sentences(corpora[1]), start, work / "reviewed")

    # 4. prep both reviews, fine-tune on each
    lenient = ("splits.dev=0.0", "splits.test=0.0", "filters.min_cps=0.0", "filters.max_cps=1000.0")
    models = {"start": start}
    training_hours = {}
    for system in SYSTEMS:
        rows = prep(work / "reviewed" / system, work / f"prep-{system}", *lenient)
        training_hours[system] = round(hours(rows), 4)
        models[system] = train(LOOP_RECIPE, work / f"prep-{system}", work / f"train-{system}",
                               f"model.name_or_path={start}")

    # 5. held-out CER
    result = score_models(models, work / "prep-loop", work / "eval", args.bootstrap)
    result.update(review=counts, training_hours=training_hours)
    (work / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(report(result))
    return 0


def report(result: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    ci = lambda d: f"{pct(d['estimate'])}% [{pct(d['ci_low'])}, {pct(d['ci_high'])}]"  # noqa: E731
    r = result["review"]
    lines = [f"review: {r['episodes']} episodes, {r['cues']} machine cues, {r['flagged']} flagged, "
             f"{r['reviewed']} sentences corrected; training audio corrected {result['training_hours']['corrected']} h,"
             f" control {result['training_hours']['control']} h",
             f"held out: {result['utterances']} utterances, {result['hours']:.3f} h",
             f"{'system':<34} CER [95% CI]",
             f"{'start model':<34} {ci(result['cer']['start'])}",
             f"{'+ corrected reviews':<34} {ci(result['cer']['corrected'])}",
             f"{'+ machine text, same audio':<34} {ci(result['cer']['control'])}"]
    for name, comparison in result["corrected_minus"].items():
        d = comparison["difference"]
        p = comparison["p_value"]
        lines.append(f"corrected - {name}: {pct(d['estimate'])} pt [{pct(d['ci_low'])}, {pct(d['ci_high'])}], "
                     + (f"p={p:.4f}" if p else f"p<{1 / comparison['n_resamples']:.4f} (no resample crossed 0)"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
