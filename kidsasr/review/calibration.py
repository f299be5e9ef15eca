"""Cue confidence that finds errors: per-cue features, a calibrated error estimate, and how it is scored.

Features of a cue come from what the recogniser gives (the `.cues.json` row `kidsasr subtitle` writes): the mean
and the minimum of its word probabilities, the share of words below 0.5, the decoder's average log-probability,
compression ratio and no-speech probability of the decoded pieces under the cue, whether the beam fallback ran,
the music share, the reading speed and the number of words. A logistic regression (scikit-learn) maps them
to the probability that the cue's text is wrong; the threshold is the one that catches the most bad cues
while flagging at most `max_flag_share` of them on the fitting data. A calibration is a small JSON file kept
beside the model (`confidence_calibration.json`).

Scoring (the issue's rule): each cue goes to the reference utterance nearest its midpoint; an utterance is bad
when the CER of its cues' text (in order) against it is above 30%, or when no cue went to it; it is caught
when one of its cues is flagged.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

CALIBRATION_NAME = "confidence_calibration.json"
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "calibration"
BAD_CER = 0.30
FEATURES = ("mean_word_prob", "min_word_prob", "weak_word_share", "avg_logprob", "compression_ratio",
            "no_speech_prob", "fallback", "music", "chars_per_second", "words")
# what a cue without decoder details (an older side file) is given: a typical confident greedy decode
_NEUTRAL = {"avg_logprob": -0.3, "compression_ratio": 1.5, "no_speech_prob": 0.0, "fallback": 0.0, "music": 0.0}


def decoder_details(speech_start: float, speech_end: float, segments: Sequence) -> dict:
    """What the decoder said about the speech under a cue: the worst of the decoded segments
    (kidsasr.asr.transcribe.Segment) that overlap [speech_start, speech_end]; {} when none does."""
    under = [s for s in segments if s.start <= speech_end and s.end >= speech_start]
    if not under:
        return {}
    return {"avg_logprob": round(min(s.avg_logprob for s in under), 4),
            "compression_ratio": round(max(s.compression_ratio for s in under), 4),
            "no_speech_prob": round(max(s.no_speech_prob for s in under), 4),
            "fallback": float(any(s.fallback for s in under)), "music": round(max(s.music for s in under), 4)}


def find_calibration(model: str | os.PathLike) -> Path | None:
    """The calibration of `model`: CALIBRATION_NAME in its folder (a CTranslate2 export's too), else the one
    shipped for a Hub model (kidsasr/data/calibration/<owner>__<name>.json), else None."""
    folder = Path(model)
    if (folder / CALIBRATION_NAME).is_file():
        return folder / CALIBRATION_NAME
    shipped = SHIPPED / (str(model).replace("/", "__") + ".json")
    return shipped if shipped.is_file() else None


def cue_features(row: dict) -> list[float]:
    """The FEATURES of one `.cues.json` cue row (its `words` and, when recorded, its `decoder` details)."""
    probabilities = [float(w["probability"]) for w in row.get("words") or []] or [float(row.get("confidence", 0.0))]
    decoder = row.get("decoder") or {}
    duration = max(1e-3, float(row["end"]) - float(row["start"]))
    from ..subtitles.cues import reading_length

    return [
        float(np.mean(probabilities)), float(min(probabilities)),
        float(np.mean([p < 0.5 for p in probabilities])),
        *(float(decoder.get(k, _NEUTRAL[k])) for k in ("avg_logprob", "compression_ratio", "no_speech_prob",
                                                        "fallback", "music")),
        reading_length("".join(row.get("lines") or [])) / duration, float(len(row.get("words") or [])),
    ]


@dataclass
class Calibration:
    """error probability = sigmoid(intercept + coef . standardised features); flag when it is >= threshold."""

    model: str
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    fitted_on: dict = field(default_factory=dict)

    def error_probability(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, float) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def flags(self, rows: Sequence[dict]) -> np.ndarray:
        if not rows:
            return np.zeros(0, bool)
        return self.error_probability(np.array([cue_features(r) for r in rows])) >= self.threshold

    def save(self, path: str | os.PathLike) -> None:
        from ..fileio import write_json_atomic

        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("features") != list(FEATURES):
            raise ValueError(f"{path}: made for features {data.get('features')}, this kidsasr uses {list(FEATURES)}")
        return cls(**data)


def choose_threshold(probability: np.ndarray, bad: np.ndarray, max_flag_share: float) -> float:
    """The lowest threshold (most bad cues caught) that flags at most `max_flag_share` of the cues."""
    order = np.sort(np.unique(probability))[::-1]
    best = float(order[0]) + 1e-9 if len(order) else 1.0
    for t in order:
        if np.mean(probability >= t) <= max_flag_share + 1e-12:
            best = float(t)
        else:
            break
    return best


def fit(x: np.ndarray, bad: np.ndarray, model: str, max_flag_share: float = 0.3, fitted_on: dict | None = None
        ) -> Calibration:
    """A logistic regression of cue badness on the features (class-balanced), with its flag threshold."""
    from sklearn.linear_model import LogisticRegression

    x, bad = np.asarray(x, float), np.asarray(bad, bool)
    if len(set(bad.tolist())) < 2:
        raise ValueError("calibration needs both good and bad cues in the fitting data")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    regression = LogisticRegression(class_weight="balanced", max_iter=1000).fit((x - mean) / scale, bad)
    calibration = Calibration(model, list(FEATURES), mean.tolist(), scale.tolist(), regression.coef_[0].tolist(),
                              float(regression.intercept_[0]), 1.0, fitted_on or {})
    calibration.threshold = choose_threshold(calibration.error_probability(x), bad, max_flag_share)
    calibration.fitted_on.update({"cues": int(len(bad)), "bad_cues": int(bad.sum()), "max_flag_share": max_flag_share})
    return calibration


# ------------------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    text: str


def nearest_utterance(cue_start: float, cue_end: float, utterances: Sequence[Utterance]) -> int:
    """The reference utterance whose span is nearest the cue's midpoint (0 distance inside it)."""
    mid = (cue_start + cue_end) / 2
    return min(range(len(utterances)),
               key=lambda k: (max(utterances[k].start - mid, mid - utterances[k].end, 0.0), k))


@dataclass
class Outcome:
    utterance: Utterance
    cues: list[int]  # indexes of the cues matched to it
    cer: float  # of its cues' text, 1.0 when it has none
    bad: bool
    caught: bool


def utterance_outcomes(cues: Sequence[tuple[float, float, str]], flagged: Sequence[bool],
                       utterances: Sequence[Utterance], bad_cer: float = BAD_CER) -> list[Outcome]:
    """The issue's matching rule, for cues (start, end, text) with their flags."""
    from ..evaluation.metrics import edit_counts
    from ..textnorm import normalize_for_cer

    matched: list[list[int]] = [[] for _ in utterances]
    for k, (start, end, _) in enumerate(cues):
        matched[nearest_utterance(start, end, utterances)].append(k)
    refs = [normalize_for_cer(u.text) for u in utterances]
    hyps = [normalize_for_cer(" ".join(cues[k][2] for k in ks)) for ks in matched]
    counts = edit_counts(refs, hyps)
    outcomes = []
    for u, ks, ref, n in zip(utterances, matched, refs, range(len(utterances))):
        errors = counts.substitutions[n] + counts.deletions[n] + counts.insertions[n]
        cer = 1.0 if not ks else float(errors) / max(1, len(ref))
        outcomes.append(Outcome(u, ks, cer, not ks or cer > bad_cer, any(flagged[k] for k in ks)))
    return outcomes


def cue_badness(cues: Sequence[tuple[float, float, str]], utterances: Sequence[Utterance],
                bad_cer: float = BAD_CER) -> np.ndarray:
    """Fitting labels: a cue is bad when the utterance it goes to is bad (its cues' text above `bad_cer`)."""
    outcomes = utterance_outcomes(cues, [False] * len(cues), utterances, bad_cer)
    bad = np.zeros(len(cues), bool)
    for o in outcomes:
        bad[o.cues] = o.bad
    return bad


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summary(outcomes: Sequence[Outcome], flagged: Sequence[bool]) -> dict:
    """Cues flagged, bad utterances (with a 95% interval of their share) and how many were caught."""
    bad = [o for o in outcomes if o.bad]
    caught = sum(o.caught for o in bad)
    low, high = wilson_interval(len(bad), len(outcomes))
    return {"cues": len(flagged), "flagged": int(sum(flagged)),
            "flagged_share": round(float(np.mean(flagged)) if len(flagged) else 0.0, 4),
            "utterances": len(outcomes), "bad_utterances": len(bad),
            "bad_share_ci95": [round(low, 4), round(high, 4)],
            "bad_without_cue": sum(not o.cues for o in bad), "bad_caught": caught,
            "recall": round(caught / len(bad), 4) if bad else None}
