"""The synthetic corpus's text: hand-written children's-programme sentences plus templates, 5,000+ distinct.

`hand_written()` reads `kidsasr/data/sentences_hand.tsv` (original sentences written for this project, four
programme categories). `sentence_bank(seed)` adds template sentences (names, numbers with counters, dates, times,
objects, actions, places) until the bank holds `size` sentences that are distinct after CER normalisation, and
decorates a known share of labels with KsponSpeech marks (dual transcription, fillers, repetitions, noise tags),
all deterministic for a seed. `write_text_corpus` writes the corpus's text-corpus file (JSON lines).
"""

from __future__ import annotations

import functools
import os
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterable

from .corpus import CATEGORIES
from .fileio import read_jsonl, write_jsonl_atomic
from .textnorm import jongseong, nfc, normalize_for_cer, number_readings, parse_label, spell_numbers

HAND_FILE = "sentences_hand.tsv"
DECORATED_SHARE = 0.18  # share of labels carrying KsponSpeech marks
DIGIT_SHARE = 0.5  # share of template numbers written as digits (the rest spelled in Hangul)


@dataclass(frozen=True)
class BankSentence:
    label: str  # the corpus label string as it would be distributed (may use KsponSpeech marks)
    category: str  # one of kidsasr.corpus.CATEGORIES
    origin: str  # "hand" | "template"


# ---------------------------------------------------------------------------------------------------------------
# Hand-written sentences


@functools.lru_cache(maxsize=1)
def _hand_rows() -> tuple[BankSentence, ...]:
    source = resources.files("kidsasr") / "data" / HAND_FILE
    rows = []
    for line_no, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if line_no == 1 or not line.strip():
            continue  # header
        category, _, sentence = line.partition("\t")
        if category not in CATEGORIES or not sentence.strip():
            raise ValueError(f"{source}:{line_no}: expected '<category>\\t<sentence>' with a category in "
                             f"{CATEGORIES}, got {line!r}")
        rows.append(BankSentence(nfc(sentence.strip()), category, "hand"))
    return tuple(rows)


def hand_written() -> list[BankSentence]:
    """The original hand-written sentences, in file order."""
    return list(_hand_rows())


# ---------------------------------------------------------------------------------------------------------------
# Josa (particles that depend on the preceding syllable) and numbers


def josa(word: str, pair: str) -> str:
    """Attach a particle: josa("사과", "을/를") -> "사과를", josa("민준", "아/야") -> "민준아".

    `pair` is "<after a final consonant>/<after a vowel>"; "으로/로" also takes 로 after ㄹ.
    """
    with_final, without_final = pair.split("/")
    final = jongseong(word)
    if pair == "으로/로" and final == 8:
        return word + "로"
    return word + (with_final if final else without_final)


def _number(n: int, counter: str, rng: random.Random, as_digits: bool | None = None) -> str:
    """A number with its counter, as digits ("3개") or spelled ("세 개"), chosen by the seed unless given."""
    digits = f"{n}{counter}"
    if as_digits is None:
        as_digits = rng.random() < DIGIT_SHARE
    return digits if as_digits else spell_numbers(digits)


# ---------------------------------------------------------------------------------------------------------------
# Template vocabulary

NAMES = (
    "지우", "서준", "하은", "민준", "도윤", "서연", "예준", "지호", "수아", "하준", "지안", "시우", "유나", "은우",
    "채원", "윤서", "지민", "건우", "소율", "현우", "다은", "주원", "아린", "태윤", "서아", "로운", "나윤", "이안",
    "하람", "민서", "준서", "가온", "예린", "시윤", "유진", "승민", "다온", "하린", "동현", "수빈",
)
# (object, counter, largest count that sounds natural, kind)
COUNTABLES = (
    ("사과", "개", 12, "food"), ("귤", "개", 12, "food"), ("사탕", "개", 20, "food"), ("쿠키", "개", 10, "food"),
    ("딸기", "개", 20, "food"), ("떡", "개", 12, "food"), ("피자", "조각", 8, "food"), ("케이크", "조각", 6, "food"),
    ("김밥", "줄", 4, "food"), ("우유", "잔", 3, "food"), ("주스", "잔", 4, "food"), ("만두", "개", 16, "food"),
    ("풍선", "개", 15, "thing"), ("구슬", "개", 30, "thing"), ("도토리", "개", 25, "thing"), ("색종이", "장", 20, "thing"),
    ("스티커", "장", 30, "thing"), ("연필", "자루", 10, "thing"), ("크레파스", "자루", 24, "thing"),
    ("양말", "켤레", 5, "thing"), ("운동화", "켤레", 3, "thing"), ("꽃", "송이", 12, "thing"), ("공", "개", 10, "thing"),
    ("장난감 자동차", "대", 9, "thing"), ("인형", "개", 6, "thing"), ("카드", "장", 20, "thing"),
    ("블록", "개", 30, "stack"), ("종이컵", "개", 40, "stack"), ("동화책", "권", 10, "stack"), ("상자", "개", 12, "stack"),
    ("방석", "개", 8, "stack"), ("나무토막", "개", 20, "stack"),
    ("강아지", "마리", 6, "animal"), ("고양이", "마리", 5, "animal"), ("병아리", "마리", 12, "animal"),
    ("물고기", "마리", 10, "animal"), ("토끼", "마리", 8, "animal"), ("나비", "마리", 9, "animal"),
    ("오리", "마리", 7, "animal"), ("개미", "마리", 30, "animal"), ("나무", "그루", 15, "plant"),
)
ANIMALS = (  # (animal, sound, home)
    ("강아지", "멍멍", "집"), ("고양이", "야옹", "집"), ("오리", "꽥꽥", "연못"), ("돼지", "꿀꿀", "농장"),
    ("소", "음매", "목장"), ("병아리", "삐악삐악", "농장"), ("양", "매애", "목장"), ("닭", "꼬끼오", "닭장"),
    ("개구리", "개굴개굴", "연못"), ("참새", "짹짹", "나무 위"), ("부엉이", "부엉부엉", "숲속"),
    ("낙타", "음머", "사막"), ("사자", "어흥", "초원"), ("호랑이", "어흥", "숲속"), ("염소", "메에", "산"),
    ("말", "히힝", "목장"), ("비둘기", "구구", "공원"), ("까마귀", "까악까악", "숲속"),
)
PLACES = (
    "놀이터", "도서관", "유치원", "학교", "공원", "동물원", "수영장", "바닷가", "시장", "박물관", "과학관",
    "할머니 댁", "운동장", "숲속", "미술관", "캠핑장", "빵집", "키즈카페", "식물원", "수족관",
)
HOMETOWNS = ("서울", "부산", "대구", "인천", "광주", "대전", "울산", "제주", "강릉", "전주", "춘천", "수원", "포항",
             "목포", "여수", "청주", "안동", "세종")
# (stem for -고/-자/-기, polite present, polite past)
ACTIONS = (
    ("그림을 그리", "그림을 그려요", "그림을 그렸어요"), ("책을 읽", "책을 읽어요", "책을 읽었어요"),
    ("노래를 부르", "노래를 불러요", "노래를 불렀어요"), ("춤을 추", "춤을 춰요", "춤을 췄어요"),
    ("공놀이를 하", "공놀이를 해요", "공놀이를 했어요"), ("블록을 쌓", "블록을 쌓아요", "블록을 쌓았어요"),
    ("모래성을 만들", "모래성을 만들어요", "모래성을 만들었어요"), ("숨바꼭질을 하", "숨바꼭질을 해요", "숨바꼭질을 했어요"),
    ("자전거를 타", "자전거를 타요", "자전거를 탔어요"), ("줄넘기를 하", "줄넘기를 해요", "줄넘기를 했어요"),
    ("종이접기를 하", "종이접기를 해요", "종이접기를 했어요"), ("꽃에 물을 주", "꽃에 물을 줘요", "꽃에 물을 줬어요"),
    ("간식을 먹", "간식을 먹어요", "간식을 먹었어요"), ("편지를 쓰", "편지를 써요", "편지를 썼어요"),
    ("사진을 찍", "사진을 찍어요", "사진을 찍었어요"), ("그네를 타", "그네를 타요", "그네를 탔어요"),
    ("퍼즐을 맞추", "퍼즐을 맞춰요", "퍼즐을 맞췄어요"), ("피아노를 치", "피아노를 쳐요", "피아노를 쳤어요"),
    ("별을 보", "별을 봐요", "별을 봤어요"), ("쿠키를 굽", "쿠키를 구워요", "쿠키를 구웠어요"),
    ("방을 정리하", "방을 정리해요", "방을 정리했어요"), ("달리기를 하", "달리기를 해요", "달리기를 했어요"),
    ("비눗방울을 불", "비눗방울을 불어요", "비눗방울을 불었어요"), ("딱지를 치", "딱지를 쳐요", "딱지를 쳤어요"),
)
FEELINGS = ("기뻐요", "신나요", "속상해요", "무서워요", "설레요", "졸려요", "배고파요", "궁금해요", "뿌듯해요",
            "심심해요", "떨려요", "행복해요")
HURT_FEELINGS = ("속상해요", "화가 나요", "서운해요", "슬퍼요", "짜증 나요", "울고 싶어요")
COLORS = ("빨간", "파란", "노란", "초록색", "보라색", "주황색", "분홍색", "하얀", "까만", "하늘색")
TEAMS = ("청팀", "백팀", "홍팀", "토끼 팀", "호랑이 팀", "별님 팀", "달님 팀", "무지개 팀")
WEEKDAYS = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# ---------------------------------------------------------------------------------------------------------------
# Templates: each draws its slots from the seeded generator and returns one plain label.

Template = Callable[[random.Random], str]


def _pick(rng: random.Random, items: tuple):
    return items[rng.randrange(len(items))]


def _attributive(stem: str) -> str:
    """Present attributive -는: "책을 읽" -> "책을 읽는", "모래성을 만들" -> "모래성을 만드는" (ㄹ drops)."""
    last = ord(stem[-1]) - 0xAC00
    if last % 28 == 8:
        return stem[:-1] + chr(0xAC00 + last - 8) + "는"
    return stem + "는"


class _Slots:
    """The slot fillers for one sentence; its numbers are all digits or all spelled, as a writer would."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.digits = rng.random() < DIGIT_SHARE

    def pick(self, items: tuple):
        return _pick(self.rng, items)

    def n(self, value: int, counter: str = "") -> str:
        return _number(value, counter, self.rng, self.digits)

    def countable(self, *kinds: str) -> tuple[str, str, str]:
        """(object, its counter, a count of it) for an object of one of `kinds`."""
        obj, counter, most, _ = self.pick(tuple(c for c in COUNTABLES if c[3] in kinds))
        return obj, counter, self.n(self.rng.randint(1, most), counter)

    def time(self) -> str:
        hour = self.n(self.rng.randint(1, 12), "시")
        minute = self.rng.choice((None, None, "반", 10, 15, 20, 30, 40, 45, 50))
        if minute is None:
            return hour
        return f"{hour} {minute if minute == '반' else self.n(minute, '분')}"

    def date(self) -> str:
        month = self.rng.randint(1, 12)
        return f"{self.n(month, '월')} {self.n(self.rng.randint(1, DAYS_IN_MONTH[month - 1]), '일')}"


def _preschool(rng: random.Random) -> str:
    s = _Slots(rng)
    name, (animal, sound, _) = s.pick(NAMES), s.pick(ANIMALS)
    obj, counter, count = s.countable("food", "thing", "stack", "animal")
    thing, _, thing_count = s.countable("thing", "food")
    toy, _, _ = s.countable("thing")
    stem, now, _ = s.pick(ACTIONS)
    options = (
        lambda: f"{josa(obj, '이/가')} {count} 있어요. 같이 세어 볼까요?",
        lambda: f"{josa(name, '아/야')}, {thing} {thing_count}만 가져다줄래?",
        lambda: f"{josa(name, '이/가')} {josa(obj, '을/를')} {count} 골랐어요.",
        lambda: f"{josa(animal, '은/는')} {sound} 하고 울어요. {name} 어린이도 따라 해 볼까요?",
        lambda: f"{s.pick(COLORS)} {josa(toy, '을/를')} 찾아볼까요? {name} 어린이가 찾았네요!",
        lambda: f"오늘 {name} 어린이는 기분이 어때요? 저는 {s.pick(FEELINGS)}.",
        lambda: f"{josa(name, '은/는')} {s.time()}에 일어나서 {stem}고 싶대요.",
        lambda: f"우리 다 같이 {stem}자! {name}도 같이 하자.",
        lambda: f"{josa(name, '은/는')} {josa(s.n(rng.randint(3, 7), '살'), '이에요/예요')}. 손가락으로 보여 줄래요?",
        lambda: f"{name} 어린이가 {obj} {count}에 하나를 더 가져왔어요. 이제 몇 {counter}일까요?",
        lambda: f"오늘은 선생님이랑 {_attributive(stem)} 날이에요. {name} 어린이, 준비됐나요?",
        lambda: f"{josa(name, '이/가')} {now}. 우리도 따라 해 볼까요?",
    )
    return _pick(rng, options)()


def _education(rng: random.Random) -> str:
    s = _Slots(rng)
    name, (animal, _, home) = s.pick(NAMES), s.pick(ANIMALS)
    obj, counter, count = s.countable("food", "thing", "stack", "animal", "plant")
    a, b = rng.randint(1, 20), rng.randint(1, 20)
    big, small = max(a, b), min(a, b)
    friends, each = rng.randint(2, 5), rng.randint(2, 4)
    food, food_counter, _ = s.countable("food")
    options = (
        lambda: f"문제 나갑니다. {s.n(a)} 더하기 {josa(s.n(b), '은/는')} 얼마일까요?",
        lambda: f"{s.n(big)} 빼기 {josa(s.n(small), '은/는')} {josa(s.n(big - small), '이에요/예요')}. 참 쉽죠?",
        lambda: f"{josa(s.date(), '은/는')} 무슨 요일일까요? 네, {josa(s.pick(WEEKDAYS), '이에요/예요')}.",
        lambda: f"{name} 어린이, {josa(obj, '이/가')} 모두 몇 {counter}인지 세어 볼래요? 네, {josa(count, '이에요/예요')}.",
        lambda: f"{josa(animal, '은/는')} 주로 {home}에 살아요. {name} 어린이는 {josa(animal, '을/를')} 본 적 있나요?",
        lambda: f"이 연필의 길이는 {josa(s.n(rng.randint(2, 30), 'cm'), '이에요/예요')}. 자로 재어 볼까요?",
        lambda: f"시계를 보세요. 지금은 {josa(s.time(), '이에요/예요')}. 긴 바늘이 어디에 있지요?",
        lambda: f"{s.n(friends, '명')}의 친구가 {food} {josa(s.n(friends * each, food_counter), '을/를')} 똑같이 "
                f"나누면 한 명에 몇 {food_counter}씩일까요?",
        lambda: f"{josa(name, '이/가')} {s.pick(PLACES)}에서 배운 것을 발표해 볼 거예요.",
        lambda: f"오늘은 {home}에 사는 {josa(animal, '을/를')} 만나러 가 볼 거예요.",
        lambda: f"{s.n(rng.randint(2019, 2027), '년')} {josa(s.n(rng.randint(1, 12), '월'), '에/에')} "
                f"{name} 어린이는 {s.n(rng.randint(1, 6), '학년')}이 되었어요.",
        lambda: f"물 {s.n(rng.randint(1, 9) * 100, 'mL')}에 설탕을 {s.n(rng.randint(1, 5), '숟가락')} 넣어 볼게요.",
    )
    return _pick(rng, options)()


def _drama(rng: random.Random) -> str:
    s = _Slots(rng)
    name, other = s.pick(NAMES), s.pick(NAMES)
    food, _, food_count = s.countable("food")
    thing, _, _ = s.countable("thing")
    stem, _, past = s.pick(ACTIONS)
    options = (
        lambda: f"{josa(name, '아/야')}, 내일 {s.time()}에 {s.pick(PLACES)}에서 만나자.",
        lambda: f"{josa(name, '아/야')}, 너 어제 {s.pick(PLACES)}에 갔었어?",
        lambda: f"엄마, {josa(other, '이/가')} 내 {josa(thing, '을/를')} 말도 없이 가져갔어요!",
        lambda: f"엄마, 저 오늘 {s.pick(PLACES)}에서 {past}.",
        lambda: f"{josa(name, '아/야')}, 심심한데 우리 같이 {stem}자.",
        lambda: f"{josa(other, '이/가')} 자꾸 놀려서 너무 {s.pick(HURT_FEELINGS)}.",
        lambda: f"{josa(s.date(), '이/가')} {name} 생일이래. 우리 몰래 파티 준비하자!",
        lambda: f"{josa(name, '아/야')}, 여기 {food} {food_count} 있는데 우리 사이좋게 나눠 먹자.",
        lambda: f"{josa(other, '아/야')}, 미안해. 네 {josa(thing, '을/를')} 망가뜨린 건 나야.",
        lambda: f"선생님, {josa(name, '이/가')} 아직 안 왔어요. {s.time()}까지 오기로 했는데요.",
        lambda: f"{josa(name, '아/야')}, 숙제 다 하고 {stem}기로 약속했잖아.",
        lambda: f"우리 반 {josa(name, '이/가')} 이번 주 {s.pick(WEEKDAYS)}에 전학 간대.",
    )
    return _pick(rng, options)()


def _variety(rng: random.Random) -> str:
    s = _Slots(rng)
    name, team = s.pick(NAMES), s.pick(TEAMS)
    thing, _, thing_count = s.countable("thing", "food")
    stack, _, stack_count = s.countable("stack")
    lead = rng.randint(1, 9)
    options = (
        lambda: f"{name} 어린이, 정답! {team}에게 {s.n(rng.choice((5, 10, 20, 30, 50, 100)), '점')} 드립니다!",
        lambda: f"남은 시간은 {josa(s.n(rng.randint(3, 60), '초'), '이에요/예요')}! 서둘러 주세요!",
        lambda: f"와, {name} 어린이가 {josa(thing, '을/를')} 벌써 {thing_count} 모았어요!",
        lambda: f"{s.n(rng.randint(1, 12), '번째')} 문제입니다! 잘 듣고 맞혀 보세요.",
        lambda: f"현재 {josa(team, '이/가')} {lead}대 {josa(str(rng.randint(0, lead - 1)), '으로/로')} 앞서고 있어요!",
        lambda: f"{s.pick(HOMETOWNS)}에서 온 {s.n(rng.randint(5, 12), '살')} {name} 어린이를 소개합니다!",
        lambda: f"{name} 어린이의 기록은 {josa(s.n(rng.randint(8, 59), '초'), '이에요/예요')}! 새로운 기록이에요!",
        lambda: f"미션! {s.n(rng.randint(1, 5), '분')} 안에 {josa(thing, '을/를')} {thing_count} 찾아라!",
        lambda: f"{josa(team, '은/는')} {josa(stack, '을/를')} {stack_count} 쌓았어요. 과연 무너지지 않을까요?",
        lambda: f"{name} 어린이, 떨리지 않아요? 우승하면 {josa(thing, '을/를')} 선물로 드려요!",
        lambda: f"{name} 어린이는 줄넘기를 {s.n(rng.randint(10, 150), '번')}이나 넘었어요!",
    )
    return _pick(rng, options)()


TEMPLATES: dict[str, Template] = dict(zip(CATEGORIES, (_preschool, _education, _drama, _variety)))


# ---------------------------------------------------------------------------------------------------------------
# KsponSpeech decorations

FILLERS = ("음", "어", "아", "그", "저기")
_FIRST_WORD = re.compile(r"^([가-힣])[가-힣]*")


def decorate(label: str, rng: random.Random) -> str:
    """Add one KsponSpeech mark to a plain label; its spelling side stays what it was.

    A number becomes a dual transcription `(3개)/(세 개)` where there is one in digits; otherwise a filler
    `음/`, a repetition of the first syllable `사+ 사과`, or a noise tag (`n/`, `b/` before, `l/` after).
    """
    readings = number_readings(label)
    if readings and rng.random() < 0.5:
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

    Deterministic for a seed. Template categories rotate so each category gets a quarter of the templates;
    about `DECORATED_SHARE` of all labels carry a KsponSpeech mark.
    """
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
        label = TEMPLATES[category](rng)
        key = normalize_for_cer(label)
        if key not in seen:
            seen.add(key)
            plain.append(BankSentence(label, category, "template"))
    bank = [
        BankSentence(decorate(s.label, rng), s.category, s.origin) if rng.random() < DECORATED_SHARE else s
        for s in plain[:size]
    ]
    rng.shuffle(bank)
    return bank


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
