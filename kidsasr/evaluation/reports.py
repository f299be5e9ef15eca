"""Evaluation outputs: report.md, metrics.json, per-utterance rows, plots, and one row in RESULTS.md
(stage 4 of `kidsasr eval`)."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import numpy as np

from .. import __version__
from ..fileio import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .scoring import BREAKDOWN_FIELDS

RESULTS_HEADER = (
    "| date | run | model | data | split | utterances | CER % [95% CI] | baseline | baseline CER % | "
    "difference (p) | real read speech CER % (report half) | baseline there % | difference there (p) | commit |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


RUNS_HEADING = "## Runs"




def load_published_baselines(path: Path | None) -> list[dict]:
    """Published figures to show beside ours (eval/baselines.yaml in the checkout); none without a file."""
    import yaml

    if path is None or not path.exists():
        return []
    return yaml.safe_load(path.read_text(encoding="utf-8")).get("baselines", [])


def format_pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}"


def format_ci(d: dict) -> str:
    return f"{format_pct(d['estimate'])} [{format_pct(d['ci_low'])}, {format_pct(d['ci_high'])}]"


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
        lines.append(f"| {name} | {format_ci(s['cer'])} | {format_ci(s['cer_spaced'])} | {format_ci(s['wer'])} | "
                     f"{format_pct(s['hallucination_rate'])} | {s['missing_hypotheses']} | {rtf} |")
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
                  f"CER difference model - baseline: {format_ci(c['difference'])} points, p = {c['p_value']:.4f} "
                  f"({verdict} at 0.05; {c['n_resamples']} paired resamples of utterances).", ""]
    lines += real_speech_section(m.get("real_speech") or {})
    lines += ["## Breakdowns (headline CER %, 95% CI)", ""]
    for field, rows in m["breakdowns"]["model"].items():
        base_rows = {r["value"]: r for r in m["breakdowns"].get("baseline", {}).get(field, [])}
        lines += [f"### {field}", "", "| value | utterances | ref chars | model CER % | baseline CER % |",
                  "| --- | --- | --- | --- | --- |"]
        for r in rows:
            b = base_rows.get(r["value"])
            lines.append(f"| {r['value']} | {r['utterances']} | {r['reference_chars']} | {format_ci(r)} | "
                         f"{format_ci(b) if b else 'n/a'} |")
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


def real_speech_section(real: dict) -> list[str]:
    """Report lines for the standing real-speech score (kidsasr.evaluation.real_score), or why it was skipped."""
    lines = ["## Real read speech (report half of ../shared/real-speech/korean-read)", ""]
    if "model" not in real:
        return lines + [real.get("skipped", "real read speech: not scored"), ""]
    lines += [f"`{real['manifest']}`, {real['half']} half: {real['utterances']} clips (one speaker, three rooms). "
              "Never trained on; nothing is tuned on this half.", "",
              "| system | CER % [95% CI] | " + " | ".join(r["value"] for r in real["by_room"]["model"]) + " |",
              "| --- | --- | " + " | ".join("---" for _ in real["by_room"]["model"]) + " |"]
    for system, name in (("model", real["model_name"]), ("baseline", real.get("baseline_name"))):
        if system in real:
            lines.append(f"| {system} `{name}` | {format_ci(real[system]['cer'])} | "
                         + " | ".join(format_ci(r) for r in real["by_room"][system]) + " |")
    if "comparison" in real:
        c = real["comparison"]
        verdict = "significant" if c["significant_at_0.05"] else "not significant"
        lines += ["", f"Paired bootstrap, model - baseline: {format_ci(c['difference'])} points, p = "
                      f"{c['p_value']:.4f} ({verdict} at 0.05)."]
    return lines + [""]


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

    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def results_row(m: dict) -> str:
    base = m.get("baseline")
    comp = m.get("comparison")
    return (f"| {m['date'][:10]} | {m['run']} | `{m['model_name']}` | `{m['data']}` | {m['split']} | "
            f"{m['utterances']} | {format_ci(m['model']['cer'])} | {m.get('baseline_name') or 'none'} | "
            f"{format_ci(base['cer']) if base else 'n/a'} | "
            f"{_difference(comp)} | {_real_cells(m.get('real_speech') or {})} | {m['commit']} |\n")


def _difference(comp: dict | None) -> str:
    return f"{format_pct(comp['difference']['estimate'])} (p={comp['p_value']:.3f})" if comp else "n/a"


def _real_cells(real: dict) -> str:
    if "model" not in real:
        return "skipped | n/a | n/a"
    base = real.get("baseline")
    return f"{format_ci(real['model']['cer'])} | {format_ci(base['cer']) if base else 'n/a'} | " \
           f"{_difference(real.get('comparison'))}"


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
    """The code's git revision when it runs from a checkout, else the package version."""
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return described or f"kidsasr {__version__}"  # an installed package is not a git checkout


def write_outputs(m: dict, per_utt: list[dict], out: Path, results_md: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out / "utterances.jsonl", per_utt)
    write_json_atomic(out / "metrics.json", m)
    write_plots(m, out)
    write_text_atomic(out / "report.md", render_report(m))
    if results_md is not None:
        append_results_row(results_md, results_row(m))
