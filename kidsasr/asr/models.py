"""Speech recognisers behind one small interface: batches of <= 30 s 16 kHz clips in, hypotheses with word times out.

Backends:
  ct2           CTranslate2 Whisper (int8 on CPU; faster-whisper's features, tokenizer and word alignment), on CPU
                one single-thread decoder per core; a Hugging Face id or folder is converted once (kidsasr.asr.export)
                and cached, a CTranslate2 folder is used as is.
  transformers  Whisper in transformers (the reference; batched `generate`), word times from the alignment heads
                with DTW (`return_token_timestamps`).
  ctc           any wav2vec2-style CTC model (`AutoModelForCTC`), greedy CTC with character and word times from
                the emitting frames.

Every Whisper path decodes Korean, task transcribe, greedy unless `beam_size` is set (in the options or per call),
decodes again with a beam, from the same encoder output, the clips a `Fallback` flags (kidsasr.asr.transcribe flags
loops and failed gates), and caps the new tokens by clip duration so a repetition loop cannot run to the 448-token
limit (kidsasr.asr.guards cuts what is left of it).
"""

from __future__ import annotations

import dataclasses

import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .. import config
from ..constants import DEFAULT_MODEL, SAMPLE_RATE, WHISPER_WINDOW_SECONDS
from .wordpieces import Piece, join_pieces

PREPEND_PUNCTUATIONS = "\"'“¿([{-"  # faster-whisper's defaults: marks joined to the next or the previous word
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass
class Word:
    text: str
    start: float
    end: float
    probability: float
    sung: bool = False  # said in a music-dominated stretch (a song); the cue builder marks or omits it


@dataclass
class Hypothesis:
    text: str
    words: list[Word]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    fallback: bool = False  # decoded again with a beam (see Fallback)


@dataclass(frozen=True)
class Fallback:
    """Decode again with a beam, from the same encoder output, every clip whose first hypothesis `needed` flags."""

    needed: Callable[[Hypothesis], bool]
    beam_size: int = 5

    def apply(self, hyps: list[Hypothesis], decode: Callable[[list[int], int], list[Hypothesis]]) -> list[Hypothesis]:
        """`decode(rows, beam_size)` decodes the given rows of the batch again."""
        retry = [i for i, hyp in enumerate(hyps) if self.needed(hyp)]
        if retry:
            for i, hyp in zip(retry, decode(retry, self.beam_size)):
                hyps[i] = dataclasses.replace(hyp, fallback=True)
        return hyps


class Recognizer(Protocol):
    name: str
    batch_size: int  # clips one transcribe_batch call decodes at once (all its workers together)
    clip_seconds: float  # the longest clip it reads (a Whisper model's encoder window)

    def transcribe_batch(self, clips: list[np.ndarray], word_timestamps: bool = False,
                         beam_size: int | None = None, fallback: Fallback | None = None) -> list[Hypothesis]: ...


@dataclass
class DecodeOptions:
    language: str = "ko"
    task: str = "transcribe"
    beam_size: int = 1
    batch_size: int = 8
    # New tokens allowed per second of clip (fast child speech is ~7 syllables/s, about as many tokens), and a
    # hard cap: a looping decoder stops there instead of at Whisper's 448-token limit.
    tokens_per_second: float = 12.0
    max_new_tokens: int = 256
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    num_threads: int = 0  # 0: the backend's default (ct2 on CPU: every core)
    # ct2: decoders that run at once, each on num_threads / num_workers cores. 0: on CPU one per core, up to 4
    # (a whisper decoder step is too small to spread over cores: two 1-thread decoders do twice the work of one
    # 2-thread decoder, see eval/RESULTS.md), on GPU one.
    num_workers: int = 0
    # Text the decoder is conditioned on, as in whisper/faster-whisper: a previous-text prompt (style, spelling)
    # and hotwords (programme and character names). transformers has one prompt: hotwords come first in it.
    initial_prompt: str | None = None
    hotwords: str | None = None

    @classmethod
    def from_kwargs(cls, options: dict) -> "DecodeOptions":
        """Checked like every config: an unknown option or a wrong type raises ConfigError naming it."""
        return config.from_mapping(cls, options, "decode options")

    def new_tokens_for(self, seconds: float) -> int:
        return max(8, min(self.max_new_tokens, int(seconds * self.tokens_per_second) + 8))


def compression_ratio(text: str) -> float:
    """Whisper's gzip compression ratio: loops and stock phrases repeated compress far better than speech."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def empty_hypothesis() -> Hypothesis:
    return Hypothesis(text="", words=[], avg_logprob=0.0, compression_ratio=0.0, no_speech_prob=1.0)


def _check_clips(clips: list[np.ndarray], max_seconds: float) -> None:
    for clip in clips:
        if clip.ndim != 1:
            raise ValueError(f"clips must be mono 1-D arrays, got shape {clip.shape}")
        if clip.size > max_seconds * SAMPLE_RATE + 1:
            raise ValueError(f"clips must be at most {max_seconds:g} s for this model, "
                             f"got {clip.size / SAMPLE_RATE:.1f} s")


def _ct2_threads_and_workers(device: str, options: DecodeOptions) -> tuple[int, int]:
    """(threads per worker, workers) for CTranslate2 from num_threads and num_workers (0: automatic)."""
    if device != "cpu":
        return options.num_threads, options.num_workers or 1
    threads = options.num_threads or os.cpu_count() or 1
    workers = options.num_workers or min(threads, 4)
    return max(1, threads // workers), workers


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield i, items[i : i + size]


class CT2Whisper:
    """CTranslate2 Whisper: batched encoder and greedy/beam generation, word times from faster-whisper's alignment.

    Each clip is aligned on its own (a batched alignment pads every clip to the longest text, and faster-whisper's
    word-time heuristics would carry one clip's last word time into the next), and the encoder output is kept for
    the fallback, so a clip decoded again with a beam is not encoded again.
    """

    def __init__(self, model: str, device: str = "cpu", compute_type: str = "int8", options: DecodeOptions | None = None):
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        from .export import cached_ct2, is_ct2_dir

        self.options = options or DecodeOptions()
        path = Path(model) if is_ct2_dir(model) else cached_ct2(model)
        self.name = f"ct2:{model}"
        self.model_dir = path
        threads, self.workers = _ct2_threads_and_workers(device, self.options)
        self.batch_size = self.options.batch_size * self.workers
        self.whisper = WhisperModel(str(path), device=device, compute_type=compute_type,
                                    cpu_threads=threads, num_workers=self.workers)
        self.clip_seconds = float(self.whisper.feature_extractor.chunk_length)  # from preprocessor_config.json
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ct2") if self.workers > 1 else None
        self.tokenizer = Tokenizer(self.whisper.hf_tokenizer, self.whisper.model.is_multilingual,
                                   task=self.options.task, language=self.options.language)
        previous = self.tokenizer.encode(" " + self.options.initial_prompt.strip()) if self.options.initial_prompt \
            else []
        self.prompt = self.whisper.get_prompt(self.tokenizer, previous, without_timestamps=True,
                                              hotwords=self.options.hotwords or None)
        self.suppress_tokens = get_suppressed_tokens(self.tokenizer, [-1])

    def transcribe_batch(self, clips: list[np.ndarray], word_timestamps: bool = False,
                         beam_size: int | None = None, fallback: Fallback | None = None) -> list[Hypothesis]:
        """Clips are shared out in contiguous shards, one per worker; each worker decodes its shard in batches."""
        _check_clips(clips, self.clip_seconds)
        results: list[Hypothesis] = [empty_hypothesis() for _ in clips]
        todo = [i for i, clip in enumerate(clips) if clip.size >= SAMPLE_RATE // 10]
        shards = [s for s in np.array_split(np.array(todo, dtype=int), min(self.workers, len(todo))) if s.size]
        beam_size = beam_size or self.options.beam_size

        def decode_shard(shard: np.ndarray) -> None:
            for _, batch in _batches(shard.tolist(), self.options.batch_size):
                for i, hyp in zip(batch, self._decode([clips[i] for i in batch], word_timestamps, beam_size, fallback)):
                    results[i] = hyp

        if self.pool is None or len(shards) < 2:
            for shard in shards:
                decode_shard(shard)
        else:
            for future in [self.pool.submit(decode_shard, shard) for shard in shards]:
                future.result()
        return results

    def _decode(self, clips: list[np.ndarray], word_timestamps: bool, beam_size: int,
                fallback: Fallback | None) -> list[Hypothesis]:
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        durations = [clip.size / SAMPLE_RATE for clip in clips]
        frames = self.whisper.feature_extractor.nb_max_frames
        features = np.stack([pad_or_trim(self.whisper.feature_extractor(clip)[..., :-1], frames) for clip in clips])
        # On the host, so that a subset of it can be decoded again (and aligned clip by clip) on any device. A CPU
        # encodes a window at a time: batched, the attention scores outgrow the cache and each window costs up
        # to 1.6x as much (eval/RESULTS.md).
        step = len(clips) if self.whisper.model.device != "cpu" else 1
        encoded = np.concatenate([
            np.asarray(self.whisper.model.encode(ctranslate2.StorageView.from_array(features[i : i + step]),
                                                 to_cpu=True)) for i in range(0, len(clips), step)])

        def generate(rows: list[int], beam: int) -> list[Hypothesis]:
            return self._generate(encoded[rows], [durations[i] for i in rows], word_timestamps, beam)

        hyps = generate(list(range(len(clips))), beam_size)
        return fallback.apply(hyps, generate) if fallback else hyps

    def _generate(self, encoded: np.ndarray, durations: list[float], word_timestamps: bool,
                  beam_size: int) -> list[Hypothesis]:
        import ctranslate2

        o = self.options
        results = self.whisper.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)), [self.prompt] * len(durations),
            beam_size=beam_size, max_length=len(self.prompt) + o.new_tokens_for(max(durations)),
            suppress_blank=True, suppress_tokens=self.suppress_tokens, return_scores=True, return_no_speech_prob=True,
            repetition_penalty=o.repetition_penalty, no_repeat_ngram_size=o.no_repeat_ngram_size)
        hyps = []
        for k, (result, duration) in enumerate(zip(results, durations)):
            tokens = result.sequences_ids[0]
            text = self.tokenizer.decode(tokens).strip()
            words = self._words(encoded[k : k + 1], tokens, duration) if word_timestamps and text else []
            # scores[0] is the sum of token log-probabilities over the length (length penalty 1); Whisper's
            # avg_logprob counts the end-of-text token as well.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            hyps.append(Hypothesis(text=text, words=words, avg_logprob=float(avg_logprob),
                                   compression_ratio=compression_ratio(text),
                                   no_speech_prob=float(result.no_speech_prob)))
        return hyps

    def _words(self, encoded: np.ndarray, tokens: list[int], duration: float) -> list[Word]:
        import ctranslate2

        segment = [{"tokens": tokens, "seek": 0, "start": 0.0, "end": duration}]
        self.whisper.add_word_timestamps(
            [segment], self.tokenizer, ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)),
            [int(np.ceil(duration) * self.whisper.frames_per_second)], PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, 0.0)
        # faster-whisper starts a word at every punctuation token (`0`, `.1`, `%`): join on the model's own marker
        pieces = join_pieces(Piece(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                             for w in segment[0].get("words", []))
        return [Word(p.text, p.start, p.end, p.probability) for p in pieces if "\ufffd" not in p.text]


class TransformersWhisper:
    """Whisper in transformers: batched greedy/beam `generate`, word times from cross-attention DTW."""

    def __init__(self, model: str, device: str = "cpu", options: DecodeOptions | None = None):
        import torch
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        self.options = options or DecodeOptions()
        self.batch_size = self.options.batch_size
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        self.name = f"transformers:{model}"
        self.device = torch.device(device)
        self.processor = AutoProcessor.from_pretrained(model)
        self.clip_seconds = float(self.processor.feature_extractor.chunk_length)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = AutoModelForSpeechSeq2Seq.from_pretrained(model, dtype=dtype).to(self.device).eval()
        self.tokenizer = self.processor.tokenizer
        vocab = self.tokenizer.get_vocab()
        self.no_speech_id = vocab.get("<|nospeech|>", vocab.get("<|nocaptions|>"))
        self.sot_id = vocab["<|startoftranscript|>"]
        self.has_alignment_heads = getattr(self.model.generation_config, "alignment_heads", None) is not None
        prompt = " ".join(t.strip() for t in (self.options.hotwords, self.options.initial_prompt) if t and t.strip())
        self.prompt_ids = torch.tensor(self.processor.get_prompt_ids(prompt), device=self.device) if prompt else None

    def transcribe_batch(self, clips: list[np.ndarray], word_timestamps: bool = False,
                         beam_size: int | None = None, fallback: Fallback | None = None) -> list[Hypothesis]:
        _check_clips(clips, self.clip_seconds)
        results: list[Hypothesis] = [empty_hypothesis() for _ in clips]
        for offset, batch in _batches(clips, self.options.batch_size):
            todo = [(i, clip) for i, clip in enumerate(batch) if clip.size >= SAMPLE_RATE // 10]
            if todo:
                hyps = self._decode([clip for _, clip in todo], word_timestamps, beam_size or self.options.beam_size,
                                    fallback)
                for (i, _), hyp in zip(todo, hyps):
                    results[offset + i] = hyp
        return results

    def _decode(self, clips: list[np.ndarray], word_timestamps: bool, beam_size: int,
                fallback: Fallback | None) -> list[Hypothesis]:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        inputs = self.processor.feature_extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                                  return_attention_mask=True)
        features = inputs.input_features.to(self.device, self.model.dtype)
        mask = inputs.attention_mask.to(self.device)
        with torch.inference_mode():
            encoded = self.model.get_encoder()(features).last_hidden_state
            no_speech = self._no_speech_probs(BaseModelOutput(last_hidden_state=encoded))

        def generate(rows: list[int], beam: int) -> list[Hypothesis]:
            return self._generate([clips[i] for i in rows], BaseModelOutput(last_hidden_state=encoded[rows]),
                                  mask[rows], no_speech[rows], word_timestamps, beam)

        hyps = generate(list(range(len(clips))), beam_size)
        return fallback.apply(hyps, generate) if fallback else hyps

    def _generate(self, clips: list[np.ndarray], encoder_outputs, mask, no_speech: np.ndarray,
                  word_timestamps: bool, beam_size: int) -> list[Hypothesis]:
        import torch

        o = self.options
        want_times = word_timestamps and self.has_alignment_heads
        with torch.inference_mode():
            out = self.model.generate(
                encoder_outputs=encoder_outputs, attention_mask=mask,
                language=o.language, task=o.task, num_beams=beam_size,
                do_sample=False, max_new_tokens=o.new_tokens_for(max(c.size for c in clips) / SAMPLE_RATE),
                no_repeat_ngram_size=o.no_repeat_ngram_size, repetition_penalty=o.repetition_penalty,
                return_dict_in_generate=True, output_scores=True, return_token_timestamps=want_times,
                **({"prompt_ids": self.prompt_ids} if self.prompt_ids is not None else {}),
            )
        sequences = out["sequences"].cpu()
        # Whisper's generate already gathers a beam search's step scores along the chosen beams, one row per
        # sequence: passing its beam_indices as well would index them a second time.
        scores = self.model.compute_transition_scores(sequences, out["scores"], normalize_logits=True).cpu().float()
        times = out["token_timestamps"].cpu().float().numpy() if want_times else None
        prompt_len = sequences.shape[1] - scores.shape[1]
        hyps = []
        for b in range(len(clips)):
            ids = sequences[b, prompt_len:].tolist()
            logprobs = scores[b].numpy()
            keep = [j for j, t in enumerate(ids) if t < self.tokenizer.eos_token_id]
            text = self.tokenizer.decode([ids[j] for j in keep], skip_special_tokens=True).strip()
            finite = logprobs[np.isfinite(logprobs)][: len(keep) + 1]
            avg = float(finite.sum() / (len(keep) + 1)) if finite.size else 0.0
            words = []
            if times is not None:
                words = self._words(ids, keep, logprobs, times[b, prompt_len:], clips[b].size / SAMPLE_RATE)
            hyps.append(Hypothesis(text=text, words=words, avg_logprob=avg,
                                   compression_ratio=compression_ratio(text), no_speech_prob=float(no_speech[b])))
        return hyps

    def _no_speech_probs(self, encoder_outputs) -> np.ndarray:
        import torch

        n = encoder_outputs.last_hidden_state.shape[0]
        if self.no_speech_id is None:
            return np.zeros(n)
        start = torch.full((n, 1), self.sot_id, dtype=torch.long, device=self.device)
        logits = self.model(encoder_outputs=encoder_outputs, decoder_input_ids=start).logits[:, -1].float()
        return torch.softmax(logits, dim=-1)[:, self.no_speech_id].cpu().numpy()

    def _words(self, ids: list[int], keep: list[int], logprobs: np.ndarray, times: np.ndarray,
               duration: float) -> list[Word]:
        """Group byte-level BPE tokens into space-separated words; a token's time is where it starts."""
        pieces = self.tokenizer.convert_ids_to_tokens([ids[j] for j in keep])
        groups: list[list[int]] = []
        for j, piece in zip(keep, pieces):
            if not groups or piece.startswith("Ġ"):
                groups.append([])
            groups[-1].append(j)
        words = []
        for group in groups:
            text = self.tokenizer.decode([ids[j] for j in group], skip_special_tokens=True).strip()
            if not text:
                continue
            start = float(times[group[0]])
            end = float(times[group[-1] + 1]) if group[-1] + 1 < len(times) else float(times[group[-1]])
            start, end = min(start, duration), min(max(end, start), duration)
            words.append(Word(text, start, end, float(np.exp(np.mean(logprobs[group])))))
        return words


class CTCRecognizer:
    """wav2vec2-style CTC: greedy decoding; each character timed by the frames that emit it."""

    def __init__(self, model: str, device: str = "cpu", options: DecodeOptions | None = None):
        import torch
        from transformers import AutoFeatureExtractor, AutoModelForCTC, AutoTokenizer

        self.options = options or DecodeOptions()
        self.batch_size = self.options.batch_size
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        self.name = f"ctc:{model}"
        self.device = torch.device(device)
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(model)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCTC.from_pretrained(model).to(self.device).eval()
        self.blank_id = self.model.config.pad_token_id
        self.delimiter = getattr(self.tokenizer, "word_delimiter_token", "|") or "|"
        self.seconds_per_frame = float(np.prod(self.model.config.conv_stride)) / SAMPLE_RATE
        self.clip_seconds = WHISPER_WINDOW_SECONDS

    def transcribe_batch(self, clips: list[np.ndarray], word_timestamps: bool = False,
                         beam_size: int | None = None, fallback: Fallback | None = None) -> list[Hypothesis]:
        """Greedy CTC; `beam_size` and `fallback` are accepted for the interface and ignored (no language model to
        search with)."""
        import torch

        _check_clips(clips, self.clip_seconds)
        results: list[Hypothesis] = [empty_hypothesis() for _ in clips]
        for offset, batch in _batches(clips, self.options.batch_size):
            todo = [(i, clip) for i, clip in enumerate(batch) if clip.size >= SAMPLE_RATE // 10]
            if not todo:
                continue
            inputs = self.feature_extractor([clip for _, clip in todo], sampling_rate=SAMPLE_RATE,
                                            padding=True, return_tensors="pt", return_attention_mask=True)
            with torch.inference_mode():
                logits = self.model(inputs.input_values.to(self.device),
                                    attention_mask=inputs.attention_mask.to(self.device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
            for (i, clip), lp in zip(todo, logprobs):
                frames = min(len(lp), int(np.ceil(clip.size / SAMPLE_RATE / self.seconds_per_frame)))
                results[offset + i] = self._decode(lp[:frames], clip.size / SAMPLE_RATE)
        return results

    def _decode(self, logprobs: np.ndarray, duration: float) -> Hypothesis:
        best = logprobs.argmax(axis=-1)
        chars: list[tuple[str, float, float, float]] = []  # (text, start, end, probability)
        emitted_logprobs = []
        previous = -1
        for frame, token in enumerate(best):
            if token != previous and token != self.blank_id:
                piece = self.tokenizer.convert_ids_to_tokens(int(token))
                start = frame * self.seconds_per_frame
                chars.append((piece, start, start + self.seconds_per_frame, float(np.exp(logprobs[frame, token]))))
                emitted_logprobs.append(float(logprobs[frame, token]))
            elif token == previous and token != self.blank_id and chars:
                text, start, _, prob = chars[-1]
                chars[-1] = (text, start, (frame + 1) * self.seconds_per_frame, prob)
            previous = token
        words: list[Word] = []
        current: list[tuple[str, float, float, float]] = []
        for char in chars + [(self.delimiter, duration, duration, 1.0)]:
            if char[0] in (self.delimiter, " "):
                if current:
                    words.append(Word("".join(c[0] for c in current), current[0][1], min(current[-1][2], duration),
                                      float(np.mean([c[3] for c in current]))))
                current = []
            elif not (char[0].startswith("<") and char[0].endswith(">")):
                current.append(char)
        text = " ".join(w.text for w in words)
        avg = float(np.mean(emitted_logprobs)) if emitted_logprobs else 0.0
        # CTC has no no-speech head; VAD and the guards decide about silence.
        return Hypothesis(text=text, words=words, avg_logprob=avg, compression_ratio=compression_ratio(text),
                          no_speech_prob=0.0 if words else 1.0)


def _is_ctc_model(model: str) -> bool:
    config = Path(model) / "config.json"
    if config.is_file():
        architectures = json.loads(config.read_text()).get("architectures") or []
        return any(a.endswith("ForCTC") for a in architectures)
    return "wav2vec2" in model.lower() or "hubert" in model.lower()


def load_recognizer(model: str = DEFAULT_MODEL, backend: str = "auto", device: str = "cpu",
                    compute_type: str = "int8", **decode_options) -> Recognizer:
    """A recogniser for `model` (Hugging Face id, HF folder or CTranslate2 folder).

    backend "auto": a CTranslate2 folder or Whisper model -> ct2, a CTC model -> ctc.
    decode_options: fields of DecodeOptions (beam_size, batch_size, max_new_tokens, no_repeat_ngram_size, ...).
    """
    from .export import check_model_name, is_ct2_dir

    check_model_name(model)
    options = DecodeOptions.from_kwargs(decode_options)
    if backend == "auto":
        backend = "ct2" if is_ct2_dir(model) else ("ctc" if _is_ctc_model(model) else "ct2")
    if backend == "ct2":
        return CT2Whisper(model, device=device, compute_type=compute_type, options=options)
    if backend == "transformers":
        return TransformersWhisper(model, device=device, options=options)
    if backend == "ctc":
        return CTCRecognizer(model, device=device, options=options)
    raise ValueError(f"unknown backend {backend!r}: choose auto, ct2, transformers or ctc")
