"""`make bench-subtitle`: kidsasr subtitles vs faster-whisper's defaults on a generated 10-minute episode and, when
../shared/real-speech is there, on the real read-speech and child-speech episodes (eval/bench_real.py).

Stages:
  1. render a 10-minute children's-programme episode with kidsasr.synth.generator (cached under --work)
  2. kidsasr: CTranslate2 int8 recogniser -> transcribe_long (the style's VAD and guards) -> cues.build_cues
     (kids style), --repeats times
     (median wall and CPU time reported)
  3. baseline, same weights: faster-whisper `WhisperModel.transcribe` with its defaults (sequential, beam 5,
     vad_filter=True), one cue per segment
  4. both written to --work as VTT (kidsasr's dropped items as JSON lines) and scored from the files by
     kidsasr.evaluation.longform against the label and the true speech spans (truth.jsonl): real-time factor (wall) and
     CPU time, CER over the episode, share of cues within the style rules (cues.check_cue), share of on-screen time
     outside speech, share of cues spanning a pause > 1 s
  5. real speech (eval/bench_real.py; said plainly when skipped): both tools, each run a fresh process timed whole
     (model load included), median of --real-repeats, on the 300-clip read-speech episode and the 5-minute child episode
Optional: --memory-hours N writes an N-hour episode (a sentence every 30 s over room tone, streamed to disk) and
reports the peak RSS of transcribe_long on it beside the same on a file a third as long (both decode full batches,
so the difference is what grows with length).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import bench_real
import numpy as np

from kidsasr.audio import write_wav
from kidsasr.constants import SAMPLE_RATE
from kidsasr.fileio import read_jsonl, write_json_atomic, write_jsonl_atomic

EPISODE_SECONDS = 600.0


def make_episode(work: Path, seed: int) -> tuple[Path, list[dict]]:
    """A 10-minute episode rendered by kidsasr.synth.generator, cached under `work`: its WAV and its truth rows."""
    from kidsasr.synth import generator as synth
    from kidsasr.synth.textbank import sentence_bank

    wav, label_path, truth_path = work / "episode.wav", work / "episode.json", work / "truth.jsonl"
    if not (wav.exists() and label_path.exists() and truth_path.exists()):
        plan = dataclasses.replace(synth.plan_episodes("demo", seed)[0], seconds=EPISODE_SECONDS,
                                   stem="BENCH_SUBTITLE")
        pool = synth.sentence_pools(sentence_bank(seed), seed)[plan.category]
        print(f"rendering a {EPISODE_SECONDS / 60:.0f}-minute episode into {work}", file=sys.stderr)
        audio, label, truth = synth.render_episode(plan, seed, pool)
        write_wav(wav, audio)
        write_json_atomic(label_path, label)
        write_jsonl_atomic(truth_path, truth)
    return wav, list(read_jsonl(truth_path))


def evaluate(name: str, vtt: Path, label_path: Path, speech: list[tuple[float, float]], wall: float, cpu: float,
             style) -> dict:
    """The eval engineer's long-form scoring of the written VTT, with the true speech spans as speech."""
    from kidsasr.evaluation.longform import evaluate_subtitles

    r = evaluate_subtitles(vtt, label_path, style, speech_regions=speech)
    return {"tool": name, "wall": wall, "cpu": cpu, "rtf": wall / EPISODE_SECONDS, "cer": r["cer"]["rate"],
            "cues": r["cues"], "in_rules": r["style_compliance"]["compliance"],
            "violations": r["style_compliance"]["violations_by_rule"],
            "outside_speech": r["timing"]["off_speech_share"], "spanning_pause": r["timing"]["cues_spanning_pauses_share"],
            "speech_covered": r["timing"]["speech_covered_share"]}


def run_kidsasr(wav: Path, recognizer, style) -> tuple[list, tuple[float, float], object]:
    from kidsasr.subtitles.cues import build_cues
    from kidsasr.asr.transcribe import transcribe_long
    from kidsasr.subtitles.runner import guard_options_for, vad_options_for

    wall, cpu = time.perf_counter(), time.process_time()
    result = transcribe_long(wav, recognizer, vad_options=vad_options_for(style), guard_options=guard_options_for(style))
    cues = build_cues(result.words, style, result.speech_regions)
    return cues, (time.perf_counter() - wall, time.process_time() - cpu), result


def run_faster_whisper(wav: Path, ct2_dir: Path, threads: int) -> tuple[list, tuple[float, float]]:
    from faster_whisper import WhisperModel

    from kidsasr.subtitles.cues import Cue

    model = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    frames = model.feature_extractor.nb_max_frames
    if frames != 3000:
        # faster-whisper reads chunk_length from preprocessor_config.json but pads every window to 3000 frames
        # (audio.pad_or_trim's default): give it the model's own window so it can run the same weights.
        import faster_whisper.transcribe
        from faster_whisper.audio import pad_or_trim

        faster_whisper.transcribe.pad_or_trim = functools.partial(pad_or_trim, length=frames)
        print(f"faster-whisper: windows padded to {frames} frames, this model's window", file=sys.stderr)
    wall, cpu = time.perf_counter(), time.process_time()
    segments, _ = model.transcribe(str(wav), language="ko", vad_filter=True)
    cues = [Cue(s.start, s.end, [s.text.strip()], float(np.exp(s.avg_logprob)))
            for s in segments if s.text.strip()]
    return cues, (time.perf_counter() - wall, time.process_time() - cpu)


def peak_rss_of_transcribe(wav: Path, model: str, threads: int) -> float:
    """Peak RSS (MiB) of a fresh process that runs transcribe_long on `wav`."""
    code = ("import resource, sys; from kidsasr.asr.models import load_recognizer; "
            "from kidsasr.asr.transcribe import transcribe_long; "
            f"r = transcribe_long({str(wav)!r}, load_recognizer({model!r}, backend='ct2', num_threads={threads})); "
            "print(len(r.speech_regions), len(r.segments), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[-1]) / 1024


def write_long_episode(path: Path, hours: float, speech: np.ndarray, every: float = 30.0) -> None:
    """`hours` of quiet room tone with one sentence every `every` seconds, written block by block."""
    import soundfile as sf

    if path.exists():
        return
    rng = np.random.default_rng(0)
    block = int(every * SAMPLE_RATE)
    tmp = path.with_suffix(".part.wav")
    with sf.SoundFile(tmp, "w", SAMPLE_RATE, 1, "PCM_16") as f:
        for _ in range(int(hours * 3600 / every)):
            chunk = rng.normal(0, 0.002, block).astype(np.float32)
            chunk[SAMPLE_RATE : SAMPLE_RATE + speech.size] += speech
            f.write(chunk)
    os.replace(tmp, path)


def generated_episode(args: argparse.Namespace, style) -> tuple[Path, list[tuple[float, float]]]:
    """Both tools on the generated episode; prints the table; (the episode's WAV, its true speech spans)."""
    from kidsasr.asr.export import cached_ct2
    from kidsasr.evaluation.longform import merge_regions

    wav, truth = make_episode(args.work, args.seed)
    duration = EPISODE_SECONDS
    speech = merge_regions([(r["true_start"], r["true_end"]) for r in truth])
    ct2_dir = cached_ct2(args.model)
    print(f"episode {wav} ({duration / 60:.0f} min, {len(truth)} sentences); model {args.model} -> {ct2_dir}; "
          f"{args.threads} threads", file=sys.stderr)

    from kidsasr.subtitles.writers import write_subtitles

    rows = []
    label_path = args.work / "episode.json"
    from kidsasr.asr.models import load_recognizer

    recognizer = load_recognizer(args.model, backend="ct2", num_threads=args.threads)  # converted before timing
    times = []
    for _ in range(args.repeats):  # the same decode each time: the median wall time is the figure
        cues, elapsed, result = run_kidsasr(wav, recognizer, style)
        times.append(elapsed)
    wall, cpu = (float(np.median(t)) for t in zip(*times))
    walls = [t[0] for t in times]
    print(f"kidsasr wall s over {args.repeats} runs: {', '.join(f'{w:.1f}' for w in walls)}", file=sys.stderr)
    write_subtitles(cues, args.work / "kidsasr.vtt")
    write_jsonl_atomic(args.work / "kidsasr-dropped.jsonl", (d._asdict() for d in result.dropped))
    rows.append(evaluate("kidsasr (ct2 int8, batched, VAD, guards)", args.work / "kidsasr.vtt", label_path, speech,
                         wall, cpu, style))
    print(f"kidsasr: {len(result.segments)} segments, {len(result.dropped)} dropped items "
          f"({', '.join(sorted({d.reason.split(' (')[0] for d in result.dropped}))})", file=sys.stderr)
    if not args.skip_baseline:
        cues, (wall, cpu) = run_faster_whisper(wav, ct2_dir, args.threads)
        write_subtitles(cues, args.work / "faster-whisper.vtt")
        rows.append(evaluate("faster-whisper defaults (beam 5, vad_filter)", args.work / "faster-whisper.vtt",
                             label_path, speech, wall, cpu, style))
    write_jsonl_atomic(args.work / "results.jsonl", rows)

    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    print(f"\n### {duration / 60:.0f}-minute generated episode, model `{args.model}`, {args.threads} CPU threads "
          f"(kidsasr: median of {args.repeats} runs, {min(walls):.1f}-{max(walls):.1f} s)\n")
    print("| tool | wall s | CPU s | RTF (wall) | CER | cues | cues in rules | on-screen time outside speech "
          "| cues spanning a pause |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tool']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rtf']:.3f} | {pct(r['cer'])} | {r['cues']} | "
              f"{pct(r['in_rules'])} | {pct(r['outside_speech'])} | {pct(r['spanning_pause'])} |")
    if len(rows) == 2:
        print(f"\nkidsasr vs faster-whisper: {rows[1]['wall'] / rows[0]['wall']:.1f}x faster (wall), "
              f"{rows[1]['cpu'] / rows[0]['cpu']:.1f}x less CPU time")
    for r in rows:
        print(f"style violations, {r['tool']}: {r['violations'] or 'none'}")

    return wav, speech


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="openai/whisper-base", help="Whisper id or folder (a fine-tuned model)")
    parser.add_argument("--work", type=Path, default=Path("work/bench-subtitle"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both tools")
    parser.add_argument("--style", default="kids")
    parser.add_argument("--repeats", type=int, default=3, help="kidsasr runs (its median time is reported)")
    parser.add_argument("--skip-baseline", action="store_true", help="run kidsasr only")
    parser.add_argument("--memory-hours", type=float, default=0.0, help="also measure peak RSS on an N-hour file")
    parser.add_argument("--real-speech", type=Path, default=None,
                        help="real-speech folder (default $KIDSASR_REAL_SPEECH or ../shared/real-speech)")
    parser.add_argument("--real", default="both", choices=("both", "read", "child", "none"),
                        help="which real-speech episodes to run")
    parser.add_argument("--real-repeats", type=int, default=3,
                        help="fresh whole runs per tool on the real episodes (median reported)")
    parser.add_argument("--real-tools", default=",".join(bench_real.TOOLS),
                        help="tools run on the real episodes, comma-separated")
    parser.add_argument("--skip-generated", action="store_true", help="run the real-speech episodes only")
    args = parser.parse_args(argv)

    from kidsasr.asr.export import cached_ct2
    from kidsasr.subtitles.cues import load_style

    style = load_style(args.style)
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.skip_generated:
        wav, speech = generated_episode(args, style)
    if args.real != "none":
        print("\n" + bench_real.run(args.work, args.real_speech, args.model, cached_ct2(args.model), args.threads,
                                    style, args.real_repeats, args.real, tuple(args.real_tools.split(","))))
    if args.memory_hours and not args.skip_generated:
        from kidsasr.audio import load_audio

        sentence = load_audio(wav)[int(speech[1][0] * SAMPLE_RATE) : int(speech[1][1] * SAMPLE_RATE)]
        short_hours = args.memory_hours / 3
        short = args.work / f"long-{short_hours:g}h.wav"
        long_ = args.work / f"long-{args.memory_hours:g}h.wav"
        write_long_episode(short, short_hours, sentence)
        write_long_episode(long_, args.memory_hours, sentence)
        for path, hours in ((short, short_hours), (long_, args.memory_hours)):
            started = time.perf_counter()
            rss = peak_rss_of_transcribe(path, args.model, args.threads)
            print(f"peak RSS transcribe_long on {hours:g} h ({path.stat().st_size / 2**20:.0f} MiB WAV): "
                  f"{rss:.0f} MiB, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
