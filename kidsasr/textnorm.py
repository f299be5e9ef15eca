"""Korean transcript normalisation: KsponSpeech/ETRI marks, number spelling, and the CER scoring policy.

Every function here is pure (str in, str out) and applies Unicode NFC first. The policy is documented as a
table in `data_prep/NORMALISATION.md`; the summary:

- `parse_label` splits one raw label into a spelling side (subtitles: digits and punctuation kept, tags, fillers
  and disfluent repetitions removed) and a pronunciation side (alignment/CTC/TTS: what was said, numbers and
  Latin letters spelled in Hangul, fillers and repetitions kept, only Hangul syllables and single spaces).
- `spell_numbers` reads digits the way a Korean speaker would: native numerals before native counters
  ("3개" -> "세 개"), Sino-Korean otherwise ("3개월" -> "삼 개월"), "6월" -> "유월", phone numbers digit by digit.
- `normalize_for_cer` is the one scoring policy used by every CER figure in this project.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

TAGS = ("b", "l", "n", "o", "u", "*")  # breath, laughter, noise, overlap, unintelligible; unclear speech


@dataclass(frozen=True)
class Transcript:
    spelling: str  # subtitle side: digits kept, KsponSpeech tags removed, fillers/repetitions resolved
    pronunciation: str  # alignment/CTC side: numbers spelled in Hangul, only Hangul + spaces
    tags: tuple[str, ...]  # noise/event tags found ("b","l","n","o","u","*"), in order of first appearance


# ---------------------------------------------------------------------------------------------------------------
# Unicode and marks

_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def nfc(text: str) -> str:
    """NFC plus full-width ASCII folded to ASCII ("３개" -> "3개").

    NFKC would do the folding too, but it also turns compatibility jamo (ㅋ) into conjoining jamo.
    """
    return unicodedata.normalize("NFC", text).translate(_FULLWIDTH)


_HANGUL = "가-힣"
_PAIR = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")
_TAG = re.compile(rf"(?<![^\s(/])([{''.join(TAGS[:-1])}])/(?![(])")  # also run together: "b/n/"
_FILLER = re.compile(rf"(?<![^\s(])([{_HANGUL}]+)/(?![(])")
_REPETITION = re.compile(r"(?<!\S)(\S+?)\+(?=\s|$|[.,?!])")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,?!:;])")
_NOT_HANGUL_OR_SPACE = re.compile(rf"[^{_HANGUL} ]")
_SPELLING_SIDE_NEEDS_READING = re.compile(rf"[^{_HANGUL}\s.,?!~'\"…-]")

FILLER_WORDS = frozenset({"음", "음음", "으음", "어", "어어", "으", "흠", "엄"})
"""Stand-alone interjections dropped by `normalize_for_cer` even without a `/` mark (hypotheses carry none)."""


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _is_reading(side: str) -> bool:
    """True when a dual-transcription side reads as spoken Hangul (no digits, Latin or symbols)."""
    return not _SPELLING_SIDE_NEEDS_READING.search(side)


def to_kspon_order(raw: str) -> str:
    """Put every dual transcription in KsponSpeech order, `(spelling)/(pronunciation)`.

    The broadcast-dialogue corpus writes some pairs reading-first, `(세 개)/(3개)`. A pair is swapped when its
    first side is plain Hangul and its second is not (it holds digits, Latin letters or symbols); pairs whose
    sides are both Hangul (dialect or contraction pairs) keep their order.
    """
    def fix(m: re.Match) -> str:
        first, second = m.group(1), m.group(2)
        if _is_reading(first) and not _is_reading(second):
            first, second = second, first
        return f"({first})/({second})"

    return _PAIR.sub(fix, nfc(raw))


def _tags(text: str) -> tuple[str, ...]:
    """The tags and `*` marks of a label, each once, in order of first appearance."""
    found = sorted([(m.start(), m.group(1)) for m in _TAG.finditer(text)]
                   + [(i, "*") for i, char in enumerate(text) if char == "*"])
    return tuple(dict.fromkeys(tag for _, tag in found))


def _strip_marks(text: str, keep_disfluency: bool) -> str:
    """Remove tags and `*`; keep (pronunciation side) or drop (spelling side) fillers `w/` and repetitions `w+`."""
    text = _TAG.sub(" ", text).replace("*", "")
    if keep_disfluency:
        text = _FILLER.sub(r"\1", text)
        text = _REPETITION.sub(r"\1", text)
    else:
        text = _FILLER.sub(" ", text)
        text = _REPETITION.sub(" ", text)
    return text


def _tidy_spelling(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _squash(text))
    return re.sub(r"^[\s.,?!:;]+", "", text)


def parse_label(raw: str) -> Transcript:
    """Split a KsponSpeech-style label into its spelling side, pronunciation side and tags.

    >>> parse_label("b/ 아/ 모+ 몬 소리야 (70%)/(칠 십 퍼센트) 확률이라니 n/")
    Transcript(spelling='몬 소리야 70% 확률이라니', pronunciation='아 모 몬 소리야 칠 십 퍼센트 확률이라니', tags=('b', 'n'))
    """
    text = to_kspon_order(raw)
    spelling = _strip_marks(_PAIR.sub(lambda m: m.group(1), text), keep_disfluency=False)
    pronunciation = _strip_marks(_read_out(text, lambda m: m.group(2)), keep_disfluency=True)
    return Transcript(_tidy_spelling(spelling), to_pronunciation(pronunciation), _tags(text))


def _read_out(text: str, pair_side: Callable[[re.Match], str]) -> str:
    """Each dual pair replaced by `pair_side(pair)`, each number outside the pairs by its reading.

    Numbers are read against the whole label, before any pair is replaced, so a counter's context survives the
    pairs around it ("7대 (3)/(삼)으로" is a score: 칠 대).
    """
    pairs = [(m.start(), m.end(), pair_side(m)) for m in _PAIR.finditer(text)]
    numbers = number_readings(text) + [(m.start(), m.end(), " 더하기 ") for m in _PLUS.finditer(text)]
    return _apply(text, pairs + [n for n in numbers if not any(n[0] < p[1] and n[1] > p[0] for p in pairs)])


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each non-overlapping (start, end, replacement) applied."""
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out.append(text[pos:start] + replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def label_problems(raw: str) -> list[str]:
    """What is malformed in a label's KsponSpeech marks, as readable reasons; [] for a well-formed label.

    A stray parenthesis, `/` or `+` means the marks were mistyped, so the spelling side would show them and the
    pronunciation side would lose words: prep should reject such a label rather than guess.
    """
    text = to_kspon_order(raw)
    problems = []
    for m in _PAIR.finditer(text):
        if not m.group(1).strip() or not m.group(2).strip():
            problems.append(f"dual transcription {m.group(0)!r} has an empty side")
        elif not _is_reading(m.group(2)):
            problems.append(f"dual transcription {m.group(0)!r}: the pronunciation side is not Hangul")
    rest = _PAIR.sub(" ", text)
    for mark in (_TAG, _FILLER, _REPETITION, _PLUS):
        rest = mark.sub(" ", rest)
    for char, reason in (("(", "an unmatched '('"), (")", "an unmatched ')'"),
                         ("/", "a '/' that is not part of a KsponSpeech mark"),
                         ("+", "a '+' that is neither a repetition mark nor arithmetic")):
        if char in rest:
            problems.append(reason)
    return problems


def is_tag_only(raw: str) -> bool:
    """True for a non-blank label with no lexical content: only tags, `*`, fillers and punctuation.

    ("n/ b/", "l/", "음/ 어/"). A blank label is empty, not tag-only: callers check that separately.
    """
    if not nfc(raw).strip():
        return False
    return not re.search(rf"[{_HANGUL}A-Za-z0-9]", parse_label(raw).spelling)


# ---------------------------------------------------------------------------------------------------------------
# Numbers

_SINO_DIGITS = "영일이삼사오육칠팔구"
_PHONE_DIGITS = "공일이삼사오육칠팔구"
_NATIVE_ONES = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_BARE = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")

# Counters read with native numerals (up to 99; 100 and more are read Sino-Korean: "백 개").
NATIVE_COUNTERS = (
    "번째", "시간", "마리", "개", "명", "살", "시", "번", "권", "잔", "장", "그루", "벌", "켤레", "송이", "대",
    "채", "병", "통", "가지", "군데", "사람", "달", "줄", "그릇", "봉지", "상자", "조각", "바퀴", "걸음",
    "방울", "알", "자루", "쌍", "묶음", "판", "곡", "컵", "척", "접시", "숟가락", "칸", "발", "뼘", "모금",
    "쪽지", "주먹", "닢", "배", "문제", "팀", "글자", "마디",
)
# Counters and units read with Sino-Korean numerals. Latin/symbol units map to their Hangul reading.
SINO_COUNTERS = (
    "개월", "학년", "분", "초", "월", "일", "년", "원", "층", "퍼센트", "프로", "반", "호", "등", "점", "쪽",
    "페이지", "회", "위", "단계", "도", "세", "인분", "주", "주일", "킬로그램", "킬로미터", "킬로", "미터",
    "센티미터", "센티", "그램", "리터", "밀리리터", "번지", "교시", "과", "차", "기", "부", "편",
)
UNIT_READINGS = {
    "%": "퍼센트", "kg": "킬로그램", "km": "킬로미터", "cm": "센티미터", "mm": "밀리미터", "ml": "밀리리터",
    "mL": "밀리리터", "m": "미터", "g": "그램", "L": "리터", "l": "리터", "℃": "도", "°C": "도", "°": "도",
}
_SPECIAL_MONTHS = {6: "유월", 10: "시월"}
_DIGIT_BY_DIGIT = frozenset({"112", "114", "119", "1339"})  # service numbers are read digit by digit
# "번" counts ("세 번") unless it numbers something ("3번 문제", "5번 버스", "기호 2번").
_NUMBERED_BY_BEON = ("문제", "버스", "선수", "출구", "방", "카드", "친구", "자리", "트랙", "채널", "타자")
_NUMBERING_BEON = re.compile(r"(?:기호|번호|등번호|제|좌석|참가)\s*$")


def sino(n: int) -> str:
    """Sino-Korean reading of a non-negative integer: 10 -> 십, 21 -> 이십일, 12345 -> 만 이천삼백사십오."""
    if n == 0:
        return "영"
    groups = []
    for unit in ("", "만", "억", "조", "경"):
        n, group = divmod(n, 10000)
        if group:
            words = []
            for value, name in ((1000, "천"), (100, "백"), (10, "십"), (1, "")):
                d = group // value % 10
                if d:
                    words.append(("" if d == 1 and name else _SINO_DIGITS[d]) + name)
            reading = "".join(words)
            if unit == "만" and reading == "일":
                reading = ""
            groups.append(reading + unit)
        if not n:
            break
    return " ".join(reversed(groups))


def native(n: int, attributive: bool = True) -> str:
    """Native Korean reading of 1..99; attributive forms before a counter (한 개, 스무 살), bare forms alone."""
    if not 1 <= n <= 99:
        raise ValueError(f"native numerals cover 1..99, got {n}")
    tens, ones = divmod(n, 10)
    if n == 20 and attributive:
        return "스무"
    return _NATIVE_TENS[tens] + (_NATIVE_ONES if attributive else _NATIVE_ONES_BARE)[ones]


def read_digits(digits: str) -> str:
    """Digit-by-digit reading with 0 as 공, as for phone numbers: "010" -> "공일공"."""
    return "".join(_PHONE_DIGITS[int(d)] for d in digits if d.isdigit())


def _counter_pattern() -> re.Pattern:
    words = sorted(set(NATIVE_COUNTERS) | set(SINO_COUNTERS), key=len, reverse=True)
    units = sorted(UNIT_READINGS, key=len, reverse=True)
    unit_alt = "|".join(re.escape(u) + (r"(?![A-Za-z])" if u[-1].isalpha() else "") for u in units)
    return re.compile(
        r"(?P<phone>(?<!\d)\d{2,4}-\d{3,4}-\d{4}(?!\d))|"
        r"(?P<clock>(?<![\d:])(?:[01]?\d|2[0-4]):[0-5]\d(?::[0-5]\d)?(?![\d:]))|"
        r"(?<![\d.])(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
        rf"(?:(?P<space>\s?)(?:(?P<unit>{unit_alt})|(?P<counter>{'|'.join(words)})))?"
    )


_NUMBER = _counter_pattern()
_PLUS = re.compile(r"(?<=\d)(?:\+|\s+\+\s+)(?=\d)")  # arithmetic; "3+ 3개" is a repetition
_EQUALS = re.compile(r"(?<=[가-힣])\s*=\s*(?=[가-힣])")  # "삼 더하기 사 = 칠" -> "삼 더하기 사는 칠"


_PARTICLE_AFTER_COUNTER = re.compile(
    r"(?:[^가-힣]|$|(?:이|가|을|를|은|는|도|에|의|와|과|랑|만|요|씩|쯤|째|이에요|이야|입니다|에요|예요)(?![가-힣]))"
)


def _read_number(m: re.Match, text: str) -> str:
    if m.group("phone"):
        return " ".join(read_digits(group) for group in m.group("phone").split("-"))
    if m.group("clock"):
        hour, minute, second = (int(part) for part in (m.group("clock") + ":0").split(":")[:3])
        return " ".join([f"{native(hour) if hour else sino(hour)} 시"] + [f"{sino(value)} {unit}" for value, unit
                                                                       in ((minute, "분"), (second, "초")) if value])
    digits, frac = m.group("num").replace(",", ""), m.group("frac")
    unit, counter = m.group("unit"), m.group("counter")
    n = int(digits)
    if frac is not None:
        fixed = f"{sino(n)} 점 {''.join(_SINO_DIGITS[int(d)] for d in frac)}"
    elif len(digits) > 1 and digits.startswith("0"):
        fixed = read_digits(digits)
    else:
        fixed = None
    if unit:
        return f"{fixed or sino(n)} {UNIT_READINGS[unit]}"
    if counter and m.group("space") and not _PARTICLE_AFTER_COUNTER.match(text, m.end()):
        # "3 일어나": after a space, a word that merely starts like a counter is not one.
        counter = None
    if counter is None:
        if fixed is None and digits in _DIGIT_BY_DIGIT:
            fixed = read_digits(digits)
        return (fixed or sino(n)) + (m.group("space") or "") + (m.group("counter") or "")
    if fixed is not None:
        return f"{fixed} {counter}"
    if counter == "월":
        return _SPECIAL_MONTHS.get(n, sino(n) + "월")
    return f"{_counter_number(n, counter, text[: m.start()], text[m.end():])} {counter}"


def _counter_number(n: int, counter: str, before: str, after: str) -> str:
    if counter == "번째" and n == 1:
        return "첫"
    if counter == "번" and (after.lstrip().startswith(_NUMBERED_BY_BEON) or _NUMBERING_BEON.search(before)):
        return sino(n)
    if counter == "대" and re.match(r"\s*\(?\d", after):  # a score, "3대 2", also "3대 (2)/(이)"
        return sino(n)
    if counter in NATIVE_COUNTERS and 1 <= n <= 99:
        return native(n)
    return sino(n)


def number_readings(text: str) -> list[tuple[int, int, str]]:
    """(start, end, reading) of each number in `text` with its counter or unit, read in context.

    The span is what a dual transcription covers: `number_readings("3대 2로")` gives `(0, 2, "삼 대")`, so the
    pair is `(3대)/(삼 대)`, a score, where `spell_numbers("3대")` alone would count vehicles.
    """
    return [(m.start(), m.end(), _read_number(m, text)) for m in _NUMBER.finditer(text)]


def spell_numbers(text: str) -> str:
    """Spell every number in `text` in Hangul, choosing native or Sino-Korean numerals by the counter.

    "3개월" -> "삼 개월", "3개" -> "세 개", "20살" -> "스무 살", "6월 15일" -> "유월 십오 일",
    "3.5kg" -> "삼 점 오 킬로그램", "010-1234-5678" -> "공일공 일이삼사 오육칠팔", "1,000원" -> "천 원".
    """
    text = _PLUS.sub(" 더하기 ", nfc(text))
    spelled = _apply(text, number_readings(text))
    return _EQUALS.sub(lambda m: ("은 " if jongseong(m.string[: m.start()]) else "는 "), spelled)


def jongseong(word: str) -> int:
    """Index of the final consonant of the word's last spoken syllable: 0 none, 8 ㄹ, ... ("3" reads 삼: 16).

    Particles choose their form by it (을/를, 이/가, 으로/로).
    """
    spoken = re.sub(r"[^가-힣]", "", spell_numbers(word) if re.search(r"\d", word) else word)
    return (ord(spoken[-1]) - 0xAC00) % 28 if spoken else 0


# ---------------------------------------------------------------------------------------------------------------
# Latin letters (acronyms without a dual transcription) and the pronunciation side

_LETTERS = {
    "a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치", "i": "아이",
    "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피", "q": "큐", "r": "알",
    "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}


def spell_latin(text: str) -> str:
    """Read Latin letters one by one ("TV" -> "티브이"); a fallback for acronyms labelled without a pair."""
    return re.sub(r"[A-Za-z]+", lambda m: "".join(_LETTERS[c] for c in m.group(0).lower()), text)


def to_pronunciation(text: str) -> str:
    """What a reader says: numbers and Latin spelled in Hangul, everything but Hangul syllables and spaces gone."""
    text = spell_latin(spell_numbers(text))
    return _squash(_NOT_HANGUL_OR_SPACE.sub(" ", text))


# ---------------------------------------------------------------------------------------------------------------
# Scoring

_NOT_SCORED = re.compile(rf"[^{_HANGUL}ㄱ-ㅎㅏ-ㅣa-z0-9 ]")


def normalize_for_cer(text: str, keep_spaces: bool = False) -> str:
    """The scoring policy: references and hypotheses both go through this before CER/WER.

    1. NFC, full-width ASCII folded; dual-transcription pairs in KsponSpeech order.
    2. KsponSpeech marks: tags and `*` removed; fillers `w/` and repetitions `w+` removed (as on the spelling
       side); the stand-alone interjections in `FILLER_WORDS` removed too, since hypotheses carry no marks.
    3. A dual pair is scored on its pronunciation side when its spelling side holds digits, Latin letters or
       symbols (the reading is what was said: `(10%)/(십 프로)` scores as 십프로), else on its spelling side.
    4. Numbers spelled with `spell_numbers`, so "3개" and "세 개" match.
    5. Latin lowercased; punctuation and symbols removed; spaces removed unless `keep_spaces` (then collapsed).
    """
    text = _read_out(to_kspon_order(text), lambda m: m.group(1) if _is_reading(m.group(1)) else m.group(2))
    text = spell_numbers(_strip_marks(text, keep_disfluency=False)).lower()
    words = _NOT_SCORED.sub(" ", text).split()
    words = [w for w in words if w not in FILLER_WORDS]
    return " ".join(words) if keep_spaces else "".join(words)
