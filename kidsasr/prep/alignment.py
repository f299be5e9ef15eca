"""Forced alignment: check and refine sentence times against the audio.

Two backends share one interface (`Aligner.align` for labelled sentences, `Aligner.align_long` for a whole
transcript without times):

- `WhisperAligner` (default): the known text is teacher-forced through Whisper; the cross-attention of the
  alignment heads (from the model's `generation_config.json`) is normalised, median-filtered and aligned to the
  audio frames with DTW, which gives every token a start time (20 ms resolution). Sentences whose padded windows
  fit together are aligned jointly in one 30 s window, so one encoder pass serves several sentences.
- `CTCAligner`: any wav2vec2-style CTC model; the frame posteriors are aligned to the characters with
  `ctc_segmentation`, which also handles a whole episode in one pass.

Whisper's attention says little about where speech stops and silence begins (DTW hands the silence before a
sentence to its first token and the silence after it to its last, so both are capped to typical token lengths,
`text_edges`),
and zero-shot whisper-base hardly understands Korean; so each boundary is then snapped to the nearest silero-vad
speech edge within `snap_tolerance` (0.6 s) when there is one. On the generated demo corpus the attention alone
is right to about ±0.3 s and the VAD edges to a few tens of ms; neither alone finds the right edge among
several (`python data_prep/bench_align.py --corpus DIR` with `--no-vad` or `--kind vad` measures each part).
Confidence combines how much better the text fits this audio than silence (a per-token log-likelihood ratio)
with how much of the aligned span the VAD calls speech.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

import numpy as np

from ..constants import DEFAULT_MODEL, SAMPLE_RATE, WHISPER_WINDOW_SECONDS

WHISPER_FRAME_SECONDS = 0.02  # one encoder position


MAX_TARGET_TOKENS = 440  # Whisper's decoder has 448 positions


Regions = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class AlignItem:
    text_pron: str  # pronunciation side (kidsasr.textnorm.parse_label(...).pronunciation): Hangul and spaces
    label_start: float | None = None
    label_end: float | None = None


@dataclass(frozen=True)
class Alignment:
    start: float
    end: float
    confidence: float  # 0..1; about 0.5 and above: the text is found in the audio
    method: str  # e.g. "whisper-dtw", "whisper-dtw+vad", "ctc-seg", "label"
    ok: bool
    reason: str = ""  # why ok is False


class Aligner(Protocol):
    name: str

    def align(self, audio: np.ndarray, items: Sequence[AlignItem], regions: Regions | None = None) -> list[Alignment]:
        """Refine labelled sentences. `regions`: speech regions (s) if the caller has them already, found with tight
        edges as `speech_edges` does; computed here when None."""

    def align_long(self, audio: np.ndarray, texts: Sequence[str], regions: Regions | None = None) -> list[Alignment]:
        """Place a whole transcript (in order) that has no times."""


def load_aligner(kind: str = "whisper", model: str | None = None, device: str = "cpu", **options) -> Aligner:
    """`kind`: "whisper" (default model openai/whisper-base), "ctc" (any wav2vec2 CTC id or path), or "vad"
    (no model: label edges snapped to silero-vad speech edges; the cheap baseline the others are measured against)."""
    if kind == "vad":
        return VadAligner(**options)
    if kind == "whisper":
        return WhisperAligner(model or DEFAULT_MODEL, device=device, **options)
    if kind == "ctc":
        if model is None:
            raise ValueError("the ctc aligner needs a wav2vec2 CTC model id or path (model=...)")
        return CTCAligner(model, device=device, **options)
    raise ValueError(f"unknown aligner kind {kind!r}; expected 'whisper', 'ctc' or 'vad'")


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic path through `cost` (rows x columns) from (0, 0) to the last cell: (row indices, column indices)."""
    import librosa  # late import: numba compilation on first use

    if cost.shape[0] == 1:
        return np.zeros(cost.shape[1], dtype=int), np.arange(cost.shape[1])
    _, path = librosa.sequence.dtw(C=np.ascontiguousarray(cost, dtype=np.float64), backtrack=True)
    path = path[::-1]
    return path[:, 0], path[:, 1]


def row_start_frames(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> np.ndarray:
    """The first column the path visits in each row (n_rows values, non-decreasing)."""
    starts = np.full(n_rows, -1, dtype=int)
    for r, c in zip(rows, cols):
        if starts[r] < 0:
            starts[r] = c
    return starts


def attention_cost(weights: np.ndarray, filter_width: int = 7) -> np.ndarray:
    """Cross-attention (heads x tokens x frames) -> DTW cost (tokens x frames), as in openai/whisper timing.

    Each head is standardised over the tokens, median-filtered along time, then the heads are averaged.
    """
    from scipy.ndimage import median_filter

    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True) + 1e-8
    normed = (weights - mean) / std
    if filter_width > 1 and normed.shape[-1] >= filter_width:
        normed = median_filter(normed, size=(1, 1, filter_width), mode="nearest")
    return -normed.mean(axis=0)


def text_edges(token_starts: np.ndarray, typical: float, lead: int = 3) -> tuple[float, float]:
    """Start and end (s) of a text from the DTW start of each of its tokens and of the token after it.

    The first token also takes the non-speech before it and, in music or under another voice, the next one or two
    tokens collapse onto it as well; so the start is the latest of the first token's start and each of the next
    `lead` tokens' starts stepped back by a typical token length per token. The last token often takes the silence
    after it: it keeps at most two typical lengths (a final syllable is drawn out).
    """
    n = len(token_starts) - 1
    if n <= 1:
        return float(token_starts[0]), float(token_starts[-1])
    start = max(float(token_starts[0]), *(float(token_starts[j]) - j * typical for j in range(1, min(n, lead + 1))))
    end = min(float(token_starts[n]), float(token_starts[n - 1]) + 2 * typical)
    return start, max(end, start)


def speech_edges(audio: np.ndarray) -> list[tuple[float, float]]:
    """silero-vad speech regions (s) tuned for edges rather than for cutting clips: pauses of 100 ms split regions,
    10 ms padding, and speech ends as soon as its probability drops under the onset threshold (silero's default
    hysteresis keeps speech going 0.1-0.3 s into a music bed)."""
    from ..asr.vad import VadOptions, regions_from_probs, speech_probabilities

    options = VadOptions(threshold=0.5, neg_threshold=0.5, min_speech_duration_ms=150, min_silence_duration_ms=100,
                         speech_pad_ms=10)
    return regions_from_probs(speech_probabilities(audio).tolist(), audio.size, options)


def _refuse_unalignable(items: Sequence[AlignItem], duration: float) -> tuple[list[Alignment | None], list[AlignItem]]:
    """Refusals (with reasons) for items no model can align, and the items left to align (refused ones blanked)."""
    results: list[Alignment | None] = [None] * len(items)
    for i, it in enumerate(items):
        if it.label_start is None or it.label_end is None:
            results[i] = Alignment(0.0, 0.0, 0.0, "label", False, "no label times (use align_long)")
        elif not it.text_pron.strip():
            results[i] = Alignment(it.label_start, it.label_end, 0.0, "label", False, "no text to align")
        elif it.label_start >= duration:
            results[i] = Alignment(it.label_start, it.label_end, 0.0, "label", False, "label starts after the audio ends")
    todo = [it if results[i] is None else AlignItem("", None, None) for i, it in enumerate(items)]
    return results, todo


def _vad_regions(enabled: bool, audio: np.ndarray, regions: Regions | None) -> list[tuple[float, float]] | None:
    """The caller's speech regions, or silero-vad's, or None when snapping is off."""
    if not enabled:
        return None
    return list(regions) if regions is not None else speech_edges(audio)


def snap_to_speech(
    start: float, end: float, regions: Sequence[tuple[float, float]], tolerance: float = 0.4,
    label: tuple[float, float] | None = None, confirm: float = 0.1,
) -> tuple[float, float, bool]:
    """Move start to a speech onset and end to a speech offset: the one within `confirm` s of the label's edge when
    there is one (the audio confirms the label), else the one nearest the estimate within `tolerance` s, else the
    one nearest the label within `tolerance` s.

    The last case is the aligner's blind spot: DTW gives the first token of a window all the non-speech before it
    (and the last token what follows), so an estimate can land a second or more from any speech edge while the
    loose label still has one close by.

    Returns (start, end, snapped). An edge with no VAD edge close by stays where it is; a snap that would make the
    span shorter than 0.1 s is not taken.
    """
    def nearest(target: float, edges: list[float], within: float) -> float | None:
        near = [x for x in edges if abs(x - target) <= within]
        return min(near, key=lambda x: abs(x - target)) if near else None

    def pick(estimate: float, labelled: float | None, edges: list[float]) -> float | None:
        if labelled is None:
            return nearest(estimate, edges, tolerance)
        for candidate in (nearest(labelled, edges, confirm), nearest(estimate, edges, tolerance),
                          nearest(labelled, edges, tolerance)):
            if candidate is not None:
                return candidate
        return None

    label_start, label_end = label if label is not None else (None, None)
    new_start = pick(start, label_start, [s for s, _ in regions])
    new_end = pick(end, label_end, [e for _, e in regions])
    snapped = new_start is not None or new_end is not None
    new_start, new_end = start if new_start is None else new_start, end if new_end is None else new_end
    if new_end - new_start < 0.1:
        return start, end, False
    return new_start, new_end, snapped


def speech_coverage(start: float, end: float, regions: Sequence[tuple[float, float]]) -> float:
    """Share of [start, end] that the VAD calls speech."""
    if end <= start:
        return 0.0
    covered = sum(max(0.0, min(end, e) - max(start, s)) for s, e in regions)
    return min(1.0, covered / (end - start))


def combine_confidence(log_ratio: float, coverage: float) -> float:
    """Probability-like score from the mean per-token log-likelihood ratio (text given this audio vs given silence)
    and the VAD coverage of the aligned span. A text the audio does not support has a ratio near or below zero;
    whisper-base on the right Korean text, even synthetic speech it cannot transcribe, scores about 1-3 nats."""
    acoustic = 1.0 / (1.0 + math.exp(-4.0 * (log_ratio - 0.5)))
    return float(acoustic * (0.5 + 0.5 * coverage))


@dataclass
class Window:
    """A stretch of audio (seconds) and the items aligned jointly inside it, in time order."""

    start: float
    end: float
    items: list[int] = field(default_factory=list)


def pack_windows(
    items: Sequence[AlignItem], duration: float, padding: float = 1.0, max_seconds: float = WHISPER_WINDOW_SECONDS
) -> list[Window]:
    """Group timed items (sorted by label start) into windows of at most `max_seconds` around their padded labels.

    An item that overlaps the previous one by more than 0.2 s starts a new window: one DTW path cannot hold two
    speakers at once.
    """
    order = sorted((i for i, it in enumerate(items) if it.label_start is not None and it.label_end is not None),
                   key=lambda i: (items[i].label_start, items[i].label_end))
    windows: list[Window] = []
    for i in order:
        s = max(0.0, items[i].label_start - padding)
        e = min(duration, items[i].label_end + padding)
        if windows:
            w = windows[-1]
            last = items[w.items[-1]]
            if e - w.start <= max_seconds and items[i].label_start >= last.label_end - 0.2:
                w.items.append(i)
                w.end = max(w.end, e)
                continue
        windows.append(Window(s, min(e, s + max_seconds), [i]))
    return windows


@dataclass
class _Span:
    start: float
    end: float
    log_ratio: float
    token_count: int


class WhisperAligner:
    """Teacher-forced Whisper cross-attention + DTW, with silero-vad edge snapping.

    backend "ct2": CTranslate2's native `Whisper.align` (int8 on CPU; a Hugging Face id or folder is converted once
    and cached by kidsasr.asr.export); "transformers": the same computation in PyTorch (eager attention, any device).
    """

    name = "whisper"

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", backend: str = "ct2",
                 compute_type: str = "int8", threads: int = 0, language: str = "ko", padding: float = 1.0,
                 batch_size: int = 4, snap_tolerance: float = 0.6, vad: bool = True, min_confidence: float = 0.5):
        from transformers import WhisperProcessor

        if backend not in ("ct2", "transformers"):
            raise ValueError(f"unknown whisper backend {backend!r}; expected 'ct2' or 'transformers'")
        self.backend = backend
        self.device = device
        self.padding = padding
        self.batch_size = batch_size
        self.snap_tolerance = snap_tolerance
        self.vad = vad
        self.min_confidence = min_confidence
        self.processor = WhisperProcessor.from_pretrained(model)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.set_prefix_tokens(language=language, task="transcribe", predict_timestamps=False)
        self.prefix = self.tokenizer("", add_special_tokens=True).input_ids[:-1]  # sot, lang, task, notimestamps
        self.eot = self.tokenizer.eos_token_id
        if backend == "ct2":
            import ctranslate2

            from ..asr.export import cached_ct2, is_ct2_dir

            path = model if is_ct2_dir(model) else cached_ct2(model, compute_type)
            self.ct2 = ctranslate2.models.Whisper(str(path), device=device, compute_type=compute_type,
                                                  intra_threads=threads)
        else:
            import torch
            from transformers import WhisperForConditionalGeneration

            if threads:
                torch.set_num_threads(threads)
            self.model = WhisperForConditionalGeneration.from_pretrained(model, attn_implementation="eager")
            self.model.eval().to(device)
            heads = getattr(self.model.generation_config, "alignment_heads", None)
            if not heads:  # openai/whisper's default: every head of the upper half of the decoder
                layers, n_heads = self.model.config.decoder_layers, self.model.config.decoder_attention_heads
                heads = [[layer, h] for layer in range(layers // 2, layers) for h in range(n_heads)]
            self.heads = [tuple(h) for h in heads]
        self._silence_states = None

    # -- the model passes: per clip, the start (s) of every text token and of the end-of-text token, and the
    #    log-probability of every text token given the clip and given silence

    def _features(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.processor.feature_extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features

    def _passes_ct2(self, clips: list[np.ndarray], tokens: list[list[int]]):
        import ctranslate2

        states = self.ct2.encode(ctranslate2.StorageView.from_array(self._features(clips)))
        if self._silence_states is None:
            silence = self._features([np.zeros(SAMPLE_RATE, np.float32)])
            self._silence_states = np.array(self.ct2.encode(ctranslate2.StorageView.from_array(silence), to_cpu=True))
        null_states = ctranslate2.StorageView.from_array(np.repeat(self._silence_states, len(clips), axis=0))
        window = self.processor.feature_extractor.nb_max_frames  # mel frames (10 ms) the encoder reads
        n_frames = [max(2, min(len(c) // 160, window)) for c in clips]
        sot = self.prefix[:-1]  # CTranslate2 adds the no-timestamps token itself
        found = self.ct2.align(states, sot, tokens, n_frames)
        null = self.ct2.align(null_states, sot, tokens, [window] * len(clips))
        out = []
        for result, null_result, toks in zip(found, null, tokens):
            path = np.array(result.alignments, dtype=int).reshape(-1, 2)
            starts = row_start_frames(path[:, 0], path[:, 1], len(toks) + 1) * WHISPER_FRAME_SECONDS
            logp = np.log(np.maximum(np.array(result.text_token_probs[:len(toks)]), 1e-10))
            null_logp = np.log(np.maximum(np.array(null_result.text_token_probs[:len(toks)]), 1e-10))
            out.append((starts, logp, null_logp))
        return out

    def _passes_transformers(self, clips: list[np.ndarray], tokens: list[list[int]]):
        import torch

        seqs = [self.prefix + toks + [self.eot] for toks in tokens]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [self.eot] * (width - len(s)) for s in seqs], device=self.device)

        def run(states):
            out = self.model(encoder_outputs=(states,), decoder_input_ids=ids, output_attentions=True)
            logp = out.logits.float().log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
            return logp.cpu().numpy(), out.cross_attentions

        with torch.inference_mode():
            encoder = self.model.model.encoder
            states = encoder(torch.from_numpy(self._features(clips)).to(self.device)).last_hidden_state
            if self._silence_states is None:
                silence = torch.from_numpy(self._features([np.zeros(SAMPLE_RATE, np.float32)])).to(self.device)
                self._silence_states = encoder(silence).last_hidden_state
            logp, cross = run(states)
            null_logp, _ = run(self._silence_states.expand(len(clips), -1, -1))
            weights = torch.stack([cross[layer][:, head] for layer, head in self.heads], dim=1).float().cpu().numpy()
        first = len(self.prefix) - 1  # the no-timestamps position predicts the first text token
        out = []
        for b, (clip, toks) in enumerate(zip(clips, tokens)):
            n = len(toks)
            n_frames = max(1, min(len(clip) // 320, weights.shape[-1]))
            rows, cols = dtw_path(attention_cost(weights[b, :, first:first + n + 1, :n_frames]))
            starts = row_start_frames(rows, cols, n + 1) * WHISPER_FRAME_SECONDS
            out.append((starts, logp[b, first:first + n], null_logp[b, first:first + n]))
        return out

    def _align_windows(self, clips: list[np.ndarray], texts: list[list[str]]) -> list[list[_Span]]:
        """Align each clip (<= 30 s) with its list of texts; one _Span per text, times relative to the clip."""
        token_lists = [[self.tokenizer(" " + t, add_special_tokens=False).input_ids for t in ts] for ts in texts]
        flat = [[tok for toks in tl for tok in toks] for tl in token_lists]
        passes = self._passes_ct2 if self.backend == "ct2" else self._passes_transformers
        results = []
        for tl, (starts, logp, null_logp) in zip(token_lists, passes(clips, flat)):
            typical = max(0.06, float(np.median(np.diff(starts))))
            spans, k = [], 0
            for toks in tl:
                n = len(toks)
                ratio = float((logp[k:k + n] - null_logp[k:k + n]).mean()) if n else 0.0
                start, end = text_edges(starts[k:k + n + 1], typical)
                spans.append(_Span(start, end, ratio, n))
                k += n
            results.append(spans)
        return results

    def _run_windows(self, audio: np.ndarray, jobs: list[tuple[float, float, list[str]]]) -> list[list[_Span]]:
        """Batch (start, end, texts) windows through the model; spans come back in absolute seconds."""
        out: list[list[_Span]] = []
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b:b + self.batch_size]
            clips = [audio[int(s * SAMPLE_RATE):int(e * SAMPLE_RATE)] for s, e, _ in batch]
            for (s, _, _), spans in zip(batch, self._align_windows(clips, [t for _, _, t in batch])):
                out.append([replace(sp, start=sp.start + s, end=sp.end + s) for sp in spans])
        return out

    def _finish(self, span: _Span, regions: list[tuple[float, float]] | None, method: str,
                label: tuple[float, float] | None = None) -> Alignment:
        start, end = span.start, span.end
        if regions is not None:
            start, end, snapped = snap_to_speech(start, end, regions, self.snap_tolerance, label)
            method += "+vad" if snapped else ""
            coverage = speech_coverage(start, end, regions)
        else:
            coverage = 1.0
        confidence = combine_confidence(span.log_ratio, coverage)
        ok = confidence >= self.min_confidence
        return Alignment(start, end, confidence, method, ok, "" if ok else "low alignment confidence")

    # -- the public interface

    def align(self, audio: np.ndarray, items: Sequence[AlignItem], regions: Regions | None = None) -> list[Alignment]:
        duration = len(audio) / SAMPLE_RATE
        results, todo = _refuse_unalignable(items, duration)
        windows = pack_windows(todo, duration, self.padding)
        regions = _vad_regions(self.vad, audio, regions)
        spans = self._run_windows(audio, [(w.start, w.end, [items[i].text_pron for i in w.items]) for w in windows])
        for w, window_spans in zip(windows, spans):
            for i, span in zip(w.items, window_spans):
                results[i] = self._finish(span, regions, "whisper-dtw", (items[i].label_start, items[i].label_end))
        return results  # type: ignore[return-value]

    def align_long(self, audio: np.ndarray, texts: Sequence[str], regions: Regions | None = None,
                   chars_per_second: float = 9.0) -> list[Alignment]:
        """Align a whole transcript with no times, one 30 s window at a time.

        Each window gets as many of the next texts as could be spoken in it (at `chars_per_second`); texts that the
        alignment puts well before the window's end are kept and the next window starts after the last of them.
        """
        duration = len(audio) / SAMPLE_RATE
        regions = _vad_regions(self.vad, audio, regions)
        results: list[Alignment] = []
        cursor, i = 0.0, 0
        while i < len(texts):
            w_end = min(duration, cursor + WHISPER_WINDOW_SECONDS)
            batch, chars, tokens = [], 0, 0
            while i + len(batch) < len(texts):
                text = texts[i + len(batch)]
                n_tok = len(self.tokenizer(" " + text, add_special_tokens=False).input_ids)
                if batch and (chars + len(text) > chars_per_second * (w_end - cursor) or tokens + n_tok > MAX_TARGET_TOKENS):
                    break
                batch.append(text)
                chars, tokens = chars + len(text), tokens + n_tok
            spans = self._run_windows(audio, [(cursor, w_end, batch)])[0]
            last_window = w_end >= duration - 0.01
            keep = len(spans) if last_window else max(1, sum(1 for sp in spans if sp.end < w_end - 2.0))
            for sp in spans[:keep]:
                results.append(self._finish(sp, regions, "whisper-dtw-long"))
            i += keep
            cursor = max(cursor + 0.5, results[-1].end) if results else cursor + WHISPER_WINDOW_SECONDS
            if cursor >= duration - 0.05:
                for _ in texts[i:]:
                    results.append(Alignment(duration, duration, 0.0, "whisper-dtw-long", False, "no audio left for this text"))
                break
        return results


def ctc_segment(log_probs: np.ndarray, texts: Sequence[str], char_list: Sequence[str], blank: int,
                index_duration: float, word_delimiter: str | None = None) -> list[tuple[float, float, float]]:
    """CTC segmentation of `texts` (in order) over frame log-posteriors (frames x vocab).

    Returns (start, end, score) per text in seconds; start is the first character's frame, end the frame where the
    blank after the last character begins; score is ctc_segmentation's min-mean log-probability (<= 0).
    """
    from ctc_segmentation import CtcSegmentationParameters, ctc_segmentation, determine_utterance_segments, prepare_text

    config = CtcSegmentationParameters(char_list=list(char_list), blank=blank, index_duration=index_duration,
                                       min_window_size=min(8000, max(100, log_probs.shape[0])))
    config.update_excluded_characters()
    if word_delimiter:
        texts = [t.strip().replace(" ", word_delimiter) for t in texts]
    ground_truth, begins = prepare_text(config, texts)
    timings, char_probs, _ = ctc_segmentation(config, np.asarray(log_probs, dtype=np.float64), ground_truth)
    scored = determine_utterance_segments(config, begins, char_probs, timings, texts)
    out = []
    for k, (_, _, score) in enumerate(scored):
        first, after_last = begins[k] + 1, begins[k + 1]
        start = float(timings[min(first, len(timings) - 1)])
        end = float(timings[after_last]) if after_last > first else start
        out.append((start, end, float(score)))
    return out


class CTCAligner:
    """wav2vec2-style CTC posteriors aligned with ctc-segmentation; VAD snapping as for Whisper."""

    name = "ctc"

    def __init__(self, model: str, device: str = "cpu", padding: float = 1.0, chunk_seconds: float = 30.0,
                 snap_tolerance: float = 0.6, vad: bool = True, min_confidence: float = 0.5):
        import torch
        from transformers import AutoModelForCTC, AutoProcessor

        self.torch = torch
        self.device = device
        self.padding = padding
        self.chunk_seconds = chunk_seconds
        self.snap_tolerance = snap_tolerance
        self.vad = vad
        self.min_confidence = min_confidence
        self.processor = AutoProcessor.from_pretrained(model)
        self.model = AutoModelForCTC.from_pretrained(model).eval().to(device)
        vocab = self.processor.tokenizer.get_vocab()
        self.char_list = [""] * len(vocab)
        for token, index in vocab.items():
            if index < len(self.char_list):
                self.char_list[index] = token
        self.blank = self.processor.tokenizer.pad_token_id
        self.word_delimiter = getattr(self.processor.tokenizer, "word_delimiter_token", None)
        ratio = int(np.prod(getattr(self.model.config, "conv_stride", [320])))
        self.index_duration = ratio / SAMPLE_RATE

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        """Frame log-posteriors of `audio`, computed in chunks so long episodes keep memory flat."""
        chunk = int(self.chunk_seconds * SAMPLE_RATE)
        parts = []
        for s in range(0, max(1, len(audio)), chunk):
            piece = audio[s:s + chunk]
            if len(piece) < 400:  # shorter than the conv receptive field
                break
            inputs = self.processor.feature_extractor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with self.torch.inference_mode():
                logits = self.model(inputs.input_values.to(self.device)).logits[0]
            parts.append(logits.float().log_softmax(-1).cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.char_list)), dtype=np.float32)

    def _segments(self, audio: np.ndarray, texts: Sequence[str], offset: float,
                  regions: list[tuple[float, float]] | None, method: str,
                  labels: Sequence[tuple[float, float] | None] | None = None) -> list[Alignment]:
        lpz = self.log_probs(audio)
        if lpz.shape[0] < 2:
            return [Alignment(offset, offset, 0.0, method, False, "audio too short to align") for _ in texts]
        out = []
        segments = ctc_segment(lpz, texts, self.char_list, self.blank, self.index_duration, self.word_delimiter)
        for k, (start, end, score) in enumerate(segments):
            start, end = start + offset, end + offset
            if regions is not None:
                label_times = labels[k] if labels is not None else None
                start, end, snapped = snap_to_speech(start, end, regions, self.snap_tolerance, label_times)
                label = method + ("+vad" if snapped else "")
                coverage = speech_coverage(start, end, regions)
            else:
                label, coverage = method, 1.0
            confidence = float(math.exp(max(score, -50.0)) * (0.5 + 0.5 * coverage))
            ok = confidence >= self.min_confidence
            out.append(Alignment(start, end, confidence, label, ok, "" if ok else "low alignment confidence"))
        return out

    def align(self, audio: np.ndarray, items: Sequence[AlignItem], regions: Regions | None = None) -> list[Alignment]:
        duration = len(audio) / SAMPLE_RATE
        regions = _vad_regions(self.vad, audio, regions)
        results, todo = _refuse_unalignable(items, duration)
        for w in pack_windows(todo, duration, self.padding, self.chunk_seconds):
            clip = audio[int(w.start * SAMPLE_RATE):int(w.end * SAMPLE_RATE)]
            found = self._segments(clip, [items[i].text_pron for i in w.items], w.start, regions, "ctc-seg",
                                   [(items[i].label_start, items[i].label_end) for i in w.items])
            for i, a in zip(w.items, found):
                results[i] = a
        return results  # type: ignore[return-value]

    def align_long(self, audio: np.ndarray, texts: Sequence[str], regions: Regions | None = None) -> list[Alignment]:
        regions = _vad_regions(self.vad, audio, regions)
        return self._segments(audio, texts, 0.0, regions, "ctc-seg-long")


class VadAligner:
    """Label edges snapped to silero-vad speech edges, no model: the baseline that shows what a model adds."""

    name = "vad"

    def __init__(self, snap_tolerance: float = 0.6, min_confidence: float = 0.5):
        self.snap_tolerance = snap_tolerance
        self.min_confidence = min_confidence

    def align(self, audio: np.ndarray, items: Sequence[AlignItem], regions: Regions | None = None) -> list[Alignment]:
        regions = list(regions) if regions is not None else speech_edges(audio)
        out = []
        for it in items:
            if it.label_start is None or it.label_end is None:
                out.append(Alignment(0.0, 0.0, 0.0, "label", False, "no label times (the vad aligner cannot place text)"))
                continue
            start, end, snapped = snap_to_speech(it.label_start, it.label_end, regions, self.snap_tolerance,
                                                 (it.label_start, it.label_end))
            confidence = speech_coverage(start, end, regions)
            ok = confidence >= self.min_confidence
            out.append(Alignment(start, end, confidence, "vad" if snapped else "label", ok,
                                 "" if ok else "low alignment confidence (little speech in the span)"))
        return out

    def align_long(self, audio: np.ndarray, texts: Sequence[str], regions: Regions | None = None) -> list[Alignment]:
        return [Alignment(0.0, 0.0, 0.0, "label", False, "no label times (the vad aligner cannot place text)")
                for _ in texts]
