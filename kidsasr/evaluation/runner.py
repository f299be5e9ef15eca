"""`kidsasr eval`: transcribe labelled audio (or read a hypotheses file), score it against the zero-shot
baseline in the same run, and write report.md, metrics.json, per-utterance scores and plots.

    kidsasr eval --model out/best --data work/prep --split test          # model vs openai/whisper-base
    kidsasr eval --model M --data ../shared/real-speech/korean-read/manifest.jsonl   # any manifest with audio
    kidsasr eval --model M --data CORPUS/                                # 71502, 자유대화, KsponSpeech, broadcast
    kidsasr eval --hyps hyps.jsonl --data work/prep/manifest.jsonl       # score a hypotheses file, no model
    kidsasr eval --subtitles ep.vtt --reference ep.json                  # long-form: see kidsasr.evaluation.longform

Stages: 1 read references (kidsasr.evaluation.sources), 2 transcribe (resumable: hypotheses are cached per model
in the run folder), 3 score + bootstrap, breakdowns by every metadata field present, 4 the real read-speech score
(kidsasr.evaluation.real_score) when the set is found, 5 write the report and append one row to eval/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ..constants import DEFAULT_MODEL
from ..fileio import BusyError, remove_stale_parts, run_lock
from . import metrics
from .inputs import EvalInputError, align_hypotheses, read_hypotheses
from .reports import format_ci, format_pct, git_commit, load_published_baselines, write_outputs
from .scoring import evaluate
from .real_score import select_half
from .sources import open_labelled
from .transcription import slug, transcribe_cached


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Whisper or wav2vec2 CTC model: Hugging Face id, HF folder or CT2 folder")
    parser.add_argument("--baseline", default=None,
                        help=f"zero-shot baseline scored in the same run (default {DEFAULT_MODEL} when --model "
                             "is given; 'none' to skip)")
    parser.add_argument("--data", help="labelled audio: a prep folder, a manifest .jsonl whose rows name audio "
                        "(`audio` relative to the manifest, or kidsasr's `audio_source` + times), or a corpus folder "
                        "in the 71502, 자유대화, KsponSpeech or broadcast-dialogue layout")
    parser.add_argument("--split", default="test", choices=("train", "dev", "test"))
    parser.add_argument("--backend", default="auto", choices=("auto", "ct2", "transformers", "ctc"))
    parser.add_argument("--baseline-backend", default="auto", choices=("auto", "ct2", "transformers", "ctc"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="score only the first N utterances (by id); for quick looks")
    parser.add_argument("--hyps", help="score this JSON-lines file of {id, text} instead of running a model")
    parser.add_argument("--baseline-hyps", help="baseline hypotheses file (instead of transcribing the baseline)")
    parser.add_argument("--reference-field", default="text", choices=("text", "text_pron"),
                        help="spelling side (digits kept, what subtitles show) or pronunciation side (Hangul "
                             "numbers, what a character CTC model emits)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run folder (default RESULTS_DIR/<date>-<model>-<split>)")
    parser.add_argument("--results-dir", default="eval/results", help="where run folders go (default %(default)s)")
    parser.add_argument("--baselines", default="eval/baselines.yaml",
                        help="published figures shown beside ours, if the file exists (default %(default)s)")
    parser.add_argument("--results-md", default="eval/RESULTS.md",
                        help="table that gets one row per run ('none' to skip)")
    parser.add_argument("--subtitles", help="long-form: score this VTT/SRT file instead (needs --reference)")
    parser.add_argument("--reference", help="long-form: reference VTT/SRT or the episode's label JSON")
    parser.add_argument("--style", default="kids", help="long-form: style profile for compliance checks")
    parser.add_argument("--half", choices=("tune", "report"),
                        help="with the real read-speech manifest as --data: score only this half of its sentences "
                             "(kidsasr.evaluation.real_speech: tune on one, report the other)")
    parser.add_argument("--real-speech", default=None,
                        help="real-speech folder (holding korean-read/manifest.jsonl) for the standing real-speech "
                             "score; default $KIDSASR_REAL_SPEECH or ../shared/real-speech; 'none' to skip")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (EvalInputError, metrics.ScoringError, FileNotFoundError, BusyError) as e:
        print(f"kidsasr eval: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.subtitles:
        from .longform import run_cli

        return run_cli(args)
    if not args.data or not (args.model or args.hyps):
        raise SystemExit("kidsasr eval: needs --data and one of --model / --hyps (or --subtitles + --reference)")
    now = dt.datetime.now(dt.timezone.utc)
    model_name = args.model or args.hyps
    run_name = Path(args.out).name if args.out else f"{now:%Y%m%d-%H%M%S}-{slug(model_name)}-{args.split}"
    out = Path(args.out or Path(args.results_dir) / run_name)
    with run_lock(out, "eval"):  # a second run on the same run folder is refused while this one writes there
        return _score(args, out, run_name, now, model_name)


def _score(args: argparse.Namespace, out: Path, run_name: str, now: dt.datetime, model_name: str) -> int:
    """Stages 1-5 into the run folder `out`."""
    remove_stale_parts(out, recursive=False)  # a killed run's half-written files; a live run's stay
    baseline_name = args.baseline or (DEFAULT_MODEL if args.model and not args.baseline_hyps else None)
    if baseline_name == "none" or (baseline_name is not None and baseline_name == args.model
                                   and args.baseline_backend == args.backend):
        if baseline_name != "none":
            print(f"note: the model is the baseline ({baseline_name}, backend {args.backend}); scoring it alone")
        baseline_name = None
    if args.baseline_hyps:
        baseline_name = args.baseline or args.baseline_hyps

    print(f"[1/5] reading references: {args.data} split {args.split}")
    labelled = open_labelled(args.data, args.split)
    other_half: set[str] = set()  # ids a hypotheses file may hold besides those scored
    if args.half:
        whole = {u.id for u in labelled.utterances}
        labelled = select_half(labelled, Path(args.data), args.half)
        other_half = whole - {u.id for u in labelled.utterances}
    utterances = labelled.utterances[: args.limit]
    metadata = labelled.metadata[: args.limit]
    ids = [u.id for u in utterances]
    print(f"      {len(ids)} utterances ({labelled.kind})" + "".join(f"\n      note: {n}" for n in labelled.notes[:5]))

    def system(name: str, hyps_file: str | None, backend: str) -> tuple[list[str | None], float | None, dict]:
        if hyps_file:
            hyps = {k: v for k, v in read_hypotheses(hyps_file).items() if k not in other_half}
            return align_hypotheses(utterances, hyps, hyps_file), None, {}
        print(f"[2/5] {name} ({backend})")
        t = transcribe_cached(labelled, ids, name, backend, out, args.device, args.compute_type, args.batch_size)
        return align_hypotheses(utterances, t.texts, str(out)), t.real_time_factor, t.failures

    hyps, rtf, failures = system(args.model, args.hyps, args.backend)
    base_hyps, base_rtf, base_failures = (None, None, {})
    if baseline_name:
        base_hyps, base_rtf, base_failures = system(baseline_name, args.baseline_hyps, args.baseline_backend)

    print(f"[3/5] scoring {len(ids)} utterances ({args.bootstrap} bootstrap resamples)")
    try:
        result, per_utt = evaluate(utterances, hyps, base_hyps, args.reference_field, args.bootstrap, args.seed,
                                   metadata)
    except metrics.ScoringError as e:
        raise EvalInputError(f"{args.data}: {e}") from e
    result["model"].update(real_time_factor=rtf, transcription_failures=failures)
    if "baseline" in result:
        result["baseline"].update(real_time_factor=base_rtf, transcription_failures=base_failures)
    m = {"run": run_name, "date": now.isoformat(timespec="seconds"), "commit": git_commit(),
         "model_name": model_name, "backend": None if args.hyps else args.backend,
         "baseline_name": baseline_name and (baseline_name if args.baseline_hyps
                                             else f"{baseline_name} ({args.baseline_backend})"),
         "data": str(args.data), "split": args.split, "reference_field": args.reference_field,
         "limit": args.limit, "bootstrap_resamples": args.bootstrap, "seed": args.seed,
         "normalisation_policy": metrics.NORMALISATION_POLICY, **result,
         "published_baselines": load_published_baselines(Path(args.baselines)),
         "real_speech": _real_speech(args, baseline_name, out)}
    results_md = None if args.results_md == "none" else Path(args.results_md)
    print(f"[5/5] writing {out}/report.md, metrics.json, utterances.jsonl, plots"
          + (f"; one row in {results_md}" if results_md else ""))
    write_outputs(m, per_utt, out, results_md)
    line = f"CER {format_ci(m['model']['cer'])} %"
    if "comparison" in m:
        line += (f" vs baseline {format_ci(m['baseline']['cer'])} %, difference "
                 f"{format_pct(m['comparison']['difference']['estimate'])} (p={m['comparison']['p_value']:.4f})")
    print(line)
    real = m["real_speech"]
    if "model" in real:
        line = f"real read speech ({real['half']} half, {real['utterances']} clips): CER {format_ci(real['model']['cer'])} %"
        if "comparison" in real:
            line += (f" vs baseline {format_ci(real['baseline']['cer'])} %, difference "
                     f"{format_pct(real['comparison']['difference']['estimate'])} (p={real['comparison']['p_value']:.4f})")
        print(line)
    else:
        print(real["skipped"])
    if m["model"]["missing_hypotheses"]:
        print(f"warning: {m['model']['missing_hypotheses']} utterance(s) had no hypothesis; scored as deletions")
    return 0


def _real_speech(args: argparse.Namespace, baseline_name: str | None, out: Path) -> dict:
    """Stage 4: the model (and the baseline model, when one is transcribed) on the real read speech."""
    if args.real_speech == "none":
        return {"skipped": "real read speech: skipped (--real-speech none)"}
    if not args.model:
        return {"skipped": "real read speech: skipped (hypotheses files are scored, no model to run)"}
    from .real_score import score_real_speech

    print("[4/5] real read speech (report half) beside the split")
    baseline = baseline_name if baseline_name and not args.baseline_hyps else None
    return score_real_speech(args.model, out / "real-speech", baseline, args.backend, args.baseline_backend,
                             args.real_speech, args.device, args.compute_type, args.batch_size, args.bootstrap,
                             args.seed)
