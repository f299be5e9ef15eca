from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kidsasr.asr.models import (DecodeOptions, Fallback, Hypothesis, _ct2_threads_and_workers, compression_ratio,
                                empty_hypothesis, load_recognizer)
from kidsasr.audio import resample

from conftest import WHISPER_BASE

SR = 16000


def espeak(text: str, voice: str = "ko+f3", pitch: int = 70) -> np.ndarray:
    """Real generated Korean speech (espeak-ng), 16 kHz, at a broadcast-like level."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "--stdout", text],
                         capture_output=True, check=True).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return resample(audio, sr, SR) * np.float32(0.5)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak("우리 친구들 안녕! 오늘은 토끼와 거북이 이야기를 들려줄게요.")


def make_tiny_ctc(out: Path) -> Path:
    """A random-initialised wav2vec2 CTC model with a small Hangul vocabulary, saved like a Hub checkpoint."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{ch: i + 3 for i, ch in enumerate("가나다라마바사아자차카타파하")}}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=SR, return_attention_mask=True, do_normalize=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, pad_token_id=0, feat_extract_norm="layer",
                            do_stable_layer_norm=True)
    model = Wav2Vec2ForCTC(config)
    with torch.no_grad():  # an untrained model: make it emit characters rather than only blanks
        model.lm_head.bias[0] = -5.0
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_ctc_dir(tmp_path_factory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny-ctc"))


def test_decode_options_are_checked_and_token_budget_is_capped():
    with pytest.raises(ValueError, match="decode options: beams: unknown key"):
        DecodeOptions.from_kwargs({"beams": 5})
    o = DecodeOptions()
    assert o.new_tokens_for(1.0) < o.new_tokens_for(10.0) <= o.max_new_tokens < 448
    assert o.new_tokens_for(30.0) == o.max_new_tokens


def test_ct2_threads_go_to_single_thread_workers_on_cpu():
    split = lambda **o: _ct2_threads_and_workers("cpu", DecodeOptions(**o))  # noqa: E731
    assert split(num_threads=2) == (1, 2)
    assert split(num_threads=16) == (4, 4)
    assert split(num_threads=4, num_workers=1) == (4, 1)
    assert split(num_threads=1) == (1, 1)
    assert _ct2_threads_and_workers("cuda", DecodeOptions(num_threads=8)) == (8, 1)


def test_fallback_decodes_only_the_flagged_rows_again():
    hyps = [Hypothesis(t, [], -0.2, 1.0, 0.0) for t in ("a", "loop", "b", "loop")]
    calls = []

    def decode(rows, beam):
        calls.append((rows, beam))
        return [Hypothesis(f"beam {i}", [], -0.1, 1.0, 0.0) for i in rows]

    out = Fallback(lambda h: h.text == "loop", beam_size=4).apply(hyps, decode)
    assert [h.text for h in out] == ["a", "beam 1", "b", "beam 3"] and calls == [([1, 3], 4)]
    assert Fallback(lambda h: False).apply([empty_hypothesis()], decode) and len(calls) == 1


def words_of(hyps):
    return [(h.text, [(w.text, w.start, w.end) for w in h.words]) for h in hyps]


def test_compression_ratio_flags_loops():
    assert compression_ratio("하우스카 " * 40) > 2.4 > compression_ratio("우리 같이 공원에 가서 놀아요.")


def test_unknown_backend_is_an_error(tiny_ctc_dir):
    with pytest.raises(ValueError, match="unknown backend"):
        load_recognizer(str(tiny_ctc_dir), backend="onnx")


def test_ctc_backend_times_characters_inside_the_clip(tiny_ctc_dir, speech):
    recognizer = load_recognizer(str(tiny_ctc_dir))  # auto: a *ForCTC checkpoint -> ctc
    assert recognizer.name.startswith("ctc:")
    short = speech[: SR]
    hyps = recognizer.transcribe_batch([speech, short, np.zeros(100, np.float32)], word_timestamps=True)
    for hyp, clip in zip(hyps, (speech, short)):
        duration = clip.size / SR
        assert hyp.words, "the biased tiny model emits characters"
        assert hyp.text == " ".join(w.text for w in hyp.words)
        starts = [w.start for w in hyp.words]
        assert starts == sorted(starts)
        for w in hyp.words:
            assert 0.0 <= w.start <= w.end <= duration + 1e-6
            assert set(w.text) <= set("가나다라마바사아자차카타파하") and 0.0 < w.probability <= 1.0
    assert hyps[2].text == "" and hyps[2].words == []


@pytest.fixture(scope="module")
def ct2_whisper(tmp_path_factory):
    """whisper-base converted by `kidsasr export` (the CLI over export.export_ct2), loaded from the folder."""
    from kidsasr.cli import main

    out = tmp_path_factory.mktemp("ct2") / "whisper-base-int8"
    assert main(["export", WHISPER_BASE, "-o", str(out)]) == 0
    return load_recognizer(str(out), num_threads=2)


@pytest.mark.slow
def test_ct2_export_of_whisper_base_transcribes_a_clip(ct2_whisper, speech):
    assert (ct2_whisper.model_dir / "model.bin").is_file()
    assert not list(ct2_whisper.model_dir.parent.glob(".*.part"))  # the export was renamed into place
    hyp, silent = ct2_whisper.transcribe_batch([speech, np.zeros(3 * SR, np.float32)], word_timestamps=True)
    duration = speech.size / SR
    assert hyp.text and hyp.words and -5.0 < hyp.avg_logprob <= 0.0
    assert all(0.0 <= w.start <= w.end <= duration + 0.5 for w in hyp.words)
    assert [w.start for w in hyp.words] == sorted(w.start for w in hyp.words)
    assert len(hyp.text) < 4 * DecodeOptions().new_tokens_for(duration)
    assert silent.no_speech_prob > hyp.no_speech_prob
    (beamed,) = ct2_whisper.transcribe_batch([speech], word_timestamps=True, beam_size=5)
    assert beamed.words and beamed.avg_logprob >= hyp.avg_logprob - 0.5


@pytest.mark.slow
def test_ct2_workers_decode_their_shards_like_one_worker(ct2_whisper, speech):
    assert ct2_whisper.workers == 2 and ct2_whisper.batch_size == 2 * DecodeOptions().batch_size
    single = load_recognizer(str(ct2_whisper.model_dir), num_threads=1, batch_size=2)
    assert single.workers == 1
    clips = [speech, np.zeros(100, np.float32), speech[: 2 * SR], speech[SR:], speech[: 3 * SR]]
    together = ct2_whisper.transcribe_batch(clips, word_timestamps=True)
    alone = single.transcribe_batch(clips, word_timestamps=True)
    assert together[1].text == "" and len({h.text for h in together}) >= 3  # distinct, so order shows
    assert words_of(together) == words_of(alone)


@pytest.mark.slow
def test_ct2_fallback_reuses_the_encoder_output(ct2_whisper, speech):
    clips = [speech, speech[: 2 * SR]]
    beamed = ct2_whisper.transcribe_batch(clips, word_timestamps=True, beam_size=5)
    model = ct2_whisper.whisper.model
    encodes = []

    class CountingModel:  # the real CTranslate2 model, its encoder calls counted
        def __getattr__(self, name):
            return getattr(model, name)

        def encode(self, *args, **kwargs):
            encodes.append(args[0].shape)
            return model.encode(*args, **kwargs)

    ct2_whisper.whisper.model = CountingModel()
    try:
        again = ct2_whisper.transcribe_batch(clips, word_timestamps=True, fallback=Fallback(lambda h: True, 5))
    finally:
        ct2_whisper.whisper.model = model
    assert words_of(again) == words_of(beamed)
    assert sum(shape[0] for shape in encodes) == len(clips)  # each clip encoded once, for greedy and beam


@pytest.mark.slow
def test_transformers_backend_gives_dtw_word_times(speech):
    recognizer = load_recognizer(WHISPER_BASE, backend="transformers", num_threads=2)
    (hyp,) = recognizer.transcribe_batch([speech[: 3 * SR]], word_timestamps=True)
    assert hyp.text and hyp.words
    assert all(0.0 <= w.start <= w.end <= 3.0 + 1e-6 for w in hyp.words)
    assert [w.start for w in hyp.words] == sorted(w.start for w in hyp.words)
    clips = [speech[: 3 * SR], speech[SR : 3 * SR]]
    beamed = recognizer.transcribe_batch(clips, word_timestamps=True, beam_size=3)
    flagged = recognizer.transcribe_batch(clips, word_timestamps=True, fallback=Fallback(lambda h: h is not None, 3))
    assert [h.text for h in flagged] == [h.text for h in beamed]
    assert all(h.words and -5.0 < h.avg_logprob <= 0.0 for h in flagged)
