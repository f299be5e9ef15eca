"""Hallucination guards: pure functions deciding what of a hypothesis may reach a subtitle.

Applied per decoded piece of speech, in this order:
  1. music     the region is dominated by music (kidsasr.asr.vad.music_dominance): nothing from it is shown
  2. loop      a unit said again and again (punctuation aside) keeps its first occurrence; what follows stays
  3. gates     Whisper's own signals: no-speech probability with low log-probability, log-probability alone,
               gzip compression ratio (what a loop or stock phrase leaves behind)
  4. stock     the known Korean Whisper hallucinations ("시청해주셔서 감사합니다", "구독과 좋아요 …", "MBC 뉴스 …")
               are removed unless the audio supports them: confident decoding and enough speech for their length
Every removal is returned as (text, reason) so callers can list it.

Before the guards, a greedy hypothesis that loops or fails the compression or log-probability gates is decoded
again with a beam (`needs_fallback`; Whisper's own fallback samples at rising temperatures instead): a greedy
decoder that falls into a loop loses the rest of its 30 s clip, a beam rarely does. A clip of several pieces that
still loops keeps the words decoded before the loop (`loop_start_word`) and only the pieces from the loop's on are
decoded again; one that fails a `gate` is decoded again in halves (kidsasr.asr.transcribe), so either costs only
its piece.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .models import Hypothesis, Word, compression_ratio

KNOWN_HALLUCINATIONS = (
    r"시청\s*해\s*주셔서\s*(정말\s*)?감사\s*(합니다|드립니다)",
    r"구독\s*(과|이랑|와)?\s*좋아요",
    r"좋아요\s*(와|랑|와\s*)?\s*구독",
    r"알림\s*설정\s*(까지)?\s*(부탁|해\s*주세요)",
    r"구독\s*(부탁|해\s*주세요)",
    r"(MBC|KBS|SBS|YTN|JTBC|EBS|MBN|TV\s*조선|채널\s*A|연합)\s*뉴스\s*[가-힣]{0,4}\s*(입니다|기자)",
    r"(한글\s*)?자막\s*(제공|제작|협찬|by)",
    r"^\W*(감사합니다|고맙습니다)\W*$",
    r"thank\s+you\s+for\s+watching",
    r"ご視聴ありがとうございました",
)
_HALLUCINATION_RE = re.compile("|".join(f"(?:{p})" for p in KNOWN_HALLUCINATIONS), re.IGNORECASE)


@dataclass
class GuardOptions:
    music_threshold: float = 0.6
    # Music-dominated pieces: decoded as song (their words marked sung, kidsasr.subtitles.cues shows them between ♪
    # marks) when True, else dropped unheard.
    decode_songs: bool = False
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.5
    no_speech_log_prob: float = -1.0  # with a high no-speech probability, this log-probability already fails
    compression_ratio_threshold: float = 2.4
    # A stock phrase is kept only when decoding was confident and the speech is long enough to have said it.
    stock_min_log_prob: float = -0.4
    stock_max_syllables_per_second: float = 12.0
    # Repetition loops: a unit of >= 4 characters repeated 3 times, or a shorter one 6 times.
    loop_repeats_long_unit: int = 3
    loop_repeats_short_unit: int = 6
    loop_max_unit: int = 60
    # Re-decode with this beam a clip whose greedy hypothesis loops, compresses too well or has an average
    # log-probability under fallback_log_prob (1: never).
    fallback_beam_size: int = 5
    fallback_log_prob: float = -1.0


_PUNCTUATION = re.compile(r"[.,!?…~·]")


def find_repetition(text: str, options: GuardOptions | None = None) -> tuple[int, int] | None:
    """Character span [start, end) of a repetition loop's extra copies (everything after the unit's first
    occurrence up to the end of its last copy, or to the end of the text when a copy was cut short), or None.

    Punctuation is ignored when comparing copies ("다온아, 다온아! 다온아," is a loop); what follows the loop stays.
    """
    o = options or GuardOptions()
    skeleton = _PUNCTUATION.sub(" ", text)  # same length as text, so spans carry over
    n = len(skeleton)
    for start in range(n):
        for unit in range(1, min(o.loop_max_unit, (n - start) // 2) + 1):
            needed = o.loop_repeats_long_unit if unit >= 4 else o.loop_repeats_short_unit
            if start + unit * needed > n:
                break
            piece = skeleton[start : start + unit]
            if not piece.strip() or piece[0].isspace():
                continue
            if all(skeleton[start + k * unit : start + (k + 1) * unit] == piece for k in range(1, needed)):
                end = start + unit * needed
                while skeleton[end : end + unit] == piece:
                    end += unit
                if piece.startswith(skeleton[end:]):
                    end = n
                return start + unit, end
    return None


def _word_spans(words: list[Word]) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w.text)))
        pos += len(w.text) + 1
    return spans


def _with_words(hyp: Hypothesis, words: list[Word]) -> Hypothesis:
    text = " ".join(w.text for w in words)
    return replace(hyp, text=text, words=words, compression_ratio=compression_ratio(text))


def _drop_span(hyp: Hypothesis, start: int, end: int) -> tuple[Hypothesis, str]:
    """Remove characters [start, end) of the hypothesis (of its words' joined text when it has words)."""
    if hyp.words:
        spans = _word_spans(hyp.words)
        kept = [w for w, (a, b) in zip(hyp.words, spans) if b <= start or a >= end]
        removed = " ".join(w.text for w, (a, b) in zip(hyp.words, spans) if not (b <= start or a >= end))
        return _with_words(hyp, kept), removed
    text = (hyp.text[:start] + " " + hyp.text[end:]).strip()
    return replace(hyp, text=re.sub(r"\s+", " ", text), compression_ratio=compression_ratio(text)), hyp.text[start:end]


def _source_text(hyp: Hypothesis) -> str:
    return " ".join(w.text for w in hyp.words) if hyp.words else hyp.text


def cut_repetition(hyp: Hypothesis, options: GuardOptions | None = None) -> tuple[Hypothesis, str]:
    """Cut a repetition loop's extra copies, keeping the unit's first occurrence and whatever follows the loop."""
    span = find_repetition(_source_text(hyp), options)
    if span is None:
        return hyp, ""
    return _drop_span(hyp, *span)


def stock_phrase_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _HALLUCINATION_RE.finditer(text)]


def supported_by_audio(hyp: Hypothesis, phrase: str, speech_seconds: float, options: GuardOptions | None = None) -> bool:
    """A stock phrase is believed when decoding was confident and there is speech enough to have said it."""
    o = options or GuardOptions()
    syllables = len(re.findall(r"[가-힣]", phrase)) or len(phrase.split())
    return hyp.avg_logprob >= o.stock_min_log_prob and speech_seconds * o.stock_max_syllables_per_second >= syllables \
        and hyp.no_speech_prob < o.no_speech_threshold


def gate(hyp: Hypothesis, options: GuardOptions | None = None) -> str | None:
    """The reason this hypothesis fails Whisper's confidence gates, or None."""
    o = options or GuardOptions()
    if hyp.no_speech_prob > o.no_speech_threshold and hyp.avg_logprob < o.no_speech_log_prob:
        return f"no speech (p={hyp.no_speech_prob:.2f}, logprob={hyp.avg_logprob:.2f})"
    if hyp.avg_logprob < o.log_prob_threshold:
        return f"low log-probability ({hyp.avg_logprob:.2f} < {o.log_prob_threshold})"
    if hyp.compression_ratio > o.compression_ratio_threshold:
        return f"compression ratio {hyp.compression_ratio:.2f} > {o.compression_ratio_threshold}"
    return None


def loops(hyp: Hypothesis, options: GuardOptions | None = None) -> bool:
    """Whether a hypothesis holds a repetition loop or compresses like one."""
    o = options or GuardOptions()
    text = _source_text(hyp)
    return bool(text.strip()) and (find_repetition(text, o) is not None
                                   or hyp.compression_ratio > o.compression_ratio_threshold)


def loop_start_word(hyp: Hypothesis, options: GuardOptions | None = None) -> int | None:
    """Index of the word where a repetition loop's unit first occurs (the loop takes hold there: the words before
    it were decoded before the loop began), or None: no loop found in the words."""
    if not hyp.words:
        return None
    text = _source_text(hyp)
    span = find_repetition(text, options)
    if span is None:
        return None
    last = len(text[:span[0]].rstrip()) - 1  # the last character of the unit's first occurrence
    return next(k for k, (_, end) in enumerate(_word_spans(hyp.words)) if end > last)


def needs_fallback(hyp: Hypothesis, options: GuardOptions | None = None) -> bool:
    """Whether a greedy hypothesis is worth decoding again with a beam: it loops, compresses like a loop, or is
    unsure of itself, and it is not simply silence."""
    o = options or GuardOptions()
    if o.fallback_beam_size <= 1 or not _source_text(hyp).strip() or hyp.no_speech_prob > o.no_speech_threshold:
        return False
    return loops(hyp, o) or hyp.avg_logprob < o.fallback_log_prob


def apply_guards(hyp: Hypothesis, speech_seconds: float, music_share: float = 0.0,
                 options: GuardOptions | None = None) -> tuple[Hypothesis, list[tuple[str, str]]]:
    """The part of `hyp` that may be shown, and every removed (text, reason).

    speech_seconds: VAD speech duration behind the hypothesis; music_share: kidsasr.asr.vad.music_dominance of it.
    """
    o = options or GuardOptions()
    empty = replace(hyp, text="", words=[], compression_ratio=0.0)
    if not _source_text(hyp).strip():
        return empty, []
    if music_share > o.music_threshold:
        return empty, [(_source_text(hyp), f"music-dominated ({music_share:.2f} > {o.music_threshold})")]
    dropped: list[tuple[str, str]] = []
    hyp, tail = cut_repetition(hyp, o)
    if tail:
        dropped.append((tail, "repetition loop"))
    reason = gate(hyp, o)
    if reason:
        return empty, dropped + [(_source_text(hyp), reason)]
    for start, end in reversed(stock_phrase_spans(_source_text(hyp))):
        phrase = _source_text(hyp)[start:end]
        if not supported_by_audio(hyp, phrase, speech_seconds, o):
            hyp, removed = _drop_span(hyp, start, end)
            dropped.append((removed, "known hallucination"))
    return hyp, dropped
