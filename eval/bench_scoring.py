"""`make bench-eval`: scoring 100k utterances with kidsasr.evaluation.metrics beside a naive per-utterance jiwer loop.

Both paths normalise with textnorm.normalize_for_cer and compute the same three figures (CER without spaces,
CER with spaces, WER); the script checks that they agree, then prints median times and the ratio. The full
evaluation cost (model and baseline scored, bootstrap CIs, six breakdowns, paired bootstrap) must stay under a
minute for 100k utterances.

    python eval/bench_scoring.py [--n 100000] [--repeats 3] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import jiwer
import numpy as np

from kidsasr.corpus.reader import CATEGORIES
from kidsasr.evaluation import metrics
from kidsasr.synth.textbank import sentence_bank
from kidsasr.textnorm import normalize_for_cer

BUDGET_SECONDS = 60.0


def synthetic_system(references: list[str], seed: int, error_rate: float) -> list[str | None]:
    """Hypotheses with ASR-like errors: exact matches, syllable substitutions, deletions, insertions, spacing
    changes, 2% repetition loops and 1% missing outputs."""
    rng = random.Random(seed)
    out: list[str | None] = []
    for ref in references:
        roll = rng.random()
        if roll < 0.01:
            out.append(None)
            continue
        if roll < 0.03:
            out.append(" ".join([ref[:6]] * 4))
            continue
        chars = list(ref)
        for _ in range(np.random.default_rng(rng.randrange(1 << 30)).binomial(len(chars), error_rate)):
            k = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.5:
                chars[k] = chr(0xAC00 + rng.randrange(11172))
            elif op < 0.75 and len(chars) > 1:
                del chars[k]
            elif op < 0.9:
                chars.insert(k, chr(0xAC00 + rng.randrange(11172)))
            else:
                chars.insert(k, " ")
        out.append("".join(chars))
    return out


def naive(references: list[str], hypotheses: list[str | None]) -> tuple[float, float, float]:
    """One jiwer call per utterance and metric, as a hand-written evaluation loop would do it."""
    totals = np.zeros((3, 2))
    for ref, hyp in zip(references, hypotheses):
        r_sp, h_sp = normalize_for_cer(ref, keep_spaces=True), normalize_for_cer(hyp or "", keep_spaces=True)
        r, h = r_sp.replace(" ", ""), h_sp.replace(" ", "")
        for row, (rate, n) in enumerate(((jiwer.cer(r, h), len(r)), (jiwer.cer(r_sp, h_sp), len(r_sp)),
                                         (jiwer.wer(r_sp, h_sp), len(r_sp.split())))):
            totals[row] += (rate * n, n)
    return tuple(float(e / n) for e, n in totals)


def full_scoring(ids, references, model, baseline, groups, resamples) -> None:
    m = metrics.score(ids, references, model)
    b = metrics.score(ids, references, baseline)
    for counts in (m.char, m.char_spaced, m.word, b.char, b.char_spaced, b.word):
        metrics.bootstrap_ci(counts.errors, counts.ref_len, resamples)
    for name, values in groups.items():
        metrics.breakdown(m, name, values, resamples)
        metrics.breakdown(b, name, values, resamples)
    metrics.paired_bootstrap(m.char.errors, b.char.errors, m.char.ref_len, resamples)


def timed(fn, *args):
    """(result, wall seconds, CPU seconds of this process): on a shared machine CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    bank = [s.label for s in sentence_bank(seed=0)]
    rng = random.Random(0)
    references = [rng.choice(bank) for _ in range(args.n)]
    ids = [f"utt{i:07d}" for i in range(args.n)]
    model = synthetic_system(references, seed=1, error_rate=0.08)
    baseline = synthetic_system(references, seed=2, error_rate=0.15)
    groups = {"category": [rng.choice(CATEGORIES) for _ in ids], "sex": [rng.choice("FM") for _ in ids],
              "speaker_role": [rng.choice(("child", "adult")) for _ in ids],
              "age_group": [rng.choice(("4-6", "7-9", "10-12", "adult", None)) for _ in ids],
              "condition": [rng.choice(("clean", "music", "noise")) for _ in ids]}
    print(f"{args.n} utterances from the text bank, {args.repeats} repeats, {args.resamples} bootstrap resamples")

    times: dict[str, list[tuple[float, float]]] = {"naive": [], "ours": [], "full": []}
    for _ in range(args.repeats):
        expected, *t = timed(naive, references, model)
        times["naive"].append(t)
        s, *t = timed(metrics.score, ids, references, model)
        times["ours"].append(t)
        got = (s.char.rate, s.char_spaced.rate, s.word.rate)
        if not np.allclose(got, expected, rtol=0, atol=1e-9):
            raise SystemExit(f"scorers disagree: kidsasr {got} vs naive {expected}")
        groups["length_chars"] = [metrics.length_bucket(len(r)) for r in s.references]
        _, *t = timed(full_scoring, ids, references, model, baseline, groups, args.resamples)
        times["full"].append(t)

    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    print(f"CER {100 * got[0]:.2f}%  CER spaced {100 * got[1]:.2f}%  WER {100 * got[2]:.2f}% (both scorers agree)")
    print("medians, wall s / CPU s:")
    print(f"  naive per-utterance jiwer.cer/jiwer.wer loop : {med['naive'][0]:7.2f} / {med['naive'][1]:7.2f}")
    print(f"  kidsasr.evaluation.metrics.score (batched jiwer)        : {med['ours'][0]:7.2f} / {med['ours'][1]:7.2f}")
    print(f"  ratio naive / kidsasr                        : {med['naive'][0] / med['ours'][0]:7.2f}x wall, "
          f"{med['naive'][1] / med['ours'][1]:.2f}x CPU")
    wall, cpu = med["full"]
    print(f"  full scoring (model + baseline, 6 CIs, 2x6 breakdowns with CIs, paired bootstrap, "
          f"{args.resamples} resamples): {wall:.2f} / {cpu:.2f} -> "
          f"{'within' if cpu < BUDGET_SECONDS else 'OVER'} the {BUDGET_SECONDS:.0f} s budget (CPU)")


if __name__ == "__main__":
    main()
