"""Long-form transcription: an episode of any length to timed, guarded segments with flat memory.

Two streaming passes over the decoded audio (kidsasr.audio.stream_audio, one chunk in memory at a time):
  1. silero-vad scores every 32 ms frame; speech regions come from those scores.
  2. the regions are packed into clips of at most 30 s of audio (speech only, 1 s of silence between regions,
     long regions split at their quietest frame, first fit within a two-minute horizon); each clip's audio is
     copied out of the stream as it passes, and full batches are decoded at once. Word times are mapped back from
     clip time to episode time, each word into the region where it ends.
Nothing outside a speech region is kept; music-dominated regions are not decoded unless songs are (GuardOptions.
decode_songs: their words are marked sung); a clip whose greedy decode loops or fails the gates is decoded again
with a beam, then, if it still does and holds several regions, again in parts: from the piece where the loop took
hold (the words before it kept), or in halves for a failed gate; regions of a clip that got no words are
packed again among themselves and decoded once more; the guards (kidsasr.asr.guards) remove loops, failed decodes
and stock hallucinations that remain. Everything removed is listed in `dropped` with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from ..audio import stream_audio
from ..constants import SAMPLE_RATE, WHISPER_WINDOW_SECONDS
from .guards import GuardOptions, apply_guards, gate, loop_start_word, loops, needs_fallback
from .models import Fallback, Hypothesis, Recognizer, Word, compression_ratio
from .vad import FRAME_SECONDS, SpeechDetector, VadOptions, music_dominance

# Silence put between two regions inside one clip. With 0.2 s, Whisper ran utterances together and dropped or moved
# their first words; 1.0 s measured best on the real read-speech episode (eval/RESULTS.md, "Real speech").
GAP_SECONDS = 1.0
# Cross-attention DTW sometimes stretches a word (typically the last before a cut or a pause) over seconds of
# audio; no Korean word is said slower than this per character.
MAX_SECONDS_PER_CHAR = 0.5
MIN_WORD_CAP = 1.0
STRANDED_PAUSE = 1.0  # a piece's last word this far after its other words is suspect (see move_stranded_word)


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    sung: bool = False  # decoded from a music-dominated piece (GuardOptions.decode_songs)
    fallback: bool = False  # decoded again with a beam
    music: float = 0.0  # the highest music dominance of the speech pieces decoded together with it


class Dropped(NamedTuple):
    start: float
    end: float
    text: str
    reason: str


@dataclass
class LongTranscript:
    duration: float
    speech_regions: list[tuple[float, float]]
    segments: list[Segment] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass
class Clip:
    """Pieces of the episode (start, end in seconds) decoded together, separated by GAP_SECONDS of silence."""

    pieces: list[tuple[float, float]]
    audio: list[np.ndarray] = field(default_factory=list)
    music: list[float] = field(default_factory=list)  # music_dominance of each piece

    @property
    def offsets(self) -> list[float]:
        """Clip time where each piece starts."""
        out, t = [], 0.0
        for start, end in self.pieces:
            out.append(t)
            t += end - start + GAP_SECONDS
        return out

    def part(self, a: int, b: int) -> "Clip":
        """The clip of pieces [a, b) (audio and music shares kept)."""
        return Clip(self.pieces[a:b], self.audio[a:b], self.music[a:b])

    def halves(self) -> list["Clip"]:
        """The clip as two clips of its first and second half of pieces."""
        m = len(self.pieces) // 2
        return [self.part(0, m), self.part(m, len(self.pieces))]

    def locate(self, start: float, end: float) -> tuple[int, float, float]:
        """(piece index, episode start, episode end) of a word at clip times [start, end].

        Whisper's DTW word times run on from one word to the next, so a word said after a silence starts early, in
        the silence or in the piece before it, while its end is where it was said. A word therefore belongs to the
        piece its end falls in (an end in the gap after a piece: that piece, unless the word starts in that gap
        too: the next one), and its times are clipped to that piece.
        """
        offsets = self.offsets
        k = max(0, int(np.searchsorted(offsets, end, side="right")) - 1)
        if start - offsets[k] > self.pieces[k][1] - self.pieces[k][0] and k + 1 < len(self.pieces):
            k += 1
        piece_start, piece_end = self.pieces[k]
        a = min(max(piece_start + start - offsets[k], piece_start), piece_end)
        return k, a, min(max(piece_start + end - offsets[k], a), piece_end)


def clamp_word(word: Word) -> Word:
    """Shorten a word the aligner stretched beyond any plausible duration, keeping its start."""
    cap = max(MIN_WORD_CAP, MAX_SECONDS_PER_CHAR * len(word.text.replace(" ", "")))
    if word.end - word.start <= cap:
        return word
    return Word(word.text, word.start, round(word.start + cap, 3), word.probability)


def move_stranded_word(words: list[Word], next_words: list[Word], next_start: float,
                       pause: float = STRANDED_PAUSE) -> tuple[list[Word], list[Word]]:
    """Give the next piece a word DTW stranded in the tail of this one.

    Inside a clip, pieces are only GAP_SECONDS apart, and DTW can start the next piece's first word anywhere in the
    non-speech that closes this piece (VAD padding, applause, a music tail). A last word that sits more than `pause`
    after the rest of its piece, while the next piece has words, is moved to the start of the next piece.
    """
    if len(words) < 2 or not next_words or words[-1].start - words[-2].end <= pause:
        return words, next_words
    word, following = words[-1], next_words[0]
    start = min(next_start, following.start)
    end = min(start + (word.end - word.start), following.start)
    return words[:-1], [Word(word.text, round(start, 3), round(end, 3), word.probability)] + next_words


def split_long_region(start: float, end: float, probs: list[float], max_seconds: float) -> list[tuple[float, float]]:
    """Split a region longer than max_seconds at its least speech-like frame in the last third of each part."""
    parts = []
    while end - start > max_seconds:
        lo = int((start + max_seconds * 2 / 3) / FRAME_SECONDS)
        hi = int((start + max_seconds) / FRAME_SECONDS)
        window = probs[lo:hi]
        cut = (lo + int(np.argmin(window))) * FRAME_SECONDS if window else start + max_seconds
        cut = min(max(cut, start + 1.0), start + max_seconds)
        parts.append((start, cut))
        start = cut
    parts.append((start, end))
    return parts


def plan_clips(pieces: list[tuple[float, float]], max_seconds: float = WHISPER_WINDOW_SECONDS,
               horizon_seconds: float = 120.0) -> list[Clip]:
    """Pack pieces (each <= max_seconds, in time order) into clips of at most max_seconds including the gaps.

    First fit: a piece joins the earliest clip that still has room for it and began at most `horizon_seconds`
    before it, so a short piece fills the tail of an earlier clip instead of opening a new one (every clip costs a
    full 30 s encoder pass) while a clip's audio is held for at most `horizon_seconds` of stream.
    """
    clips: list[Clip] = []
    lengths: list[float] = []
    first_open = 0
    for start, end in pieces:
        size = end - start
        while first_open < len(clips) and start - clips[first_open].pieces[0][0] > horizon_seconds:
            first_open += 1
        for j in range(first_open, len(clips)):
            if lengths[j] + GAP_SECONDS + size <= max_seconds:
                clips[j].pieces.append((start, end))
                lengths[j] += GAP_SECONDS + size
                break
        else:
            clips.append(Clip([(start, end)]))
            lengths.append(size)
    return clips


def _clip_audio(clip: Clip) -> np.ndarray:
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for k, piece in enumerate(clip.audio):
        if k:
            parts.append(gap)
        parts.append(piece)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _piece_segments(clip: Clip, hyp: Hypothesis, dropped: list[Dropped]) -> list[tuple[int, Hypothesis]]:
    """Split a (guarded) clip hypothesis into one hypothesis per piece, with words in episode time."""
    if not hyp.words:
        return [(0, hyp)] if hyp.text.strip() else []
    clip_length = clip.offsets[-1] + clip.pieces[-1][1] - clip.pieces[-1][0]
    per_piece: dict[int, list[Word]] = {}
    for w in hyp.words:
        if w.start >= clip_length:
            dropped.append(Dropped(clip.pieces[-1][1], clip.pieces[-1][1], w.text, "outside speech"))
            continue
        k, start, end = clip.locate(w.start, max(w.end, w.start))
        per_piece.setdefault(k, []).append(clamp_word(Word(w.text, round(start, 3), round(end, 3), w.probability)))
    for k in sorted(per_piece):
        if k + 1 in per_piece:
            per_piece[k], per_piece[k + 1] = move_stranded_word(per_piece[k], per_piece[k + 1], clip.pieces[k + 1][0])
    return [(k, Hypothesis(" ".join(w.text for w in words), words, hyp.avg_logprob, hyp.compression_ratio,
                           hyp.no_speech_prob)) for k, words in sorted(per_piece.items())]


def transcribe_long(audio_path: str | os.PathLike, recognizer: Recognizer, word_timestamps: bool = True,
                    vad_options: VadOptions | None = None, guard_options: GuardOptions | None = None,
                    max_clip_seconds: float | None = None, batch_size: int | None = None, chunk_seconds: float = 60.0,
                    progress: bool = False) -> LongTranscript:
    """Transcribe an episode of any length. Raises kidsasr.audio.AudioError for unusable input.

    max_clip_seconds: longest clip decoded (default: the recogniser's clip_seconds, a Whisper encoder window).
    batch_size: clips gathered before a decode call (default: what the recogniser decodes at once).
    """
    from tqdm import tqdm

    batch_size = batch_size or recognizer.batch_size
    max_clip_seconds = max_clip_seconds or recognizer.clip_seconds

    guard_options = guard_options or GuardOptions()
    detector = SpeechDetector(vad_options)
    for chunk in tqdm(stream_audio(audio_path, chunk_seconds), desc="VAD", unit="min", disable=not progress):
        detector.feed(chunk)
    regions = detector.finish()
    result = LongTranscript(duration=detector.samples / SAMPLE_RATE, speech_regions=regions)
    pieces = [p for start, end in regions for p in split_long_region(start, end, detector.probs, max_clip_seconds)]
    clips = plan_clips(pieces, max_clip_seconds)
    if not clips:
        return result

    ready: list[Clip] = []
    bar = tqdm(total=len(clips), desc="decoding", unit="clip", disable=not progress)

    def decode(batch: list[Clip]) -> None:
        _decode_batch(batch, recognizer, word_timestamps, guard_options, result)
        bar.update(len(batch))

    flat = sorted(((c, k) for c in clips for k in range(len(c.pieces))), key=lambda ck: ck[0].pieces[ck[1]][0])
    next_piece = 0
    position = 0
    for chunk in stream_audio(audio_path, chunk_seconds):
        chunk_start, chunk_end = position, position + chunk.size
        position = chunk_end
        i = next_piece
        while i < len(flat):
            clip, k = flat[i]
            a, b = (int(round(t * SAMPLE_RATE)) for t in clip.pieces[k])
            if a >= chunk_end:
                break
            if len(clip.audio) == k:
                clip.audio.append(np.zeros(0, dtype=np.float32))
            lo, hi = max(a, chunk_start), min(b, chunk_end)
            if hi > lo:
                clip.audio[k] = np.concatenate([clip.audio[k], chunk[lo - chunk_start : hi - chunk_start]])
            if b > chunk_end:
                break
            i += 1
            if k == len(clip.pieces) - 1:
                ready.append(clip)
        next_piece = i
        while len(ready) >= batch_size:
            decode(ready[:batch_size])
            ready = ready[batch_size:]
    while next_piece < len(flat):  # pieces past the stream's end (VAD padding): complete them empty
        clip, k = flat[next_piece]
        if len(clip.audio) == k:
            clip.audio.append(np.zeros(0, dtype=np.float32))
        if k == len(clip.pieces) - 1:
            ready.append(clip)
        next_piece += 1
    if ready:
        decode(ready)
    bar.close()
    result.segments.sort(key=lambda s: s.start)
    result.dropped.sort(key=lambda d: d.start)
    return result


def _decode_batch(clips: list[Clip], recognizer: Recognizer, word_timestamps: bool, options: GuardOptions,
                  result: LongTranscript) -> None:
    to_decode: list[Clip] = []
    for clip in clips:
        shares = [music_dominance(a) for a in clip.audio]
        keep = [k for k, share in enumerate(shares) if options.decode_songs or share <= options.music_threshold]
        for k, share in enumerate(shares):
            if k not in keep:
                start, end = clip.pieces[k]
                result.dropped.append(Dropped(start, end, "", f"music-dominated ({share:.2f} > {options.music_threshold})"))
        if keep:
            to_decode.append(Clip([clip.pieces[k] for k in keep], [clip.audio[k] for k in keep], [shares[k] for k in keep]))
        clip.audio = []
    if not to_decode:
        return
    skipped: list[Clip] = []
    for clip, hyp in _decode_splitting_loops(to_decode, recognizer, word_timestamps, options):
        heard = _add_segments(clip, hyp, options, result)
        skipped += [Clip([clip.pieces[k]], [clip.audio[k]], [clip.music[k]])
                    for k in range(len(clip.pieces)) if k not in heard and len(clip.pieces) > 1]
    # Whisper sometimes passes over short utterances packed among others (a child's "응!"): the pieces of packed
    # clips that got no words are packed again among themselves and decoded once more (one encoder pass per clip
    # of them, not per piece: most are breaths and clicks).
    if skipped:
        kept = {c.pieces[0]: c for c in skipped}
        repacked = plan_clips(sorted(kept), recognizer.clip_seconds)
        for clip in repacked:
            clip.audio = [kept[p].audio[0] for p in clip.pieces]
            clip.music = [kept[p].music[0] for p in clip.pieces]
        for clip, hyp in _decode_splitting_loops(repacked, recognizer, word_timestamps, options):
            _add_segments(clip, hyp, options, result)


def _add_segments(clip: Clip, hyp: Hypothesis, options: GuardOptions, result: LongTranscript) -> set[int]:
    """Guard a clip's hypothesis, add one segment per piece to `result`; the pieces that got text."""
    start, end = clip.pieces[0][0], clip.pieces[-1][1]
    speech_seconds = sum(b - a for a, b in clip.pieces)
    music = 0.0 if options.decode_songs else max(clip.music)  # decoded songs pass the other guards
    kept, removed = apply_guards(hyp, speech_seconds, music, options)
    result.dropped.extend(Dropped(start, end, text, reason) for text, reason in removed)
    heard = set()
    for k, piece_hyp in _piece_segments(clip, kept, result.dropped):
        sung = clip.music[k] > options.music_threshold
        words = [replace(w, sung=True) for w in piece_hyp.words] if sung else piece_hyp.words
        seg_start, seg_end = (words[0].start, words[-1].end) if words else (start, end)
        result.segments.append(Segment(seg_start, seg_end, piece_hyp.text, words, piece_hyp.avg_logprob,
                                       compression_ratio(piece_hyp.text), piece_hyp.no_speech_prob, sung,
                                       hyp.fallback, max(clip.music)))
        heard.add(k)
    return heard


def _decode_splitting_loops(clips: list[Clip], recognizer: Recognizer, word_timestamps: bool, options: GuardOptions
                            ) -> list[tuple[Clip, Hypothesis]]:
    """Decode clips (greedy, then a beam for those needs_fallback flags). A clip of several pieces that still loops
    keeps the words decoded before the loop, and the piece where the loop took hold is decoded again on its own, the
    pieces after it together (a looping decoder spends the token budget of the whole clip); one that fails the gates
    is decoded again as two halves (one unsure piece pulls the whole clip's log-probability under the gate, and
    nothing says which). Recursively: a loop or an unsure stretch costs only the piece it is in, which the guards
    cut or drop, instead of every piece packed with it."""
    fallback = Fallback(lambda hyp: needs_fallback(hyp, options), options.fallback_beam_size)
    hyps = recognizer.transcribe_batch([_clip_audio(c) for c in clips], word_timestamps=word_timestamps,
                                       fallback=fallback)
    decoded, again = [], []
    for clip, hyp in zip(clips, hyps):
        n = len(clip.pieces)
        if n > 1 and loops(hyp, options):
            first = loop_start_word(hyp, options)
            if first is None:  # a loop without word times (or one only the compression ratio shows): halves
                again.extend(clip.halves())
                continue
            w = hyp.words[first]
            k = clip.locate(w.start, max(w.end, w.start))[0]
            before = [v for v in hyp.words[:first] if clip.locate(v.start, max(v.end, v.start))[0] < k]
            if before:
                text = " ".join(v.text for v in before)
                decoded.append((clip.part(0, k), replace(hyp, text=text, words=before,
                                                         compression_ratio=compression_ratio(text))))
            elif k:
                again.append(clip.part(0, k))
            again.extend(clip.part(a, b) for a, b in ((k, k + 1), (k + 1, n)) if b > a)
        elif n > 1 and gate(hyp, options) is not None:
            again.extend(clip.halves())
        else:
            decoded.append((clip, hyp))
    return decoded + (_decode_splitting_loops(again, recognizer, word_timestamps, options) if again else [])
