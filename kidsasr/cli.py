"""The `kidsasr` command line: one subcommand per stage.

Each stage module exposes `add_arguments(parser)` and `run(args) -> int`; only the chosen stage is imported,
so `kidsasr subtitle --help` does not load the training stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "synth": ("kidsasr.synth.generator", "generate the synthetic children's-broadcast corpus"),
    "prep": ("kidsasr.prep.runner", "clean, align and filter a corpus into training manifests"),
    "train": ("kidsasr.training.driver", "fine-tune Whisper or wav2vec2 from a YAML recipe"),
    "eval": ("kidsasr.evaluation.runner", "transcribe a split and score CER against the zero-shot baseline"),
    "subtitle": ("kidsasr.subtitles.runner", "turn episodes (a file or a folder) into Korean WebVTT/SRT"),
    "export": ("kidsasr.asr.export", "convert a Hugging Face Whisper checkpoint to CTranslate2 int8"),
    "demo": ("kidsasr.demo", "run every stage end to end on the built-in demo corpus"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kidsasr",
        description="Korean children's broadcast speech: data prep, fine-tuning, evaluation and subtitles.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<10}{help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\n`kidsasr COMMAND --help` describes each command.",
    )
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1] or ["--help"])
        return 2
    command, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"kidsasr {command}", description=help_[0].upper() + help_[1:] + ".")
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
