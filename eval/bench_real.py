"""The real-speech half of `make bench-subtitle`: kidsasr and faster-whisper on the real read-speech episode and on the
real child-speech episode (kidsasr.evaluation.real_episode, kidsasr.evaluation.child_episode), same weights, same run.

Each tool's time is the whole job as a user runs it: loading the model, transcribing, building cues; the median of
`repeats` runs. Everything is read from ../shared/real-speech (or --real-speech PATH) and written under the work
folder only: the sets are CC BY-NC-ND, for evaluation, and never enter the repository.

Read-speech episode (reference cues = clip spans and texts): CER, SubER, share of cue time outside the spans +-0.3 s,
cues across a gap between two clips, cues within the style rules, share of span time covered.
Child episode (no transcripts): clips with a cue, share of their time covered, longest run of clips with no cue,
stock hallucinations, by activity (singing, talking, reading, refusing).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from kidsasr.fileio import write_json_atomic, write_jsonl_atomic

TOOLS = ("kidsasr", "faster-whisper")


def run_tool(tool: str, wav: Path, model: str, ct2_dir: Path, threads: int, style) -> tuple[list, float, list]:
    """One whole run of a tool: (cues, wall seconds including the model load, kidsasr's dropped items)."""
    from kidsasr.subtitles.cues import Cue, build_cues

    began = time.perf_counter()
    if tool == "kidsasr":
        from kidsasr.asr.models import load_recognizer
        from kidsasr.asr.transcribe import transcribe_long
        from kidsasr.subtitles.runner import guard_options_for

        result = transcribe_long(wav, load_recognizer(model, backend="ct2", num_threads=threads),
                                 guard_options=guard_options_for(style))
        cues = build_cues(result.words, style, result.speech_regions)
        return cues, time.perf_counter() - began, result.dropped
    from faster_whisper import WhisperModel

    segments, _ = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8", cpu_threads=threads).transcribe(
        str(wav), language="ko", vad_filter=True)
    cues = [Cue(s.start, s.end, [s.text.strip()], float(np.exp(s.avg_logprob))) for s in segments if s.text.strip()]
    return cues, time.perf_counter() - began, []


def timed_runs(tool: str, wav: Path, model: str, ct2_dir: Path, threads: int, style, repeats: int, out: Path
               ) -> tuple[Path, float, list[float]]:
    """`repeats` whole runs; the last run's cues written to `out/<tool>.vtt`; (vtt, median wall, walls)."""
    from kidsasr.subtitles.cues import write_vtt

    walls = []
    for _ in range(repeats):
        cues, wall, dropped = run_tool(tool, wav, model, ct2_dir, threads, style)
        walls.append(wall)
    vtt = out / f"{tool}.vtt"
    write_vtt(cues, vtt)
    if tool == "kidsasr":
        write_jsonl_atomic(out / "kidsasr-dropped.jsonl", (d._asdict() for d in dropped))
    print(f"{tool} on {wav}: wall s {', '.join(f'{w:.1f}' for w in walls)}", file=sys.stderr)
    return vtt, statistics.median(walls), walls


def read_episode_rows(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style,
                      repeats: int) -> list[dict]:
    from kidsasr.evaluation.longform import evaluate_subtitles
    from kidsasr.evaluation.real_episode import build_real_episode

    episode = build_real_episode(work / "real-read", real_speech)
    rows = []
    for tool in TOOLS:
        vtt, wall, walls = timed_runs(tool, episode.wav, model, ct2_dir, threads, style, repeats, work / "real-read")
        r = evaluate_subtitles(vtt, episode.reference, style)
        spans = r["reference_spans"]
        rows.append({"episode": "real read speech", "tool": tool, "wall": wall, "walls": walls,
                     "rtf": wall / episode.duration, "cer": r["cer"]["rate"], "suber_char": r["suber_char"],
                     "cues": r["cues"], "in_rules": r["style_compliance"]["compliance"],
                     "violations": r["style_compliance"]["violations_by_rule"],
                     "outside_spans": spans["outside_share"], "cues_across_gaps": spans["cues_across_gaps"],
                     "spans_covered": spans["spans_covered_share"], "duration": episode.duration})
    return rows


def child_episode_rows(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style,
                       repeats: int) -> list[dict]:
    from kidsasr.evaluation.child_episode import build_child_episode, score_child_cues
    from kidsasr.evaluation.longform import read_subtitles

    episode = build_child_episode(work / "real-child", real_speech)
    rows = []
    for tool in TOOLS:
        vtt, wall, walls = timed_runs(tool, episode.wav, model, ct2_dir, threads, style, repeats, work / "real-child")
        cues = [(c.start, c.end, c.text) for c in read_subtitles(vtt)]
        rows.append({"episode": "real child speech", "tool": tool, "wall": wall, "walls": walls,
                     "rtf": wall / episode.duration, "duration": episode.duration,
                     **score_child_cues(cues, episode.clips)})
    return rows


def report(rows: list[dict], model: str, threads: int, repeats: int) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    read = [r for r in rows if r["episode"] == "real read speech"]
    child = [r for r in rows if r["episode"] == "real child speech"]
    lines = []
    if read:
        lines += [f"### Real read-speech episode ({read[0]['duration'] / 60:.1f} min, 300 clips), model `{model}`, "
                  f"{threads} CPU threads, wall = model load + decode + cues, median of {repeats}", "",
                  "| tool | wall s | RTF | CER | SubER (char) | cues | cues in rules | cue time outside spans +-0.3 s "
                  "| cues across a gap | spans covered |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['tool']} | {r['wall']:.1f} | {r['rtf']:.3f} | {pct(r['cer'])} | {r['suber_char']:.1f} | "
                  f"{r['cues']} | {pct(r['in_rules'])} | {pct(r['outside_spans'])} | {r['cues_across_gaps']} | "
                  f"{pct(r['spans_covered'])} |" for r in read]
        if len(read) == 2:
            lines += ["", f"kidsasr vs faster-whisper: {read[1]['wall'] / read[0]['wall']:.1f}x faster"]
        lines += [f"style violations, {r['tool']}: {r['violations'] or 'none'}" for r in read]
    if child:
        lines += ["", f"### Real child-speech episode ({child[0]['duration'] / 60:.1f} min, {child[0]['clips']} clips "
                      "of a 5-year-old, 0.8 s gaps)", "",
                  "| tool | wall s | RTF | cues | clips with a cue | clip time covered | longest run of clips with "
                  "no cue | stock hallucinations |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['tool']} | {r['wall']:.1f} | {r['rtf']:.3f} | {r['cues']} | {pct(r['clips_with_cue'])} | "
                  f"{pct(r['speech_covered'])} | {r['longest_uncued_stretch']:.1f} s | "
                  f"{len(r['stock_hallucinations'])} |" for r in child]
        for r in child:
            lines.append(f"by activity, {r['tool']}: " + "; ".join(
                f"{a} {v['clips']} clips, {pct(v['with_cue'])} with a cue, {pct(v['covered'])} covered"
                for a, v in r["by_activity"].items()))
    return "\n".join(lines)


def run(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style, repeats: int,
        which: str = "both") -> str:
    """Both real episodes (or `which`: read / child); the markdown tables. Skips, saying so, without the data."""
    from kidsasr.evaluation.real_speech import read_speech_manifest, skip_message

    if read_speech_manifest(real_speech) is None:
        return skip_message(real_speech)
    rows = []
    if which in ("both", "read"):
        rows += read_episode_rows(work, real_speech, model, ct2_dir, threads, style, repeats)
    if which in ("both", "child"):
        rows += child_episode_rows(work, real_speech, model, ct2_dir, threads, style, repeats)
    write_json_atomic(work / "real-results.json", rows)
    return report(rows, model, threads, repeats)
