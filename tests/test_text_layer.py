"""The text layer of subtitles: words joined on Whisper's own word marker, punctuation policy, break kinds."""

from __future__ import annotations

import pytest

from kidsasr.subtitles.punctuation import clean_word, finish_line
from kidsasr.subtitles.syntax import boundary_kinds
from kidsasr.asr.wordpieces import Piece, join_pieces


def test_pieces_join_on_the_models_leading_space():
    pieces = [Piece(" 그게", 0.0, 0.3, 0.9), Piece(" 0", 0.3, 0.4, 0.8), Piece(".1", 0.4, 0.5, 0.7),
              Piece("%", 0.5, 0.6, 0.95), Piece(" KBS를", 0.6, 1.0, 0.9), Piece("", 1.0, 1.0, 0.1)]
    words = join_pieces(pieces)
    assert [w.text for w in words] == ["그게", "0.1%", "KBS를"]
    assert (words[1].start, words[1].end, words[1].probability) == (0.3, 0.6, 0.7)


def test_faster_whisper_alignment_words_rejoined_with_the_real_tokenizer():
    """The words faster-whisper's alignment makes of real Whisper tokens (it cuts at every punctuation token),
    joined again: numbers, decimals, percentages, times and Latin words stay whole."""
    tokenizers = pytest.importorskip("tokenizers")
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import merge_punctuations
    from huggingface_hub import hf_hub_download

    from kidsasr.asr.models import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS

    try:
        path = hf_hub_download("openai/whisper-base", "tokenizer.json")
    except Exception as e:  # no network and no cache
        pytest.skip(f"whisper-base tokenizer not available: {e}")
    hf = tokenizers.Tokenizer.from_file(path)
    tokenizer = Tokenizer(hf, True, task="transcribe", language="ko")
    text = ' 그게 0.1% 가정의 3시 30분에 KBS를 봤어요. 3.5점, "안녕" 해요...'
    words, word_tokens = tokenizer.split_to_word_tokens(hf.encode(text, add_special_tokens=False).ids)
    alignment = [dict(word=w, tokens=t, start=float(i), end=i + 1.0, probability=0.9)
                 for i, (w, t) in enumerate(zip(words, word_tokens))]
    merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    assert "%" in [a["word"] for a in alignment]  # what the alignment alone gives: `0`, `.1`, `%`
    joined = join_pieces(Piece(a["word"], a["start"], a["end"], a["probability"]) for a in alignment)
    assert [w.text for w in joined] == text.split()


@pytest.mark.parametrize("word, cleaned", [("그..", "그…"), ("해요...", "해요…"), ("음. . .", "음…"), ("와!!", "와!"),
                                           ("……", "…"), ("3.5점,", "3.5점,"), ("0.1%", "0.1%")])
def test_clean_word(word, cleaned):
    assert clean_word(word) == cleaned


@pytest.mark.parametrize("line, first, shown", [("좋아요.", False, "좋아요"), ("그래서,", False, "그래서"),
                                                ("정말?", False, "정말?"), ("그…", False, "그…"),
                                                ("좋아요. 가자.", False, "좋아요. 가자"), ("…그래서 갔어", True, "그래서 갔어"),
                                                ("3.5", False, "3.5"), (".", False, ".")])
def test_finish_line(line, first, shown):
    assert finish_line(line, first) == shown


@pytest.mark.parametrize("text, kinds", [
    ("역시 좋은 학교", "word bound"), ("가정의 아이들과 놀아요", "bound phrase"), ("있었단 말이야", "bound"),
    ("먹어야 되니까", "bound"), ("만나요. 그리고", "sentence"), ("밥을 먹고 학교에 갔어요", "phrase clause phrase"),
    ("3시 30분에", "bound"), ("할 수 있어요", "bound word"), ("아, 그래요", "clause"),
])
def test_boundary_kinds(text, kinds):
    assert boundary_kinds(text.split()) == kinds.split()
