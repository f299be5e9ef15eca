"""`kidsasr prep`: turn a corpus into clean, aligned, filtered training data.

Stages (ESPnet/icefall style; the config in data_prep/config.yaml, the code here):
  1. read     labels and audio headers (kidsasr.corpus); reader problems are rejections
  2. split    train/dev/test per episode, disjoint by programme or episode, stratified by category (.splits)
  3. process  one work shard per episode, on a process pool or a Ray cluster (.runner):
              clean (.cleaning) -> align (.alignment) -> filter (.filters) -> FLAC clips (this module).
              A shard writes work/<key>.parquet, then its done-marker work/<key>.json; a rerun skips done shards,
              so a killed run resumes without losing or duplicating anything.
  4. write    dataset/<split>/*.parquet, manifest.jsonl, rejected.jsonl (sorted, so reruns are identical; .output)
  5. report   report.json, report.md, boundary_corrections.png (.report)

Every sentence the reader saw ends up kept or rejected with a reason: kept + rejected = read.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from ..audio import AudioError
from ..constants import SAMPLE_RATE
from ..corpus.reader import Episode, ReadReport, Sentence
from ..fileio import write_json_atomic
from ..manifest import Utterance
from .cleaning import EpisodeSignal, analyse, flac_bytes, normalise, segment_quality
from .config import AlignConfig, OutputConfig, PrepConfig
from .filters import (Rejection, check_confidence, check_duration, check_quality, check_rate,
                      check_text, overlapping_neighbours, reader_reason_code)
from .output import dataset_row, write_parquet
from .splits import EpisodeKey, SplitConfig, assign_splits


def read_stage(corpus: Path, limit_hours: float | None) -> tuple[list[Episode], ReadReport]:
    from ..corpus.related import read_any

    report = ReadReport()
    episodes: list[Episode] = []
    hours = 0.0
    for episode in read_any(corpus, report):
        episodes.append(episode)
        hours += float(episode.metadata.get("duration_s") or 0.0) / 3600
        if limit_hours is not None and hours >= limit_hours:
            break
    return episodes, report


def _labelled_hours(episode: Episode) -> float:
    return sum(s.end - s.start for s in episode.sentences if s.start is not None and s.end is not None) / 3600


def split_stage(episodes: list[Episode], config: SplitConfig) -> dict[str, str]:
    keys = [EpisodeKey(e.id, e.program, e.category, _labelled_hours(e) or 1e-6) for e in episodes]
    return assign_splits(keys, config)


def reader_rejections(report: ReadReport) -> list[dict]:
    rows = []
    for issue in report.issues:
        if issue.severity != "error":
            continue
        rows.append(_rejection_row(issue.episode_id, issue.sentence_index, issue.path, "read",
                                   Rejection(reader_reason_code(issue.reason), issue.reason), sentences=issue.sentences))
    return rows


def _rejection_row(episode_id: str | None, index: int | None, source: str, stage: str, rejection: Rejection,
                   sentence: Sentence | None = None, others: Iterable[Rejection] = (), sentences: int = 1) -> dict:
    start = sentence.start if sentence is not None else None
    end = sentence.end if sentence is not None else None
    return {
        "id": f"{episode_id}_{index:04d}" if episode_id is not None and index is not None else None,
        "episode_id": episode_id, "sentence_index": index, "source": source, "stage": stage,
        "reason": rejection.code, "detail": rejection.detail,
        "other_reasons": [f"{o.code}: {o.detail}" for o in others],
        "sentences": sentences, "start": start, "end": end,
        "duration": round(end - start, 3) if start is not None and end is not None else None,
        "raw_text": sentence.text if sentence is not None else None,
    }


@dataclass
class ShardTask:
    episode: Episode
    split: str
    key: str
    work_dir: str
    config: PrepConfig


def shard_key(episode: Episode) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in episode.id)[:60]
    return f"{safe}-{hashlib.sha1(f'{episode.label_path}|{episode.id}'.encode()).hexdigest()[:8]}"


def _format_problem(episode: Episode, config: OutputConfig) -> Rejection | None:
    rate, channels = episode.metadata.get("sample_rate"), episode.metadata.get("channels")
    if rate in (None, config.expected_sample_rate) and channels in (None, config.expected_channels):
        return None
    return Rejection("format_mismatch", f"audio is {rate} Hz with {channels} channel(s); the corpus is "
                                        f"{config.expected_sample_rate} Hz with {config.expected_channels}")


@lru_cache(maxsize=2)
def _aligner(config: AlignConfig):
    from .alignment import load_aligner

    model = config.whisper_model if config.aligner == "whisper" else config.ctc_model
    return load_aligner(config.aligner, model, device=config.device)


def _align(signal: EpisodeSignal, sentences: list[Sentence], texts: list[str],
           config: AlignConfig) -> list[tuple[float, float, float] | Rejection]:
    """Refined (start, end, confidence) per sentence, or why the aligner could not place it.

    Sentences with label times are refined around them; those without are placed by the long-form mode.
    """
    from .alignment import AlignItem

    aligner = _aligner(config)
    timed = [i for i, s in enumerate(sentences) if s.start is not None and s.end is not None]
    untimed = [i for i, s in enumerate(sentences) if s.start is None or s.end is None]
    results: list = [None] * len(sentences)
    found = aligner.align(signal.audio, [AlignItem(texts[i], sentences[i].start, sentences[i].end) for i in timed])
    if untimed:
        found += aligner.align_long(signal.audio, [texts[i] for i in untimed])
    for i, alignment in zip(timed + untimed, found):
        # A placement the aligner only doubts keeps its times: filters.min_confidence (the config) decides.
        if alignment.ok or "confidence" in alignment.reason:
            results[i] = (alignment.start, alignment.end, alignment.confidence)
        else:
            results[i] = Rejection("alignment_failed", f"{alignment.method}: {alignment.reason}")
    return results


def process_episode(task: ShardTask) -> str:
    """Clean, align and filter one episode; write its kept clips and its done-marker. Returns the key."""
    episode, config = task.episode, task.config
    kept_rows: list[dict] = []
    audio_cells: list[dict] = []
    rejected: list[dict] = []
    corrections: list[tuple[float, float]] = []

    def reject(sentence: Sentence, stage: str, found: list[Rejection]) -> None:
        rejected.append(_rejection_row(episode.id, sentence.index, str(episode.audio), stage, found[0], sentence,
                                       found[1:]))

    problem = _format_problem(episode, config.output) if config.output.format_mismatch == "reject" else None
    signal = None
    if problem is None:
        try:
            signal = analyse(episode.audio.load(), config.cleaning.vad_threshold)
        except (AudioError, OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile) as e:
            problem = Rejection("bad_audio", f"cannot load audio: {getattr(e, 'reason', e)}")
    if signal is None:
        for sentence in episode.sentences:
            reject(sentence, "clean", [problem])
        return _finish(task, kept_rows, audio_cells, rejected, corrections)

    from ..textnorm import is_tag_only, parse_label

    candidates: list[tuple[Sentence, Any]] = []
    for sentence in episode.sentences:
        transcript = parse_label(sentence.text)
        found = check_text(transcript.spelling, transcript.pronunciation, is_tag_only(sentence.text))
        if found is None and sentence.end is not None and sentence.end > signal.duration + 0.05:
            found = Rejection("truncated_audio", f"ends at {sentence.end:.2f} s; the decoded audio stops at "
                                                 f"{signal.duration:.2f} s")
        if found is None and sentence.start is None and config.alignment.aligner == "none":
            found = Rejection("no_times", "no times in the label and --aligner none")
        if found is not None:
            reject(sentence, "filter", [found])
        else:
            candidates.append((sentence, transcript))

    if config.alignment.aligner == "none":
        placed = [(s.start, s.end, None) for s, _ in candidates]
    else:
        _aligner(config.alignment)  # a model that cannot load stops the run; a failure on one episode does not
        try:
            placed = _align(signal, [s for s, _ in candidates], [t.pronunciation for _, t in candidates],
                            config.alignment)
        except Exception as e:  # noqa: BLE001 - reported per sentence, and the batch goes on
            placed = [Rejection("alignment_failed", f"aligner error: {type(e).__name__}: {e}")] * len(candidates)
    spans = [(p[0], p[1]) if isinstance(p, tuple) else (s.start or 0.0, s.end or 0.0)
             for (s, _), p in zip(candidates, placed)]
    overlaps = overlapping_neighbours(spans, config.filters.max_overlap)
    for i, ((sentence, transcript), place) in enumerate(zip(candidates, placed)):
        if isinstance(place, Rejection):
            reject(sentence, "align", [place])
            continue
        start, end, confidence = round(float(place[0]), 3), round(float(place[1]), 3), place[2]
        quality = segment_quality(signal, start, end, config.cleaning)
        found = [r for r in (check_duration(start, end, config.filters),
                             check_rate(transcript.pronunciation, start, end, config.filters),
                             check_confidence(confidence, config.filters)) if r is not None]
        found += check_quality(quality, config.filters)
        if i in overlaps:
            other = candidates[overlaps[i]][0]
            found.append(Rejection("overlap", f"overlaps sentence {other.index} by more than "
                                              f"{config.filters.max_overlap:g} s"))
        if found:
            reject(sentence, "filter", found)
            continue
        clip, gain_db = normalise(signal.audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)], quality.speech_db,
                                  config.cleaning)
        speaker = sentence.speaker
        utterance = Utterance(
            id=f"{episode.id}_{sentence.index:04d}", episode_id=episode.id, split=task.split,
            audio_source=str(episode.audio), start=start, end=end, text=transcript.spelling,
            text_pron=transcript.pronunciation, raw_text=sentence.text, category=episode.category,
            program=episode.program, speaker_id=speaker.id if speaker else None,
            speaker_role=speaker.role if speaker else None, age_group=speaker.age_group if speaker else None,
            sex=speaker.sex if speaker else None, condition=quality.condition,
            confidence=None if confidence is None else round(float(confidence), 4),
            label_start=sentence.start, label_end=sentence.end)
        row = utterance.to_row()
        row["quality"] = {"speech_ratio": round(quality.speech_ratio, 3), "snr_db": round(quality.snr_db, 1),
                          "clipped_fraction": round(quality.clipped_fraction, 5), "gain_db": round(gain_db, 2)}
        kept_rows.append(row)
        audio_cells.append({"bytes": flac_bytes(clip), "path": f"{utterance.id}.flac"})
        if sentence.start is not None and sentence.end is not None:
            corrections.append((round(start - sentence.start, 3), round(end - sentence.end, 3)))
    return _finish(task, kept_rows, audio_cells, rejected, corrections)


def _finish(task: ShardTask, kept_rows: list[dict], audio_cells: list[dict], rejected: list[dict],
            corrections: list[tuple[float, float]]) -> str:
    work = Path(task.work_dir)
    if kept_rows:
        write_parquet(work / f"{task.key}.parquet", [dataset_row(r, a) for r, a in zip(kept_rows, audio_cells)])
    write_json_atomic(work / f"{task.key}.json", {
        "episode_id": task.episode.id, "split": task.split, "category": task.episode.category,
        "audio_hours": float(task.episode.metadata.get("duration_s") or 0.0) / 3600,
        "kept": kept_rows, "rejected": rejected, "corrections": corrections})
    return task.key
