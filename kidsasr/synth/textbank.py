"""The synthetic corpus's text: hand-written children's-programme sentences plus templates, 5,000+ distinct.

`hand_written()` reads `kidsasr/data/sentences_hand.tsv` (original sentences written for this project, four
programme categories). `sentence_bank(seed)` adds template sentences (names, numbers with counters, dates, times,
objects, actions, places) until the bank holds `size` sentences that are distinct after CER normalisation, and
decorates a known share of labels with KsponSpeech marks (dual transcription, fillers, repetitions, noise tags),
all deterministic for a seed. `write_text_corpus` writes the corpus's text-corpus file (JSON lines).
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterable, Iterator

from ..corpus.reader import CATEGORIES
from ..fileio import read_jsonl, write_jsonl_atomic
from ..textnorm import jongseong, nfc, normalize_for_cer, number_readings, parse_label, spell_numbers

HAND_FILE = "sentences_hand.tsv"
TEMPLATE_FILE = "templates.tsv"
VOCABULARY_FILE = "vocabulary.json"
DECORATED_SHARE = 0.18  # share of labels carrying KsponSpeech marks
DIGIT_SHARE = 0.5  # share of template numbers written as digits (the rest spelled in Hangul)


@dataclass(frozen=True)
class BankSentence:
    label: str  # the corpus label string as it would be distributed (may use KsponSpeech marks)
    category: str  # one of kidsasr.corpus.reader.CATEGORIES
    origin: str  # "hand" | "template"


# ---------------------------------------------------------------------------------------------------------------
# Hand-written sentences


def _tsv_rows(name: str) -> Iterator[tuple[int, str, str]]:
    """(line number, category, text) of a `<category>\\t<text>` data file, header skipped, checked."""
    source = resources.files("kidsasr") / "data" / name
    for line_no, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if line_no == 1 or not line.strip():
            continue  # header
        category, _, text = line.partition("\t")
        if category not in CATEGORIES or not text.strip():
            raise ValueError(f"{name}:{line_no}: expected '<category>\\t<text>' with a category in {CATEGORIES}, "
                             f"got {line!r}")
        yield line_no, category, nfc(text.strip())


@functools.lru_cache(maxsize=1)
def _hand_rows() -> tuple[BankSentence, ...]:
    return tuple(BankSentence(text, category, "hand") for _, category, text in _tsv_rows(HAND_FILE))


def hand_written() -> list[BankSentence]:
    """The original hand-written sentences, in file order."""
    return list(_hand_rows())


# ---------------------------------------------------------------------------------------------------------------
# Josa: particles whose form depends on the preceding syllable


def josa(word: str, pair: str) -> str:
    """Attach a particle: josa("사과", "을/를") -> "사과를", josa("민준", "아/야") -> "민준아".

    `pair` is "<after a final consonant>/<after a vowel>"; "으로/로" also takes 로 after ㄹ.
    """
    with_final, without_final = pair.split("/")
    final = jongseong(word)
    if pair == "으로/로" and final == 8:
        return word + "로"
    return word + (with_final if final else without_final)


# ---------------------------------------------------------------------------------------------------------------
# Template vocabulary


def _load_vocabulary() -> dict[str, tuple]:
    raw = json.loads((resources.files("kidsasr") / "data" / VOCABULARY_FILE).read_text(encoding="utf-8"))
    return {key: tuple(tuple(v) if isinstance(v, list) else v for v in values)
            for key, values in raw.items() if not key.startswith("_")}


VOCABULARY = _load_vocabulary()  # kidsasr/data/vocabulary.json: names, objects with counters, animals, actions ...
NAMES, COUNTABLES, ANIMALS, ACTIONS = (VOCABULARY[k] for k in ("names", "countables", "animals", "actions"))
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# ---------------------------------------------------------------------------------------------------------------
# Templates (`kidsasr/data/templates.tsv`): `{slot}` or `{slot|을/를}` (the slot's value with its particle).

_SLOT = re.compile(r"\{(\w+)(?:\|([^}/]+/[^}/]+))?\}")


def _attributive(stem: str) -> str:
    """Present attributive -는: "책을 읽" -> "책을 읽는", "모래성을 만들" -> "모래성을 만드는" (ㄹ drops)."""
    last = ord(stem[-1]) - 0xAC00
    if last % 28 == 8:
        return stem[:-1] + chr(0xAC00 + last - 8) + "는"
    return stem + "는"


class _Slots:
    """The slot values of one sentence, drawn on first use and then fixed, so `{food}` and `{food_counter}`
    agree. Its numbers are all digits or all spelled in Hangul, as one writer would write them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.digits = rng.random() < DIGIT_SHARE
        self.values: dict[str, str] = {}

    def __getitem__(self, slot: str) -> str:
        if slot not in self.values:
            SLOTS[slot](self)
        return self.values[slot]

    def pick(self, items: tuple):
        return items[self.rng.randrange(len(items))]

    def set(self, **values: str) -> None:
        self.values.update(values)

    def number(self, n: int, counter: str = "") -> str:
        """`n` with its counter, as digits ("3개") or spelled ("세 개")."""
        return f"{n}{counter}" if self.digits else spell_numbers(f"{n}{counter}")

    def draw(self, low: int, high: int, counter: str = "", step: int = 1) -> str:
        return self.number(self.rng.randint(low, high) * step, counter)

    def countable(self, prefix: str, kinds: tuple[str, ...]) -> None:
        obj, counter, most, _ = self.pick(tuple(c for c in COUNTABLES if c[3] in kinds))
        self.set(**{prefix: obj, f"{prefix}_counter": counter, f"{prefix}_count": self.draw(1, most, counter)})

    def animal(self) -> None:
        animal, sound, home = self.pick(ANIMALS)
        self.set(animal=animal, sound=sound, home=home)

    def action(self) -> None:
        stem, now, past = self.pick(ACTIONS)
        self.set(stem=stem, now=now, past=past, doing=_attributive(stem))

    def sums(self) -> None:
        a, b = self.rng.randint(1, 20), self.rng.randint(1, 20)
        self.set(add_a=self.number(a), add_b=self.number(b), sub_big=self.number(max(a, b)),
                 sub_small=self.number(min(a, b)), sub_diff=self.number(abs(a - b)))

    def sharing(self) -> None:
        friends, each = self.rng.randint(2, 5), self.rng.randint(2, 4)
        counter = self["food_counter"]
        self.set(friends=self.number(friends, "명"), shared=self.number(friends * each, counter))

    def time(self) -> None:
        hour = self.draw(1, 12, "시")
        minute = self.pick((None, None, "반", 10, 15, 20, 30, 40, 45, 50))
        if minute is None:
            self.set(time=hour)
        else:
            self.set(time=f"{hour} {minute if minute == '반' else self.number(minute, '분')}")

    def date(self) -> None:
        month = self.rng.randint(1, 12)
        day = self.rng.randint(1, DAYS_IN_MONTH[month - 1])
        self.set(date=f"{self.number(month, '월')} {self.number(day, '일')}")

    def score(self) -> None:
        lead = self.rng.randint(1, 9)
        self.set(score=f"{lead}대 {self.rng.randint(0, lead - 1)}")  # scores are written in digits

    def names(self) -> None:
        name, other = self.rng.sample(NAMES, 2)
        self.set(name=name, other=other)


def _choose(slot: str, items: tuple) -> Callable[[_Slots], None]:
    return lambda s: s.set(**{slot: s.pick(items)})


def _numbered(slot: str, low: int, high: int, counter: str, step: int = 1) -> Callable[[_Slots], None]:
    return lambda s: s.set(**{slot: s.draw(low, high, counter, step)})


def _points(s: _Slots) -> None:
    s.set(points=s.number(s.pick((5, 10, 20, 30, 50, 100)), "점"))


SLOTS: dict[str, Callable[[_Slots], None]] = {
    **dict.fromkeys(("name", "other"), _Slots.names),
    **dict.fromkeys(("animal", "sound", "home"), _Slots.animal),
    **dict.fromkeys(("stem", "now", "past", "doing"), _Slots.action),
    **dict.fromkeys(("add_a", "add_b", "sub_big", "sub_small", "sub_diff"), _Slots.sums),
    **dict.fromkeys(("friends", "shared"), _Slots.sharing),
    **{f"{prefix}{suffix}": (lambda s, p=prefix, k=kinds: s.countable(p, k))
       for prefix, kinds in (("any", ("food", "thing", "stack", "animal")), ("food", ("food",)),
                             ("thing", ("thing",)), ("stack", ("stack",)))
       for suffix in ("", "_counter", "_count")},
    "time": _Slots.time, "date": _Slots.date, "score": _Slots.score, "points": _points,
    **{slot: _choose(slot, VOCABULARY[key]) for slot, key in (
        ("place", "places"), ("play_place", "play_places"), ("hometown", "hometowns"), ("team", "teams"),
        ("color", "colors"), ("feeling", "feelings"), ("hurt", "hurt_feelings"), ("weekday", "weekdays"))},
    "age": _numbered("age", 3, 7, "살"), "kid_age": _numbered("kid_age", 5, 12, "살"),
    "seconds": _numbered("seconds", 3, 60, "초"), "record": _numbered("record", 8, 59, "초"),
    "minutes": _numbered("minutes", 1, 5, "분"), "ordinal": _numbered("ordinal", 1, 12, "번째"),
    "year": _numbered("year", 2019, 2027, "년"), "month": _numbered("month", 1, 12, "월"),
    "grade": _numbered("grade", 1, 6, "학년"), "length": _numbered("length", 2, 30, "cm"),
    "water": _numbered("water", 1, 9, "mL", step=100), "spoons": _numbered("spoons", 1, 5, "숟가락"),
    "jumps": _numbered("jumps", 10, 150, "번"),
}


@functools.lru_cache(maxsize=1)
def templates() -> dict[str, tuple[str, ...]]:
    """Per category, the templates of `kidsasr/data/templates.tsv`, checked for unknown slots."""
    by_category: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for line_no, category, template in _tsv_rows(TEMPLATE_FILE):
        unknown = sorted({m.group(1) for m in _SLOT.finditer(template)} - set(SLOTS))
        if unknown:
            raise ValueError(f"{TEMPLATE_FILE}:{line_no}: unknown slot(s) {', '.join(unknown)} in {template!r}")
        by_category[category].append(template)
    return {c: tuple(t) for c, t in by_category.items()}


def fill(template: str, rng: random.Random) -> str:
    """One sentence from a template: "{name|아/야}, 안녕!" -> "지우야, 안녕!"."""
    slots = _Slots(rng)

    def value(m: re.Match) -> str:
        text = slots[m.group(1)]
        return josa(text, m.group(2)) if m.group(2) else text

    return _SLOT.sub(value, template)


# ---------------------------------------------------------------------------------------------------------------
# KsponSpeech decorations

FILLERS = ("음", "어", "아", "그", "저기")
_FIRST_WORD = re.compile(r"^([가-힣])[가-힣]*")


def decorate(label: str, rng: random.Random) -> str:
    """Add one KsponSpeech mark to a plain label; its spelling side stays what it was.

    A number written in digits usually becomes a dual transcription `(3개)/(세 개)`; otherwise a filler
    `음/`, a repetition of the first syllable `사+ 사과`, or a noise tag (`n/`, `b/` before, `l/` after).
    """
    readings = number_readings(label)
    if readings and rng.random() < 0.8:
        start, end, reading = readings[rng.randrange(len(readings))]
        return f"{label[:start]}({label[start:end]})/({reading}){label[end:]}"
    kind = rng.choice(("filler", "repetition", "noise", "breath", "laughter"))
    first = _FIRST_WORD.match(label)
    if kind == "repetition" and first:
        return f"{first.group(1)}+ {label}"
    if kind == "filler" or (kind == "repetition" and not first):
        return f"{rng.choice(FILLERS)}/ {label}"
    if kind == "noise":
        return f"n/ {label}" if rng.random() < 0.5 else f"{label} n/"
    if kind == "breath":
        return f"b/ {label}"
    return f"{label} l/"


# ---------------------------------------------------------------------------------------------------------------
# The bank


def sentence_bank(seed: int = 0, size: int = 5000) -> list[BankSentence]:
    """All hand-written sentences plus template sentences: `size` labels, distinct after CER normalisation.

    Deterministic for a seed. Template draws rotate over the categories, so each gets about a quarter of the
    template sentences; about `DECORATED_SHARE` of all labels carry a KsponSpeech mark.
    """
    return list(_bank(seed, size))


@functools.lru_cache(maxsize=4)
def _bank(seed: int, size: int) -> tuple[BankSentence, ...]:  # generators call it once per category
    rng = random.Random(seed)
    seen: set[str] = set()
    plain: list[BankSentence] = []
    for sentence in hand_written():
        key = normalize_for_cer(sentence.label)
        if key not in seen:
            seen.add(key)
            plain.append(sentence)
    attempts = 0
    while len(plain) < size:
        attempts += 1
        if attempts > 50 * size:
            raise RuntimeError(f"templates ran dry: {len(plain)} distinct sentences after {attempts} draws")
        category = CATEGORIES[attempts % len(CATEGORIES)]
        label = fill(rng.choice(templates()[category]), rng)
        key = normalize_for_cer(label)
        if key not in seen:
            seen.add(key)
            plain.append(BankSentence(label, category, "template"))
    bank = [
        BankSentence(decorate(s.label, rng), s.category, s.origin) if rng.random() < DECORATED_SHARE else s
        for s in plain[:size]
    ]
    rng.shuffle(bank)
    return tuple(bank)


def write_text_corpus(path: str | os.PathLike, sentences: Iterable[BankSentence]) -> int:
    """Write the corpus's text-corpus file, one JSON object per line, atomically; returns the row count.

    Rows: {"id": "TXT_00001", "category", "text" (the label), "spelling", "pronunciation", "origin"}.
    """
    def rows():
        for i, s in enumerate(sentences, 1):
            t = parse_label(s.label)
            yield {"id": f"TXT_{i:05d}", "category": s.category, "text": s.label, "spelling": t.spelling,
                   "pronunciation": t.pronunciation, "origin": s.origin}

    return write_jsonl_atomic(path, rows())


def read_text_corpus(path: str | os.PathLike) -> list[BankSentence]:
    """Read a file written by `write_text_corpus` back into BankSentences."""
    out = []
    for row in read_jsonl(path):
        try:
            out.append(BankSentence(row["text"], row["category"], row.get("origin", "template")))
        except KeyError as e:
            raise ValueError(f"{path}: row {row.get('id', '?')} lacks {e.args[0]!r}") from e
    return out
