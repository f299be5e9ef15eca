"""A small episode for the review tests: a tone WAV, machine cues built by kidsasr.cues, its VTT and side file."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kidsasr.audio import write_wav
from kidsasr.subtitles.cues import Cue, CueWord, build_cues, load_style, write_cues_json
from kidsasr.subtitles.writers import write_subtitles
from kidsasr.review.server import ReviewSession, make_server, open_session

KIDS = load_style("kids")
SPOKEN = [(0.5, "안녕하세요, 여러분", 0.95), (4.0, "오늘은 우리 친구들과 함께 토마토를 키워요", 0.35),
          (11.0, "정말 재미있어요", 0.9), (15.0, "다음 주에 또 만나요", 0.3)]


def machine_cues() -> list[Cue]:
    words = []
    for start, text, probability in SPOKEN:
        t = start
        for token in text.split():
            words.append(CueWord(token, t, t + 0.2 * len(token), probability))
            t += 0.2 * len(token) + 0.05
    return build_cues(words, KIDS)


def write_episode(folder: Path, name: str = "ep") -> tuple[Path, list[Cue]]:
    """folder/name.wav (18 s of a quiet tone) with name.vtt and name.cues.json from `machine_cues`."""
    folder.mkdir(parents=True, exist_ok=True)
    cues = machine_cues()
    write_subtitles(cues, folder / f"{name}.vtt")
    write_cues_json(cues, folder / f"{name}.cues.json", KIDS)
    t = np.arange(16000 * 18) / 16000
    write_wav(folder / f"{name}.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return folder / f"{name}.wav", cues


@contextmanager
def serving(session: ReviewSession):
    """The review server for `session` on a free port of 127.0.0.1: yields its base URL."""
    server = make_server(session, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["KIDS", "machine_cues", "open_session", "serving", "write_episode"]
