"""A simulated editor, to measure the review loop (eval/bench_review_loop.py) on generated episodes with known text.

The editor reads the flagged cues of a machine subtitle file, as `kidsasr review` shows them (the page's weak rule:
the calibrated error estimate at or above its threshold, else the confidence below the weak threshold). Each true
sentence owns the machine cues whose midpoint is nearest it (kidsasr.review.calibration's matching rule); when one
of them is flagged, the editor merges them into one cue with the sentence's true text and times and marks it
reviewed. The cues nobody flagged stay as the machine wrote them, not reviewed, so prep leaves them out.

The control is the same review with the machine's text kept: the same reviewed cues at the same times, their text
the merged machine cues' text. Training on one or the other measures what the corrected text is worth on the same
audio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from .calibration import Utterance, nearest_utterance
from .document import EditableCue


def is_weak(cue: EditableCue, weak_threshold: float, error_threshold: float | None) -> bool:
    """The review page's flag for a cue's text (kidsasr/review/editor.html, `isWeak`)."""
    if cue.error is not None and error_threshold is not None:
        return cue.error >= error_threshold
    return cue.confidence is not None and cue.confidence < weak_threshold


@dataclass
class Review:
    corrected: list[EditableCue]  # the editor's save: flagged sentences retyped and retimed, marked reviewed
    control: list[EditableCue]  # the same cues and times with the machine's text
    edits: list[dict]  # the corrected save's edit-log rows (kidsasr.review.document.ACTIONS)
    flagged: int  # machine cues the page flagged


def simulate_review(cues: Sequence[EditableCue], flags: Sequence[bool], truth: Sequence[Utterance]) -> Review:
    """The editor's corrections of `cues` (with the page's `flags`) from the true sentences (see the module
    docstring). A sentence with no machine cue stays unseen: the editor only visits cues."""
    owner = [nearest_utterance(c.start, c.end, truth) for c in cues]
    flagged_sentences = {owner[k] for k, flag in enumerate(flags) if flag}
    corrected: list[EditableCue] = []
    control: list[EditableCue] = []
    for k, cue in enumerate(cues):
        sentence = owner[k]
        if sentence not in flagged_sentences:
            corrected.append(replace(cue, reviewed=False))
            control.append(replace(cue, reviewed=False))
            continue
        if k != owner.index(sentence):
            continue  # merged into the sentence's first cue
        merged = [c for c, o in zip(cues, owner) if o == sentence]
        confidences = [c.confidence for c in merged if c.confidence is not None]
        errors = [c.error for c in merged if c.error is not None]
        true = truth[sentence]
        fixed = EditableCue(true.start, true.end, [true.text], min(confidences) if confidences else None,
                            [w for c in merged for w in c.words], True, max(errors) if errors else None)
        corrected.append(fixed)
        control.append(replace(fixed, lines=[" ".join(line for c in merged for line in c.lines)]))
    order = sorted(range(len(corrected)), key=lambda n: (corrected[n].start, n))
    corrected, control = [corrected[n] for n in order], [control[n] for n in order]
    edits = []
    for number, (fixed, machine) in enumerate(zip(corrected, control), 1):
        if fixed.reviewed:
            edits += [{"action": "text", "cue": number, "before": machine.lines, "after": fixed.lines[0]},
                      {"action": "reviewed", "cue": number}]
    return Review(corrected, control, edits, int(sum(bool(f) for f in flags)))
