"""Alignment benchmark: boundary error before/after refinement against a generated corpus's truth.jsonl, and
alignment throughput (`make bench-align CORPUS=...`).

    python data_prep/bench_align.py --corpus work/corpus-demo [--kind whisper|ctc|vad] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kidsasr.evaluation.boundaries import measure_corpus
from kidsasr.prep.alignment import load_aligner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python data_prep/bench_align.py",
                                     description="Measure boundary refinement on a generated corpus (truth.jsonl).")
    parser.add_argument("--corpus", type=Path, required=True, help="a `kidsasr synth` output folder")
    parser.add_argument("--kind", default="whisper", choices=["whisper", "ctc", "vad"])
    parser.add_argument("--model", default=None, help="model id or path (default openai/whisper-base for whisper)")
    parser.add_argument("--backend", default="ct2", choices=["ct2", "transformers"], help="Whisper backend")
    parser.add_argument("--no-vad", action="store_true", help="do not snap to silero-vad speech edges")
    parser.add_argument("--limit", type=int, default=None, help="align at most this many episodes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if not (args.corpus / "truth.jsonl").is_file():
        print(f"{args.corpus}: no truth.jsonl (not a generated corpus)", file=sys.stderr)
        return 2
    options = {"backend": args.backend, "threads": args.threads} if args.kind == "whisper" else {}
    if args.kind != "vad":
        options["vad"] = not args.no_vad
    aligner = load_aligner(args.kind, args.model, **options)
    report = measure_corpus(args.corpus, aligner, args.limit)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.json:
        from kidsasr.fileio import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
