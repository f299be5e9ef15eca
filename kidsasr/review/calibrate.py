"""`kidsasr calibrate --model M --data X [--data Y] [--report Z]`: fit a model's cue confidence on data with references.

Data with references, any mix of:
  - a folder of episodes `EP.<audio or video>` + `EP.reference.vtt` (or one media file + `reference.vtt`, as
    kidsasr.evaluation.real_episode writes them): the reference cues are the utterances;
  - a `kidsasr prep` output folder: the episodes of `--split` (default dev: data a model was not trained on),
    its manifest rows the utterances.
Each episode is subtitled once with the model (`kidsasr subtitle`'s path, cached under `--work`), each cue gets
its features (kidsasr.review.calibration.cue_features) and, by the matching rule, a label (bad when its
utterance's CER is above 30% or the utterance has no cue); a logistic regression is fitted and saved as
`confidence_calibration.json` beside the model (or `--out`). `--report` scores it, on other data, by the issue's
rule: cues flagged, bad utterances (with a 95% interval) and how many were caught; `--plot` draws the
precision/recall curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calibration import (CALIBRATION_NAME, BAD_CER, Calibration, Utterance, cue_badness, cue_features, fit, summary,
                          utterance_outcomes, wilson_interval)


@dataclass
class Episode:
    name: str
    media: Path
    utterances: list[Utterance]


def episodes_in(data: Path, split: str = "dev") -> list[Episode]:
    """The episodes with references that `data` holds (see the module docstring)."""
    from ..subtitles.runner import MEDIA_SUFFIXES
    from .document import read_subtitle_file

    if (data / "manifest.jsonl").is_file():
        rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        by_audio: dict[str, list[Utterance]] = defaultdict(list)
        for row in rows:
            if split in ("all", row["split"]):
                by_audio[row["audio_source"]].append(Utterance(row["start"], row["end"], row["text"]))
        return [Episode(Path(audio).stem, Path(audio), sorted(utts, key=lambda u: u.start))
                for audio, utts in sorted(by_audio.items())]
    found = []
    for reference in sorted(data.rglob("*reference.vtt")):
        stem = reference.name[: -len("reference.vtt")].rstrip(".")
        media = [p for p in sorted(reference.parent.iterdir()) if p.suffix.lower() in MEDIA_SUFFIXES
                 and (p.stem == stem or not stem)]
        if len(media) != 1:
            raise ValueError(f"{reference}: expected one episode file beside it, found {[p.name for p in media]}")
        utterances = [Utterance(c.start, c.end, " ".join(c.lines)) for c in read_subtitle_file(reference)]
        found.append(Episode(stem or reference.parent.name, media[0], utterances))
    if not found:
        raise ValueError(f"{data}: neither a prep output (manifest.jsonl) nor episodes with *reference.vtt files")
    return found


def decoded_cues(episode: Episode, recognizer, work: Path, style: str) -> list[dict]:
    """The model's cue rows (`.cues.json`, decoder details included) for the episode, decoded once."""
    from ..subtitles.runner import subtitle_file

    out = work / f"{episode.name}.vtt"
    side = work / f"{episode.name}.cues.json"
    if not side.is_file():
        result = subtitle_file(episode.media, out, recognizer, style)
        if result.status != "done":
            raise ValueError(f"{episode.media}: {result.reason}")
    return json.loads(side.read_text(encoding="utf-8"))["cues"]


def labelled(episodes: list[Episode], recognizer, work: Path, style: str) -> tuple[list, list]:
    """(features and labels of every cue, (cue rows, utterances) per episode)."""
    x, y, per_episode = [], [], []
    for episode in episodes:
        rows = decoded_cues(episode, recognizer, work, style)
        cues = [(r["start"], r["end"], " ".join(r["lines"])) for r in rows]
        if cues:
            x += [cue_features(r) for r in rows]
            y += list(cue_badness(cues, episode.utterances))
        per_episode.append((rows, episode.utterances))
    return [np.array(x), np.array(y, bool)], per_episode


def score(calibration: Calibration, per_episode: list) -> tuple[dict, np.ndarray, np.ndarray, list]:
    """The issue's figures with the calibration's flags; and per cue its error probability and badness."""
    outcomes, flags, probabilities, badness = [], [], [], []
    for rows, utterances in per_episode:
        cues = [(r["start"], r["end"], " ".join(r["lines"])) for r in rows]
        flagged = list(calibration.flags(rows))
        outcomes += utterance_outcomes(cues, flagged, utterances)
        flags += flagged
        if rows:
            probabilities += list(calibration.error_probability([cue_features(r) for r in rows]))
            badness += list(cue_badness(cues, utterances))
    return summary(outcomes, flags), np.array(probabilities), np.array(badness, bool), outcomes


def plot_pr(probability: np.ndarray, bad: np.ndarray, threshold: float, path: Path, title: str) -> None:
    """Precision and recall of bad cues over the error-probability threshold, the chosen one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    from ..fileio import atomic_path

    precision, recall, thresholds = precision_recall_curve(bad, probability)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(recall, precision, label="bad cues")
    k = int(np.argmin(np.abs(thresholds - threshold))) if len(thresholds) else 0
    ax.scatter([recall[k]], [precision[k]], color="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.axhline(bad.mean(), color="grey", linestyle=":", label=f"share of bad cues {bad.mean():.2f}")
    ax.set_xlabel("recall (bad cues flagged)")
    ax.set_ylabel("precision (flagged cues that are bad)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def goals_line(report: dict, max_flag_share: float = 0.3, min_recall: float = 0.7) -> str:
    """The issue's goals on the reporting data, one line: cues flagged, bad utterances caught, how many were bad."""
    low, high = report["bad_share_ci95"]
    recall = report["recall"] or 0.0
    caught_low, caught_high = wilson_interval(report["bad_caught"], report["bad_utterances"])
    met = report["flagged_share"] <= max_flag_share and recall >= min_recall
    return (f"report: {report['flagged_share']:.1%} of {report['cues']} cues flagged (goal <= {max_flag_share:.0%}), "
            f"{report['bad_caught']} of {report['bad_utterances']} bad utterances caught = {recall:.1%} "
            f"[95% CI {caught_low:.1%}, {caught_high:.1%}] (goal >= {min_recall:.0%}); bad utterances "
            f"{report['bad_utterances']} of {report['utterances']} [95% CI of the share {low:.1%}, {high:.1%}]; "
            f"goals {'met' if met else 'NOT met'}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="the model to calibrate (Hub id, HF folder or CTranslate2 folder)")
    parser.add_argument("--data", action="append", required=True, type=Path,
                        help="data with references to fit on (repeatable; see `kidsasr calibrate --help`)")
    parser.add_argument("--report", action="append", default=[], type=Path, help="held-out data to score on")
    parser.add_argument("--split", default="dev",
                        help="the split of a prep output to use (default dev; `all` for every split)")
    parser.add_argument("--backend", default="auto", choices=["auto", "ct2", "transformers", "ctc"])
    parser.add_argument("--style", default="kids", help="the cue style (default kids)")
    parser.add_argument("--max-flag-share", type=float, default=0.3,
                        help="the threshold flags at most this share of the fitting cues (default 0.3)")
    parser.add_argument("--out", type=Path, help=f"where to write it (default: MODEL/{CALIBRATION_NAME})")
    parser.add_argument("--work", type=Path, default=Path("work/calibrate"), help="decoded episodes are kept here")
    parser.add_argument("--plot", type=Path, help="precision/recall curve of the --report data (PNG)")


def run(args: argparse.Namespace) -> int:
    from ..asr.export import check_model_name
    from ..fileio import BusyError, run_lock

    try:
        check_model_name(args.model)
    except FileNotFoundError as e:
        print(f"kidsasr calibrate: {e}", file=sys.stderr)
        return 2
    out = args.out or Path(args.model) / CALIBRATION_NAME
    if args.out is None and not Path(args.model).is_dir():
        print(f"kidsasr calibrate: {args.model} is not a local folder: name the file to write with --out",
              file=sys.stderr)
        return 2
    work = args.work / Path(args.model).name
    try:
        with run_lock(work, "calibrate"):  # one run at a time decodes into the model's work folder
            return _calibrate(args, out, work)
    except BusyError as e:
        print(f"kidsasr calibrate: {e}", file=sys.stderr)
        return 2


def _calibrate(args: argparse.Namespace, out: Path, work: Path) -> int:
    from ..asr.models import load_recognizer

    try:
        fitting = [e for d in args.data for e in episodes_in(d, args.split)]
        reporting = [e for d in args.report for e in episodes_in(d, args.split)]
    except (ValueError, OSError) as e:
        print(f"kidsasr calibrate: {e}", file=sys.stderr)
        return 2
    recognizer = load_recognizer(args.model, backend=args.backend)
    (x, y), fitted_episodes = labelled(fitting, recognizer, work, args.style)
    calibration = fit(x, y, str(args.model), args.max_flag_share,
                      {"data": [str(d) for d in args.data], "episodes": len(fitting), "bad_cer": BAD_CER})
    figures = {"fit": score(calibration, fitted_episodes)[0]}
    if reporting:
        _, report_episodes = labelled(reporting, recognizer, work, args.style)
        figures["report"], probability, bad, _ = score(calibration, report_episodes)
        calibration.fitted_on["report"] = figures["report"]
        if args.plot and len(bad) and 0 < bad.sum() < len(bad):
            plot_pr(probability, bad, calibration.threshold, args.plot, f"cue error estimate, {Path(args.model).name}")
    calibration.save(out)
    print(json.dumps({"calibration": str(out), "threshold": round(calibration.threshold, 4), **figures},
                     ensure_ascii=False, indent=2))
    if reporting:
        print(goals_line(figures["report"], args.max_flag_share))
    return 0
