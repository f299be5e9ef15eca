from __future__ import annotations

from kidsasr.asr.guards import (GuardOptions, apply_guards, cut_repetition, find_repetition, gate, loop_start_word,
                                needs_fallback, stock_phrase_spans, supported_by_audio)
from kidsasr.asr.models import Hypothesis, Word, compression_ratio


def hyp(text: str, avg_logprob: float = -0.3, no_speech_prob: float = 0.05, timed: bool = True) -> Hypothesis:
    words = [Word(w, i * 0.5, i * 0.5 + 0.4, 0.9) for i, w in enumerate(text.split())] if timed else []
    return Hypothesis(text, words, avg_logprob, compression_ratio(text), no_speech_prob)


def test_repetition_tail_is_cut_keeping_the_first_occurrence():
    text = "오늘은 소풍 가는 날 " + "하우스카 " * 12
    h, removed = cut_repetition(hyp(text.strip()))
    assert h.text == "오늘은 소풍 가는 날 하우스카"
    assert [w.text for w in h.words] == h.text.split()
    assert removed.count("하우스카") == 11


def test_the_loop_takes_hold_at_its_units_first_word():
    assert loop_start_word(hyp("오늘은 소풍 가는 날 " + "하우스카 " * 12)) == 4
    assert loop_start_word(hyp("엉! 엉! 엉! 엉! 엉! 엉! 엉!")) == 0
    assert loop_start_word(hyp("오늘은 소풍 가는 날")) is None
    assert loop_start_word(hyp("하우스카 " * 12, timed=False)) is None


def test_repetition_in_untimed_text_and_in_unspaced_text():
    h, removed = cut_repetition(hyp("안녕하세요 " + "네네네네네네네네네네네네", timed=False))
    assert h.text == "안녕하세요 네" and removed
    assert find_repetition("아매," * 6) == (3, 18)
    assert find_repetition("아매," * 4) is None  # a short unit needs six repeats


def test_a_loop_in_the_middle_keeps_what_follows_and_ignores_punctuation():
    h, removed = cut_repetition(hyp("와, 다온아, 다온아! 다온아, 다온아 어린이가 비눗방울을 불어요."))
    assert h.text == "와, 다온아, 다온아 어린이가 비눗방울을 불어요."
    assert removed == "다온아! 다온아,"


def test_ordinary_speech_and_short_repeats_are_kept():
    for text in ("우리 같이 공원에 가서 놀아요.", "안녕 안녕", "하하하 재밌다", "빨리 빨리 와!"):
        assert find_repetition(text) is None, text


def test_gates():
    assert gate(hyp("안녕하세요", avg_logprob=-0.2)) is None
    assert "no speech" in gate(hyp("안녕하세요", avg_logprob=-1.2, no_speech_prob=0.9))
    assert "log-probability" in gate(hyp("안녕하세요", avg_logprob=-2.5))
    looped = Hypothesis("아 " * 80, [], -0.2, compression_ratio("아 " * 80), 0.0)
    assert "compression ratio" in gate(looped)


def test_fallback_is_asked_for_loops_and_unsure_decodes_only():
    assert not needs_fallback(hyp("오늘은 무지개 팀이 나무토막을 쌓았어요"))
    assert needs_fallback(hyp("우리 다 같이 변디다자 " * 4))
    assert needs_fallback(hyp("나무토막을 쌓았어요", avg_logprob=-1.3))
    assert not needs_fallback(hyp("나무토막을 쌓았어요", avg_logprob=-1.3, no_speech_prob=0.9))  # silence
    assert not needs_fallback(hyp(""))
    assert not needs_fallback(hyp("나무토막을 쌓았어요", avg_logprob=-1.3), GuardOptions(fallback_beam_size=1))


def test_known_hallucinations_are_found():
    for text in ("시청해주셔서 감사합니다.", "구독과 좋아요 부탁드립니다", "MBC 뉴스 이덕영입니다.",
                 "좋아요 구독 알림설정", "감사합니다.", "한글자막 by 김"):
        assert stock_phrase_spans(text), text
    for text in ("선생님 감사합니다 정말 재밌었어요", "우리 뉴스를 보자", "좋아하는 노래"):
        assert not stock_phrase_spans(text), text


def test_stock_phrase_dropped_unless_supported_by_audio():
    text = "오늘 재밌었어요 시청해주셔서 감사합니다"
    kept, dropped = apply_guards(hyp(text, avg_logprob=-0.9), speech_seconds=3.0)
    assert kept.text == "오늘 재밌었어요"
    assert dropped == [("시청해주셔서 감사합니다", "known hallucination")]
    confident = hyp(text, avg_logprob=-0.1)
    assert supported_by_audio(confident, "시청해주셔서 감사합니다", speech_seconds=3.0)
    assert apply_guards(confident, speech_seconds=3.0)[0].text == text
    # confident but far too little speech to have said it
    assert not supported_by_audio(confident, "시청해주셔서 감사합니다", speech_seconds=0.4)


def test_music_dominated_text_is_dropped():
    kept, dropped = apply_guards(hyp("라라라 노래해요"), speech_seconds=4.0, music_share=0.9)
    assert kept.text == "" and kept.words == []
    assert dropped[0][1].startswith("music-dominated")


def test_loop_is_cut_before_the_compression_gate():
    text = "친구들 안녕 " + "아매, " * 40
    kept, dropped = apply_guards(hyp(text.strip()), speech_seconds=10.0)
    assert kept.text == "친구들 안녕 아매,"
    assert dropped[0][1] == "repetition loop"


def test_empty_hypothesis_passes_silently():
    empty = Hypothesis("", [], 0.0, 0.0, 1.0)
    assert apply_guards(empty, 0.0, options=GuardOptions()) == (empty, [])
