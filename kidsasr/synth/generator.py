"""`kidsasr synth`: a synthetic children's-broadcast corpus in the AI Hub 71502 layout.

Each episode is a children's programme excerpt: adult hosts and children take turns (mostly child-adult, some
child-child, a few overlapping), with natural gaps, a music bed under part of it, applause and laughter, studio
or location noise at varied SNR, some room reverb and level changes. Sentences come from `kidsasr.synth.textbank`;
espeak-ng speaks their pronunciation side (numbers spelled in Hangul) while the label keeps the bank's label,
KsponSpeech marks included. In each episode 30% of the sentences have their label times jittered by 0.1-0.5 s
per boundary; the true times (and each sentence's condition: clean, music or noise; overlap) are in
`OUT/truth.jsonl`.

Sizes: `tiny` is the test suite's corpus: 8 episodes of 12-14.5 s (shorter than real 2-20 minute excerpts, so it
stays under 2 minutes of audio and a few seconds of work), one per category in Training and in Validation.
`demo` is 12 episodes of 2-3 minutes (about 30 minutes); `bench` 60 episodes of 2-20 minutes (about 11 hours),
generated one episode per process-pool task and streamed to disk.

The output depends only on size and seed: the same bytes whatever the number of workers, and an interrupted
run picks up where it stopped (finished episodes leave a marker with their truth rows).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..audio import to_pcm16
from ..constants import SAMPLE_RATE
from ..corpus.reader import CATEGORIES
from ..fileio import (BusyError, atomic_path, read_jsonl, remove_stale_parts, run_lock, write_json_atomic,
                      write_jsonl_atomic)
from ..textnorm import parse_label
from . import broadcast_mix as mix
from .textbank import BankSentence, sentence_bank, write_text_corpus
from .voices import ADULT_HOSTS, CHILD_VOICES, Voice, require_espeak, speak

SR = SAMPLE_RATE
VERSION = "kidsasr-synth-1"
DATASET_ID = "71502"
DATA_DIR = "01.데이터"
SOURCE_DIR, LABEL_DIR = "01.원천데이터", "02.라벨링데이터"
PART_PREFIXES = {"Training": ("TS", "TL"), "Validation": ("VS", "VL")}
TEXT_CORPUS_FILE = "text_corpus.jsonl"
TRUTH_FILE = "truth.jsonl"
STAMP_FILE = "synth.done"  # JSON; not named .json so corpus readers do not take it for a label
PROGRESS_DIR = ".synth-progress"
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
TASKS_PER_WORKER = 8  # episodes a pool worker renders before it is replaced

JITTER_SHARE = 0.3  # share of each episode's sentences whose label times are moved
JITTER_RANGE = (0.1, 0.5)  # seconds, each boundary independently, either direction
OVERLAP_PROB = 0.025  # a turn starts before the previous one has ended
SPEECH_DBFS = -22.0  # RMS level of a sentence before speaker and turn gains

CATEGORY_CODES = {"미취학 아동 발달 교육": "P", "어린이 교육": "E", "어린이 드라마": "D", "어린이 예능": "V"}
PROGRAMS = {
    "미취학 아동 발달 교육": (("방긋방긋 놀이터", "EBS"), ("꼬마 탐험대", "EBS"), ("아기 곰 노래 교실", "KBS")),
    "어린이 교육": (("신나는 과학 교실", "EBS"), ("숫자 나라 친구들", "EBS"), ("우리말 탐정단", "KBS")),
    "어린이 드라마": (("우리 반 비밀 일기", "KBS"), ("골목길 친구들", "EBS"), ("마법 도서관", "KBS")),
    "어린이 예능": (("도전! 어린이 퀴즈왕", "KBS"), ("깔깔 놀이 대장", "EBS"), ("주말 장기 자랑", "KBS")),
}
# The sounds that a label's leading or trailing KsponSpeech tag stands for: maker, seconds, level vs speech (dB).
TAG_SOUNDS = {"b": (mix.breath, (0.3, 0.6), -14.0), "l": (mix.laugh, (0.6, 1.2), -4.0),
              "n": (mix.knock, (0.3, 0.7), -6.0)}
LEADING_TAG = re.compile(r"^([bln])/\s")
TRAILING_TAG = re.compile(r"\s([bln])/$")
# Per category: chance of an applause or laughter burst after a turn.
EVENT_PROB = {"미취학 아동 발달 교육": 0.08, "어린이 교육": 0.05, "어린이 드라마": 0.06, "어린이 예능": 0.15}


Span = tuple[float, float]  # (start, end) in seconds


@dataclass(frozen=True)
class SizeSpec:
    episodes: int
    min_seconds: float
    max_seconds: float
    validation_every: int  # every k-th round of four episodes (one per category) goes to Validation
    intro: tuple[float, float]  # seconds of music before the first turn


SIZES = {
    "tiny": SizeSpec(8, 12.0, 14.5, 2, (0.3, 0.8)),
    "demo": SizeSpec(12, 120.0, 180.0, 3, (1.0, 4.0)),
    "bench": SizeSpec(60, 120.0, 1200.0, 5, (2.0, 8.0)),
}


@dataclass(frozen=True)
class EpisodePlan:
    index: int
    stem: str
    category: str
    split: str  # "Training" | "Validation"
    part: str  # zip-part number, "01".."04" (one part per category)
    seconds: float
    program: str
    channel: str
    zero_hour: bool  # write times as "00:01:02.350" rather than "0:01:02.350" (both occur in the corpus)
    intro: float  # seconds of theme music before the first turn
    first_sentence: int  # where this episode starts in its category's sentence pool (wrapping around)


@dataclass
class Turn:
    label: str
    voice: Voice
    start: float
    end: float
    overlap: bool = False


def plan_episodes(size: str, seed: int) -> list[EpisodePlan]:
    """Episode lengths are stratified over the size's range, so the total is close to its mean length times count."""
    spec = SIZES[size]
    rng = np.random.default_rng([seed, 0x5EED])
    count = spec.episodes
    fractions = rng.permutation((np.arange(count) + rng.uniform(0, 1, count)) / count)
    plans = []
    for index in range(count):
        category = CATEGORIES[index % len(CATEGORIES)]
        programs = PROGRAMS[category]
        program, channel = programs[int(rng.integers(len(programs)))]
        round_ = index // len(CATEGORIES)
        plans.append(EpisodePlan(
            index=index,
            stem=f"KID_{CATEGORY_CODES[category]}_{index:04d}",
            category=category,
            split="Validation" if round_ % spec.validation_every == spec.validation_every - 1 else "Training",
            part=f"{CATEGORIES.index(category) + 1:02d}",
            seconds=round(spec.min_seconds + fractions[index] * (spec.max_seconds - spec.min_seconds), 3),
            program=program,
            channel=channel,
            zero_hour=index % 3 == 2,
            intro=round(rng.uniform(*spec.intro), 3),
            # a turn (speech and gap) nearly always takes over 2 s, so episodes of one category draw disjoint
            # sentences until the pool is used up
            first_sentence=round_ * int(spec.max_seconds / 2),
        ))
    return plans


def sentence_pools(bank: list[BankSentence], seed: int) -> dict[str, list[tuple[str, str]]]:
    """Per category, the bank's (label, pronunciation) pairs in a seeded order; unspeakable labels are left out."""
    rng = np.random.default_rng([seed, 0xBA4C])
    pools = {}
    for category in CATEGORIES:
        pairs = [(s.label, parse_label(s.label).pronunciation) for s in bank if s.category == category]
        pairs = [(label, spoken) for label, spoken in pairs if spoken.strip()]
        if not pairs:
            raise ValueError(f"the sentence bank has no speakable sentence in category {category!r}")
        pools[category] = [pairs[i] for i in rng.permutation(len(pairs))]
    return pools


def format_time(seconds: float, zero_hour: bool = False) -> str:
    """`H:MM:SS.fff` (or `HH:MM:SS.fff`), from whole milliseconds so rounding never shows as 59.9995."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    hour = f"{hours:02d}" if zero_hour else str(hours)
    return f"{hour}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def _cast(rng: np.random.Generator) -> tuple[list[Voice], list[Voice]]:
    hosts = rng.choice(len(ADULT_HOSTS), int(rng.integers(1, 3)), replace=False)
    kids = rng.choice(len(CHILD_VOICES), int(rng.integers(2, 5)), replace=False)
    return [ADULT_HOSTS[i] for i in sorted(hosts)], [CHILD_VOICES[i] for i in sorted(kids)]


def _next_speaker(rng: np.random.Generator, previous: Voice | None, hosts: list[Voice],
                  kids: list[Voice]) -> tuple[Voice, float]:
    """Who speaks next and the gap before: a host opens, children answer hosts, children mostly hand back."""
    if previous is None:
        return _pick(rng, hosts), 0.0
    long_pause = rng.uniform(1.0, 2.5) if rng.random() < 0.08 else 0.0
    if previous.role == "adult":
        return _pick(rng, kids), rng.uniform(0.3, 1.0) + long_pause
    draw = rng.random()
    if draw < 0.15:  # the same child goes on with another sentence
        return previous, rng.uniform(0.15, 0.5) + long_pause
    others = [kid for kid in kids if kid is not previous]
    if draw < 0.3 and others:
        return _pick(rng, others), rng.uniform(0.2, 0.8) + long_pause
    return _pick(rng, hosts), rng.uniform(0.3, 1.0) + long_pause


def _spans(rng: np.random.Generator, start: float, stop: float, share: float, count: int) -> list[Span]:
    """`count` non-overlapping spans covering `share` of [start, stop), one at a random place in each equal slot."""
    slot = (stop - start) / count
    length = share * slot
    return [(round(a, 3), round(a + length, 3))
            for a in (start + i * slot + rng.uniform(0, slot - length) for i in range(count))]


def _covered(start: float, end: float, spans: list[Span]) -> float:
    """Share of [start, end) that lies under the spans."""
    inside = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
    return inside / max(end - start, 1e-6)


def _add(out: np.ndarray, at: float, sound: np.ndarray) -> None:
    i = int(round(at * SR))
    piece = sound[: max(out.size - i, 0)]
    out[i:i + piece.size] += piece


def _add_tag_sounds(rng: np.random.Generator, out: np.ndarray, label: str, start: float, end: float,
                    limit: float, t: float) -> float:
    """Mix the breath, laugh or noise that a label's leading/trailing `b/ l/ n/` tag stands for just outside the
    speech (true times stay the speech's); returns where the next turn may start. Tags inside a label stay
    silent."""
    for pattern, before in ((LEADING_TAG, True), (TRAILING_TAG, False)):
        match = pattern.search(label)
        if not match:
            continue
        make, lengths, level = TAG_SOUNDS[match.group(1)]
        seconds = rng.uniform(*lengths)
        at = start - seconds - rng.uniform(0.05, 0.2) if before else end + rng.uniform(0.05, 0.2)
        if at < 0.0 or at + seconds > limit:
            continue
        _add(out, at, make(rng, seconds) * mix.db_to_gain(SPEECH_DBFS + level))
        t = max(t, at + seconds)
    return t


def _place_turns(plan: EpisodePlan, rng: np.random.Generator, pool: list[tuple[str, str]],
                 out: np.ndarray) -> tuple[list[Turn], list[Span]]:
    """Speak and mix the dialogue into `out`; returns the turns and the applause/laughter spans."""
    hosts, kids = _cast(rng)
    speaker_db = {voice.id: rng.uniform(-2.5, 2.5) for voice in hosts + kids}
    room = mix.room_impulse(rng, rng.uniform(0.25, 0.7)) if rng.random() < 0.5 else None
    wet = {"adult": rng.uniform(0.05, 0.15), "child": rng.uniform(0.15, 0.35)}
    limit = plan.seconds - min(2.0, 0.05 * plan.seconds)
    cursor = plan.first_sentence
    turns: list[Turn] = []
    events: list[Span] = []
    t, previous, misses = plan.intro, None, 0
    while misses < 5 and t + 1.0 < limit:
        voice, gap = _next_speaker(rng, previous.voice if previous else None, hosts, kids)
        label, spoken = pool[cursor % len(pool)]
        cursor += 1
        clip = speak(spoken, voice)
        length = clip.size / SR
        overlap = (previous is not None and voice is not previous.voice and previous.end - previous.start > 1.2
                   and rng.random() < OVERLAP_PROB)
        start = previous.end - rng.uniform(0.2, 0.6) if overlap else t + gap
        leading = LEADING_TAG.search(label)
        if leading and not overlap:  # room for the breath, laugh or noise before the speech
            start += TAG_SOUNDS[leading.group(1)][1][1] + 0.2
        if length < 0.3 or start + length > limit:
            misses += 1
            continue
        clip = mix.unit_rms(clip) * mix.db_to_gain(SPEECH_DBFS + speaker_db[voice.id] + rng.uniform(-1.5, 1.5))
        if room is not None:
            clip = mix.reverberate(clip, room, wet[voice.role])
        _add(out, start, clip)
        t = _add_tag_sounds(rng, out, label, start, start + length, limit, t)
        turn = Turn(label, voice, round(start, 3), round(start + length, 3), overlap)
        if overlap:
            previous.overlap = True
        turns.append(turn)
        previous, t = turn, max(t, turn.end)
        if rng.random() < EVENT_PROB[plan.category]:
            seconds = rng.uniform(1.2, 3.5)
            at = t + rng.uniform(0.1, 0.4)
            if at + seconds < limit:
                sound = mix.applause(rng, seconds) if rng.random() < 0.5 else mix.laughter(rng, seconds)
                _add(out, at, sound * mix.db_to_gain(SPEECH_DBFS + rng.uniform(-6.0, 0.0)))
                events.append((round(at, 3), round(at + seconds, 3)))
                t = at + seconds - rng.uniform(0.0, 0.6)  # the next turn may start as it fades
    return turns, events


def _add_background(plan: EpisodePlan, rng: np.random.Generator, out: np.ndarray,
                    speech_end: float) -> tuple[list[Span], list[Span]]:
    """Theme music at both ends, a music bed and noise under parts, a quiet noise floor throughout.

    Returns the spans under music and under loud noise. Noise is a <= 30 s stretch tiled to length; the floor is
    added tile by tile, so the only full-length array is the episode itself.
    """
    seconds, intro = plan.seconds, plan.intro
    count = 1 if seconds < 60 else int(rng.integers(1, 4))
    loop = mix.music_loop(rng)
    theme = [(0.0, round(intro + 0.5, 3)), (round(min(speech_end + 0.3, seconds - 1.0), 3), seconds)]
    beds = _spans(rng, intro, speech_end, rng.uniform(0.25, 0.5), count)
    for (a, b), level in [(span, SPEECH_DBFS - 4.0) for span in theme] + [
            (span, SPEECH_DBFS - rng.uniform(10.0, 20.0)) for span in beds]:
        bed = mix.music_bed(loop, b - a, rng)
        bed *= np.float32(mix.db_to_gain(level))
        _add(out, a, bed)
        del bed

    def noise(length: float) -> np.ndarray:
        return mix.background_noise(rng, min(length, 30.0), _pick(rng, mix.NOISE_KINDS))

    floor = noise(seconds) * np.float32(mix.db_to_gain(SPEECH_DBFS - rng.uniform(35.0, 45.0)))
    for start in range(0, out.size, floor.size):  # tiled in place: no full-length copy
        piece = out[start:start + floor.size]
        piece += floor[: piece.size]
    noisy = _spans(rng, intro, seconds, rng.uniform(0.15, 0.3), count)
    for a, b in noisy:
        sound = mix.fade(np.resize(noise(b - a), int((b - a) * SR)), 0.5, 0.5)
        sound *= np.float32(mix.db_to_gain(SPEECH_DBFS - rng.uniform(10.0, 25.0)))
        _add(out, a, sound)
    return theme + beds, noisy


def _change_levels(rng: np.random.Generator, out: np.ndarray) -> None:
    """A few steps of 2-6 dB in overall level (a different source, a fader move), each over 0.3 s."""
    ramp = int(0.3 * SR)
    for _ in range(int(rng.integers(0, 2 if out.size < 60 * SR else 5))):
        at = int(rng.integers(0, max(out.size - ramp, 1)))
        gain = mix.db_to_gain(rng.choice((-1.0, 1.0)) * rng.uniform(2.0, 6.0))
        out[at:at + ramp] *= np.linspace(1.0, gain, out[at:at + ramp].size, dtype=np.float32)
        out[at + ramp:] *= np.float32(gain)


def _jittered_times(rng: np.random.Generator, start: float, end: float, duration: float) -> tuple[float, float]:
    """Label times with each boundary moved 0.1-0.5 s either way (kept inside the episode, at least 0.3 s long)."""
    for _ in range(10):
        shift_start, shift_end = (rng.choice((-1.0, 1.0)) * rng.uniform(*JITTER_RANGE) for _ in range(2))
        label_start = round(min(max(start + shift_start, 0.0), duration), 3)
        label_end = round(min(max(end + shift_end, 0.0), duration), 3)
        if label_end - label_start >= 0.3 and (label_start, label_end) != (start, end):
            return label_start, label_end
    shift = JITTER_RANGE[1] if start + JITTER_RANGE[1] < end else -min(start, JITTER_RANGE[1])
    return round(start + shift, 3), round(min(end + shift, duration), 3)


def render_episode(plan: EpisodePlan, seed: int, pool: list[tuple[str, str]]) -> tuple[np.ndarray, dict, list[dict]]:
    """One episode: its audio, its label JSON and its truth rows."""
    rng = np.random.default_rng([seed, plan.index + 1])
    out = np.zeros(int(round(plan.seconds * SR)), dtype=np.float32)
    turns, events = _place_turns(plan, rng, pool, out)
    if not turns:
        raise RuntimeError(f"episode {plan.stem}: no sentence fits in {plan.seconds:.1f} s")
    music, noisy = _add_background(plan, rng, out, turns[-1].end)
    _change_levels(rng, out)
    peak = max(float(out.max()), -float(out.min()))
    if peak > 0.95:  # the broadcast limiter: scale the whole episode down rather than clip
        out *= np.float32(0.95 / peak)
    duration = out.size / SR
    jittered = set(rng.choice(len(turns), round(JITTER_SHARE * len(turns)), replace=False).tolist())
    sentences, truth = [], []
    for number, turn in enumerate(turns, 1):
        label_start, label_end = (_jittered_times(rng, turn.start, turn.end, duration) if number - 1 in jittered
                                  else (turn.start, turn.end))
        # A sentence is "music" or "noise" when more than 30% of it lies under a music bed or under loud noise,
        # applause or laughter (music first); the quiet noise floor everywhere does not count.
        condition = ("music" if _covered(turn.start, turn.end, music) > 0.3
                     else "noise" if _covered(turn.start, turn.end, noisy + events) > 0.3 else "clean")
        sentences.append({"sentence_id": number, "sentence": turn.label,
                          "start": format_time(label_start, plan.zero_hour),
                          "end": format_time(label_end, plan.zero_hour), "speaker_id": turn.voice.id})
        truth.append({"episode_id": plan.stem, "sentence_id": number, "true_start": turn.start,
                      "true_end": turn.end, "label_start": label_start, "label_end": label_end,
                      "jittered": number - 1 in jittered, "condition": condition, "overlap": turn.overlap})
    speakers = sorted({turn.voice.id: turn.voice for turn in turns}.values(), key=lambda voice: voice.id)
    label = {
        "dataset_info": {"dataset_id": DATASET_ID, "version": VERSION},
        "media_info": {
            "file_name": f"{plan.stem}.wav", "program_name": plan.program, "category": plan.category,
            "channel": plan.channel, "duration": format_time(duration, plan.zero_hour), "sample_rate": SR,
            "bit_depth": 16, "channels": 1, "sentence_list": sentences,
        },
        "speaker_info": [voice.speaker_info() for voice in speakers],
    }
    return out, label, truth


def episode_paths(out: Path, plan: EpisodePlan) -> tuple[Path, Path]:
    """Where an episode's WAV and label go in the unpacked layout."""
    source, labels = PART_PREFIXES[plan.split]
    base = out / DATA_DIR / plan.split
    return (base / SOURCE_DIR / f"{source}_{plan.part}" / f"{plan.stem}.wav",
            base / LABEL_DIR / f"{labels}_{plan.part}" / f"{plan.stem}.json")


_WORKER: dict = {}


def _init_worker(seed: int, pools: dict[str, list[tuple[str, str]]], out: Path) -> None:
    _WORKER.update(seed=seed, pools=pools, out=out)


def write_wav_blocks(path: Path, audio: np.ndarray, block: int = 60 * SR) -> None:
    """Atomically write 16-bit WAV a minute at a time: the same bytes as `audio.write_wav`, without holding a
    second full-length copy of a 20-minute episode."""
    with atomic_path(path) as tmp, sf.SoundFile(tmp, "w", SR, 1, "PCM_16", format="WAV") as wav:
        for start in range(0, audio.size, block):
            wav.write(to_pcm16(audio[start:start + block]))


def _write_episode(plan: EpisodePlan) -> list[dict]:
    """Render and write one episode unless its marker says it is done; returns its truth rows."""
    out = _WORKER["out"]
    marker = out / PROGRESS_DIR / f"{plan.stem}.jsonl"
    if marker.exists():
        return list(read_jsonl(marker))
    audio, label, truth = render_episode(plan, _WORKER["seed"], _WORKER["pools"][plan.category])
    wav_path, label_path = episode_paths(out, plan)
    write_wav_blocks(wav_path, audio)
    del audio
    write_json_atomic(label_path, label)
    write_jsonl_atomic(marker, truth)
    return truth


def pack_zips(out: Path) -> list[Path]:
    """Pack each `TS_NN/` (`TL_`, `VS_`, `VL_`) folder into `TS_NN.zip` beside it, byte-reproducibly.

    Members are sorted, dated ZIP_DATE, WAVs stored and JSON deflated; the folder is removed once its zip is in
    place, so an interrupted packing resumes with the folders that are left.
    """
    zips = []
    for folder in sorted((out / DATA_DIR).glob("*/*/*_[0-9][0-9]")):
        if not folder.is_dir():
            continue
        target = folder.parent / f"{folder.name}.zip"
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for member in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
                info = zipfile.ZipInfo(member.name, date_time=ZIP_DATE)
                info.create_system = 3
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED if member.suffix == ".json" else zipfile.ZIP_STORED
                info.file_size = member.stat().st_size
                with open(member, "rb") as src, archive.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        shutil.rmtree(folder)
        zips.append(target)
    return zips


def _check_params(found: dict, params: dict, where: Path) -> None:
    if {key: found.get(key) for key in params} != params:
        raise ValueError(f"{where} already holds a {found.get('size')} corpus with seed {found.get('seed')}; "
                         f"choose another --out or delete it")


def default_workers(size: str) -> int:
    return (os.cpu_count() or 1) if size == "bench" else 1


def generate(size: str, seed: int, out: Path, zip_parts: bool = False, workers: int | None = None) -> Path:
    """Write the `size` corpus for `seed` into `out` (resuming an interrupted run) and return `out`.

    `workers` defaults to one process for tiny and demo and to every core for bench; the bytes written do not
    depend on it.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: expected one of {', '.join(SIZES)}")
    require_espeak()
    out = Path(out)
    params = {"generator": VERSION, "size": size, "seed": seed}
    stamp = out / STAMP_FILE
    if stamp.exists():
        _check_params(json.loads(stamp.read_text(encoding="utf-8")), params, out)
        if zip_parts:
            pack_zips(out)
        return out
    started = out / PROGRESS_DIR / "params.jsonl"  # JSON lines, so corpus readers do not take it for a label
    if started.exists():
        _check_params(next(read_jsonl(started), {}), params, out)
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):  # our lock file is hidden
        raise ValueError(f"{out} is not empty and holds no kidsasr synth run; choose an empty or new --out")
    write_jsonl_atomic(started, [params])

    plans = plan_episodes(size, seed)
    bank = sentence_bank(seed)
    write_text_corpus(out / TEXT_CORPUS_FILE, bank)
    pools = sentence_pools(bank, seed)
    workers = workers or default_workers(size)
    rows: list[dict] = []
    with tqdm(total=len(plans), unit="episode", desc=f"synth {size}: writing {out}", file=sys.stderr) as bar:
        if workers == 1:
            _init_worker(seed, pools, out)
            for truth in map(_write_episode, plans):
                rows.extend(truth)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            # A fresh worker every few episodes: numpy's large, short-lived arrays slowly fragment a long-lived
            # process's heap (tens of MB over an 11-hour corpus), which would make memory grow with corpus size.
            with context.Pool(min(workers, len(plans)), _init_worker, (seed, pools, out),
                              maxtasksperchild=TASKS_PER_WORKER) as pool:
                for truth in pool.imap(_write_episode, plans):
                    rows.extend(truth)
                    bar.update()
    write_jsonl_atomic(out / TRUTH_FILE, rows)
    if zip_parts:
        pack_zips(out)
    write_json_atomic(stamp, {**params, "episodes": len(plans), "sentences": len(rows),
                              "audio_seconds": round(sum(plan.seconds for plan in plans), 3)})
    shutil.rmtree(out / PROGRESS_DIR)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=tuple(SIZES), default="demo",
                        help="tiny: 8 episodes, < 2 min (tests); demo: about 30 min; bench: about 11 h")
    parser.add_argument("--seed", type=int, default=0, help="same seed and size, same bytes")
    parser.add_argument("--out", type=Path, required=True, help="output folder (an interrupted run resumes)")
    parser.add_argument("--zip", action="store_true", help="pack the parts as TS_NN/TL_NN/VS_NN/VL_NN .zip files")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes, one episode each (default: 1 for tiny/demo, every core for bench)")


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports kilobytes


def run(args: argparse.Namespace) -> int:
    unusable = ("--seed must be 0 or more" if args.seed < 0 else
                "--workers must be 1 or more" if args.workers is not None and args.workers < 1 else None)
    if unusable:
        print(f"synth: error: {unusable} (nothing written)", file=sys.stderr)
        return 2
    workers = args.workers or default_workers(args.size)
    print(f"synth: {SIZES[args.size].episodes} {args.size} episodes (seed {args.seed}, {workers} worker(s)) "
          f"-> {args.out}", file=sys.stderr)
    started = time.perf_counter()
    try:
        with run_lock(args.out, "synth"):  # one writer per corpus folder; a killed writer's .part files go
            remove_stale_parts(args.out)
            generate(args.size, args.seed, args.out, zip_parts=args.zip, workers=workers)
    except (ValueError, BusyError) as e:  # an --out holding something else, or another run writing there
        print(f"synth: error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as e:
        print(f"synth: error: {e}", file=sys.stderr)
        return 1
    stamp = json.loads((Path(args.out) / STAMP_FILE).read_text(encoding="utf-8"))
    rss = f"peak RSS {_peak_rss_mb(resource.RUSAGE_SELF):.0f} MB"
    worker_rss = _peak_rss_mb(resource.RUSAGE_CHILDREN)
    if workers > 1 and worker_rss:  # with one worker, children are only espeak-ng and forked copies of this process
        rss += f" (main), {worker_rss:.0f} MB (largest worker)"
    print(f"synth: {stamp['episodes']} episodes, {stamp['sentences']} sentences, "
          f"{stamp['audio_seconds'] / 60:.1f} min of audio in {time.perf_counter() - started:.1f} s; {rss}; "
          f"labels and audio under {Path(args.out) / DATA_DIR}, true times in {Path(args.out) / TRUTH_FILE}")
    return 0
