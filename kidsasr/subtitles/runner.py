"""`kidsasr subtitle`: episodes (one file, or a folder of them) to Korean subtitles, with a review file.

Per episode: `transcribe_long` (VAD, batched decoding with word times, hallucination guards) -> `build_cues`
(style profile, times on its frame grid) -> `OUT.cues.json` (source, model, confidence, words and rule violations
per cue, what the guards dropped), the extra formats asked for (`--format`), and `OUT.EXT` last, in the format
its extension names (.vtt, .srt, .smi, .ttml, .txt). The deliverable is clean: no NOTE blocks, no header
(`--notes` puts per-cue confidences into a VTT for reviewers). Every file is written atomically and the main file
comes last, so an existing one means a finished episode: a folder run skips it (resume) unless --overwrite.

A bad input (corrupt, truncated, empty, video without audio, ...) fails with the file and the reason and the
folder run goes on; silence or music gives a valid, empty VTT. A file shorter than its header says (a truncated
WAV) is subtitled as far as it goes and marked "partial", with a warning naming both durations. The folder run
writes `subtitle-summary.json` in the output folder and prints a summary: done + partial + skipped + failed =
every media file found; every input gets its own output name. Exit status 1 when any episode failed.

Before any decoding the output folder must be writable; a rerun removes the `.part` files a killed run left
there (those of a live concurrent writer stay), and one folder run at a time holds the output folder's lock.
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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from .. import __version__
from ..asr.export import NeedsFullInstall
from ..asr.guards import GuardOptions
from ..audio import AudioError, audio_info, declared_duration
from ..constants import DEFAULT_MODEL
from ..fileio import BusyError, check_writable, remove_stale_parts, run_lock, write_json_atomic
from ..asr.vad import VadOptions
from ..review.calibration import Calibration, decoder_details, find_calibration
from .cues import Style, build_cues, cues_json_path, load_style, write_cues_json
from .frames import SUPPORTED_FPS
from .writers import FORMATS, SUFFIXES, format_of, write_subtitles

SUMMARY_NAME = "subtitle-summary.json"
# what ffmpeg commonly reads; other files in a folder are listed as ignored, not silently dropped
MEDIA_SUFFIXES = frozenset({
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".amr", ".aif", ".aiff",
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp",
})
# our own outputs are not inputs (a .txt transcript is listed as ignored, like any other text file)
OUTPUT_SUFFIXES = (*(s for s in SUFFIXES.values() if s != ".txt"), ".cues.json", SUMMARY_NAME)
STATUSES = ("done", "partial", "skipped", "failed")
TRUNCATION_TOLERANCE = 0.1  # seconds the decoded audio may fall short of the header's length


@dataclass(frozen=True)
class RunOptions:
    """Per-run settings besides the model and the style: extra formats beside the main file (whose format comes
    from its name), per-cue confidences as NOTE blocks in VTT files, the SAMI encoding, the speech detector's
    settings (None: the style's, vad_options_for)."""

    formats: tuple[str, ...] = ()
    notes: bool = False
    smi_encoding: str = "utf-8"
    vad: VadOptions | None = None


@dataclass
class Result:
    source: str
    output: str
    status: str  # "done" | "partial" (the file stops before its header's end) | "skipped" | "failed"
    reason: str = ""
    cues: int = 0
    cues_with_violations: int = 0
    dropped: int = 0  # transcript pieces the guards removed (listed in the review file)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0


def subtitle_file(path: str | os.PathLike, out: str | os.PathLike, recognizer, style: Style | str = "kids",
                  options: RunOptions = RunOptions(), progress: bool = False) -> Result:
    """Subtitle one episode into `out` (its format from its extension; `.cues.json` and `options.formats` beside).

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
        main_format = format_of(out)
        if main_format is None:
            return failed(f"{out.name}: no subtitle format for {out.suffix!r} (choose from {', '.join(FORMATS)})")
        transcript = transcribe_long(path, recognizer, word_timestamps=True,
                                     vad_options=options.vad or vad_options_for(style),
                                     guard_options=guard_options_for(style),
                                     progress=progress)
        cues = build_cues(transcript.words, style, transcript.speech_regions)
        details = [decoder_details(c.speech_start, c.speech_end, transcript.segments) for c in cues]
        problems = write_cues_json(
            cues, cues_json_path(out), style, transcript.speech_regions, details, _calibration(recognizer),
            source=str(path),
            model=getattr(recognizer, "name", type(recognizer).__name__), kidsasr=__version__,
            duration=round(transcript.duration, 3),
            dropped=[{"start": round(d.start, 3), "end": round(d.end, 3), "text": d.text, "reason": d.reason}
                     for d in transcript.dropped])
        for fmt in options.formats:
            if fmt != main_format:
                write_subtitles(cues, out.with_suffix(SUFFIXES[fmt]), fmt, options.notes, style.fps,
                                options.smi_encoding)
        write_subtitles(cues, out, main_format, options.notes, style.fps, options.smi_encoding)
    except AudioError as e:
        return failed(e.reason)
    except Exception as e:  # a folder run must go on: the reason is reported, nothing half-written remains
        return failed(f"{type(e).__name__}: {e}")
    present = round(transcript.duration, 3)
    status, reason = "done", ""
    promised = declared_duration(path)
    if promised is not None and promised - present > TRUNCATION_TOLERANCE:
        status, reason = "partial", (f"truncated: the header says {promised:.2f} s, {present:.2f} s present; "
                                     f"subtitled what is there")
        print(f"warning: {path}: {reason}", file=sys.stderr)
    return Result(str(path), str(out), status, reason, cues=len(cues),
                  cues_with_violations=sum(bool(p) for p in problems), dropped=len(transcript.dropped),
                  audio_seconds=present, wall_seconds=round(time.perf_counter() - began, 3))


def _calibration(recognizer) -> Calibration | None:
    """The recogniser's confidence calibration (kidsasr calibrate), when its model has one."""
    found = find_calibration(getattr(recognizer, "name", "").split(":", 1)[-1])  # "ct2:PATH" -> PATH
    return Calibration.load(found) if found else None


def vad_options_for(style: Style) -> VadOptions:
    """The speech detector's settings a style asks for (threshold, shortest silence and shortest speech)."""
    return VadOptions(threshold=style.vad_threshold, min_silence_duration_ms=style.vad_min_silence_ms,
                      min_speech_duration_ms=style.vad_min_speech_ms)


def guard_options_for(style: Style) -> GuardOptions:
    """The guards a style asks for: a style that marks songs has music-dominated speech decoded as lyrics."""
    return GuardOptions(decode_songs=style.songs == "mark")


def find_episodes(folder: str | os.PathLike, out_dir: str | os.PathLike, suffix: str = ".vtt"
                  ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(episode, its output path with `suffix`) for every media file under `folder`, and the other files (ignored).

    Sub-folders are mirrored under `out_dir`; episodes whose stem-named outputs would clash (ep.wav, ep.mp4,
    ep.wav.mp3) keep their whole name in it (ep.wav.vtt, ep.mp4.vtt, ep.wav.mp3.vtt), so every input has its own
    output. Hidden files and our own outputs are not inputs.
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
    targets = unique_outputs(media, suffix)
    return [(folder / relative, out_dir / targets[relative]) for relative in media], ignored


def unique_outputs(media: list[Path], suffix: str = ".vtt") -> dict[Path, Path]:
    """The output name for each input: its stem + `suffix`, or its whole name + `suffix` where stem names would
    clash.

    Whole names of distinct files never clash with each other, so switching every clashing input to its whole
    name, until none clashes, ends with every output distinct.
    """
    whole: set[Path] = set()
    while True:
        targets = {m: m.parent / (m.name + suffix) if m in whole else m.with_suffix(suffix) for m in media}
        claims = Counter(targets.values())
        clashing = {m for m, target in targets.items() if claims[target] > 1 and m not in whole}
        if not clashing:
            return targets
        whole |= clashing


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def subtitle_folder(folder: str | os.PathLike, out_dir: str | os.PathLike, model: str = DEFAULT_MODEL,
                    backend: str = "auto", style: Style | str = "kids", options: RunOptions = RunOptions(),
                    workers: int = 1, overwrite: bool = False, device: str = "cpu", compute_type: str = "int8",
                    recognizer=None, progress: bool = True, main_format: str = "vtt", **decode_options
                    ) -> tuple[list[Result], list[Path]]:
    """Subtitle every episode under `folder` into `out_dir` as `main_format` files (plus `options.formats`);
    (one Result per episode, ignored files). `decode_options`: kidsasr.asr.models.DecodeOptions fields.

    The model is loaded only when something is left to do; with workers > 1 each worker process loads its own.
    Raises PermissionError (naming `out_dir`) before any work when it is not writable, BusyError when another
    folder run holds it.
    """
    style = style if isinstance(style, Style) else load_style(style)
    check_writable(out_dir)
    with run_lock(out_dir, "subtitle"):
        remove_stale_parts(out_dir)
        return _subtitle_folder(Path(folder), Path(out_dir), model, backend, style, options, workers, overwrite,
                                device, compute_type, recognizer, progress, main_format, decode_options)


def _subtitle_folder(folder: Path, out_dir: Path, model: str, backend: str, style: Style, options: RunOptions,
                     workers: int, overwrite: bool, device: str, compute_type: str, recognizer, progress: bool,
                     main_format: str, decode_options: dict) -> tuple[list[Result], list[Path]]:
    from tqdm import tqdm

    pairs, ignored = find_episodes(folder, out_dir, SUFFIXES[main_format])
    results: dict[Path, Result] = {}
    todo = []
    for source, target in pairs:
        if target.exists() and not overwrite:
            results[source] = Result(str(source), str(target), "skipped", "output exists (use --overwrite to redo)")
        else:
            todo.append((source, target))
    bar = tqdm(total=len(todo), desc="subtitling", unit="episode", disable=not progress or not todo)
    try:
        for result in _run_all(todo, model, backend, style, options, workers, device, compute_type, recognizer,
                               decode_options):
            results[Path(result.source)] = result
            bar.update(1)
            if result.status == "failed":
                bar.write(f"failed: {result.source}: {result.reason}")
    finally:  # also when interrupted: what is not finished is listed as such, and the next run resumes
        bar.close()
        for source, target in todo:
            results.setdefault(source, Result(str(source), str(target), "failed", "interrupted before it finished"))
        try:
            _write_summary(out_dir, [results[source] for source, _ in pairs], ignored, style, model)
        except OSError as e:  # the results are still printed; a summary that cannot be written is not a crash
            print(f"warning: {out_dir / SUMMARY_NAME}: summary not written: {e}", file=sys.stderr)
    return [results[source] for source, _ in pairs], ignored


def _run_all(todo: list[tuple[Path, Path]], model: str, backend: str, style: Style, options: RunOptions,
             workers: int, device: str, compute_type: str, recognizer, decode_options: dict) -> Iterable[Result]:
    if not todo:
        return
    if workers <= 1 or len(todo) == 1:
        try:
            recognizer = recognizer or _load(model, backend, device, compute_type, **decode_options)
        except NeedsFullInstall as e:
            yield from (Result(str(s), str(t), "failed", str(e)) for s, t in todo)
            return
        except Exception as e:
            reason = f"model {model!r} could not be loaded: {type(e).__name__}: {e}"
            yield from (Result(str(s), str(t), "failed", reason) for s, t in todo)
            return
        for source, target in todo:
            yield subtitle_file(source, target, recognizer, style, options)
        return
    import multiprocessing

    per_worker = {**decode_options, "num_threads": decode_options.get("num_threads") or
                  max(1, (os.cpu_count() or 1) // workers)}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(model, backend, device, compute_type, per_worker)) as pool:
        futures = {pool.submit(_work, source, target, style, options): (source, target) for source, target in todo}
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


def _init_worker(model: str, backend: str, device: str, compute_type: str, decode_options: dict) -> None:
    global _worker_recognizer
    try:  # the transformers and CTC backends run on torch; the subtitle install (CTranslate2) has none
        import torch
    except ImportError:
        pass
    else:
        torch.set_num_threads(decode_options["num_threads"])
    _worker_recognizer = _load(model, backend, device, compute_type, **decode_options)


def _work(source: Path, target: Path, style: Style, options: RunOptions) -> Result:
    return subtitle_file(source, target, _worker_recognizer, style, options)


def _write_summary(out_dir: str | os.PathLike, results: list[Result], ignored: list[Path], style: Style,
                   model: str) -> None:
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    write_json_atomic(Path(out_dir) / SUMMARY_NAME, {
        "model": model, "style": style.name, "inputs": len(results), **counts,
        "ignored": [str(p) for p in ignored], "results": [asdict(r) for r in results]})


def print_summary(results: list[Result], ignored: list[Path], out=None) -> None:
    out = out or sys.stdout
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    print(f"{len(results)} episodes: {counts['done']} done, {counts['partial']} partial, {counts['skipped']} skipped "
          f"(already subtitled), {counts['failed']} failed", file=out)
    for r in results:
        if r.status in ("done", "partial"):
            print(f"  {r.status:<8} {r.source} -> {r.output}: {r.cues} cues ({r.cues_with_violations} breaking a "
                  f"style rule), {r.audio_seconds:.1f} s of audio in {r.wall_seconds:.1f} s"
                  + (f"; {r.reason}" if r.reason else ""), file=out)
        else:
            print(f"  {r.status:<8} {r.source}: {r.reason}", file=out)
    for path in ignored:
        print(f"  ignored  {path}: not a media file", file=out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = " (default: %(default)s)"
    parser.add_argument("input", metavar="EPISODE_OR_FOLDER",
                        help="a media file (WAV, MP3, MP4/M4A, anything ffmpeg reads) or a folder of them")
    parser.add_argument("-o", "--out", metavar="OUT.EXT|OUTDIR", default=None,
                        help="one file: the output, in the format its extension names (.vtt, .srt, .smi, .ttml, "
                             ".txt); a folder: the output folder, VTT files (default: EPISODE.vtt beside it)")
    parser.add_argument("--format", default="", metavar="FMT[,FMT...]",
                        help=f"more formats written beside the output, from {','.join(FORMATS)} (default: none)")
    parser.add_argument("--srt", action="store_true", help="the same as `--format srt` (default: off)")
    parser.add_argument("--notes", action="store_true",
                        help="a NOTE with each cue's confidence in VTT files, for reviewers; the deliverable has "
                             "none, confidences are always in OUT.cues.json (default: off)")
    parser.add_argument("--smi-encoding", default="utf-8", choices=["utf-8", "cp949"], help="SAMI encoding" + d)
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="Whisper or wav2vec2 CTC model: Hub id, local folder or CTranslate2 folder" + d)
    parser.add_argument("--backend", default="auto", choices=["auto", "ct2", "transformers", "ctc"],
                        help="ct2: CTranslate2 int8 (fast on CPU); transformers; ctc: wav2vec2; auto: by model" + d)
    parser.add_argument("--style", default="kids",
                        help="cue rules: kids (9 chars/s), adult (12 chars/s) or a style YAML file" + d)
    parser.add_argument("--workers", type=int, default=1,
                        help="episodes subtitled in parallel in a folder run, each worker with its own model" + d)
    parser.add_argument("--overwrite", action="store_true",
                        help="redo episodes whose output already exists (default: skip them)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda" + d)
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type" + d)
    decoding = parser.add_argument_group("decoding (Whisper backends)")
    decoding.add_argument("--beam-size", type=int, default=1,
                          help="beam width of the first decode; clips that loop or fail the gates are decoded "
                               "again with beam 5 in any case" + d)
    decoding.add_argument("--initial-prompt", default=None, metavar="TEXT",
                          help="text the decoder is conditioned on, as if said before (spelling, style) "
                               "(default: none)")
    decoding.add_argument("--hotwords", default=None, metavar="WORDS",
                          help="words to favour, e.g. programme and character names (default: none)")
    decoding.add_argument("--batch-size", type=int, default=8, help="clips decoded at once per decoder" + d)
    decoding.add_argument("--threads", type=int, default=0, help="CPU threads for decoding, 0: every core" + d)
    vad = parser.add_argument_group("speech detection (silero-vad)")
    defaults = VadOptions()
    vad.add_argument("--vad-threshold", type=float, default=None,
                     help="speech probability above which a frame is speech (default: the style's, kids 0.35, "
                          "adult 0.5)")
    vad.add_argument("--vad-min-silence-ms", type=int, default=None,
                     help="silence that ends a speech region, in ms (default: the style's, kids 100, adult 250)")
    vad.add_argument("--vad-min-speech-ms", type=int, default=None,
                     help="shortest speech region kept, in ms (default: the style's, 250)")
    vad.add_argument("--vad-speech-pad-ms", type=int, default=defaults.speech_pad_ms,
                     help="padding added on each side of a speech region, in ms" + d)
    cues = parser.add_argument_group("cue rules for this run (override the style profile's)")
    cues.add_argument("--max-line-width", type=float, default=None,
                      help="line width, Hangul 1 and Latin/digits/spaces/punctuation 0.5 (default: the style's, 16)")
    cues.add_argument("--max-lines", type=int, default=None, help="lines per cue (default: the style's, 2)")
    cues.add_argument("--max-cps", type=float, default=None,
                      help="reading speed in characters per second (default: the style's, kids 9, adult 12)")
    cues.add_argument("--fps", type=float, default=None, choices=SUPPORTED_FPS,
                      help="frame rate cue times snap to (default: the style's, 29.97 for Korean TV)")


def style_from_args(args: argparse.Namespace) -> Style:
    """The style profile with this run's overrides (raises ValueError naming a bad value)."""
    style = load_style(args.style)
    overrides = {key: value for key, value in (("max_line_width", args.max_line_width), ("max_lines", args.max_lines),
                                               ("max_cps", args.max_cps), ("fps", args.fps)) if value is not None}
    return replace(style, **overrides) if overrides else style


def run_options_from_args(args: argparse.Namespace, style: Style | None = None) -> RunOptions:
    """Extra formats, notes, SAMI encoding and VAD settings, the style's where not given (raises ValueError for an
    unknown format or a threshold outside (0, 1])."""
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()] + (["srt"] if args.srt else [])
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"--format: unknown {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    if args.vad_threshold is not None and not 0 < args.vad_threshold <= 1:
        raise ValueError(f"--vad-threshold must be in (0, 1], not {args.vad_threshold:g}")
    vad = vad_options_for(style or style_from_args(args))
    vad = replace(vad, speech_pad_ms=args.vad_speech_pad_ms,
                  **{key: value for key, value in (("threshold", args.vad_threshold),
                                                   ("min_silence_duration_ms", args.vad_min_silence_ms),
                                                   ("min_speech_duration_ms", args.vad_min_speech_ms))
                     if value is not None})
    return RunOptions(tuple(dict.fromkeys(formats)), args.notes, args.smi_encoding, vad)


def decode_options_from_args(args: argparse.Namespace) -> dict:
    """kidsasr.asr.models.DecodeOptions fields set on the command line."""
    return {"beam_size": args.beam_size, "batch_size": args.batch_size, "num_threads": args.threads,
            "initial_prompt": args.initial_prompt, "hotwords": args.hotwords}


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
    except (PermissionError, BusyError) as e:
        print(f"kidsasr subtitle: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, source: Path) -> int:
    if not source.exists():
        print(f"kidsasr subtitle: {source}: no such file or folder", file=sys.stderr)
        return 2
    try:
        style = style_from_args(args)
        options = run_options_from_args(args, style)
    except ValueError as e:
        print(f"kidsasr subtitle: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("kidsasr subtitle: --workers must be at least 1", file=sys.stderr)
        return 2
    decode_options = decode_options_from_args(args)
    if source.is_dir():
        out_dir = Path(args.out) if args.out else source
        if format_of(out_dir) and not out_dir.is_dir():
            print(f"kidsasr subtitle: {source} is a folder: -o names an output folder, not {out_dir.name}",
                  file=sys.stderr)
            return 2
        print(f"subtitling the episodes in {source} into {out_dir} (model {args.model}, backend {args.backend}, "
              f"style {style.name}); summary: {out_dir / SUMMARY_NAME}", file=sys.stderr)
        results, ignored = subtitle_folder(source, out_dir, args.model, args.backend, style, options, args.workers,
                                           args.overwrite, args.device, args.compute_type, **decode_options)
    else:
        out = _single_output(Path(args.input.partition("!")[0]).parent / source.name if "!" in args.input else source,
                             args.out)
        check_writable(out.parent)
        remove_stale_parts(out.parent, recursive=False)
        extra = [str(out.with_suffix(SUFFIXES[f])) for f in options.formats if f != format_of(out)]
        print(f"subtitling {source} into {', '.join([str(out), *extra])} (model {args.model}, backend "
              f"{args.backend}, style {style.name})", file=sys.stderr)
        try:
            recognizer = _load(args.model, args.backend, args.device, args.compute_type, **decode_options)
        except NeedsFullInstall as e:
            print(f"kidsasr subtitle: {e}", file=sys.stderr)
            return 2
        except Exception as e:
            print(f"kidsasr subtitle: model {args.model!r} could not be loaded: {type(e).__name__}: {e}",
                  file=sys.stderr)
            return 1
        results, ignored = [subtitle_file(source, out, recognizer, style, options, progress=True)], []
    print_summary(results, ignored)
    return 1 if any(r.status == "failed" for r in results) else 0


def _single_output(source: Path, out: str | None) -> Path:
    """-o EP.EXT (a subtitle extension: that file, in that format); anything else is a folder to write EP.vtt into."""
    if out is None:
        return source.with_suffix(".vtt")
    path = Path(out)
    if format_of(path) and not path.is_dir():
        return path
    return path / source.with_suffix(".vtt").name
