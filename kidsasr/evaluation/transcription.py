"""Transcribe labelled audio in batches with a resumable per-model cache (stage 2 of `kidsasr eval`)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..constants import SAMPLE_RATE
from ..manifest import decode_audio, load_split
from .inputs import EvalInputError
from .sources import LabelledSet, SpanLoader

if TYPE_CHECKING:
    from ..asr.models import Recognizer


@dataclass
class Transcription:
    texts: dict[str, str]
    compute_seconds: float
    audio_seconds: float
    failures: dict[str, str]  # id -> reason; these utterances are scored as missing (all deletions)

    @property
    def real_time_factor(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else float("nan")


def transcribe_labelled(labelled: LabelledSet, ids: list[str], load_recognizer: Callable[[], Recognizer],
                        cache: Path, batch_size: int = 8) -> Transcription:
    """Transcribe the utterances `ids` of a labelled set in batches; each batch is appended to `cache` (JSON lines)
    as it finishes, so an interrupted run resumes where it stopped. The model is only loaded when something is left
    to transcribe. Audio that cannot be read, like a clip the model fails on, goes to `failures` with the reason."""
    from tqdm import tqdm

    if labelled.audio is None and labelled.prep_dir is None:
        raise EvalInputError(f"{labelled.source}: its rows name no audio ('audio' or 'audio_source'), so there is "
                             "nothing to transcribe; score a hypotheses file with --hyps instead")
    done = _read_cache(cache)
    todo = [uid for uid in dict.fromkeys(ids) if uid not in done]
    recognizer = load_recognizer() if todo else None
    failures: dict[str, str] = {}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "a", encoding="utf-8") as f, tqdm(total=len(set(ids)), initial=len(set(ids)) - len(todo),
                                                       desc="transcribing", unit="utt") as bar:
        for batch in _audio_batches(labelled, todo, batch_size, failures):
            for row in _transcribe_rows(recognizer, batch, failures):
                done[row["id"]] = row
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    rows = [done[i] for i in ids if i in done]
    return Transcription({r["id"]: r["text"] for r in rows}, sum(r["compute_seconds"] for r in rows),
                         sum(r["audio_seconds"] for r in rows), failures)


def _audio_batches(labelled: LabelledSet, ids: list[str], batch_size: int, failures: dict[str, str]
                   ) -> Iterator[list[tuple[str, np.ndarray]]]:
    """(id, audio) batches in `ids` order; an utterance whose audio cannot be read goes to `failures`."""
    if labelled.prep_dir is not None:
        ds = load_split(labelled.prep_dir, labelled.split)
        position = {uid: i for i, uid in enumerate(ds["id"])}
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            cells = ds.select([position[uid] for uid in chunk])["audio"]
            yield [item for uid, cell in zip(chunk, cells) if (item := _read(uid, lambda: decode_audio(cell), failures))]
        return
    span_of = dict(zip((u.id for u in labelled.utterances), labelled.audio or []))
    load = SpanLoader()
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        yield [item for uid in chunk if (item := _read(uid, lambda: load(span_of[uid]), failures))]


def _read(uid: str, load: Callable[[], np.ndarray], failures: dict[str, str]) -> tuple[str, np.ndarray] | None:
    try:
        return uid, load()
    except Exception as e:  # unreadable audio is this utterance's failure, not the run's
        failures[uid] = f"audio not readable: {type(e).__name__}: {e}"
        return None


def _transcribe_rows(recognizer: Recognizer, batch: list[tuple[str, np.ndarray]], failures: dict[str, str]
                     ) -> list[dict]:
    """Cache rows for one batch. If the batch fails, each clip is tried alone; a clip that still fails (too long,
    a decoder error) goes to `failures` with the reason and the rest of the set goes on."""
    if not batch:
        return []
    try:
        began = time.perf_counter()
        hyps = recognizer.transcribe_batch([clip for _, clip in batch])
        seconds = (time.perf_counter() - began) / len(batch)
    except Exception as e:  # any decoder or model failure is isolated to the clip that causes it
        if len(batch) == 1:
            failures[batch[0][0]] = f"{type(e).__name__}: {e}"
            return []
        return [row for item in batch for row in _transcribe_rows(recognizer, [item], failures)]
    return [{"id": uid, "text": hyp.text, "audio_seconds": len(clip) / SAMPLE_RATE, "compute_seconds": seconds}
            for (uid, clip), hyp in zip(batch, hyps)]


def _read_cache(cache: Path) -> dict[str, dict]:
    """Rows of a transcription cache; a line cut short by an interruption is ignored (it is redone)."""
    done: dict[str, dict] = {}
    if cache.exists():
        for line in cache.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["id"]] = row
    return done


def transcribe_cached(labelled: LabelledSet, ids: list[str], model: str, backend: str, out: Path,
                      device: str = "cpu", compute_type: str = "int8", batch_size: int = 8) -> Transcription:
    """transcribe_labelled with `model` and its cache in `out`: one cache file per model, backend and compute type,
    so a rerun with another model never reuses these hypotheses."""
    from ..asr.models import load_recognizer

    key = hashlib.sha1(f"{model}|{backend}|{compute_type}".encode()).hexdigest()[:8]
    cache = out / f"hyps-{slug(model)}-{backend}-{key}.jsonl"
    print(f"transcribing {len(ids)} utterances of {labelled.source} with {model} ({backend}); cache {cache}")
    t = transcribe_labelled(labelled, ids, lambda: load_recognizer(model, backend=backend, device=device,
                                                                   compute_type=compute_type), cache, batch_size)
    for uid, reason in t.failures.items():
        print(f"warning: {labelled.source}: utterance {uid} not transcribed ({reason}); scored as all deletions")
    return t


def slug(text: str) -> str:
    """A file-name-safe short name of a model id or path."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text.rstrip("/").split("/")[-1]).strip("-") or "run"
