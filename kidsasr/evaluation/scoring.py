"""Score one system (and its baseline on the same utterances): CER/WER with bootstrap intervals, breakdowns
and the paired comparison (stage 3 of `kidsasr eval`)."""

from __future__ import annotations

from ..manifest import Utterance
from . import metrics

BREAKDOWN_FIELDS = (  # (report name, how to read it from an utterance)
    ("category", lambda u, n: u.category),
    ("age_group", lambda u, n: u.age_group),
    ("sex", lambda u, n: u.sex),
    ("speaker_role", lambda u, n: u.speaker_role),
    ("condition", lambda u, n: u.condition),
    ("length_chars", lambda u, n: metrics.length_bucket(n)),
)


def system_summary(scores: metrics.Scores, n_resamples: int, seed: int, rtf: float | None = None) -> dict:
    return {
        "cer": metrics.bootstrap_ci(scores.char.errors, scores.char.ref_len, n_resamples, seed).as_dict(),
        "cer_spaced": metrics.bootstrap_ci(scores.char_spaced.errors, scores.char_spaced.ref_len, n_resamples,
                                           seed).as_dict(),
        "wer": metrics.bootstrap_ci(scores.word.errors, scores.word.ref_len, n_resamples, seed).as_dict(),
        "char_edits": scores.char.totals(),
        "char_spaced_edits": scores.char_spaced.totals(),
        "word_edits": scores.word.totals(),
        "hallucination_rate": float(scores.hallucinated.mean()),
        "hallucinated_utterances": int(scores.hallucinated.sum()),
        "missing_hypotheses": int(scores.missing.sum()),
        "missing_ids": [i for i, m in zip(scores.ids, scores.missing) if m],
        "real_time_factor": rtf,
        "top_confusions": [{"reference": r, "hypothesis": h, "count": c}
                           for (r, h), c in scores.confusions.most_common(20)],
        "top_substitutions": [{"reference": r, "hypothesis": h, "count": c}
                              for (r, h), c in scores.confusions.most_common() if r and h][:20],
    }


def metadata_fields(metadata: list[dict[str, str]]) -> list[str]:
    """Fields of the rows' extra metadata worth a breakdown: at least two values, fewer values than rows."""
    names = sorted({k for m in metadata for k in m} - {name for name, _ in BREAKDOWN_FIELDS})
    return [n for n in names if 1 < len({m.get(n) for m in metadata}) < len(metadata)]


def breakdowns(scores: metrics.Scores, utterances: list[Utterance], n_resamples: int, seed: int,
               metadata: list[dict[str, str]] | None = None) -> dict:
    """CER per value of each standard field, and of each metadata field present (e.g. `room`)."""
    out = {}
    for name, get in BREAKDOWN_FIELDS:
        values = [get(u, len(ref)) for u, ref in zip(utterances, scores.references)]
        out[name] = [row.as_dict() for row in metrics.breakdown(scores, name, values, n_resamples, seed)]
    for name in metadata_fields(metadata or []):
        values = [m.get(name) for m in metadata]
        out[name] = [row.as_dict() for row in metrics.breakdown(scores, name, values, n_resamples, seed)]
    return out


def evaluate(utterances: list[Utterance], hypotheses: list[str | None], baseline: list[str | None] | None = None,
             reference_field: str = "text", n_resamples: int = 1000, seed: int = 0,
             metadata: list[dict[str, str]] | None = None) -> tuple[dict, list[dict]]:
    """Score one system (and the baseline on the same utterances): the metrics dict and per-utterance rows.
    `metadata`: each utterance's extra fields (kidsasr.evaluation.sources), broken down where they vary."""
    ids = [u.id for u in utterances]
    refs = [getattr(u, reference_field) for u in utterances]
    scores = metrics.score(ids, refs, hypotheses)
    result = {"utterances": len(ids), "model": system_summary(scores, n_resamples, seed),
              "breakdowns": {"model": breakdowns(scores, utterances, n_resamples, seed, metadata)}}
    per_utt = [{"id": i, "reference": r, "hypothesis": h, "char_errors": int(e), "reference_chars": int(n),
                "hallucinated": bool(x), "missing": bool(m)}
               for i, r, h, e, n, x, m in zip(ids, scores.references, scores.hypotheses, scores.char.errors,
                                              scores.char.ref_len, scores.hallucinated, scores.missing)]
    if baseline is not None:
        base = metrics.score(ids, refs, baseline)
        result["baseline"] = system_summary(base, n_resamples, seed)
        result["breakdowns"]["baseline"] = breakdowns(base, utterances, n_resamples, seed, metadata)
        result["comparison"] = metrics.paired_bootstrap(scores.char.errors, base.char.errors, scores.char.ref_len,
                                                        n_resamples, seed).as_dict()
        for row, h, e in zip(per_utt, base.hypotheses, base.char.errors):
            row["baseline_hypothesis"], row["baseline_char_errors"] = h, int(e)
    return result, per_utt
