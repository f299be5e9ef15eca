"""Subtitle cues from timed words: segmentation, line breaking, timing on a frame grid, rule checks, review file.

Pure functions, no models. A style profile (`kidsasr/subtitles/styles/*.yaml`) holds the numbers. The steps:

1. words -> spacing units: each recognised word is one Korean spacing unit (eojeol) or one Latin word, and a
   line or cue break only ever falls between two of them (`3개월` and `학교에서` are never cut). Words without
   a finite timestamp are left out: cues are built only from timed words. Dots become one `…` (punctuation).
2. units -> phrases: a silence longer than `max_pause_in_cue` or a change of speaker always ends a phrase. Each
   break between two units of a phrase gets a kind from its syntax (kidsasr.subtitles.syntax: sentence, clause,
   phrase, word, or bound where a break would split a modifier from its noun or a verb construction). With speech
   regions (VAD), a silence longer than `min_gap` between the regions of two units also ends a phrase: the
   aligner's word times often run on across the pause between two utterances.
3. phrase -> cues: dynamic programming over break positions; a cue must fit in `max_lines` lines of
   `max_line_width` and last at most `max_duration`; each break costs by its kind (cheaper in a pause); a cue
   that could not be read at `max_cps`, holds one word cut from its phrase, or ends a sentence and starts the
   next with a stub costs extra, so the split avoids them. Lines break the same way (`break_lines`).
4. two short cues of different speakers may share one cue as two `- ` lines (when speaker ids are known).
5. timing: a cue starts at its first word and ends at its last, then grows only into the silence after it
   (at most `max_linger`, never closer than `min_gap` to the next cue) and, if still shorter than
   `min_duration`, up to `max_lead` into the silence before it; all with the minimums rounded up to whole
   frames, then snapped to the style's frame grid (kidsasr.subtitles.frames). Lines are shown under the
   punctuation policy (no full stop or comma at a line end). What cannot be met is not hidden: `check_cue`
   reports every remaining rule violation, durations and gaps in whole frames.

Widths: a Hangul syllable (any full-width character) is 1, Latin letters, digits, spaces and punctuation 0.5.
Reading speed counts letters and digits of any script (1 each); spaces, punctuation, symbols and speaker dashes
are not counted; it is measured over the cue's time on screen. Files are written by kidsasr.subtitles.writers.
"""

from __future__ import annotations

import functools
import math
import os
import unicodedata
from bisect import bisect_left
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from .. import config
from ..fileio import write_json_atomic
from .frames import frame_of, frame_rate, frames_at_least, frames_at_most, on_frames, snap_cues
from .punctuation import clean_word, finish_line
from .syntax import boundary_kinds

STYLES_DIR = Path(__file__).resolve().parent / "styles"  # package data: the built-in profiles
SENTENCE_END = ".?!…。？！"
CLAUSE_END = ",;:，、"
CLOSING = "\"'”’)]}」』》〉"
TRAILING_PUNCTUATION = SENTENCE_END + CLAUSE_END + CLOSING
SPEAKER_DASH = "- "
SONG_MARK = "♪"
SONG_POLICIES = ("mark", "omit")
WEAK_CONFIDENCE = 0.5

# costs of the cue segmentation (units: "one more cue"), by the kind of break (kidsasr.subtitles.syntax)
_CUE_COST = 1.0
_BREAK_COST = {"sentence": 0.0, "clause": 0.4, "phrase": 0.8, "pause": 0.6, "word": 1.5, "bound": 5.0}
_BOUND_IN_PAUSE = 2.5  # a bound break where the speaker pauses reads less badly
_PAUSE = 0.3  # a silence this long makes a break between words a pause break
_UNREADABLE_COST = 6.0
_ORPHAN_COST = 1.0
_FRAGMENT_COST = 6.0  # a one-word cue inside a phrase ("아,", "무슨")
_STUB_COST = 8.0  # a cue that ends a sentence and starts the next with <= STUB_CHARS characters
STUB_CHARS = 3
_PAUSE_INSIDE_COST = 1.5  # per second of silence inside a cue beyond _SHORT_PAUSE
_SHORT_PAUSE = 0.2
_SENTENCE_INSIDE_COST = 0.4
_FRAME_ROUNDING_MS = 1  # frame times are not whole milliseconds: linger and lead are checked to within 1 ms
# costs of a line break (units: widths of imbalance between the lines, weighted by _BALANCE)
_LINE_COST = {"sentence": 0.0, "clause": 0.5, "phrase": 1.5, "pause": 1.5, "word": 4.0, "bound": 15.0}
_BALANCE = 0.25


# Beyond these no screen or viewer can follow; a value past them is a typo, refused when the style is read
# rather than after an hour of decoding.
STYLE_LIMITS = {"max_lines": 5, "max_line_width": 100.0, "min_duration": 30.0, "max_duration": 30.0,
                "max_cps": 60.0, "min_gap": 5.0, "max_pause_in_cue": 30.0, "max_linger": 10.0, "max_lead": 10.0,
                "vad_threshold": 1.0, "vad_min_silence_ms": 10_000, "vad_min_speech_ms": 10_000}


@dataclass(frozen=True)
class Style:
    name: str
    max_lines: int = 2
    max_line_width: float = 16.0
    min_duration: float = 0.833
    max_duration: float = 7.0
    max_cps: float = 9.0
    min_gap: float = 0.083
    max_pause_in_cue: float = 1.0
    max_linger: float = 0.5
    max_lead: float = 0.125
    fps: float = 29.97  # cue times are snapped to this frame grid; minimums and gaps are whole frames
    songs: str = "mark"  # sung stretches: "mark" (lyrics between ♪ marks) or "omit" (left out)
    # speech detection (kidsasr.subtitles.runner.vad_options_for): speech probability above which a frame is
    # speech, the silence that ends a speech region and the shortest region kept
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 300
    vad_min_speech_ms: int = 250

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("name", "songs") and value < 0:
                raise ValueError(f"style {self.name}: {f.name} must be a non-negative number, got {value!r}")
        if self.songs not in SONG_POLICIES:
            raise ValueError(f"style {self.name}: songs must be one of {', '.join(SONG_POLICIES)}, not {self.songs!r}")
        if self.max_lines < 1:
            raise ValueError(f"style {self.name}: max_lines must be at least 1")
        for key, limit in STYLE_LIMITS.items():
            if getattr(self, key) > limit:
                raise ValueError(f"style {self.name}: {key} must be at most {limit:g} (got {getattr(self, key):g})")
        for key in ("max_line_width", "max_duration", "max_cps", "max_pause_in_cue", "fps", "vad_threshold"):
            if not getattr(self, key) > 0:
                raise ValueError(f"style {self.name}: {key} must be positive")
        if self.min_duration > self.max_duration:
            raise ValueError(f"style {self.name}: min_duration {self.min_duration} > max_duration {self.max_duration}")


def load_style(name_or_path: str | os.PathLike = "kids") -> Style:
    """A built-in profile by name (`kids`, `adult`: `kidsasr/subtitles/styles/<name>.yaml`) or a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.is_file():
        path = STYLES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        built_in = ", ".join(sorted(p.stem for p in STYLES_DIR.glob("*.yaml"))) or "none found"
        raise ValueError(f"style {str(name_or_path)!r}: no file {path} (built-in styles: {built_in})")
    values = config.read_yaml(path)
    values.setdefault("name", path.stem)
    try:
        return config.from_mapping(Style, values, str(path))
    except config.ConfigError:
        raise
    except ValueError as e:  # a rule between keys (Style.__post_init__)
        raise config.ConfigError(f"{path}: {e}") from e


def _char_width(ch: str) -> float:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc"):
        return 0.0
    return 1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.5


@functools.lru_cache(maxsize=1 << 16)
def text_width(s: str) -> float:
    """Display width: Hangul (and other full-width characters) 1; Latin, digits, spaces, punctuation 0.5."""
    return sum(_char_width(ch) for ch in unicodedata.normalize("NFC", s))


@functools.lru_cache(maxsize=1 << 16)
def reading_length(s: str) -> int:
    """The characters that count for reading speed: letters and digits of any script."""
    return sum(1 for ch in unicodedata.normalize("NFC", s) if unicodedata.category(ch)[0] in "LN")


class TimedWord(Protocol):
    """What `kidsasr.asr.models.Word` provides; an optional `speaker` attribute enables speaker dashes."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class CueWord:
    """One spacing unit on screen: the only places a line or a cue may break are between two of them."""

    text: str
    start: float
    end: float
    probability: float
    speaker: str | None = None
    sung: bool = False  # part of a song (kidsasr.asr.transcribe marks music-dominated speech)
    break_after: str = "word"  # how good a break after this unit is (kidsasr.subtitles.syntax kinds)


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]
    confidence: float
    words: list[CueWord] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def speech_start(self) -> float:
        return min(w.start for w in self.words) if self.words else self.start

    @property
    def speech_end(self) -> float:
        return max(w.end for w in self.words) if self.words else self.end

    @property
    def min_probability(self) -> float:
        return min((w.probability for w in self.words), default=self.confidence)


# ---------------------------------------------------------------------------------------------- building cues


def build_cues(words: Iterable[TimedWord], style: Style, speech_regions: Sequence[tuple[float, float]] | None = None
               ) -> list[Cue]:
    """Cues for one episode from its timed words (absolute times, in any order).

    With `speech_regions` (VAD), word times are clipped to the speech region they overlap most, so a word whose
    end the aligner stretched into a silence does not keep its cue on screen there, and a cue always ends at a
    silence between two regions that is longer than `min_gap` (word times alone can show no pause there).
    """
    units = [u for u in _spacing_units(words) if not (u.sung and style.songs == "omit")]
    silence_before = [0.0] * len(units)
    if speech_regions:
        regions = _sorted_regions(speech_regions)
        units, silence_before = _clip_to_regions(units, regions)
    timing = on_frames(style)  # minimums rounded up to whole frames, so that they hold after snapping
    phrases = [_with_break_kinds(units[a:b]) for a, b in _phrases(units, style, silence_before)]
    groups: list[list[CueWord]] = []
    for k, phrase in enumerate(phrases):
        next_start = phrases[k + 1][0].start if k + 1 < len(phrases) else math.inf
        previous_end = phrases[k - 1][-1].end if k else -math.inf
        groups.extend(_split_phrase(phrase, timing, next_start, previous_end))
    cues = _timed_cues(_with_speaker_pairs(groups, timing), timing)
    return snap_cues(cues, style, lambda lines: _needed_seconds(lines, style))


def _needed_seconds(lines: Sequence[str], style: Style) -> float:
    return max(style.min_duration, reading_length("".join(lines)) / style.max_cps)


def _with_break_kinds(phrase: list[CueWord]) -> list[CueWord]:
    kinds = boundary_kinds([u.text for u in phrase])
    return [replace(u, break_after=kind) for u, kind in zip(phrase, [*kinds, "pause"])]


def _spacing_units(words: Iterable[TimedWord]) -> list[CueWord]:
    timed = []
    for w in words:
        text = clean_word(w.text)
        start, end = _as_float(w.start), _as_float(w.end)
        if not text or start is None or end is None or start < 0:
            continue
        probability = _as_float(w.probability)
        probability = 0.0 if probability is None else min(max(probability, 0.0), 1.0)
        timed.append(CueWord(text, start, max(start, end), probability, getattr(w, "speaker", None),
                             bool(getattr(w, "sung", False))))
    timed.sort(key=lambda w: w.start)
    units: list[CueWord] = []
    for w in timed:
        # a stray punctuation token belongs to the word before it ("했어요" + "?")
        if units and all(ch in TRAILING_PUNCTUATION for ch in w.text) and units[-1].speaker == w.speaker \
                and units[-1].sung == w.sung \
                and w.start - units[-1].end <= 1.0:
            last = units[-1]
            units[-1] = CueWord(last.text + w.text, last.start, max(last.end, w.end),
                                min(last.probability, w.probability), last.speaker, last.sung)
        else:
            units.append(w)
    return units


def _as_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _sorted_regions(regions: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return sorted((float(s), float(e)) for s, e in regions if e > s)


def _clip_to_regions(units: list[CueWord], regions: list[tuple[float, float]]) -> tuple[list[CueWord], list[float]]:
    """Each unit's times clipped to the region it overlaps most; and for each unit, the longest silence between
    regions that lies between its region and the previous unit's (0.0 for the first unit, or where a unit overlaps
    no region)."""
    starts = [s for s, _ in regions]
    clipped, region_of = [], []
    for u in units:
        best, best_overlap = None, 0.0
        for k in range(max(0, bisect_left(starts, u.start) - 1), len(regions)):
            s, e = regions[k]
            if s > u.end:
                break
            overlap = min(e, u.end) - max(s, u.start)
            if overlap > best_overlap:
                best, best_overlap = k, overlap
        region_of.append(best)
        if best is None:
            clipped.append(u)
        else:
            start = max(u.start, regions[best][0])
            clipped.append(replace(u, start=start, end=max(start, min(u.end, regions[best][1]))))
    silence_before = [0.0] * len(units)
    for n in range(1, len(units)):
        a, b = region_of[n - 1], region_of[n]
        if a is not None and b is not None and b > a:
            silence_before[n] = max(regions[m + 1][0] - regions[m][1] for m in range(a, b))
    return clipped, silence_before


def _different_speakers(a: CueWord, b: CueWord) -> bool:
    return a.speaker is not None and b.speaker is not None and a.speaker != b.speaker


def _phrases(units: list[CueWord], style: Style, silence_before: list[float]) -> list[tuple[int, int]]:
    """[first, last) unit ranges separated by a long silence between words, a VAD silence longer than `min_gap`
    between their speech regions, a change of speaker, or a song starting or ending."""
    bounds = [0]
    for k in range(1, len(units)):
        if units[k].start - units[k - 1].end > style.max_pause_in_cue or silence_before[k] > style.min_gap \
                or _different_speakers(units[k - 1], units[k]) or units[k].sung != units[k - 1].sung:
            bounds.append(k)
    bounds.append(len(units))
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _break_cost(unit: CueWord, gap_after: float) -> float:
    """What a cue break after `unit` costs: by its syntax (kidsasr.subtitles.syntax), cheaper where the speaker pauses."""
    cost = _BREAK_COST[unit.break_after]
    if gap_after >= _PAUSE:
        cost = min(cost, _BOUND_IN_PAUSE if unit.break_after == "bound" else _BREAK_COST["pause"])
    return cost


def break_lines(texts: Sequence[str], style: Style, kinds: Sequence[str] | None = None) -> list[str] | None:
    """The best way to set spacing units on at most `max_lines` lines, one line when it fits.

    Lines break only between units: at a sentence end first, then a clause, a phrase, any word; never where a
    break splits what reads as one (a modifier and its noun, a verb and its auxiliary: kind "bound") unless
    nothing else fits; between equals, the most balanced. `kinds`: the kind of break after each unit but the
    last (kidsasr.subtitles.syntax.boundary_kinds, computed when not given). None when the units do not fit; a single
    unit always gets its own line, even if too wide (check_cue reports it).
    """
    widths = [text_width(t) for t in texts]
    limit = style.max_line_width + 1e-9
    total = sum(widths) + 0.5 * (len(texts) - 1)
    if len(texts) == 1 or total <= limit:
        return [" ".join(texts)]
    if total > style.max_lines * limit + 0.5 * (style.max_lines - 1):
        return None
    kinds = boundary_kinds(texts) if kinds is None else kinds
    best: tuple[float, list[str]] | None = None
    for n_lines in range(2, min(style.max_lines, len(texts)) + 1):
        for cuts in _cut_positions(len(texts), n_lines):
            bounds = [0, *cuts, len(texts)]
            line_widths = [sum(widths[a:b]) + 0.5 * (b - a - 1) for a, b in zip(bounds, bounds[1:])]
            if max(line_widths) > limit:
                continue
            score = _BALANCE * (max(line_widths) - min(line_widths)) + sum(_LINE_COST[kinds[c - 1]] for c in cuts) \
                + 100 * n_lines
            if best is None or score < best[0]:
                best = (score, [" ".join(texts[a:b]) for a, b in zip(bounds, bounds[1:])])
        if best is not None:
            return best[1]
    return None


def _cut_positions(n: int, n_lines: int, first: int = 1) -> Iterable[list[int]]:
    if n_lines == 1:
        yield []
        return
    for cut in range(first, n - n_lines + 2):
        for rest in _cut_positions(n, n_lines - 1, cut + 1):
            yield [cut, *rest]


def _split_phrase(phrase: list[CueWord], style: Style, next_start: float, previous_end: float
                  ) -> list[list[CueWord]]:
    """Cheapest cut of a phrase into cues (dynamic programming over the unit boundaries)."""
    n = len(phrase)
    max_units_per_cue = int(style.max_lines * (style.max_line_width + 0.5)) + 1  # a unit and its space take >= 1
    best = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, max(-1, j - 1 - max_units_per_cue), -1):
            if best[i] == math.inf:
                continue
            cost = _cue_cost(phrase, i, j, style, next_start, previous_end)
            if cost is None:
                if j - i > 1:
                    break  # adding units before i only makes the cue longer and wider
                cost = _CUE_COST + _UNREADABLE_COST  # a single unit that breaks a rule on its own
            if best[i] + cost < best[j]:
                best[j], back[j] = best[i] + cost, i
    cuts, j = [], n
    while j > 0:
        cuts.append((back[j], j))
        j = back[j]
    return [phrase[i:j] for i, j in reversed(cuts)]


def _cue_cost(phrase: list[CueWord], i: int, j: int, style: Style, next_start: float, previous_end: float
              ) -> float | None:
    units = phrase[i:j]
    speech = units[-1].end - units[0].start
    texts, kinds = _shown(units)
    if speech > style.max_duration or break_lines(texts, style, kinds) is None:
        return None
    after = (phrase[j].start if j < len(phrase) else next_start) - units[-1].end
    before = units[0].start - (phrase[i - 1].end if i > 0 else previous_end)
    on_screen = speech + max(0.0, min(style.max_linger, after - style.min_gap)) \
        + max(0.0, min(style.max_lead, before - style.min_gap))
    on_screen = min(on_screen, max(speech, style.max_duration))
    needed = max(style.min_duration, reading_length("".join(u.text for u in units)) / style.max_cps)
    cost = _CUE_COST
    if on_screen + 1e-9 < needed:
        cost += _UNREADABLE_COST * (1.0 + (needed - on_screen) / needed)
    if j < len(phrase):
        cost += _break_cost(units[-1], after)
    if j - i < len(phrase) and text_width(" ".join(u.text for u in units)) < style.max_line_width / 3:
        cost += _ORPHAN_COST  # "거예요." alone after a full cue reads badly
    if j - i == 1 and len(phrase) > 1:
        cost += _FRAGMENT_COST  # one word cut off from the words it was said with
    ends = [k for k in range(len(units) - 1) if units[k].break_after == "sentence"]
    if ends and j < len(phrase) and units[-1].break_after != "sentence" \
            and reading_length("".join(u.text for u in units[ends[-1] + 1:])) <= STUB_CHARS:
        cost += _STUB_COST  # "…같아요 아," / "…이제. 헬스는": the next sentence started with a stub
    for a, b in zip(units, units[1:]):
        # a silence kept on screen, and a new sentence started inside the cue ("…줄래요? 오늘 / 다온 어린이는…")
        cost += _PAUSE_INSIDE_COST * max(0.0, b.start - a.end - _SHORT_PAUSE)
        cost += _SENTENCE_INSIDE_COST * (a.break_after == "sentence")
    return cost


def _with_speaker_pairs(groups: list[list[CueWord]], style: Style) -> list[list[CueWord]]:
    """Where a short cue of one speaker could not stay on screen long enough to be read, join it with the
    neighbouring words of the other speaker into one two-line dash cue ("- 뭐야?" / "- 사과야.")."""
    if style.max_lines < 2:
        return groups
    queue = list(groups)
    paired: list[list[CueWord]] = []
    k = 0
    while k < len(queue):
        a = queue[k]
        b = queue[k + 1] if k + 1 < len(queue) else None
        if b is None or not _different_speakers(a[-1], b[0]) or b[0].start - a[-1].end > style.max_pause_in_cue:
            paired.append(a)
            k += 1
            continue
        after_b = queue[k + 2][0].start if k + 2 < len(queue) else math.inf
        if not _readable(a, b[0].start, style) and _fits_dash_line(a, style):
            m = _best_dash_part(b, style, a[0].start, after_b, from_start=True)
            if m:
                paired.append(a + b[:m])
                queue[k + 1] = b[m:]
                k += 1 if m < len(b) else 2
                continue
        if not _readable(b, after_b, style) and _fits_dash_line(b, style):
            m = _best_dash_part(a, style, b[-1].end, b[0].start, from_start=False)
            if m:
                paired.extend([a[:-m], a[-m:] + b] if m < len(a) else [a + b])
                k += 2
                continue
        paired.append(a)
        k += 1
    return paired


def _readable(part: list[CueWord], next_start: float, style: Style) -> bool:
    on_screen = part[-1].end - part[0].start + max(0.0, min(style.max_linger, next_start - part[-1].end - style.min_gap))
    needed = max(style.min_duration, reading_length("".join(u.text for u in part)) / style.max_cps)
    return on_screen >= needed


def _fits_dash_line(part: list[CueWord], style: Style) -> bool:
    return len({u.speaker for u in part}) == 1 and \
        text_width(" ".join(u.text for u in part)) + text_width(SPEAKER_DASH) <= style.max_line_width + 1e-9


def _best_dash_part(part: list[CueWord], style: Style, other_end: float, after_part: float, from_start: bool
                    ) -> int:
    """How many units from the start (or the end) of `part` to put on the other speaker's dash line: the
    part that fits, leaves a readable rest and ends at the best break, longest first; 0 when there is none."""
    best, best_cost = 0, math.inf
    for m in range(len(part), 0, -1):
        piece = part[:m] if from_start else part[-m:]
        span = max(piece[-1].end, other_end) - min(piece[0].start, other_end)
        if not _fits_dash_line(piece, style) or span > style.max_duration:
            continue
        if m == len(part):
            return m
        rest_readable = _readable(part[m:], after_part, style) if from_start else _readable(part[:-m], piece[0].start, style)
        if not rest_readable:
            continue
        before, after = (part[m - 1], part[m]) if from_start else (part[-m - 1], part[-m])
        cost = _break_cost(before, after.start - before.end)
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _lines_for(units: list[CueWord], style: Style) -> list[str]:
    speakers = [u.speaker for u in units]
    if len(set(speakers)) == 2 and None not in speakers and style.max_lines >= 2:
        cut = next(k for k in range(1, len(units)) if speakers[k] != speakers[k - 1])
        return [finish_line(SPEAKER_DASH + " ".join(u.text for u in part)) for part in (units[:cut], units[cut:])]
    texts, kinds = _shown(units)
    lines = break_lines(texts, style, kinds) or [" ".join(texts)]
    return [finish_line(line, first_in_cue=k == 0) for k, line in enumerate(lines)]


def _shown(units: list[CueWord]) -> tuple[list[str], list[str]]:
    """The units' texts as shown, with the kind of break after each but the last: a cue of sung words goes between
    ♪ marks (a style that omits songs has none left), which stay on the lines of the words beside them."""
    texts, kinds = [u.text for u in units], [u.break_after for u in units[:-1]]
    if units and all(u.sung for u in units):
        return [SONG_MARK, *texts, SONG_MARK], ["bound", *kinds, "bound"]
    return texts, kinds


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _timed_cues(groups: list[list[CueWord]], style: Style) -> list[Cue]:
    """Set each cue's times in whole milliseconds (the file's resolution), so every rule holds as written."""
    gap, linger, lead = _ms(style.min_gap), _ms(style.max_linger), _ms(style.max_lead)
    cues: list[Cue] = []
    previous_end = -10**12
    for k, units in enumerate(groups):
        speech_start, speech_end = _ms(units[0].start), _ms(max(u.end for u in units))
        next_start = _ms(groups[k + 1][0].start) if k + 1 < len(groups) else 10**15
        lines = _lines_for(units, style)
        needed = _ms(max(style.min_duration, reading_length("".join(lines)) / style.max_cps))
        start = max(speech_start, previous_end + gap, 0)
        latest_end = min(max(speech_end, start + _ms(style.max_duration)), speech_end + linger, next_start - gap)
        end = min(max(speech_end, start + needed), latest_end)
        if end - start < needed:
            start -= max(0, min(needed - (end - start), lead, start - (previous_end + gap), start))
        end = max(end, start + 1)
        confidence = sum(u.probability for u in units) / len(units)
        cues.append(Cue(start / 1000, end / 1000, lines, round(confidence, 4), list(units)))
        previous_end = end
    return cues


# ------------------------------------------------------------------------------------------------ rule checks


def check_cue(cue: Cue, style: Style, previous: Cue | None = None,
              speech_regions: Sequence[tuple[float, float]] | None = None) -> list[str]:
    """Every style rule this cue breaks, in words; [] when it keeps them all. Durations and gaps are compared in
    whole frames of the style's frame rate (each time at its nearest frame; minimums rounded up to whole frames,
    the maximum down), times against the words' speech within a millisecond. With `speech_regions` (VAD), time on
    screen without speech is checked."""
    return _check(cue, style, previous, None if speech_regions is None else _sorted_regions(speech_regions))


def check_cues(cues: Sequence[Cue], style: Style, speech_regions: Sequence[tuple[float, float]] | None = None
               ) -> list[list[str]]:
    """check_cue for each cue against the one before it."""
    regions = None if speech_regions is None else _sorted_regions(speech_regions)
    return [_check(cue, style, cues[k - 1] if k else None, regions) for k, cue in enumerate(cues)]


def _check(cue: Cue, style: Style, previous: Cue | None, regions: list[tuple[float, float]] | None) -> list[str]:
    problems = []
    rate = frame_rate(style.fps)
    start, end = frame_of(cue.start, rate), frame_of(cue.end, rate)
    if len(cue.lines) > style.max_lines:
        problems.append(f"{len(cue.lines)} lines > {style.max_lines}")
    for number, line in enumerate(cue.lines, 1):
        width = text_width(line)
        if width > style.max_line_width + 1e-9:
            problems.append(f"line {number} width {width:g} > {style.max_line_width:g}")
    frames = end - start
    seconds = float(frames / rate)
    if frames < frames_at_least(style.min_duration, rate):
        problems.append(f"duration {seconds:.3f} s < {style.min_duration:g} s")
    if frames > frames_at_most(style.max_duration, rate):
        problems.append(f"duration {seconds:.3f} s > {style.max_duration:g} s")
    chars = reading_length("".join(cue.lines))
    if frames <= 0:
        problems.append("ends before it starts")
    elif chars / seconds > style.max_cps + 1e-9:
        problems.append(f"reading speed {chars / seconds:.1f} chars/s > {style.max_cps:g}")
    if previous is not None:
        previous_start, previous_end = frame_of(previous.start, rate), frame_of(previous.end, rate)
        if start <= previous_start:
            problems.append("starts at or before the previous cue's start")
        elif start - previous_end < frames_at_least(style.min_gap, rate):
            problems.append(f"gap to the previous cue {float((start - previous_end) / rate):.3f} s "
                            f"< {style.min_gap:g} s")
    if not cue.words:
        problems.append("no timed words")
    else:
        problems.extend(_word_timing_problems(cue, style))
    if regions is not None:
        problems.extend(_speech_problems(cue, regions, style))
    return problems


def _word_timing_problems(cue: Cue, style: Style) -> list[str]:
    problems = []
    start, end = _ms(cue.start), _ms(cue.end)
    words = sorted(cue.words, key=lambda w: w.start)
    longest = max((b.start - a.end for a, b in zip(words, words[1:])), default=0.0)
    if _ms(longest) > _ms(style.max_pause_in_cue):
        problems.append(f"spans a pause of {longest:.3f} s > {style.max_pause_in_cue:g} s")
    speech_start, speech_end = _ms(cue.speech_start), _ms(cue.speech_end)
    if end - speech_end > _ms(style.max_linger) + _FRAME_ROUNDING_MS:
        problems.append(f"stays {(end - speech_end) / 1000:.3f} s after its last word > {style.max_linger:g} s")
    if speech_end - end > _ms(style.max_lead):
        problems.append(f"leaves the screen {(speech_end - end) / 1000:.3f} s before its last word ends")
    if speech_start - start > _ms(style.max_lead) + _FRAME_ROUNDING_MS:
        problems.append(f"appears {(speech_start - start) / 1000:.3f} s before its first word > {style.max_lead:g} s")
    if start - speech_start > _ms(style.max_lead):
        problems.append(f"appears {(start - speech_start) / 1000:.3f} s after its first word starts")
    return problems


def _speech_problems(cue: Cue, regions: list[tuple[float, float]], style: Style) -> list[str]:
    """Speech under the words, and the longest time on screen without speech; `regions` sorted by start."""
    m = max(0, bisect_left(regions, cue.start, key=lambda r: r[0]) - 1)
    silence_start = regions[m - 1][1] if m > 0 else -math.inf
    heard, longest_silence = False, 0.0
    while True:
        silence_end = regions[m][0] if m < len(regions) else math.inf
        longest_silence = max(longest_silence, min(cue.end, silence_end) - max(cue.start, silence_start))
        if m == len(regions) or silence_end >= cue.end:
            break
        heard |= regions[m][0] <= cue.speech_end and regions[m][1] >= cue.speech_start
        silence_start = max(silence_start, regions[m][1])
        m += 1
    problems = []
    if not heard:
        problems.append("no speech (VAD) under the cue's words")
    if _ms(longest_silence) > _ms(style.max_pause_in_cue):
        problems.append(f"on screen for {longest_silence:.3f} s without speech (VAD) > {style.max_pause_in_cue:g} s")
    return problems


# ------------------------------------------------------------------------------------------------ review file


def cues_json_path(subtitle_path: str | os.PathLike) -> Path:
    """`OUT.vtt` -> `OUT.cues.json`, the review side file."""
    path = Path(subtitle_path)
    return path.with_name(path.stem + ".cues.json")


def write_cues_json(cues: Sequence[Cue], path: str | os.PathLike, style: Style,
                    speech_regions: Sequence[tuple[float, float]] | None = None,
                    details: Sequence[dict] | None = None, calibration: Any = None, **extra: Any) -> list[list[str]]:
    """The review side file: each cue with its confidence, weakest word, words and rule violations (returned).

    `details`: per cue, what the decoder said about its speech (kidsasr.review.calibration.decoder_details).
    `calibration` (a kidsasr.review.calibration.Calibration): each cue's estimated error probability, and `weak`
    when it reaches the calibration's threshold; without one, a cue is weak below WEAK_CONFIDENCE.
    """
    problems = check_cues(cues, style, speech_regions)
    rows = []
    for number, (cue, issues) in enumerate(zip(cues, problems), 1):
        rows.append({
            "index": number, "start": round(cue.start, 3), "end": round(cue.end, 3), "lines": cue.lines,
            "confidence": round(cue.confidence, 4), "min_word_probability": round(cue.min_probability, 4),
            "weak": cue.confidence < WEAK_CONFIDENCE, "violations": issues,
            "words": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(w).items()}
                      for w in cue.words],
        })
        if details is not None:
            rows[-1]["decoder"] = details[number - 1]
    scoring: dict[str, Any] = {"weak_threshold": WEAK_CONFIDENCE}
    if calibration is not None and rows:
        from ..review.calibration import cue_features

        error = calibration.error_probability([cue_features(r) for r in rows])
        for row, p in zip(rows, error):
            row["error_probability"], row["weak"] = round(float(p), 4), bool(p >= calibration.threshold)
        scoring = {"weak_threshold": WEAK_CONFIDENCE, "error_threshold": round(calibration.threshold, 4),
                   "calibration": calibration.model}
    regions = None if speech_regions is None else [[round(s, 3), round(e, 3)] for s, e in speech_regions]
    write_json_atomic(path, {**extra, "style": asdict(style), **scoring,
                             "cues_with_violations": sum(bool(p) for p in problems), "speech_regions": regions,
                             "cues": rows})
    return problems
