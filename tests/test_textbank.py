from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import unicodedata
from collections import Counter

import pytest

from kidsasr.corpus.reader import CATEGORIES
from kidsasr.fileio import read_jsonl
from kidsasr.synth import textbank
from kidsasr.synth.textbank import (DECORATED_SHARE, _attributive, BankSentence, decorate, fill, hand_written, josa,
                                    read_text_corpus, sentence_bank, templates, write_text_corpus)
from kidsasr.textnorm import NATIVE_COUNTERS, SINO_COUNTERS, label_problems, normalize_for_cer, parse_label

KSPON_MARK = re.compile(r"\)/\(|(?<![^\s(])[blnou]/|[가-힣]/|\S\+(?=\s|$)")


@pytest.fixture(scope="module")
def bank() -> list[BankSentence]:
    return sentence_bank(seed=0)


def test_at_least_400_hand_written_sentences_100_per_category():
    hand = hand_written()
    assert len(hand) >= 400
    per_category = Counter(s.category for s in hand)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 100
    assert all(s.origin == "hand" for s in hand)


def test_hand_written_sentences_are_distinct_and_nfc():
    assert all(unicodedata.is_normalized("NFC", s.label) for s in hand_written())
    labels = [normalize_for_cer(s.label) for s in hand_written()]
    assert len(set(labels)) == len(labels)


def test_bank_holds_5000_sentences_distinct_after_cer_normalisation(bank):
    assert len(bank) == 5000
    assert len({normalize_for_cer(s.label) for s in bank}) == 5000
    assert set(Counter(s.category for s in bank)) == set(CATEGORIES)
    assert min(Counter(s.category for s in bank).values()) >= 1000


def test_bank_contains_every_hand_written_sentence(bank):
    hand_keys = {normalize_for_cer(s.label) for s in hand_written()}
    bank_hand = {normalize_for_cer(s.label) for s in bank if s.origin == "hand"}
    assert bank_hand == hand_keys


def test_bank_is_deterministic_per_seed(bank):
    textbank._bank.cache_clear()  # build it again, not from the cache
    again = sentence_bank(seed=0)
    assert again == bank and again is not bank
    other = sentence_bank(seed=1)
    assert other != bank
    assert len({normalize_for_cer(s.label) for s in other}) == 5000


def test_bank_size_is_adjustable():
    assert len(sentence_bank(seed=3, size=6000)) == 6000


def test_every_label_parses_and_pronunciation_is_hangul_and_spaces(bank):
    for s in bank:
        t = parse_label(s.label)
        assert t.spelling, s.label
        assert re.fullmatch(r"[가-힣]+( [가-힣]+)*", t.pronunciation), (s.label, t.pronunciation)
        assert not re.search(r"[()/+*]", t.spelling), (s.label, t.spelling)
        assert label_problems(s.label) == [], s.label
        assert unicodedata.is_normalized("NFC", s.label), s.label


def test_known_share_of_labels_uses_kspon_marks(bank):
    decorated = [s for s in bank if KSPON_MARK.search(s.label)]
    share = len(decorated) / len(bank)
    assert abs(share - DECORATED_SHARE) < 0.03
    kinds = Counter()
    for s in decorated:
        kinds["dual"] += ")/(" in s.label
        kinds["filler"] += bool(re.search(r"(?<![^\s(])[가-힣]+/(?!\()", s.label))
        kinds["repetition"] += bool(re.search(r"\S\+(?=\s)", s.label))
        kinds["tag"] += bool(parse_label(s.label).tags)
    assert all(kinds[k] >= 50 for k in ("dual", "filler", "repetition", "tag")), kinds


def test_numbers_appear_as_digits_and_spelled(bank):
    with_digits = sum(bool(re.search(r"\d", parse_label(s.label).spelling)) for s in bank)
    number_word = r"(?:[한두세네]|다섯|여섯|일곱|여덟|아홉|열[한두세네]?|스무|스물[한두세네]?|[일이삼사오육칠팔구십백천]+)"
    counter = "|".join(NATIVE_COUNTERS + SINO_COUNTERS)
    spelled = sum(bool(re.search(rf"(?<![가-힣]){number_word} (?:{counter})", s.label)) for s in bank)
    assert with_digits >= 1000 and spelled >= 1000


@pytest.mark.parametrize(
    "label",
    ["사과가 3개 있어요.", "지우야, 같이 놀자!", "오늘은 6월 25일이에요.", "7 더하기 5는 12예요."],
)
def test_decoration_keeps_the_spelling_side(label):
    rng = random.Random(7)
    for _ in range(30):
        decorated = decorate(label, rng)
        assert decorated != label
        assert parse_label(decorated).spelling == parse_label(label).spelling


def test_every_template_fills_into_a_plain_parseable_sentence():
    per_category = templates()
    assert set(per_category) == set(CATEGORIES) and min(len(t) for t in per_category.values()) >= 10
    rng = random.Random(0)
    for category_templates in per_category.values():
        for template in category_templates:
            for _ in range(5):
                sentence = fill(template, rng)
                assert "{" not in sentence and "|" not in sentence, (template, sentence)
                assert parse_label(sentence).spelling == sentence, (template, sentence)


def test_fill_keeps_related_slots_consistent_and_attaches_particles():
    rng = random.Random(5)
    for _ in range(50):
        sentence = fill("{food|이/가} 몇 {food_counter}? {food_count|이에요/예요}. {name|아/야}!", rng)
        food, rest = sentence.split(" 몇 ", 1)
        counter = rest.split("?")[0]
        assert rest.split(". ")[0].rstrip("이에요예").endswith(counter)
        assert food[-1] in "이가" and sentence.endswith(("아!", "야!"))


@pytest.mark.parametrize(
    "word, pair, expected",
    [("사과", "을/를", "사과를"), ("귤", "을/를", "귤을"), ("민준", "아/야", "민준아"), ("지우", "아/야", "지우야"),
     ("3개", "이에요/예요", "3개예요"), ("3", "이에요/예요", "3이에요"), ("2", "이에요/예요", "2예요"),
     ("교실", "으로/로", "교실로"), ("집", "으로/로", "집으로"), ("학교", "으로/로", "학교로")],
)
def test_josa(word, pair, expected):
    assert josa(word, pair) == expected


@pytest.mark.parametrize("stem, expected", [("책을 읽", "책을 읽는"), ("그림을 그리", "그림을 그리는"),
                                            ("모래성을 만들", "모래성을 만드는"), ("비눗방울을 불", "비눗방울을 부는")])
def test_attributive_drops_rieul(stem, expected):
    assert _attributive(stem) == expected


def test_decorated_numbers_keep_their_reading_in_context():
    rng = random.Random(0)
    labels = {decorate("현재 청팀이 7대 3으로 앞서고 있어요!", rng) for _ in range(60)}
    pairs = {label for label in labels if ")/(" in label}
    assert pairs >= {"현재 청팀이 (7대)/(칠 대) 3으로 앞서고 있어요!", "현재 청팀이 7대 (3)/(삼)으로 앞서고 있어요!"}
    for label in labels:
        assert "현재 청팀이 칠 대 삼으로 앞서고 있어요" in parse_label(label).pronunciation, label


def test_text_corpus_file_round_trip(tmp_path, bank):
    path = tmp_path / "text_corpus.jsonl"
    assert write_text_corpus(path, bank) == 5000
    rows = list(read_jsonl(path))
    assert [r["id"] for r in rows[:2]] == ["TXT_00001", "TXT_00002"]
    assert rows[0]["pronunciation"] == parse_label(rows[0]["text"]).pronunciation
    assert read_text_corpus(path) == bank
    assert not list(tmp_path.glob(".*part"))  # written atomically, no temp file left


def test_read_text_corpus_names_the_file_on_a_bad_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "TXT_00001", "category": "어린이 교육"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl.*TXT_00001.*text"):
        read_text_corpus(path)


def test_bank_is_identical_across_processes(bank):
    """No set or hash order leaks into the bank: another interpreter with another hash seed builds the same."""
    script = ("import hashlib, json; from kidsasr.synth.textbank import sentence_bank; "
              "print(hashlib.sha256(json.dumps([s.__dict__ for s in sentence_bank(0)]).encode()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out == hashlib.sha256(json.dumps([s.__dict__ for s in bank]).encode()).hexdigest()
