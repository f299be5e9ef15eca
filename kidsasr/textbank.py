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
from .textnorm import nfc, normalize_for_cer, number_spans, parse_label, spell_numbers

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


def _has_final(word: str) -> bool:
    """Whether the word's last spoken syllable ends in a consonant (numbers are read first: 3 -> 삼)."""
    spoken = re.sub(r"[^가-힣]", "", spell_numbers(word))
    return bool(spoken) and (ord(spoken[-1]) - 0xAC00) % 28 != 0


def _final_is_rieul(word: str) -> bool:
    spoken = re.sub(r"[^가-힣]", "", spell_numbers(word))
    return bool(spoken) and (ord(spoken[-1]) - 0xAC00) % 28 == 8


def josa(word: str, pair: str) -> str:
    """Attach a particle: josa("사과", "을/를") -> "사과를", josa("민준", "아/야") -> "민준아".

    `pair` is "<after a final consonant>/<after a vowel>"; "으로/로" also takes 로 after ㄹ.
    """
    with_final, without_final = pair.split("/")
    if pair == "으로/로" and _final_is_rieul(word):
        return word + "로"
    return word + (with_final if _has_final(word) else without_final)


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
# (object, counter, largest count that sounds natural)
COUNTABLES = (
    ("사과", "개", 12), ("귤", "개", 12), ("사탕", "개", 20), ("풍선", "개", 15), ("구슬", "개", 30),
    ("쿠키", "개", 10), ("딸기", "개", 20), ("도토리", "개", 25), ("강아지", "마리", 6), ("고양이", "마리", 5),
    ("병아리", "마리", 12), ("물고기", "마리", 10), ("토끼", "마리", 8), ("나비", "마리", 9), ("오리", "마리", 7),
    ("친구", "명", 30), ("어린이", "명", 40), ("동화책", "권", 10), ("공책", "권", 8), ("우유", "잔", 3),
    ("주스", "잔", 4), ("색종이", "장", 20), ("스티커", "장", 30), ("나무", "그루", 15), ("꽃", "송이", 12),
    ("양말", "켤레", 5), ("운동화", "켤레", 3), ("연필", "자루", 10), ("크레파스", "자루", 24), ("자동차", "대", 9),
    ("피자", "조각", 8), ("케이크", "조각", 6), ("옷", "벌", 5), ("김밥", "줄", 4), ("빵", "봉지", 3),
)
THINGS = tuple(obj for obj, counter, _ in COUNTABLES if counter not in ("마리", "명"))
ANIMALS = (  # (animal, sound, home)
    ("강아지", "멍멍", "집"), ("고양이", "야옹", "집"), ("오리", "꽥꽥", "연못"), ("돼지", "꿀꿀", "농장"),
    ("소", "음매", "목장"), ("병아리", "삐악삐악", "농장"), ("양", "매애", "목장"), ("닭", "꼬끼오", "닭장"),
    ("개구리", "개굴개굴", "연못"), ("참새", "짹짹", "나무 위"), ("부엉이", "부엉부엉", "숲속"),
    ("펭귄", "꽥꽥", "남극"), ("낙타", "음머", "사막"), ("사자", "어흥", "초원"), ("호랑이", "어흥", "숲속"),
    ("염소", "메에", "산"), ("말", "히힝", "목장"), ("비둘기", "구구", "공원"),
)
PLACES = (
    "놀이터", "도서관", "유치원", "학교", "공원", "동물원", "수영장", "바닷가", "시장", "박물관", "과학관",
    "할머니 댁", "운동장", "숲속", "미술관", "캠핑장", "빵집", "키즈카페", "식물원", "수족관",
)
# (stem for -고/-자, polite present, polite past)
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


def _count(rng: random.Random) -> tuple[str, str]:
    obj, counter, most = _pick(rng, COUNTABLES)
    return obj, _number(rng.randint(1, most), counter, rng)


def _time(rng: random.Random) -> str:
    hour = _number(rng.randint(1, 12), "시", rng)
    minute = rng.choice((None, None, "반", 10, 15, 20, 30, 40, 45, 50))
    if minute is None:
        return hour
    return f"{hour} {minute if minute == '반' else _number(minute, '분', rng)}"


def _date(rng: random.Random) -> str:
    month, as_digits = rng.randint(1, 12), rng.random() < DIGIT_SHARE
    day = rng.randint(1, DAYS_IN_MONTH[month - 1])
    return f"{_number(month, '월', rng, as_digits)} {_number(day, '일', rng, as_digits)}"


def _preschool(rng: random.Random) -> str:
    name, (obj, count), (animal, sound, _) = _pick(rng, NAMES), _count(rng), _pick(rng, ANIMALS)
    stem, now, _past = _pick(rng, ACTIONS)
    options = (
        lambda: f"{josa(obj, '이/가')} {count} 있어요. 같이 세어 볼까요?",
        lambda: f"{josa(name, '아/야')}, {obj} {count}만 가져다줄래?",
        lambda: f"{josa(name, '이/가')} {josa(obj, '을/를')} {count} 골랐어요.",
        lambda: f"{josa(animal, '은/는')} {sound} 하고 울어요. {name} 어린이도 따라 해 볼까요?",
        lambda: f"{_pick(rng, COLORS)} {josa(obj, '을/를')} 찾아볼까요? {name} 어린이가 찾았네요!",
        lambda: f"오늘 {name} 어린이는 기분이 어때요? 저는 {_pick(rng, FEELINGS)}",
        lambda: f"{josa(name, '은/는')} {_time(rng)}에 일어나서 {stem}고 싶대요.",
        lambda: f"우리 다 같이 {stem}자! {name}도 같이 하자.",
        lambda: f"{josa(name, '은/는')} {josa(_number(rng.randint(3, 7), '살', rng), '이에요/예요')}. 손가락으로 보여 줄래요?",
        lambda: f"{name} 어린이가 {obj} {count}에 하나를 더 가져왔어요. 이제 몇 개일까요?",
        lambda: f"선생님이랑 {josa(name, '이/가')} {now} 정말 재미있어요.",
    )
    return _pick(rng, options)()


def _education(rng: random.Random) -> str:
    name, (obj, count) = _pick(rng, NAMES), _count(rng)
    animal, _, home = _pick(rng, ANIMALS)
    a, b = rng.randint(1, 20), rng.randint(1, 20)
    big, small = max(a, b), min(a, b)
    length = rng.randint(2, 30)
    options = (
        lambda: f"문제 나갑니다. {_number(a, '', rng)} 더하기 {josa(_number(b, '', rng), '은/는')} 얼마일까요?",
        lambda: f"{_number(big, '', rng)} 빼기 {josa(_number(small, '', rng), '은/는')} {josa(_number(big - small, '', rng), '이에요/예요')}. 참 쉽죠?",
        lambda: f"{josa(_date(rng), '은/는')} 무슨 요일일까요? 네, {josa(_pick(rng, WEEKDAYS), '이에요/예요')}.",
        lambda: f"{name} 어린이, {josa(obj, '이/가')} 모두 몇 {counter_of(obj)}인지 세어 볼래요? 네, {josa(count, '이에요/예요')}.",
        lambda: f"{josa(animal, '은/는')} 주로 {home}에 살아요. {name} 어린이는 {josa(animal, '을/를')} 본 적 있나요?",
        lambda: f"이 연필의 길이는 {josa(_number(length, 'cm', rng), '이에요/예요')}. 자로 재어 볼까요?",
        lambda: f"시계를 보세요. 지금은 {josa(_time(rng), '이에요/예요')}. 긴 바늘이 어디에 있지요?",
        lambda: f"{_number(a, '명', rng)}의 친구가 {obj} {josa(count, '을/를')} 똑같이 나누면 어떻게 될까요?",
        lambda: f"{josa(name, '이/가')} {place_with(rng, '에서')} 배운 것을 발표해 볼 거예요.",
        lambda: f"오늘은 {place_with(rng, '에')} 가서 {josa(animal, '을/를')} 관찰해 보았어요.",
    )
    return _pick(rng, options)()


def _drama(rng: random.Random) -> str:
    name, other, (obj, count) = _pick(rng, NAMES), _pick(rng, NAMES), _count(rng)
    thing = _pick(rng, THINGS)
    stem, now, past = _pick(rng, ACTIONS)
    options = (
        lambda: f"{josa(name, '아/야')}, 내일 {_time(rng)}에 {place_with(rng, '에서')} 만나자.",
        lambda: f"{josa(name, '아/야')}, 너 어제 {place_with(rng, '에')} 갔었어?",
        lambda: f"엄마, {josa(other, '이/가')} 내 {josa(thing, '을/를')} 말도 없이 가져갔어요!",
        lambda: f"엄마, 저 오늘 {place_with(rng, '에서')} {past}",
        lambda: f"{josa(name, '아/야')}, 심심한데 우리 같이 {stem}자.",
        lambda: f"{josa(other, '이/가')} 자꾸 놀려서 너무 {_pick(rng, HURT_FEELINGS)}",
        lambda: f"{josa(_date(rng), '이/가')} {name} 생일이래. 우리 몰래 파티 준비하자!",
        lambda: f"{josa(name, '아/야')}, 여기 {obj} {count} 있는데 우리 사이좋게 나눠 먹자.",
        lambda: f"{josa(other, '아/야')}, 미안해. 네 {josa(thing, '을/를')} 망가뜨린 건 나야.",
        lambda: f"선생님, {josa(name, '이/가')} 아직 안 왔어요. {_time(rng)}까지 오기로 했는데요.",
        lambda: f"{josa(name, '아/야')}, 숙제 다 하고 {stem}기로 약속했잖아.",
    )
    return _pick(rng, options)()


def _variety(rng: random.Random) -> str:
    name, team, (obj, count) = _pick(rng, NAMES), _pick(rng, TEAMS), _count(rng)
    score, other_score = rng.randint(0, 9), rng.randint(0, 9)
    options = (
        lambda: f"{name} 어린이, 정답! {team}에게 {_number(rng.choice((5, 10, 20, 30, 50, 100)), '점', rng)} 드립니다!",
        lambda: f"남은 시간은 {josa(_number(rng.randint(3, 60), '초', rng), '이에요/예요')}! 서둘러 주세요!",
        lambda: f"와, {name} 어린이가 {josa(obj, '을/를')} 벌써 {count} 모았어요!",
        lambda: f"{_number(rng.randint(1, 12), '번째', rng)} 문제입니다! 잘 듣고 맞혀 보세요.",
        lambda: f"현재 {josa(team, '이/가')} {score}대 {josa(str(other_score), '으로/로')} 앞서고 있어요!",
        lambda: f"{place_with(rng, '에서')} 온 {_number(rng.randint(5, 12), '살', rng)} {name} 어린이를 소개합니다!",
        lambda: f"{name} 어린이의 기록은 {josa(_number(rng.randint(8, 59), '초', rng), '이에요/예요')}! 새로운 기록이에요!",
        lambda: f"미션! {_number(rng.randint(1, 5), '분', rng)} 안에 {josa(obj, '을/를')} {count} 찾아라!",
        lambda: f"{josa(team, '은/는')} {josa(obj, '을/를')} {count} 쌓았어요. 과연 무너지지 않을까요?",
        lambda: f"{josa(name, '아/야')}, 떨리지 않아요? 우승하면 {josa(obj, '을/를')} 선물로 드려요!",
    )
    return _pick(rng, options)()


def counter_of(obj: str) -> str:
    return next(counter for name, counter, _ in COUNTABLES if name == obj)


def place_with(rng: random.Random, particle: str) -> str:
    return _pick(rng, PLACES) + particle


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
    spans = number_spans(label)
    if spans and rng.random() < 0.5:
        start, end = spans[rng.randrange(len(spans))]
        number = label[start:end]
        return f"{label[:start]}({number})/({spell_numbers(number)}){label[end:]}"
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
