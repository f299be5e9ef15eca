"""`kidsasr subtitle`: episodes (one file, or a folder of them) to Korean WebVTT and SRT, with a review file.

Per episode: `transcribe_long` (VAD, batched decoding with word times, hallucination guards) -> `build_cues`
(style profile) -> `OUT.cues.json` (confidence, words and rule violations per cue, what the guards dropped),
`OUT.srt` with --srt, and `OUT.vtt` last. Every file is written atomically and the VTT comes last, so an
existing VTT means a finished episode: a folder run skips it (resume) unless --overwrite.

A bad input (corrupt, truncated, empty, video without audio, ...) fails with the file and the reason and the
folder run goes on; silence or music gives a valid, empty VTT. The folder run writes `subtitle-summary.json` in
the output folder and prints a summary: done + skipped + failed = every media file found. Exit status 1 when
any episode failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .. import __version__
from ..asr.export import NeedsFullInstall
from ..asr.guards import GuardOptions
from ..audio import AudioError, audio_info
from ..constants import DEFAULT_MODEL
from ..fileio import write_json_atomic
from .cues import Style, build_cues, cues_json_path, load_style, write_cues_json, write_srt, write_vtt

SUMMARY_NAME = "subtitle-summary.json"
# what ffmpeg commonly reads; other files in a folder are listed as ignored, not silently dropped
MEDIA_SUFFIXES = frozenset({
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".amr", ".aif", ".aiff",
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp",
})
OUTPUT_SUFFIXES = (".vtt", ".srt", ".cues.json", SUMMARY_NAME)


@dataclass
class Result:
    source: str
    output: str
    status: str  # "done" | "skipped" | "failed"
    reason: str = ""
    cues: int = 0
    cues_with_violations: int = 0
    dropped: int = 0  # transcript pieces the guards removed (listed in the review file)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0


def subtitle_file(path: str | os.PathLike, out: str | os.PathLike, recognizer, style: Style | str = "kids",
                  srt: bool = False, progress: bool = False) -> Result:
    """Subtitle one episode into `out` (.vtt; `.cues.json` and, with srt, `.srt` beside it).

    Never raises for a bad input: the Result says "failed" with the reason, and no output file is left behind.
    """
    from ..asr.transcribe import transcribe_long

    path, out = Path(path), Path(out)
    began = time.perf_counter()

    def failed(reason: str) -> Result:
        return Result(str(path), str(out), "failed", reason, wall_seconds=round(time.perf_counter() - began, 3))

    try:
        style = style if isinstance(style, Style) else load_style(style)
        if path.is_dir():
            return failed("is a folder, not a media file")
        if path.is_file() and path.stat().st_size == 0:
            return failed("empty file (0 bytes)")
        audio_info(path)  # a cheap probe: "no audio stream" for a video without sound, before any decoding
        transcript = transcribe_long(path, recognizer, word_timestamps=True, guard_options=guard_options_for(style),
                                     progress=progress)
        cues = build_cues(transcript.words, style, transcript.speech_regions)
        problems = write_cues_json(
            cues, cues_json_path(out), style, transcript.speech_regions, source=str(path),
            model=getattr(recognizer, "name", type(recognizer).__name__), kidsasr=__version__,
            duration=round(transcript.duration, 3),
            dropped=[{"start": round(d.start, 3), "end": round(d.end, 3), "text": d.text, "reason": d.reason}
                     for d in transcript.dropped])
        if srt:
            write_srt(cues, out.with_suffix(".srt"))
        write_vtt(cues, out, header=_header(path, recognizer, style))
    except AudioError as e:
        return failed(e.reason)
    except Exception as e:  # a folder run must go on: the reason is reported, nothing half-written remains
        return failed(f"{type(e).__name__}: {e}")
    return Result(str(path), str(out), "done", cues=len(cues), cues_with_violations=sum(bool(p) for p in problems),
                  dropped=len(transcript.dropped), audio_seconds=round(transcript.duration, 3),
                  wall_seconds=round(time.perf_counter() - began, 3))


def guard_options_for(style: Style) -> GuardOptions:
    """The guards a style asks for: a style that marks songs has music-dominated speech decoded as lyrics."""
    return GuardOptions(decode_songs=style.songs == "mark")


def _header(path: Path, recognizer, style: Style) -> str:
    text = (f"kidsasr {__version__}, model {getattr(recognizer, 'name', '?')}, style {style.name}, "
            f"source {path.name}")
    return " ".join(text.replace("-->", "->").split())


def find_episodes(folder: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(episode, its VTT path) for every media file under `folder`, and the other files (ignored).

    Sub-folders are mirrored under `out_dir`; two episodes with the same stem (ep.wav, ep.mp4) keep their
    suffix in the output name (ep.wav.vtt, ep.mp4.vtt). Hidden files and our own outputs are not inputs.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    media, ignored = [], []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts) \
                or (_inside(path, out_dir) and path.name.endswith(OUTPUT_SUFFIXES)):
            continue
        if path.suffix.lower() in MEDIA_SUFFIXES:
            media.append(relative)
        elif not path.name.endswith(OUTPUT_SUFFIXES):
            ignored.append(path)
    stems: dict[Path, int] = {}
    for relative in media:
        stems[relative.with_suffix("")] = stems.get(relative.with_suffix(""), 0) + 1
    pairs = []
    for relative in media:
        shared = stems[relative.with_suffix("")] > 1
        target = out_dir / (relative.parent / (relative.name + ".vtt") if shared else relative.with_suffix(".vtt"))
        pairs.append((folder / relative, target))
    return pairs, ignored


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def subtitle_folder(folder: str | os.PathLike, out_dir: str | os.PathLike, model: str = DEFAULT_MODEL,
                    backend: str = "auto", style: Style | str = "kids", srt: bool = False, workers: int = 1,
                    overwrite: bool = False, device: str = "cpu", compute_type: str = "int8",
                    recognizer=None, progress: bool = True) -> tuple[list[Result], list[Path]]:
    """Subtitle every episode under `folder` into `out_dir`; (one Result per episode, ignored files).

    The model is loaded only when something is left to do; with workers > 1 each worker process loads its own.
    """
    from tqdm import tqdm

    style = style if isinstance(style, Style) else load_style(style)
    pairs, ignored = find_episodes(folder, out_dir)
    results: dict[Path, Result] = {}
    todo = []
    for source, target in pairs:
        if target.exists() and not overwrite:
            results[source] = Result(str(source), str(target), "skipped", "output exists (use --overwrite to redo)")
        else:
            todo.append((source, target))
    bar = tqdm(total=len(todo), desc="subtitling", unit="episode", disable=not progress or not todo)
    try:
        for result in _run_all(todo, model, backend, style, srt, workers, device, compute_type, recognizer):
            results[Path(result.source)] = result
            bar.update(1)
            if result.status == "failed":
                bar.write(f"failed: {result.source}: {result.reason}")
    finally:  # also when interrupted: what is not finished is listed as such, and the next run resumes
        bar.close()
        for source, target in todo:
            results.setdefault(source, Result(str(source), str(target), "failed", "interrupted before it finished"))
        _write_summary(out_dir, [results[source] for source, _ in pairs], ignored, style, model)
    return [results[source] for source, _ in pairs], ignored


def _run_all(todo: list[tuple[Path, Path]], model: str, backend: str, style: Style, srt: bool, workers: int,
             device: str, compute_type: str, recognizer) -> Iterable[Result]:
    if not todo:
        return
    if workers <= 1 or len(todo) == 1:
        try:
            recognizer = recognizer or _load(model, backend, device, compute_type)
        except NeedsFullInstall as e:
            yield from (Result(str(s), str(t), "failed", str(e)) for s, t in todo)
            return
        except Exception as e:
            reason = f"model {model!r} could not be loaded: {type(e).__name__}: {e}"
            yield from (Result(str(s), str(t), "failed", reason) for s, t in todo)
            return
        for source, target in todo:
            yield subtitle_file(source, target, recognizer, style, srt)
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(model, backend, device, compute_type, threads)) as pool:
        futures = {pool.submit(_work, source, target, style, srt): (source, target) for source, target in todo}
        for future in as_completed(futures):
            source, target = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool as e:
                yield Result(str(source), str(target), "failed", f"worker process died: {e}")
            except Exception as e:
                yield Result(str(source), str(target), "failed", f"{type(e).__name__}: {e}")


def _load(model: str, backend: str, device: str, compute_type: str, **decode_options):
    from ..asr.models import load_recognizer

    return load_recognizer(model, backend=backend, device=device, compute_type=compute_type, **decode_options)


_worker_recognizer = None


def _init_worker(model: str, backend: str, device: str, compute_type: str, threads: int) -> None:
    global _worker_recognizer
    try:  # the transformers and CTC backends run on torch; the subtitle install (CTranslate2) has none
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(threads)
    _worker_recognizer = _load(model, backend, device, compute_type, num_threads=threads)


def _work(source: Path, target: Path, style: Style, srt: bool) -> Result:
    return subtitle_file(source, target, _worker_recognizer, style, srt)


def _write_summary(out_dir: str | os.PathLike, results: list[Result], ignored: list[Path], style: Style,
                   model: str) -> None:
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    write_json_atomic(Path(out_dir) / SUMMARY_NAME, {
        "model": model, "style": style.name, "inputs": len(results), **counts,
        "ignored": [str(p) for p in ignored], "results": [asdict(r) for r in results]})


def print_summary(results: list[Result], ignored: list[Path], out=None) -> None:
    out = out or sys.stdout
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    print(f"{len(results)} episodes: {counts['done']} done, {counts['skipped']} skipped (already subtitled), "
          f"{counts['failed']} failed", file=out)
    for r in results:
        if r.status == "done":
            print(f"  done     {r.source} -> {r.output}: {r.cues} cues ({r.cues_with_violations} breaking a style "
                  f"rule), {r.audio_seconds:.1f} s of audio in {r.wall_seconds:.1f} s", file=out)
        else:
            print(f"  {r.status:<8} {r.source}: {r.reason}", file=out)
    for path in ignored:
        print(f"  ignored  {path}: not a media file", file=out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="EPISODE_OR_FOLDER",
                        help="a media file (WAV, MP3, MP4/M4A, anything ffmpeg reads) or a folder of them")
    parser.add_argument("-o", "--out", metavar="OUT.vtt|OUTDIR",
                        help="output .vtt for one file, output folder for a folder (default: beside the input)")
    parser.add_argument("--srt", action="store_true", help="write SubRip (.srt) beside each .vtt as well")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"Whisper or wav2vec2 CTC model: Hub id, local folder or CTranslate2 folder "
                             f"(default {DEFAULT_MODEL})")
    parser.add_argument("--backend", default="auto", choices=["auto", "ct2", "transformers", "ctc"],
                        help="ct2: CTranslate2 int8 (fast on CPU); transformers; ctc: wav2vec2 (default: by model)")
    parser.add_argument("--style", default="kids",
                        help="cue rules: kids (default, 9 chars/s), adult (12 chars/s) or a style YAML file")
    parser.add_argument("--workers", type=int, default=1,
                        help="episodes subtitled in parallel in a folder run, each worker with its own model")
    parser.add_argument("--overwrite", action="store_true", help="redo episodes whose .vtt already exists")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (default int8)")


@contextlib.contextmanager
def _local_media(spec: str) -> Iterator[Path]:
    """A path for `spec`; a zip member (`part.zip!dir/ep.wav`, as prepared manifests name episodes in zip parts)
    is copied out to a temporary file for the run."""
    archive, separator, member = spec.partition("!")
    if not separator or Path(spec).exists() or not Path(archive).is_file():
        yield Path(spec)
        return
    with zipfile.ZipFile(archive) as zf, tempfile.TemporaryDirectory(prefix="kidsasr-subtitle-") as tmp:
        target = Path(tmp) / Path(member).name
        with zf.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield target


def run(args: argparse.Namespace) -> int:
    try:
        with _local_media(args.input) as source:
            return _run(args, source)
    except (zipfile.BadZipFile, KeyError) as e:
        print(f"kidsasr subtitle: {args.input}: cannot read the zip member: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, source: Path) -> int:
    if not source.exists():
        print(f"kidsasr subtitle: {source}: no such file or folder", file=sys.stderr)
        return 2
    try:
        style = load_style(args.style)
    except ValueError as e:
        print(f"kidsasr subtitle: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("kidsasr subtitle: --workers must be at least 1", file=sys.stderr)
        return 2
    srt = args.srt or (args.out or "").lower().endswith(".srt")
    if source.is_dir():
        out_dir = Path(args.out) if args.out else source
        if out_dir.suffix.lower() in (".vtt", ".srt") and not out_dir.is_dir():
            print(f"kidsasr subtitle: {source} is a folder: -o names an output folder, not {out_dir.name}",
                  file=sys.stderr)
            return 2
        print(f"subtitling the episodes in {source} into {out_dir} (model {args.model}, backend {args.backend}, "
              f"style {style.name}); summary: {out_dir / SUMMARY_NAME}", file=sys.stderr)
        results, ignored = subtitle_folder(source, out_dir, args.model, args.backend, style, srt, args.workers,
                                           args.overwrite, args.device, args.compute_type)
    else:
        out = _single_output(Path(args.input.partition("!")[0]).parent / source.name if "!" in args.input else source,
                             args.out)
        print(f"subtitling {source} into {out} (model {args.model}, backend {args.backend}, style {style.name})",
              file=sys.stderr)
        try:
            recognizer = _load(args.model, args.backend, args.device, args.compute_type)
        except NeedsFullInstall as e:
            print(f"kidsasr subtitle: {e}", file=sys.stderr)
            return 2
        except Exception as e:
            print(f"kidsasr subtitle: model {args.model!r} could not be loaded: {type(e).__name__}: {e}",
                  file=sys.stderr)
            return 1
        results, ignored = [subtitle_file(source, out, recognizer, style, srt, progress=True)], []
    print_summary(results, ignored)
    return 1 if any(r.status == "failed" for r in results) else 0


def _single_output(source: Path, out: str | None) -> Path:
    """-o EP.vtt (or EP.srt: both are written); anything else is a folder to write EP.vtt into."""
    if out is None:
        return source.with_suffix(".vtt")
    path = Path(out)
    if path.suffix.lower() in (".vtt", ".srt") and not path.is_dir():
        return path.with_suffix(".vtt")
    return path / source.with_suffix(".vtt").name
