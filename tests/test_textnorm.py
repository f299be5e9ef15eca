from __future__ import annotations

import itertools
import re
import unicodedata
from pathlib import Path

import pytest

from kidsasr.textnorm import (Transcript, is_tag_only, jongseong, label_problems, native, normalize_for_cer,
                              number_readings, parse_label, sino, spell_numbers, to_kspon_order)


# --- KsponSpeech conventions -------------------------------------------------------------------------------------


def test_reference_example_from_the_corpus_docs():
    t = parse_label("b/ 아/ 모+ 몬 소리야 (70%)/(칠 십 퍼센트) 확률이라니 n/")
    assert t == Transcript(
        spelling="몬 소리야 70% 확률이라니",
        pronunciation="아 모 몬 소리야 칠 십 퍼센트 확률이라니",
        tags=("b", "n"),
    )


@pytest.mark.parametrize(
    "raw, spelling, pronunciation",
    [
        # dual transcription: spelling side for subtitles, pronunciation side for CTC and alignment
        ("사과가 (3개)/(세 개) 있어요.", "사과가 3개 있어요.", "사과가 세 개 있어요"),
        ("(3개)/(세 개)를 주세요", "3개를 주세요", "세 개를 주세요"),  # particle after the pair
        ("(10%)/(십 프로) 할인", "10% 할인", "십 프로 할인"),  # the spoken reading, not our spelling
        ("(TV)/(티비) 보자", "TV 보자", "티비 보자"),
        # fillers and repetitions: spoken, so on the pronunciation side only
        ("음/ 어/ 저는 사과가 좋아요", "저는 사과가 좋아요", "음 어 저는 사과가 좋아요"),
        ("나+ 나는 사+ 사과", "나는 사과", "나 나는 사 사과"),
        ("3+ 3개 주세요", "3개 주세요", "삼 세 개 주세요"),  # a repeated number, not arithmetic
        # arithmetic
        ("1+1은 2예요", "1+1은 2예요", "일 더하기 일은 이예요"),
        ("3 + 4 = 7", "3 + 4 = 7", "삼 더하기 사는 칠"),
        # numbers are read in context, also next to a pair ("대" before a number is a score)
        ("현재 7대 (3)/(삼)으로 앞서요", "현재 7대 3으로 앞서요", "현재 칠 대 삼으로 앞서요"),
        ("자동차 7대가 있어요", "자동차 7대가 있어요", "자동차 일곱 대가 있어요"),
        # punctuation kept and tidied on the spelling side; only Hangul and spaces on the pronunciation side
        ("  네 ,  좋아요 !  ", "네, 좋아요!", "네 좋아요"),
        ("n/ , 네", "네", "네"),
        ("와~ 3.5kg이나 돼?! ㅋㅋ “진짜”", "와~ 3.5kg이나 돼?! ㅋㅋ “진짜”", "와 삼 점 오 킬로그램이나 돼 진짜"),
        ("DNA 검사", "DNA 검사", "디엔에이 검사"),  # bare Latin read letter by letter
    ],
)
def test_parse_label_sides(raw, spelling, pronunciation):
    t = parse_label(raw)
    assert (t.spelling, t.pronunciation) == (spelling, pronunciation)


def test_broadcast_dialogue_reading_first_pairs_are_put_in_kspon_order():
    assert to_kspon_order("(세 개)/(3개) 있어요") == "(3개)/(세 개) 있어요"
    assert parse_label("(세 개)/(3개) 있어요") == parse_label("(3개)/(세 개) 있어요")
    # two Hangul sides (a dialect or contraction pair) keep their order
    assert to_kspon_order("(그랬어)/(그랬어어)") == "(그랬어)/(그랬어어)"


@pytest.mark.parametrize("tag", ["b", "l", "n", "o", "u"])
def test_each_noise_tag_is_removed_and_reported(tag):
    t = parse_label(f"{tag}/ 안녕하세요")
    assert t.spelling == "안녕하세요"
    assert t.pronunciation == "안녕하세요"
    assert t.tags == (tag,)


def test_tags_reported_once_in_order_of_appearance():
    assert parse_label("n/ 네 l/ 좋아요 n/ b/").tags == ("n", "l", "b")
    assert parse_label("그* 사람 n/ 저* 사람").tags == ("*", "n")
    assert parse_label("b/n/ 네") == Transcript("네", "네", ("b", "n"))


def test_star_marks_unclear_speech_and_is_removed():
    t = parse_label("그* 사람이 왔어")
    assert t.spelling == "그 사람이 왔어"
    assert t.tags == ("*",)


def test_spell_numbers_reads_plus_and_equals():
    assert spell_numbers("2+3=5") == "이 더하기 삼은 오"


def test_number_readings_give_the_span_a_dual_transcription_covers():
    assert number_readings("현재 3대 2로, 사과 3개") == [(3, 5, "삼 대"), (6, 7, "이"), (13, 15, "세 개")]
    assert number_readings("전화 010-123-4567") == [(3, 15, "공일공 일이삼 사오육칠")]


def test_nfc_and_full_width_folding():
    decomposed = unicodedata.normalize("NFD", "사과 ３개")
    t = parse_label(decomposed)
    assert t.spelling == "사과 3개"
    assert unicodedata.is_normalized("NFC", t.pronunciation)
    assert t.pronunciation == "사과 세 개"


@pytest.mark.parametrize(
    "raw, problem",
    [("(3개)/(세 개", "unmatched '('"), ("3개)/(세 개)", "unmatched ')'"), ("(3개)/()", "empty side"),
     ("(3개)/(3개)", "pronunciation side is not Hangul"), ("x/ 안녕", "'/' that is not part"),
     ("1/2 컵", "'/' that is not part"), ("+사과", "'+' that is neither")],
)
def test_label_problems_name_each_malformed_mark(raw, problem):
    assert any(problem in reason for reason in label_problems(raw)), label_problems(raw)


@pytest.mark.parametrize(
    "raw", ["b/ 아/ 모+ 몬 소리야 (70%)/(칠 십 퍼센트) 확률이라니 n/", "(세 개)/(3개)", "1+1은 2", "그* 사람", "o/ 네", ""],
)
def test_well_formed_labels_have_no_problems(raw):
    assert label_problems(raw) == []


@pytest.mark.parametrize(
    "raw, expected",
    [("n/ b/", True), ("l/", True), ("n/ 음/ 어/ .", True), ("u/", True), ("네 n/", False), ("", False),
     ("   ", False), ("(3개)/(세 개)", False)],
)
def test_is_tag_only(raw, expected):
    assert is_tag_only(raw) is expected


# --- numbers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, reading",
    [(0, "영"), (1, "일"), (10, "십"), (11, "십일"), (20, "이십"), (100, "백"), (111, "백십일"), (1000, "천"),
     (2026, "이천이십육"), (10000, "만"), (12345, "만 이천삼백사십오"), (100000000, "일억"),
     (300450000, "삼억 사십오만"), (1000000000000, "일조")],
)
def test_sino_korean(n, reading):
    assert sino(n) == reading


@pytest.mark.parametrize(
    "n, attributive, bare",
    [(1, "한", "하나"), (2, "두", "둘"), (3, "세", "셋"), (4, "네", "넷"), (5, "다섯", "다섯"), (10, "열", "열"),
     (11, "열한", "열하나"), (20, "스무", "스물"), (21, "스물한", "스물하나"), (34, "서른네", "서른넷"),
     (99, "아흔아홉", "아흔아홉")],
)
def test_native_korean(n, attributive, bare):
    assert native(n) == attributive
    assert native(n, attributive=False) == bare


def test_native_numerals_stop_at_99():
    with pytest.raises(ValueError):
        native(100)


@pytest.mark.parametrize(
    "text, spoken",
    [
        # native counters
        ("3개", "세 개"), ("1명", "한 명"), ("5마리", "다섯 마리"), ("20살", "스무 살"), ("21살", "스물한 살"),
        ("2시", "두 시"), ("12시", "열두 시"), ("3번 했어", "세 번 했어"), ("2권", "두 권"), ("4잔", "네 잔"),
        ("10장", "열 장"), ("3그루", "세 그루"), ("2벌", "두 벌"), ("1켤레", "한 켤레"), ("2시간", "두 시간"),
        ("99명", "아흔아홉 명"),
        # native counters above 99 are read Sino-Korean
        ("100개", "백 개"), ("206개", "이백육 개"),
        # Sino-Korean counters
        ("3개월", "삼 개월"), ("30분", "삼십 분"), ("15초", "십오 초"), ("5일", "오 일"), ("2026년", "이천이십육 년"),
        ("1,000원", "천 원"), ("3층", "삼 층"), ("70%", "칠십 퍼센트"), ("2학년", "이 학년"), ("3반", "삼 반"),
        ("101호", "백일 호"), ("3kg", "삼 킬로그램"), ("12cm", "십이 센티미터"), ("25도", "이십오 도"),
        # months
        ("1월", "일월"), ("6월", "유월"), ("10월", "시월"), ("12월", "십이월"),
        # ordinals
        ("1번째", "첫 번째"), ("2번째", "두 번째"), ("20번째", "스무 번째"),
        # "번" that numbers, not counts
        ("3번 문제", "삼 번 문제"), ("기호 2번", "기호 이 번"),
        # scores
        ("3대 2로", "삼 대 이로"), ("자동차 3대", "자동차 세 대"),
        # large numbers, decimals, bare numbers
        ("38만 킬로미터", "삼십팔만 킬로미터"), ("12345", "만 이천삼백사십오"), ("3.5kg", "삼 점 오 킬로그램"),
        ("0.25", "영 점 이오"), ("7 더하기 5는", "칠 더하기 오는"),
        # digit by digit
        ("010-1234-5678", "공일공 일이삼사 오육칠팔"), ("119에 전화해", "일일구에 전화해"), ("007", "공공칠"),
        # a space between number and counter is tolerated, a word that only starts like a counter is not one
        ("사과 3 개를", "사과 세 개를"), ("3 일어나", "삼 일어나"),
        # times and dates
        ("3시 15분", "세 시 십오 분"), ("6월 25일", "유월 이십오 일"),
        ("오후 3:30에", "오후 세 시 삼십 분에"), ("7:00", "일곱 시"), ("0:05", "영 시 오 분"), ("12:34:56", "열두 시 삼십사 분 오십육 초"),
    ],
)
def test_spell_numbers(text, spoken):
    assert spell_numbers(text) == spoken


@pytest.mark.parametrize("word, final", [("사과", 0), ("귤", 8), ("집", 17), ("3", 16), ("2", 0), ("10개", 0), ("", 0)])
def test_jongseong_reads_numbers_first(word, final):
    assert jongseong(word) == final


def test_spell_numbers_leaves_text_without_digits_alone():
    assert spell_numbers("세 개 있어요") == "세 개 있어요"


# --- the CER scoring policy -------------------------------------------------------------------------------------


def test_cer_digits_and_spelled_numbers_match():
    assert normalize_for_cer("사과 3개") == normalize_for_cer("사과 세 개") == "사과세개"


def test_cer_removes_spaces_and_punctuation_and_lowercases_latin():
    assert normalize_for_cer("TV 봐?") == "tv봐"
    assert normalize_for_cer("안녕, 친구들! OK?") == "안녕친구들ok"


def test_cer_keep_spaces_collapses_them():
    assert normalize_for_cer("  안녕,   친구들 ! ", keep_spaces=True) == "안녕 친구들"


def test_cer_drops_tags_fillers_and_repetitions_of_references():
    ref = "b/ 음/ 나+ 나는 n/ 사과가 좋아요 l/"
    assert normalize_for_cer(ref) == "나는사과가좋아요"


def test_cer_drops_standalone_interjections_in_hypotheses():
    assert normalize_for_cer("음 나는 어 사과가 좋아요") == "나는사과가좋아요"
    assert normalize_for_cer("어머 아기 오리네") == "어머아기오리네"  # only whole-word interjections


def test_cer_scores_number_pairs_on_the_reading_and_hangul_pairs_on_the_spelling():
    assert normalize_for_cer("(10%)/(십 프로) 할인") == "십프로할인"
    assert normalize_for_cer("10프로 할인") == "십프로할인"
    assert normalize_for_cer("(그랬어)/(그랬어어)") == "그랬어"


def test_cer_reads_numbers_in_context_and_keeps_pairs_inside_words():
    assert normalize_for_cer("현재 7대 (3)/(삼)으로", keep_spaces=True) == "현재 칠 대 삼으로"
    assert normalize_for_cer("(3개)/(세 개)를 주세요", keep_spaces=True) == "세 개를 주세요"


def test_cer_is_idempotent_and_nfc():
    once = normalize_for_cer(unicodedata.normalize("NFD", "(3개)/(세 개) 있어요, 친구들!"))
    assert once == "세개있어요친구들"
    assert normalize_for_cer(once) == once


def test_cer_tag_only_label_is_empty():
    assert normalize_for_cer("n/ b/ 음/") == ""


# --- the policy document's tables are what the code does ----------------------------------------------------------

POLICY = Path(__file__).resolve().parents[1] / "data_prep" / "NORMALISATION.md"
_CODE = re.compile(r"`([^`]+)`")


def _table(heading: str) -> list[list[str]]:
    """The body cells of the first table after `heading` in NORMALISATION.md."""
    lines = POLICY.read_text(encoding="utf-8").split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


@pytest.mark.parametrize("row", _table("## Marks"), ids=lambda row: row[0])
def test_policy_marks_table(row):
    label, spelling, pronunciation, scored = (_CODE.match(cell).group(1) for cell in row[1:])
    t = parse_label(label)
    assert (t.spelling, t.pronunciation, normalize_for_cer(label)) == (spelling, pronunciation, scored)


@pytest.mark.parametrize("row", _table("## Numbers"), ids=lambda row: row[2][:40])
def test_policy_numbers_table(row):
    inputs, readings = _CODE.findall(row[0]), _CODE.findall(row[1])
    assert len(inputs) == len(readings)
    assert [spell_numbers(x) for x in inputs] == readings
