"""Words from a Whisper decoder's pieces, cut where the model itself marks a word start.

Whisper's byte-level BPE marks the first token of a word with a leading space (`Ġ`); everything else continues
the word before it. faster-whisper's word alignment also starts a new word at every punctuation token, which cuts
`0.1%` into `0`, `.1`, `%` and `3.5` into `3.`, `5`; its appended punctuation is merged back, but `%`, `.5`
or `-` are not. Joining the pieces again on the model's own marker keeps numbers, decimals, percentages, times and
Latin words whole (`0.1%`, `3시`, `30분`, `KBS`) and keeps Korean spacing as the model wrote it.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


class Piece(NamedTuple):
    text: str  # as decoded, with its leading space when the model put one
    start: float
    end: float
    probability: float


def join_pieces(pieces: Iterable[Piece]) -> list[Piece]:
    """Merge every piece that does not start with a space into the piece before it.

    Times span the merged pieces; the probability is the lowest of them (a word is as sure as its weakest part).
    The first piece always starts a word. Texts are returned stripped; empty ones are dropped.
    """
    words: list[Piece] = []
    for piece in pieces:
        if not piece.text:
            continue
        if words and not piece.text[:1].isspace():
            last = words[-1]
            words[-1] = Piece(last.text + piece.text, last.start, max(last.end, piece.end),
                              min(last.probability, piece.probability))
        else:
            words.append(piece)
    return [Piece(w.text.strip(), w.start, w.end, w.probability) for w in words if w.text.strip()]
