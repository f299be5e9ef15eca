"""Transcribe a prepared split in batches with a resumable per-model cache (stage 2 of `kidsasr eval`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..manifest import decode_audio, load_split

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


def transcribe_split(data: str | Path, split: str, ids: list[str], load_recognizer: Callable[[], Recognizer],
                     cache: Path, batch_size: int = 8) -> Transcription:
    """Transcribe the utterances `ids` of a prepared split in batches; each batch is appended to `cache`
    (JSON lines) as it finishes, so an interrupted run resumes where it stopped. The model is only loaded
    when something is left to transcribe."""
    from tqdm import tqdm

    done = _read_cache(cache)
    wanted = set(ids)
    ds = load_split(data, split)
    todo = [i for i, uid in enumerate(ds["id"]) if uid in wanted and uid not in done]
    recognizer = load_recognizer() if todo else None
    failures: dict[str, str] = {}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "a", encoding="utf-8") as f, tqdm(total=len(wanted), initial=len(wanted) - len(todo),
                                                       desc="transcribing", unit="utt") as bar:
        for start in range(0, len(todo), batch_size):
            batch = ds.select(todo[start:start + batch_size])
            for row in _transcribe_rows(recognizer, batch["id"], batch["audio"], failures):
                done[row["id"]] = row
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    rows = [done[i] for i in ids if i in done]
    return Transcription({r["id"]: r["text"] for r in rows}, sum(r["compute_seconds"] for r in rows),
                         sum(r["audio_seconds"] for r in rows), failures)


def _transcribe_rows(recognizer: Recognizer, ids: list[str], cells: list[dict], failures: dict[str, str]) -> list[dict]:
    """Cache rows for one batch. If the batch fails, each clip is tried alone; a clip that still fails (bad
    audio, too long) goes to `failures` with the reason and the rest of the split goes on."""
    try:
        clips = [decode_audio(cell) for cell in cells]
        began = time.perf_counter()
        hyps = recognizer.transcribe_batch(clips)
        seconds = (time.perf_counter() - began) / len(clips)
    except Exception as e:  # any decoder or model failure is isolated to the clip that causes it
        if len(ids) == 1:
            failures[ids[0]] = f"{type(e).__name__}: {e}"
            return []
        return [row for uid, cell in zip(ids, cells) for row in _transcribe_rows(recognizer, [uid], [cell], failures)]
    return [{"id": uid, "text": hyp.text, "audio_seconds": len(clip) / 16000, "compute_seconds": seconds}
            for uid, clip, hyp in zip(ids, clips, hyps)]


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
