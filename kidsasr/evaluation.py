"""`kidsasr eval`: transcribe a prepared split (or read a hypotheses file), score it against the zero-shot
baseline in the same run, and write report.md, metrics.json, per-utterance scores and plots.

    kidsasr eval --model out/best --data work/prep --split test          # model vs openai/whisper-base
    kidsasr eval --hyps hyps.jsonl --data work/prep/manifest.jsonl       # score a hypotheses file, no model
    kidsasr eval --subtitles ep.vtt --reference ep.json                  # long-form: see kidsasr.longform_eval

Stages: 1 read references, 2 transcribe (resumable: hypotheses are cached per model in the run folder),
3 score + bootstrap, 4 write the report and append one row to eval/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import metrics
from .fileio import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .manifest import Utterance, decode_audio, load_split

if TYPE_CHECKING:
    from .models import Recognizer

DEFAULT_BASELINE = "openai/whisper-base"
BREAKDOWN_FIELDS = (  # (report name, how to read it from an utterance)
    ("category", lambda u, n: u.category),
    ("age_group", lambda u, n: u.age_group),
    ("sex", lambda u, n: u.sex),
    ("speaker_role", lambda u, n: u.speaker_role),
    ("condition", lambda u, n: u.condition),
    ("length_chars", lambda u, n: metrics.length_bucket(n)),
)
RESULTS_HEADER = (
    "| date | run | model | data | split | utterances | CER % [95% CI] | baseline | baseline CER % | "
    "difference (p) | commit |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)
RUNS_HEADING = "## Runs"
REPO_ROOT = Path(__file__).resolve().parents[1]


class EvalInputError(ValueError):
    """Unusable evaluation input, naming the file (and the ids or line) at fault."""


# ---- stage 1: references and hypotheses ---------------------------------------------------------------------

def load_references(data: str | Path, split: str) -> list[Utterance]:
    """Utterances of a split from a prep folder (parquet shards) or a JSON-lines manifest (prep's manifest.jsonl)."""
    data = Path(data)
    if data.is_file():
        rows = _read_jsonl_strict(data)
        for number, row in enumerate(rows, 1):
            if "id" not in row or "text" not in row:
                raise EvalInputError(f"{data}: row {number} lacks 'id' or 'text'")
        rows = [r for r in rows if r.get("split", split) == split]
        if not rows:
            raise EvalInputError(f"{data}: no utterances with split {split!r}")
        utterances = [Utterance.from_row({**_utterance_defaults(), **row}) for row in rows]
    else:
        ds = load_split(data, split).remove_columns("audio")
        utterances = [Utterance.from_row(row) for row in ds]
    duplicates = _duplicates(u.id for u in utterances)
    if duplicates:
        raise EvalInputError(f"{data}: duplicate utterance ids: {metrics.preview_ids(duplicates)}")
    return utterances


def _utterance_defaults() -> dict:
    return {"episode_id": "", "split": "", "audio_source": "", "start": 0.0, "end": 0.0, "text_pron": "",
            "raw_text": ""}


def _duplicates(ids) -> list[str]:
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    return dup


def read_utf8(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 are an error naming the file, line and offset."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = raw[: e.start].count(b"\n") + 1
        raise EvalInputError(f"{path}:{line_no}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from e


def _read_jsonl_strict(path: Path) -> list[dict]:
    """JSON lines with errors that name the file and line."""
    text = read_utf8(path)
    rows = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{path}:{line_no}: invalid JSON: {e.msg}") from e
        if not isinstance(row, dict):
            raise EvalInputError(f"{path}:{line_no}: expected a JSON object")
        rows.append(row)
    return rows


def read_hypotheses(path: str | Path) -> dict[str, str]:
    """A JSON-lines file of {"id": ..., "text": ...}; duplicate ids and non-string texts are errors."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: hypotheses file not found")
    hyps: dict[str, str] = {}
    for line_no, row in enumerate(_read_jsonl_strict(path), 1):
        if not isinstance(row.get("id"), str) or not isinstance(row.get("text"), str):
            raise EvalInputError(f"{path}: row {line_no} needs a string 'id' and a string 'text'")
        if row["id"] in hyps:
            raise EvalInputError(f"{path}: id {row['id']!r} appears twice")
        hyps[row["id"]] = row["text"]
    return hyps


def align_hypotheses(utterances: list[Utterance], hyps: dict[str, str], source: str) -> list[str | None]:
    """Hypotheses in reference order; None where missing. Ids the references lack are an error."""
    known = {u.id for u in utterances}
    unknown = [i for i in hyps if i not in known]
    if unknown:
        raise EvalInputError(f"{source}: {len(unknown)} hypothesis id(s) not in the references: "
                             f"{metrics.preview_ids(unknown)}")
    return [hyps.get(u.id) for u in utterances]


# ---- stage 2: transcription ---------------------------------------------------------------------------------

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


# ---- stage 3: scoring ---------------------------------------------------------------------------------------

def system_summary(scores: metrics.Scores, n_resamples: int, seed: int, rtf: float | None = None) -> dict:
    return {
        "cer": metrics.bootstrap_ci(scores.char.errors, scores.char.ref_len, n_resamples, seed).as_dict(),
        "cer_spaced": metrics.bootstrap_ci(scores.char_spaced.errors, scores.char_spaced.ref_len, n_resamples,
                                           seed).as_dict(),
        "wer": metrics.bootstrap_ci(scores.word.errors, scores.word.ref_len, n_resamples, seed).as_dict(),
        "char_edits": scores.char.totals(),
        "char_spaced_edits": scores.char_spaced.totals(),
        "word_edits": scores.word.totals(),
        "hallucination_rate": float(scores.hallucinated.mean()),
        "hallucinated_utterances": int(scores.hallucinated.sum()),
        "missing_hypotheses": int(scores.missing.sum()),
        "missing_ids": [i for i, m in zip(scores.ids, scores.missing) if m],
        "real_time_factor": rtf,
        "top_confusions": [{"reference": r, "hypothesis": h, "count": c}
                           for (r, h), c in scores.confusions.most_common(20)],
        "top_substitutions": [{"reference": r, "hypothesis": h, "count": c}
                              for (r, h), c in scores.confusions.most_common() if r and h][:20],
    }


def breakdowns(scores: metrics.Scores, utterances: list[Utterance], n_resamples: int, seed: int) -> dict:
    out = {}
    for name, get in BREAKDOWN_FIELDS:
        values = [get(u, len(ref)) for u, ref in zip(utterances, scores.references)]
        out[name] = [row.as_dict() for row in metrics.breakdown(scores, name, values, n_resamples, seed)]
    return out


def evaluate(utterances: list[Utterance], hypotheses: list[str | None], baseline: list[str | None] | None = None,
             reference_field: str = "text", n_resamples: int = 1000, seed: int = 0) -> tuple[dict, list[dict]]:
    """Score one system (and the baseline on the same utterances): the metrics dict and per-utterance rows."""
    ids = [u.id for u in utterances]
    refs = [getattr(u, reference_field) for u in utterances]
    scores = metrics.score(ids, refs, hypotheses)
    result = {"utterances": len(ids), "model": system_summary(scores, n_resamples, seed),
              "breakdowns": {"model": breakdowns(scores, utterances, n_resamples, seed)}}
    per_utt = [{"id": i, "reference": r, "hypothesis": h, "char_errors": int(e), "reference_chars": int(n),
                "hallucinated": bool(x), "missing": bool(m)}
               for i, r, h, e, n, x, m in zip(ids, scores.references, scores.hypotheses, scores.char.errors,
                                              scores.char.ref_len, scores.hallucinated, scores.missing)]
    if baseline is not None:
        base = metrics.score(ids, refs, baseline)
        result["baseline"] = system_summary(base, n_resamples, seed)
        result["breakdowns"]["baseline"] = breakdowns(base, utterances, n_resamples, seed)
        result["comparison"] = metrics.paired_bootstrap(scores.char.errors, base.char.errors, scores.char.ref_len,
                                                        n_resamples, seed).as_dict()
        for row, h, e in zip(per_utt, base.hypotheses, base.char.errors):
            row["baseline_hypothesis"], row["baseline_char_errors"] = h, int(e)
    return result, per_utt


# ---- stage 4: report ----------------------------------------------------------------------------------------

def load_published_baselines(path: Path = REPO_ROOT / "eval" / "baselines.yaml") -> list[dict]:
    import yaml

    if not path.exists():
        return []
    return yaml.safe_load(path.read_text(encoding="utf-8")).get("baselines", [])


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}"


def _ci(d: dict) -> str:
    return f"{_pct(d['estimate'])} [{_pct(d['ci_low'])}, {_pct(d['ci_high'])}]"


def render_report(m: dict) -> str:
    model, base = m["model"], m.get("baseline")
    lines = [f"# Evaluation: {m['run']}", "",
             f"- model: `{m['model_name']}`" + (f" (backend {m['backend']})" if m.get("backend") else ""),
             f"- data: `{m['data']}` split `{m['split']}`, {m['utterances']} utterances, references from "
             f"`{m['reference_field']}`",
             f"- baseline (same run, same utterances): `{m.get('baseline_name') or 'none'}`",
             f"- date {m['date']}, commit `{m['commit']}`, bootstrap {m['bootstrap_resamples']} resamples, "
             f"seed {m['seed']}", "",
             "## Normalisation policy", "", m["normalisation_policy"], "",
             "## Headline", "",
             "| system | CER % [95% CI] | CER spaced % | WER % | hallucination % | missing hyps | RTF |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in (("model", model), ("baseline", base)):
        if s is None:
            continue
        rtf = "n/a" if s["real_time_factor"] is None else f"{s['real_time_factor']:.3f}"
        lines.append(f"| {name} | {_ci(s['cer'])} | {_ci(s['cer_spaced'])} | {_ci(s['wer'])} | "
                     f"{_pct(s['hallucination_rate'])} | {s['missing_hypotheses']} | {rtf} |")
    lines += ["", "Corpus CER = total character edits / total reference characters. A missing hypothesis counts "
              "as all deletions. Hallucination: hypothesis longer than 1.5x the reference or repeating a phrase "
              "three times that the reference does not.", ""]
    for name, s in (("model", model), ("baseline", base)):
        if s and s["missing_hypotheses"]:
            lines += [f"**{name}: {s['missing_hypotheses']} utterance(s) had no hypothesis** (scored as deletions): "
                      + ", ".join(s["missing_ids"][:20]) + ("..." if s["missing_hypotheses"] > 20 else ""), ""]
            failed = s.get("transcription_failures") or {}
            lines += [f"- {uid}: not transcribed: {reason}" for uid, reason in failed.items()] + ([""] if failed else [])
    if "comparison" in m:
        c = m["comparison"]
        verdict = "significant" if c["significant_at_0.05"] else "not significant"
        lines += ["## Model vs baseline (paired bootstrap)", "",
                  f"CER difference model - baseline: {_ci(c['difference'])} points, p = {c['p_value']:.4f} "
                  f"({verdict} at 0.05; {c['n_resamples']} paired resamples of utterances).", ""]
    lines += ["## Breakdowns (headline CER %, 95% CI)", ""]
    for field, rows in m["breakdowns"]["model"].items():
        base_rows = {r["value"]: r for r in m["breakdowns"].get("baseline", {}).get(field, [])}
        lines += [f"### {field}", "", "| value | utterances | ref chars | model CER % | baseline CER % |",
                  "| --- | --- | --- | --- | --- |"]
        for r in rows:
            b = base_rows.get(r["value"])
            lines.append(f"| {r['value']} | {r['utterances']} | {r['reference_chars']} | {_ci(r)} | "
                         f"{_ci(b) if b else 'n/a'} |")
        lines.append("")
    lines += ["## Top character edits (model; confusions.png plots the substitutions)", "", "| reference | hypothesis | count |", "| --- | --- | --- |"]
    lines += [f"| {c['reference'] or '(insertion)'} | {c['hypothesis'] or '(deletion)'} | {c['count']} |"
              for c in model["top_confusions"]]
    lines += ["", "## Published reference figures (NOT measured on our data)", "",
              "Other test sets, other normalisation: context only, not comparable with the numbers above.", "",
              "| system | test set | metric | figure | source |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {b['system']} | {b['test_set']} | {b['metric']} | {b['value']} | {b['source']} |"
              for b in m["published_baselines"]]
    lines += ["", "Plots: cer_by_subset.png, cer_by_length.png, confusions.png. Per utterance: utterances.jsonl.", ""]
    return "\n".join(lines)


def _hangul_font() -> str | None:
    """A font with Hangul (Debian fonts-nanum or Noto CJK), registered even if matplotlib's cache predates it."""
    from matplotlib import font_manager

    wanted = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "UnDotum")
    names = {f.name for f in font_manager.fontManager.ttflist}
    if not names.intersection(wanted):
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name for key in ("NanumGothic.ttf", "NotoSansCJK", "NotoSansKR", "UnDotum")):
                font_manager.fontManager.addfont(path)
        names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in wanted if n in names), None)


def write_plots(m: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = _hangul_font()
    # a local rc context: the process-wide font stays as it was for everything else that plots
    with plt.rc_context({"font.family": font} if font else {}):
        systems = [s for s in ("model", "baseline") if s in m["breakdowns"]]
        written = []

        def bars(ax, field: str) -> None:
            width = 0.8 / len(systems)
            for k, system in enumerate(systems):
                rows = m["breakdowns"][system][field]
                x = np.arange(len(rows)) + k * width
                est = np.array([r["estimate"] for r in rows]) * 100
                err = np.array([[r["estimate"] - r["ci_low"], r["ci_high"] - r["estimate"]] for r in rows]).T * 100
                ax.bar(x, est, width, yerr=err, capsize=3, label=system)
                ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, [r["value"] for r in rows], rotation=30,
                              ha="right", fontsize=8)
            ax.set_title(field)
            ax.set_ylabel("CER % (95% CI)")

        fields = [f for f, _ in BREAKDOWN_FIELDS if f != "length_chars"]
        fig, axes = plt.subplots(1, len(fields), figsize=(4 * len(fields), 4), squeeze=False)
        for ax, field in zip(axes[0], fields):
            bars(ax, field)
        axes[0][0].legend()
        fig.tight_layout()
        written.append(_save(fig, out / "cer_by_subset.png"))

        fig, ax = plt.subplots(figsize=(6, 4))
        bars(ax, "length_chars")
        ax.set_xlabel("reference length (characters, spaces removed)")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, out / "cer_by_length.png"))

        conf = m["model"]["top_substitutions"]
        fig, ax = plt.subplots(figsize=(6, max(2.0, 0.3 * len(conf) + 1)))
        label = (lambda c: c) if font else (lambda c: f"U+{ord(c):04X}")
        names = [f"{label(c['reference'])} -> {label(c['hypothesis'])}" for c in conf]
        ax.barh(np.arange(len(conf)), [c["count"] for c in conf])
        ax.set_yticks(np.arange(len(conf)), names)
        ax.invert_yaxis()
        ax.set_xlabel("count")
        ax.set_title("top character substitutions (model): reference -> hypothesis")
        fig.tight_layout()
        written.append(_save(fig, out / "confusions.png"))
        return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from .fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def results_row(m: dict) -> str:
    base = m.get("baseline")
    comp = m.get("comparison")
    return (f"| {m['date'][:10]} | {m['run']} | `{m['model_name']}` | `{m['data']}` | {m['split']} | "
            f"{m['utterances']} | {_ci(m['model']['cer'])} | {m.get('baseline_name') or 'none'} | "
            f"{_ci(base['cer']) if base else 'n/a'} | "
            f"{_pct(comp['difference']['estimate']) + ' (p=%.3f)' % comp['p_value'] if comp else 'n/a'} | "
            f"{m['commit']} |\n")


def append_results_row(results_md: Path, row: str) -> None:
    """Insert `row` at the end of the runs table, keeping every other section; locked and atomic."""
    results_md.parent.mkdir(parents=True, exist_ok=True)
    with open(results_md.with_name(f".{results_md.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = results_md.read_text(encoding="utf-8") if results_md.exists() else "# Results\n"
        if RUNS_HEADING not in text:
            text = text.rstrip("\n") + f"\n\n{RUNS_HEADING}\n\n{RESULTS_HEADER}"
        head, _, tail = text.partition(RUNS_HEADING)
        lines = tail.splitlines(keepends=True)
        first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
        if first is None:
            lines[1:1] = ["\n", RESULTS_HEADER]
            first = 2
        end = first
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        lines.insert(end, row)
        write_text_atomic(results_md, head + RUNS_HEADING + "".join(lines))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_outputs(m: dict, per_utt: list[dict], out: Path, results_md: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out / "utterances.jsonl", per_utt)
    write_json_atomic(out / "metrics.json", m)
    write_plots(m, out)
    write_text_atomic(out / "report.md", render_report(m))
    if results_md is not None:
        append_results_row(results_md, results_row(m))


# ---- CLI ----------------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Whisper or wav2vec2 CTC model: Hugging Face id, HF folder or CT2 folder")
    parser.add_argument("--baseline", default=None,
                        help=f"zero-shot baseline scored in the same run (default {DEFAULT_BASELINE} when --model "
                             "is given; 'none' to skip)")
    parser.add_argument("--data", help="prep output folder (dataset/<split>/*.parquet) or a manifest .jsonl")
    parser.add_argument("--split", default="test", choices=("train", "dev", "test"))
    parser.add_argument("--backend", default="auto", choices=("auto", "ct2", "transformers", "ctc"))
    parser.add_argument("--baseline-backend", default="auto", choices=("auto", "ct2", "transformers", "ctc"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="score only the first N utterances (by id); for quick looks")
    parser.add_argument("--hyps", help="score this JSON-lines file of {id, text} instead of running a model")
    parser.add_argument("--baseline-hyps", help="baseline hypotheses file (instead of transcribing the baseline)")
    parser.add_argument("--reference-field", default="text", choices=("text", "text_pron"),
                        help="spelling side (digits kept, what subtitles show) or pronunciation side (Hangul "
                             "numbers, what a character CTC model emits)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run folder (default eval/results/<date>-<model>-<split>)")
    parser.add_argument("--results-md", default=str(REPO_ROOT / "eval" / "RESULTS.md"),
                        help="table that gets one row per run ('none' to skip)")
    parser.add_argument("--subtitles", help="long-form: score this VTT/SRT file instead (needs --reference)")
    parser.add_argument("--reference", help="long-form: reference VTT/SRT or the episode's label JSON")
    parser.add_argument("--style", default="kids", help="long-form: style profile for compliance checks")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text.rstrip("/").split("/")[-1]).strip("-") or "run"


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (EvalInputError, metrics.ScoringError, FileNotFoundError) as e:
        print(f"kidsasr eval: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.subtitles:
        from .longform_eval import run_cli

        return run_cli(args)
    if not args.data or not (args.model or args.hyps):
        raise SystemExit("kidsasr eval: needs --data and one of --model / --hyps (or --subtitles + --reference)")
    now = dt.datetime.now(dt.timezone.utc)
    model_name = args.model or args.hyps
    run_name = Path(args.out).name if args.out else f"{now:%Y%m%d-%H%M%S}-{_slug(model_name)}-{args.split}"
    out = Path(args.out or REPO_ROOT / "eval" / "results" / run_name)
    baseline_name = args.baseline or (DEFAULT_BASELINE if args.model and not args.baseline_hyps else None)
    if baseline_name == "none" or (baseline_name == args.model and args.baseline_backend == args.backend):
        if baseline_name != "none":
            print(f"note: the model is the baseline ({baseline_name}, backend {args.backend}); scoring it alone")
        baseline_name = None
    if args.baseline_hyps:
        baseline_name = args.baseline or args.baseline_hyps

    print(f"[1/4] reading references: {args.data} split {args.split}")
    utterances = sorted(load_references(args.data, args.split), key=lambda u: u.id)[: args.limit]
    ids = [u.id for u in utterances]

    def system(name: str, hyps_file: str | None, backend: str) -> tuple[list[str | None], float | None, dict]:
        if hyps_file:
            return align_hypotheses(utterances, read_hypotheses(hyps_file), hyps_file), None, {}
        from .models import load_recognizer

        if Path(args.data).is_file():
            raise EvalInputError(f"{args.data}: transcribing needs a prep folder with audio, not a manifest")
        # one cache per model and backend, so a rerun with another model never reuses these hypotheses
        key = hashlib.sha1(f"{name}|{backend}|{args.compute_type}".encode()).hexdigest()[:8]
        cache = out / f"hyps-{_slug(name)}-{backend}-{key}.jsonl"
        print(f"[2/4] transcribing {len(ids)} utterances with {name} ({backend}); cache {cache}")
        t = transcribe_split(args.data, args.split, ids, lambda: load_recognizer(
            name, backend=backend, device=args.device, compute_type=args.compute_type), cache, args.batch_size)
        for uid, reason in t.failures.items():
            print(f"warning: {args.data}: utterance {uid} not transcribed ({reason}); scored as all deletions")
        return align_hypotheses(utterances, t.texts, str(cache)), t.real_time_factor, t.failures

    hyps, rtf, failures = system(args.model, args.hyps, args.backend)
    base_hyps, base_rtf, base_failures = (None, None, {})
    if baseline_name:
        base_hyps, base_rtf, base_failures = system(baseline_name, args.baseline_hyps, args.baseline_backend)

    print(f"[3/4] scoring {len(ids)} utterances ({args.bootstrap} bootstrap resamples)")
    try:
        result, per_utt = evaluate(utterances, hyps, base_hyps, args.reference_field, args.bootstrap, args.seed)
    except metrics.ScoringError as e:
        raise EvalInputError(f"{args.data}: {e}") from e
    result["model"].update(real_time_factor=rtf, transcription_failures=failures)
    if "baseline" in result:
        result["baseline"].update(real_time_factor=base_rtf, transcription_failures=base_failures)
    m = {"run": run_name, "date": now.isoformat(timespec="seconds"), "commit": git_commit(),
         "model_name": model_name, "backend": None if args.hyps else args.backend,
         "baseline_name": baseline_name and (baseline_name if args.baseline_hyps
                                             else f"{baseline_name} ({args.baseline_backend})"),
         "data": str(args.data), "split": args.split, "reference_field": args.reference_field,
         "limit": args.limit, "bootstrap_resamples": args.bootstrap, "seed": args.seed,
         "normalisation_policy": metrics.NORMALISATION_POLICY, **result,
         "published_baselines": load_published_baselines()}
    results_md = None if args.results_md == "none" else Path(args.results_md)
    print(f"[4/4] writing {out}/report.md, metrics.json, utterances.jsonl, plots"
          + (f"; one row in {results_md}" if results_md else ""))
    write_outputs(m, per_utt, out, results_md)
    line = f"CER {_ci(m['model']['cer'])} %"
    if "comparison" in m:
        line += (f" vs baseline {_ci(m['baseline']['cer'])} %, difference "
                 f"{_pct(m['comparison']['difference']['estimate'])} (p={m['comparison']['p_value']:.4f})")
    print(line)
    if m["model"]["missing_hypotheses"]:
        print(f"warning: {m['model']['missing_hypotheses']} utterance(s) had no hypothesis; scored as deletions")
    return 0
