"""The real-speech half of `make bench-subtitle`: kidsasr and faster-whisper on the real read-speech episode and on the
real child-speech episode (kidsasr.evaluation.real_episode, kidsasr.evaluation.child_episode), same weights, same run.

Each run of a tool is a fresh process, timed whole as a user runs it (interpreter start, model load, VAD, decoding,
cues, writing the file): `kidsasr subtitle EPISODE -o OUT.vtt`, and faster-whisper's `WhisperModel.transcribe` with
its defaults (beam 5, vad_filter=True) on the same CTranslate2 int8 weights, one cue per segment (`python
eval/bench_real.py faster-whisper ...`). The tools' runs alternate, `repeats` each; every run prints its wall
seconds, CPU seconds (the child's user + system time) and the machine's 1-minute load average before and after; the
tables give the medians. On a shared machine only the ratios between the tools mean anything.

Everything is read from ../shared/real-speech (or --real-speech PATH) and written under the work folder only: the
sets are CC BY-NC-ND, for evaluation, and never enter the repository.

Read-speech episode (reference cues = clip spans and texts): CER, SubER, share of cue time outside the spans +-0.3 s,
cues across a gap between two clips, cues within the style rules, share of span time covered.
Child episode (no transcripts): clips with a cue, share of their time covered, longest run of clips with no cue,
stock hallucinations, by activity (singing, talking, reading, refusing).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kidsasr.fileio import write_json_atomic

TOOLS = ("kidsasr", "faster-whisper")
ROOT = Path(__file__).resolve().parents[1]  # the checkout whose kidsasr the timed processes run


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process
    load_before: float  # 1-minute load average
    load_after: float


def tool_command(tool: str, wav: Path, out_vtt: Path, model: str, ct2_dir: Path, threads: int, style: str
                 ) -> list[str]:
    """The command line of one whole run of `tool` writing `out_vtt`."""
    if tool == "kidsasr":
        return [sys.executable, "-m", "kidsasr.cli", "subtitle", str(wav), "-o", str(out_vtt), "--model", model,
                "--backend", "ct2", "--threads", str(threads), "--style", style]
    if tool == "faster-whisper":
        return [sys.executable, str(Path(__file__).resolve()), "faster-whisper", str(wav), str(out_vtt),
                str(ct2_dir), str(threads)]
    raise ValueError(f"unknown tool {tool!r} (choose from {', '.join(TOOLS)})")


def timed_process(command: list[str]) -> Run:
    """Run `command` to its end (its output to this process's stderr); its wall and CPU time, the load around it."""
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stdout=sys.stderr, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)}: exit status {process.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, load_before, os.getloadavg()[0])


def timed_runs(tools: tuple[str, ...], wav: Path, out: Path, model: str, ct2_dir: Path, threads: int, style: str,
               repeats: int) -> dict[str, list[Run]]:
    """`repeats` fresh runs of each tool, alternating; run k writes `out/<tool>-<k>.vtt`, the last is scored."""
    runs: dict[str, list[Run]] = {tool: [] for tool in tools}
    for k in range(repeats):
        for tool in tools:
            run = timed_process(tool_command(tool, wav, out / f"{tool}-{k + 1}.vtt", model, ct2_dir, threads, style))
            runs[tool].append(run)
            print(f"{tool} on {wav.name}, run {k + 1}/{repeats}: wall {run.wall:.1f} s, CPU {run.cpu:.1f} s, "
                  f"load {run.load_before:.1f} -> {run.load_after:.1f}", file=sys.stderr)
    return runs


def timing_row(runs: list[Run], duration: float) -> dict:
    """Medians of a tool's runs (wall, CPU, load before each run) and every run as it was."""
    wall = statistics.median(r.wall for r in runs)
    return {"wall": wall, "cpu": statistics.median(r.cpu for r in runs), "rtf": wall / duration,
            "load": statistics.median(r.load_before for r in runs), "runs": [r.__dict__ for r in runs]}


def read_scores(vtt: Path, reference: Path, style) -> dict:
    """The read-speech episode's figures for one subtitle file against the reference cues (clip spans and texts)."""
    from kidsasr.evaluation.longform import evaluate_subtitles

    r = evaluate_subtitles(vtt, reference, style)
    spans = r["reference_spans"]
    return {"cer": r["cer"]["rate"], "suber_char": r["suber_char"], "cues": r["cues"],
            "in_rules": r["style_compliance"]["compliance"], "violations": r["style_compliance"]["violations_by_rule"],
            "outside_spans": spans["outside_share"], "cues_across_gaps": spans["cues_across_gaps"],
            "spans_covered": spans["spans_covered_share"]}


def child_scores(vtt: Path, clips) -> dict:
    """The child episode's figures for one subtitle file (kidsasr.evaluation.child_episode.score_child_cues), and
    where kidsasr's review side file is beside it, why each clip without a cue has none (counts by reason)."""
    from kidsasr.evaluation.child_episode import score_child_cues, why_no_cue
    from kidsasr.evaluation.longform import read_subtitles
    from kidsasr.subtitles.cues import cues_json_path

    cues = [(c.start, c.end, c.text) for c in read_subtitles(vtt)]
    scores = score_child_cues(cues, clips)
    side = cues_json_path(vtt)
    if side.is_file():
        review = json.loads(side.read_text(encoding="utf-8"))
        reasons = why_no_cue(clips, cues, review["speech_regions"] or [], review.get("dropped", []))
        scores["no_cue_reasons"] = {reason: len(ids) for reason, ids in reasons.items()}
    return scores


def read_episode_rows(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style,
                      repeats: int, tools: tuple[str, ...] = TOOLS) -> list[dict]:
    from kidsasr.evaluation.real_episode import build_real_episode

    out = work / "real-read"
    episode = build_real_episode(out, real_speech)
    runs = timed_runs(tools, episode.wav, out, model, ct2_dir, threads, style.name, repeats)
    return [{"episode": "real read speech", "tool": tool, "duration": episode.duration,
             **timing_row(runs[tool], episode.duration),
             **read_scores(out / f"{tool}-{repeats}.vtt", episode.reference, style)}
            for tool in tools]


def child_episode_rows(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style,
                       repeats: int, tools: tuple[str, ...] = TOOLS) -> list[dict]:
    from kidsasr.evaluation.child_episode import build_child_episode

    out = work / "real-child"
    episode = build_child_episode(out, real_speech)
    runs = timed_runs(tools, episode.wav, out, model, ct2_dir, threads, style.name, repeats)
    return [{"episode": "real child speech", "tool": tool, "duration": episode.duration,
             **timing_row(runs[tool], episode.duration), **child_scores(out / f"{tool}-{repeats}.vtt", episode.clips)}
            for tool in tools]


def _ratios(rows: list[dict]) -> list[str]:
    by_tool = {r["tool"]: r for r in rows}
    if set(TOOLS) - set(by_tool):
        return []
    ours, theirs = by_tool["kidsasr"], by_tool["faster-whisper"]
    return ["", f"faster-whisper / kidsasr: {theirs['wall'] / ours['wall']:.2f}x the wall time, "
                f"{theirs['cpu'] / ours['cpu']:.2f}x the CPU time (medians; load averages beside each figure)"]


def report(rows: list[dict], model: str, threads: int, repeats: int) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    timing = lambda r: f"{r['wall']:.1f} | {r['cpu']:.1f} | {r['load']:.1f} | {r['rtf']:.3f}"  # noqa: E731
    read = [r for r in rows if r["episode"] == "real read speech"]
    child = [r for r in rows if r["episode"] == "real child speech"]
    whole = f"wall and CPU s of a fresh process (model load + decode + cues + file), median of {repeats}; load: " \
            "the 1-minute load average when a run began (median)"
    lines = []
    if read:
        lines += [f"### Real read-speech episode ({read[0]['duration'] / 60:.1f} min, 300 clips), model `{model}`, "
                  f"{threads} CPU threads; {whole}", "",
                  "| tool | wall s | CPU s | load | RTF | CER | SubER (char) | cues | cues in rules | cue time outside "
                  "spans +-0.3 s | cues across a gap | spans covered |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['tool']} | {timing(r)} | {pct(r['cer'])} | {r['suber_char']:.1f} | {r['cues']} | "
                  f"{pct(r['in_rules'])} | {pct(r['outside_spans'])} | {r['cues_across_gaps']} | "
                  f"{pct(r['spans_covered'])} |" for r in read]
        lines += _ratios(read)
        lines += [f"style violations, {r['tool']}: {r['violations'] or 'none'}" for r in read]
    if child:
        lines += ["", f"### Real child-speech episode ({child[0]['duration'] / 60:.1f} min, {child[0]['clips']} clips "
                      f"of a 5-year-old, 0.8 s gaps); {whole}", "",
                  "| tool | wall s | CPU s | load | RTF | cues | clips with a cue | clip time covered | longest run of "
                  "clips with no cue | stock hallucinations |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['tool']} | {timing(r)} | {r['cues']} | {pct(r['clips_with_cue'])} | "
                  f"{pct(r['speech_covered'])} | {r['longest_uncued_stretch']:.1f} s | "
                  f"{len(r['stock_hallucinations'])} |" for r in child]
        lines += _ratios(child)
        for r in child:
            lines.append(f"by activity, {r['tool']}: " + "; ".join(
                f"{a} {v['clips']} clips, {pct(v['with_cue'])} with a cue, {pct(v['covered'])} covered"
                for a, v in r["by_activity"].items()))
        lines += [f"why clips got no cue, {r['tool']}: " + ("; ".join(
            f"{n} {reason}" for reason, n in r["no_cue_reasons"].items()) or "every clip got one")
            for r in child if "no_cue_reasons" in r]
    return "\n".join(lines)


def run(work: Path, real_speech: Path | None, model: str, ct2_dir: Path, threads: int, style, repeats: int,
        which: str = "both", tools: tuple[str, ...] = TOOLS) -> str:
    """Both real episodes (or `which`: read / child); the markdown tables. Skips, saying so, without the data."""
    from kidsasr.evaluation.real_speech import read_speech_manifest, skip_message

    if read_speech_manifest(real_speech) is None:
        return skip_message(real_speech)
    rows = []
    if which in ("both", "read"):
        rows += read_episode_rows(work, real_speech, model, ct2_dir, threads, style, repeats, tools)
    if which in ("both", "child"):
        rows += child_episode_rows(work, real_speech, model, ct2_dir, threads, style, repeats, tools)
    write_json_atomic(work / "real-results.json", rows)
    return report(rows, model, threads, repeats)


def faster_whisper_main(wav: str, out_vtt: str, ct2_dir: str, threads: str) -> None:
    """One faster-whisper run as its users run it: load, transcribe with the defaults, one cue per segment."""
    from faster_whisper import WhisperModel

    from kidsasr.subtitles.cues import Cue
    from kidsasr.subtitles.writers import write_subtitles

    model = WhisperModel(ct2_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
    segments, _ = model.transcribe(wav, language="ko", vad_filter=True)
    write_subtitles([Cue(s.start, s.end, [s.text.strip()], 1.0) for s in segments if s.text.strip()], out_vtt)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "faster-whisper":
        faster_whisper_main(*sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} faster-whisper WAV OUT.vtt CT2_DIR THREADS (`make bench-subtitle` runs the rest)")
