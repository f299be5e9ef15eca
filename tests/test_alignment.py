"""Forced alignment: DTW and CTC segmentation on matrices with known answers, a tiny random wav2vec2 end to end,
and whisper-base on the tiny generated corpus (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kidsasr.evaluation.boundaries import boundary_errors, measure_corpus
from kidsasr.prep.alignment import (AlignItem, Alignment, attention_cost, ctc_segment, dtw_path, load_aligner,
                                    pack_windows, row_start_frames, snap_to_speech, text_edges, speech_coverage)


# --- DTW and token times ----------------------------------------------------------------------------------------


def test_dtw_follows_the_cheap_staircase():
    # 4 tokens over 20 frames; token k is cheap on frames [5k, 5k+5): the path must enter row k at frame 5k.
    cost = np.ones((4, 20))
    for k in range(4):
        cost[k, 5 * k:5 * k + 5] = 0.0
    rows, cols = dtw_path(cost)
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == 3 and cols[-1] == 19
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)
    assert row_start_frames(rows, cols, 4).tolist() == [0, 5, 10, 15]


def test_dtw_with_uneven_token_lengths_and_noise():
    rng = np.random.default_rng(0)
    bounds = [0, 3, 11, 12, 30, 41]
    cost = rng.uniform(0.5, 1.0, (5, 41))
    for k in range(5):
        cost[k, bounds[k]:bounds[k + 1]] = rng.uniform(0.0, 0.2, bounds[k + 1] - bounds[k])
    rows, cols = dtw_path(cost)
    assert row_start_frames(rows, cols, 5).tolist() == bounds[:-1]


def test_attention_cost_favours_the_attended_frames():
    weights = np.full((2, 3, 30), 0.01)
    for k in range(3):
        weights[:, k, 10 * k:10 * k + 10] = 0.5
    cost = attention_cost(weights)
    assert cost.shape == (3, 30)
    rows, cols = dtw_path(cost)
    assert row_start_frames(rows, cols, 3).tolist() == [0, 10, 20]


# --- VAD snapping, windows, measurement --------------------------------------------------------------------------


def test_snap_moves_edges_to_close_speech_edges_only():
    regions = [(1.0, 2.5), (3.1, 5.0)]
    assert snap_to_speech(1.2, 2.3, regions, 0.4) == (1.0, 2.5, True)
    assert snap_to_speech(3.0, 4.0, regions, 0.4) == (3.1, 4.0, True)  # no offset near 4.0: the end stays
    assert snap_to_speech(6.0, 7.0, regions, 0.4) == (6.0, 7.0, False)
    assert speech_coverage(2.0, 4.0, regions) == pytest.approx(0.5 / 2 + 0.9 / 2)


def test_snap_prefers_a_speech_edge_that_confirms_the_label():
    regions = [(1.0, 2.0), (2.3, 4.0)]
    # the estimate (1.9) is nearer the 2.3 onset, but the label's start sits on the 1.0 onset: the audio confirms it
    assert snap_to_speech(1.9, 3.9, regions, 0.6, label=(1.02, 3.5)) == (1.0, 4.0, True)
    assert snap_to_speech(1.9, 3.9, regions, 0.6) == (2.3, 4.0, True)
    assert snap_to_speech(1.9, 3.9, regions, 0.6, label=(1.3, 3.5)) == (2.3, 4.0, True)  # a loose label: no say


def test_text_edges_step_back_from_the_first_well_placed_token():
    # tokens 0 and 1 collapsed onto the window's first frame (music before the text); token 2 is where speech is
    starts = np.array([0.0, 0.0, 1.6, 1.8, 2.0, 2.2, 2.6])
    start, end = text_edges(starts, typical=0.2)
    assert start == pytest.approx(1.2)
    assert end == pytest.approx(2.6)  # the last token (2.2 -> 2.6) is within two typical lengths
    # a last token stretched over the silence after it keeps two typical lengths
    assert text_edges(np.array([1.0, 1.2, 1.4, 4.0]), typical=0.2) == pytest.approx((1.0, 1.8))
    assert text_edges(np.array([1.0, 1.3]), typical=0.2) == (1.0, 1.3)


def test_snap_falls_back_to_the_label_when_the_estimate_is_far_from_any_speech_edge():
    regions = [(4.0, 6.0), (8.2, 12.0)]
    # DTW gave the window's leading second to the first token (7.0): no onset within 0.6 s of it, one by the label
    assert snap_to_speech(7.0, 11.9, regions, 0.6, label=(7.9, 12.3)) == (8.2, 12.0, True)
    assert snap_to_speech(7.0, 11.9, regions, 0.6) == (7.0, 12.0, True)  # without a label the start stays


def test_pack_windows_groups_neighbours_and_splits_overlaps_and_long_spans():
    items = [AlignItem("가", 1.0, 3.0), AlignItem("나", 4.0, 6.0), AlignItem("다", 5.0, 8.0),  # 다 overlaps 나
             AlignItem("라", 20.0, 29.0), AlignItem("마", 40.0, 42.0), AlignItem("바", None, None)]
    windows = pack_windows(items, duration=50.0, padding=1.0)
    assert [w.items for w in windows] == [[0, 1], [2, 3], [4]]
    assert windows[0].start == 0.0 and windows[0].end == 7.0
    assert all(w.end - w.start <= 30.0 for w in windows)


def test_boundary_errors_before_and_after():
    truth = [{"true_start": 1.0, "true_end": 2.0, "label_start": 1.4, "label_end": 2.3, "jittered": True},
             {"true_start": 3.0, "true_end": 4.0, "label_start": 3.0, "label_end": 4.0, "jittered": False}]
    aligned = [Alignment(1.05, 2.1, 0.9, "test", True), Alignment(3.0, 4.5, 0.9, "test", True)]
    report = boundary_errors(truth, aligned)
    assert report["jittered"]["before"]["median_abs_error"] == pytest.approx(0.35)
    assert report["jittered"]["after"]["median_abs_error"] == pytest.approx(0.075)
    assert report["jittered"]["after"]["within_tolerance"] == 1.0
    assert report["all"]["after"]["within_tolerance"] == 0.5
    assert report["all"]["before"]["n"] == 2


# --- CTC segmentation -------------------------------------------------------------------------------------------

CHARS = ["<pad>", "<unk>", "|", "가", "나", "다", "라", "마", "바"]


def _spiky_posterior(texts: list[str], gap: int = 25, lead: int = 20, noise: float = 0.0, seed: int = 0):
    """Frame log-posteriors shaped like a trained CTC model's: each character spikes on one frame, 4 frames apart,
    blank elsewhere, with Gaussian noise on the logits. Returns them and each text's true (start, end) frame."""
    rng = np.random.default_rng(seed)
    frames = lead + sum(4 * len(t) + gap for t in texts)
    logits = np.zeros((frames, len(CHARS)))
    logits[:, 0] = 8.0
    truth, frame = [], lead
    for text in texts:
        start = frame
        for ch in text.replace(" ", "|"):
            logits[frame, CHARS.index(ch)] = 12.0
            frame += 4
        truth.append((start, frame - 3))  # the blank after the last character starts one frame after it
        frame += gap
    logits += rng.normal(0.0, noise, logits.shape)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), truth


@pytest.mark.parametrize("noise", [0.0, 1.5])
def test_ctc_segmentation_recovers_known_times(noise):
    texts = ["가나 다", "라마", "바가 나다 라", "마"]
    log_probs, truth = _spiky_posterior(texts, noise=noise)
    segments = ctc_segment(log_probs, texts, CHARS, blank=0, index_duration=0.02, word_delimiter="|")
    assert len(segments) == len(texts)
    for (start, end, score), (t_start, t_end) in zip(segments, truth):
        assert abs(start - t_start * 0.02) <= 0.04 and abs(end - t_end * 0.02) <= 0.04
        assert score <= 0.0


def test_ctc_segmentation_scores_a_missing_text_lower():
    log_probs, _ = _spiky_posterior(["가나 다", "라마"])
    right = ctc_segment(log_probs, ["가나 다", "라마"], CHARS, 0, 0.02, "|")
    wrong = ctc_segment(log_probs, ["가나 다", "바바바"], CHARS, 0, 0.02, "|")
    assert wrong[1][2] < right[1][2] - 1.0


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A random-initialised wav2vec2 CTC model with a Hangul character vocabulary, saved as a HF folder."""
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    folder = tmp_path_factory.mktemp("tiny-w2v2")
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(CHARS)}, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(vocab_size=len(CHARS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, pad_token_id=0, do_stable_layer_norm=True)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return str(folder)


def _tone_bursts(spans: list[tuple[float, float]], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    audio = np.zeros_like(t)
    for s, e in spans:
        on = (t >= s) & (t < e)
        audio[on] = 0.3 * np.sin(2 * np.pi * 220 * t[on]) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t[on]))
    return audio.astype(np.float32)


def test_ctc_aligner_end_to_end_with_a_tiny_random_model(tiny_wav2vec2):
    aligner = load_aligner("ctc", tiny_wav2vec2, vad=False)
    audio = _tone_bursts([(0.5, 2.0), (3.0, 4.5), (6.0, 7.0)], 8.0)
    items = [AlignItem("가나 다", 0.4, 2.2), AlignItem("라마", 2.9, 4.6), AlignItem("", 6.0, 7.0),
             AlignItem("바", None, None)]
    found = aligner.align(audio, items)
    assert len(found) == 4
    for a in found[:2]:
        assert a.method.startswith("ctc-seg") and 0.0 <= a.start <= a.end <= 8.0 and 0.0 <= a.confidence <= 1.0
    assert found[0].end <= found[1].start + 1e-6
    assert not found[2].ok and "no text" in found[2].reason
    assert not found[3].ok and "no label times" in found[3].reason
    long = aligner.align_long(audio, ["가나 다", "라마", "바"])
    assert len(long) == 3
    assert all(a.start <= a.end for a in long)
    assert all(x.end <= y.start + 1e-6 for x, y in zip(long, long[1:]))


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random-initialised Whisper (no alignment heads in its generation config) with whisper-base's processor."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    folder = tmp_path_factory.mktemp("tiny-whisper")
    WhisperProcessor.from_pretrained("openai/whisper-base").save_pretrained(folder)
    config = WhisperConfig(vocab_size=51865, d_model=16, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=50257,
                           bos_token_id=50257, eos_token_id=50257, decoder_start_token_id=50258)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    return str(folder)


def test_whisper_transformers_backend_end_to_end_with_a_tiny_random_model(tiny_whisper):
    aligner = load_aligner("whisper", tiny_whisper, backend="transformers", vad=False)
    assert aligner.heads == [(1, 0), (1, 1)]  # the upper half of the decoder when no alignment heads are given
    audio = _tone_bursts([(0.5, 2.0), (3.0, 4.5), (33.0, 34.0)], 36.0)
    items = [AlignItem("안녕 하세요", 0.4, 2.2), AlignItem("고마워", 2.9, 4.6), AlignItem("잘 가", 32.8, 34.2)]
    found = aligner.align(audio, items)
    assert [a.method for a in found] == ["whisper-dtw"] * 3
    assert 0.0 <= found[0].start <= found[0].end <= found[1].start <= found[1].end <= 5.6  # one 0-5.6 s window
    assert 31.79 <= found[2].start <= found[2].end <= 35.21
    assert all(0.0 <= a.confidence <= 1.0 for a in found)
    long = aligner.align_long(audio, ["안녕 하세요", "고마워", "잘 가"])
    assert len(long) == 3 and all(x.start <= y.start for x, y in zip(long, long[1:]))
    assert all(0.0 <= a.start <= a.end <= 36.0 for a in long)


def test_vad_aligner_snaps_label_edges_to_speech(tiny_corpus):
    report = measure_corpus(tiny_corpus, load_aligner("vad"), limit=4)
    assert report["sentences"] >= 4
    assert report["all"]["after"]["mean_abs_error"] <= report["all"]["before"]["mean_abs_error"] + 0.05


def test_unknown_aligner_kind_is_refused():
    with pytest.raises(ValueError, match="unknown aligner kind"):
        load_aligner("hmm")
    with pytest.raises(ValueError, match="needs a wav2vec2"):
        load_aligner("ctc")


# --- whisper-base on the tiny generated corpus (slow) -----------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_aligner():
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_aligner("whisper", "openai/whisper-base")


def _episode(corpus, index: int = 0):
    from kidsasr.corpus.reader import read_corpus
    from kidsasr.textnorm import parse_label

    episode = sorted(read_corpus(corpus), key=lambda e: e.id)[index]
    texts = [parse_label(s.text).pronunciation for s in episode.sentences]
    return episode, episode.audio.load(), texts


@pytest.mark.slow
def test_whisper_alignment_moves_jittered_boundaries_towards_the_truth(whisper_aligner, tiny_corpus):
    report = measure_corpus(tiny_corpus, whisper_aligner)
    jittered = report["jittered"]
    assert jittered["before"]["n"] >= 2
    assert jittered["after"]["mean_abs_error"] < jittered["before"]["mean_abs_error"]
    assert report["all"]["after"]["median_abs_error"] < 0.2


@pytest.mark.slow
def test_whisper_confidence_separates_right_and_wrong_transcripts_and_long_form_is_monotonic(
        whisper_aligner, tiny_corpus):
    episode, audio, texts = _episode(tiny_corpus)
    sentences = episode.sentences
    right = whisper_aligner.align(audio, [AlignItem(t, s.start, s.end) for t, s in zip(texts, sentences)])
    wrong_texts = ["고양이가 지붕 위에서 낮잠을 자요 아주 조용히", "비행기가 구름 사이로 높이 날아가요"]
    wrong = whisper_aligner.align(audio, [AlignItem(wrong_texts[k % 2], s.start, s.end)
                                          for k, s in enumerate(sentences)])
    for r, w in zip(right, wrong):
        assert r.confidence > w.confidence
    assert all(r.ok for r in right)

    long = whisper_aligner.align_long(audio, texts)
    assert len(long) == len(texts)
    assert all(0.0 <= a.start < a.end <= len(audio) / 16000 + 1e-6 for a in long)
    assert all(x.start <= y.start for x, y in zip(long, long[1:]))
