"""Convert a Hugging Face Whisper checkpoint to CTranslate2 (int8 by default), offline and atomically.

The conversion is written into a temporary folder beside the target and renamed into place, so an interrupted
export never leaves a half-written model that a later run would load.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from ..fileio import BusyError, part_path, remove_stale_parts, run_lock

CT2_CACHE = Path(os.environ.get("KIDSASR_CACHE", Path.home() / ".cache" / "kidsasr")) / "ct2"


def looks_local(model: str) -> bool:
    """A path rather than a Hub id (`org/name`): starts with /, . or ~, or has more than one /."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def check_model_name(model: str) -> None:
    """A model given as a path must exist: say so, instead of the Hub's "Repo id must be in the form ..."."""
    if looks_local(model) and not Path(model).expanduser().exists():
        raise FileNotFoundError(f"{model}: no such model folder")


class NeedsFullInstall(RuntimeError):
    """A model that has to be converted to CTranslate2 first, in an install without the converter."""


def require_converter(hf_model: str) -> None:
    """Converting needs transformers and torch: the subtitle-only install has neither. One clear line if so."""
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        raise NeedsFullInstall(
            f"{hf_model} is a Hugging Face model, which has to be converted to CTranslate2 first: install the full "
            f"package (pip install 'kidsasr[all]'), or run `kidsasr export {hf_model} -o DIR` where it is installed "
            "and pass --model DIR")


def resolve_model_dir(hf_model: str) -> Path:
    """A local folder for `hf_model`: the path itself, or its snapshot in the Hugging Face cache."""
    if Path(hf_model).is_dir():
        return Path(hf_model)
    check_model_name(hf_model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(hf_model, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt"]))


def is_ct2_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "model.bin").is_file()


def export_ct2(hf_model: str, out_dir: str | os.PathLike, quantization: str = "int8") -> Path:
    """Convert `hf_model` (id or folder) into `out_dir`; returns `out_dir`. An existing export is replaced.

    The feature extractor is written as preprocessor_config.json, where faster-whisper reads the encoder window
    (chunk_length), whether the source keeps it there or, as newer transformers saves, in processor_config.json.
    """
    require_converter(hf_model)
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperFeatureExtractor

    source = resolve_model_dir(hf_model)
    out_dir = Path(out_dir)
    remove_stale_parts(out_dir.parent, recursive=False)
    tmp = part_path(out_dir, folder=True)
    try:
        has_tokenizer = (source / "tokenizer.json").is_file()
        converter = TransformersConverter(str(source), copy_files=["tokenizer.json"] if has_tokenizer else None)
        converter.convert(str(tmp / "model"), quantization=quantization, force=True)
        WhisperFeatureExtractor.from_pretrained(source).to_json_file(tmp / "model" / "preprocessor_config.json")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp / "model", out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def cached_ct2(hf_model: str, quantization: str = "int8") -> Path:
    """The CTranslate2 export of `hf_model`, converted once and cached under ~/.cache/kidsasr/ct2/<hash>.

    The hash covers the resolved folder and its weights' size and time, so a retrained model at the same path
    is converted again.
    """
    require_converter(hf_model)
    source = resolve_model_dir(hf_model)
    weights = sorted(p for p in source.iterdir() if p.suffix in {".safetensors", ".bin"})
    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)
    key = hashlib.sha256(f"{source.resolve()}|{stamp}|{quantization}".encode()).hexdigest()[:16]
    target = CT2_CACHE / key
    if not is_ct2_dir(target):
        export_ct2(str(source), target, quantization)
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="Hugging Face Whisper model id or local folder")
    parser.add_argument("-o", "--out", required=True, help="output folder for the CTranslate2 model")
    parser.add_argument("--quantization", default="int8",
                        help="int8 (default), int8_float16, float16, float32 ... (CTranslate2 quantization)")


def run(args: argparse.Namespace) -> int:
    print(f"converting {args.model} to CTranslate2 ({args.quantization}) into {args.out}")
    target = Path(args.out).absolute()
    try:
        with run_lock(target.parent, "export", output=target.name):  # the folder itself is replaced whole
            out = export_ct2(args.model, args.out, args.quantization)
    except (NeedsFullInstall, FileNotFoundError, BusyError) as e:
        print(f"kidsasr export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
