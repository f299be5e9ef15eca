"""Background condition (clean | music | noise) that data prep assigns, against the generator's truth.jsonl
(used by data_prep/bench_condition.py and the tests).

Each labelled sentence is measured the way `kidsasr prep` measures it (kidsasr.prep.cleaning: one analysis per
episode, the condition of the sentence's span at its label times, as with `--aligner none`) and compared with the
condition the generator recorded from its own mix: music when more than 30% of the sentence lies under a music
bed, noise when under loud noise, applause or laughter, else clean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..prep.cleaning import CONDITIONS, CleaningConfig, analyse, segment_quality


def measure_conditions(corpus: Path, config: CleaningConfig | None = None) -> dict:
    """Agreement, per-class recall and the confusion matrix (truth -> assigned) over a generated corpus."""
    from ..corpus.reader import read_corpus
    from ..fileio import read_jsonl

    config = config or CleaningConfig()
    truth = {(row["episode_id"], row["sentence_id"]): row["condition"]
             for row in read_jsonl(Path(corpus) / "truth.jsonl")}
    confusion = {t: {a: 0 for a in CONDITIONS} for t in CONDITIONS}
    for episode in read_corpus(corpus):
        signal = analyse(episode.audio.load(), config)
        for sentence in episode.sentences:
            expected = truth.get((episode.id, sentence.index + 1))  # the label's sentence_id counts from 1
            if expected is None or sentence.start is None:
                continue
            confusion[expected][segment_quality(signal, sentence.start, sentence.end, config).condition] += 1
    return agreement(confusion)


def agreement(confusion: dict[str, dict[str, int]]) -> dict:
    """Agreement and recall per true class from a confusion matrix (truth -> assigned -> count)."""
    total = sum(sum(row.values()) for row in confusion.values())
    agreed = sum(confusion[c][c] for c in confusion)
    recall = {c: (confusion[c][c] / sum(row.values()) if sum(row.values()) else None) for c, row in confusion.items()}
    return {"sentences": total, "agreed": agreed, "agreement": agreed / total if total else float("nan"),
            "recall": recall, "confusion": confusion}


def merge(reports: list[dict]) -> dict:
    """One report over several corpora."""
    confusion = {t: {a: int(np.sum([r["confusion"][t][a] for r in reports])) for a in CONDITIONS} for t in CONDITIONS}
    return agreement(confusion)
