"""Load a model for a recipe and reshape it: decoder layers kept (distil-whisper), a shorter encoder window,
frozen parts, and the CTC head with its character vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor,
                          WhisperForConditionalGeneration, WhisperProcessor)

from ..constants import SAMPLE_RATE
from ..fileio import write_json_atomic
from .data import PAD_CHAR, UNK_CHAR, WORD_DELIMITER
from .recipe import Recipe, RecipeError


def load_whisper(recipe: Recipe):
    m = recipe.model
    name = m.name_or_path
    processor = WhisperProcessor.from_pretrained(name)
    processor.tokenizer.set_prefix_tokens(language=m.language, task=m.task, predict_timestamps=False)
    if processor.tokenizer.pad_token is None:  # hub copies name <|endoftext|>; without one, transformers 5.17's
        processor.tokenizer.pad_token = processor.tokenizer.eos_token  # Trainer unsets the model's pad_token_id
    spec_augment = m.mask_time_prob > 0 or m.mask_feature_prob > 0
    model = WhisperForConditionalGeneration.from_pretrained(
        name, apply_spec_augment=spec_augment, mask_time_prob=m.mask_time_prob, mask_time_length=m.mask_time_length,
        mask_feature_prob=m.mask_feature_prob, mask_feature_length=m.mask_feature_length, dropout=m.dropout)
    if m.decoder_layers:
        shrink_decoder(model, m.decoder_layers)
    if m.encoder_seconds:
        shorten_encoder_window(model, processor.feature_extractor, m.encoder_seconds)
    window = processor.feature_extractor.chunk_length
    if max(recipe.data.max_duration, recipe.data.pack_seconds) > window:
        raise RecipeError(f"{name} reads {window} s windows: set data.max_duration and data.pack_seconds to at most "
                          f"{window} (or model.encoder_seconds)")
    gen = model.generation_config
    gen.language, gen.task, gen.forced_decoder_ids = m.language, m.task, None
    gen.max_new_tokens, gen.num_beams = recipe.train.max_new_tokens, recipe.train.num_beams
    gen.max_length = None
    model.config.forced_decoder_ids = None
    return model, processor


def shrink_decoder(model, keep: list[int]) -> None:
    """Keep only decoder layers `keep` (increasing indices), in place: distil-whisper's student initialisation.

    The word-timestamp alignment heads that sat in kept layers are renumbered; when none did, every head of the
    last kept layer is used (what CTranslate2 and transformers assume for a model without a list).
    """
    layers = model.model.decoder.layers
    if not keep or max(keep) >= len(layers):
        raise RecipeError(f"model.decoder_layers: {keep} is not a subset of the model's {len(layers)} decoder layers")
    model.model.decoder.layers = torch.nn.ModuleList([layers[k] for k in keep])
    for new, layer in enumerate(model.model.decoder.layers):
        for attention in (layer.self_attn, layer.encoder_attn):
            attention.layer_idx = new  # the key/value cache is indexed by it
    model.config.decoder_layers = len(keep)
    gen = model.generation_config
    heads = [[keep.index(layer), head] for layer, head in getattr(gen, "alignment_heads", None) or [] if layer in keep]
    gen.alignment_heads = heads or [[len(keep) - 1, h] for h in range(model.config.decoder_attention_heads)]


def shorten_encoder_window(model, feature_extractor, seconds: float) -> None:
    """Make the encoder read `seconds` of audio instead of 30, in place (its first positions are kept).

    Every clip is padded to the encoder's window, and self-attention over the window grows with its square: on a
    CPU, two 15 s windows encode in about half the time of one 30 s window (see eval/RESULTS.md). A Whisper
    checkpoint reads a shorter window at once, but less accurately until it is fine-tuned with it.
    """
    encoder = model.model.encoder
    positions = round(seconds * SAMPLE_RATE / feature_extractor.hop_length / 2)  # the encoder halves the frames
    current = encoder.embed_positions.num_embeddings
    if seconds != int(seconds) or not 0 < positions <= current:
        raise RecipeError(f"model.encoder_seconds: {seconds} must be a whole number of seconds in 1.."
                          f"{current * 2 * feature_extractor.hop_length // SAMPLE_RATE}")
    embed = torch.nn.Embedding(positions, model.config.d_model)
    embed.weight.data.copy_(encoder.embed_positions.weight.data[:positions])
    embed.requires_grad_(False)  # Whisper's sinusoidal positions stay fixed, as in the original
    encoder.embed_positions = embed
    model.config.max_source_positions = positions
    feature_extractor.chunk_length = int(seconds)
    feature_extractor.n_samples = int(seconds) * feature_extractor.sampling_rate
    feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length


def freeze_whisper(model, recipe: Recipe) -> None:
    m = recipe.model
    enc = model.get_encoder()
    if m.frozen_encoder_layers:
        for module in (enc.conv1, enc.conv2, *enc.layers[: m.frozen_encoder_layers]):
            module.requires_grad_(False)
    if m.decoder_trainable != "all":
        model.get_decoder().requires_grad_(False)
        model.proj_out.requires_grad_(False)
    if m.decoder_trainable == "cross_attention":
        for layer in model.get_decoder().layers:
            layer.encoder_attn.requires_grad_(True)
            layer.encoder_attn_layer_norm.requires_grad_(True)


def ctc_processor(vocab: dict[str, int], out_dir: Path) -> Wav2Vec2Processor:
    """Character tokenizer (vocabulary saved as OUT/vocab.json) and feature extractor for CTC."""
    vocab_file = out_dir / "vocab.json"
    if not (vocab_file.is_file() and json.loads(vocab_file.read_text(encoding="utf-8")) == vocab):
        write_json_atomic(vocab_file, vocab)  # another process of the run may have written it already
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), unk_token=UNK_CHAR, pad_token=PAD_CHAR, bos_token=None,
                                     eos_token=None, word_delimiter_token=WORD_DELIMITER)
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                        do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer)


def load_ctc(recipe: Recipe, vocab: dict[str, int], out_dir: Path):
    m = recipe.model
    processor = ctc_processor(vocab, out_dir)
    model = Wav2Vec2ForCTC.from_pretrained(
        m.name_or_path, vocab_size=len(vocab), pad_token_id=vocab[PAD_CHAR], ctc_loss_reduction="mean",
        ctc_zero_infinity=True, mask_time_prob=m.mask_time_prob, mask_time_length=m.mask_time_length,
        mask_feature_prob=m.mask_feature_prob, mask_feature_length=m.mask_feature_length,
        hidden_dropout=m.dropout, ignore_mismatched_sizes=True)
    if m.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if m.frozen_encoder_layers:
        for layer in model.wav2vec2.encoder.layers[: m.frozen_encoder_layers]:
            layer.requires_grad_(False)
    return model, processor
