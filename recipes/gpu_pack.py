#!/usr/bin/env python3
"""`make gpu-pack`: everything the GPU check needs on the lent GPU machine, cut into per-call folders.

The GPU machine reaches no registry and sees only the working tree plus the ignored folders a call names in
`carry` (64 MiB a call in all, `../shared` never travels). So this writes, under OUT (default `.gpu/`, ignored):

  stage/model/       the start model's files (from the local Hugging Face cache, links resolved)
  stage/data/        a fixed subset of a `kidsasr prep` output: each split's rows in id order while they fit its
                     byte budget (train 28 MiB, dev 4 MiB, test 8 MiB: 40 MiB of FLAC parquet in all)
  stage/real/korean-read/  the real read-speech FLACs and manifest (evaluation only, never committed)
  call1/wheels/      Python wheels the machine lacks (cp312 manylinux), installed there by the first call
  callN/kidsasr-gpu.tar.NN  model + data + real speech as one tar cut into parts, one part per call
  callN/SHA256SUMS   checksums of that call's files; the last call's also lists the whole tar
  MANIFEST.json      sizes and SHA-256 of every staged file, part and call; CALLS.md: the device calls to make

Sizes are printed. Each call's folder stays under --part-mib, so a call (with the ~2 MiB tracked tree) stays
under 60 MiB. recipes/GPU.md is the walk-through.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
TAR_NAME = "kidsasr-gpu.tar"
# Packages the check imports that the GPU machine's image lacks (recipes/GPU.md), pinned to what the project
# is tested with here; cp312 manylinux builds, installed there with --no-deps. The machine's own torch,
# transformers, accelerate, tokenizers, huggingface-hub, pyarrow, pandas, numpy, xxhash and click are used.
WHEELS = ("datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19", "fsspec==2026.9.0", "jiwer==4.0.0",
          "rapidfuzz==3.14.6", "soundfile==0.14.0", "cffi==2.1.1", "pycparser==3.12")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
SPLIT_BUDGET_MIB = {"train": 28.0, "dev": 4.0, "test": 8.0}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def model_folder(model: str) -> Path:
    """A local folder as it is, or a hub id's snapshot in the local cache (no download)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, local_files_only=True))


def copy_model(model: str, dest: Path) -> None:
    src = model_folder(model)
    dest.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copyfile(f.resolve(), dest / f.name)


def subset_split(src_dir: Path, dest_dir: Path, budget_bytes: float) -> tuple[int, int]:
    """The split's rows in id order while their audio bytes fit the budget; returns (rows kept, rows read)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted(src_dir.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{src_dir}: no parquet shards")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    table = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))
    sizes = pc.binary_length(pc.struct_field(table.column("audio"), "bytes")).to_pylist()
    kept, used = 0, 0
    for size in sizes:
        if used + (size or 0) > budget_bytes:
            break
        used += size or 0
        kept += 1
    if kept == 0:
        raise ValueError(f"{src_dir}: not one utterance fits {budget_bytes / MIB:.1f} MiB")
    dest_dir.mkdir(parents=True)
    pq.write_table(table.slice(0, kept), dest_dir / "data-00000-of-00001.parquet")
    return kept, table.num_rows


def copy_data(prep: Path, dest: Path, budgets: dict[str, float]) -> dict[str, list[int]]:
    counts = {}
    for split, mib in budgets.items():
        counts[split] = list(subset_split(prep / "dataset" / split, dest / "dataset" / split, mib * MIB))
    return counts


def copy_real(src: Path, dest: Path) -> int:
    """manifest.jsonl and every file it names (checked by kidsasr.evaluation.real_speech.load_clips)."""
    sys.path.insert(0, str(ROOT))
    from kidsasr.evaluation.real_speech import load_clips

    clips = load_clips(src)
    dest.mkdir(parents=True)
    shutil.copyfile(src / "manifest.jsonl", dest / "manifest.jsonl")
    for clip in clips:
        target = dest / clip.audio.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip.audio, target)
    return len(clips)


def fetch_wheels(dest: Path, wheel_dir: str | None) -> None:
    dest.mkdir(parents=True)
    if wheel_dir:
        for whl in sorted(Path(wheel_dir).glob("*.whl")):
            shutil.copyfile(whl, dest / whl.name)
    else:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", *[x for p in PLATFORMS for x in ("--platform", p)], "-d", str(dest),
               *WHEELS]
        subprocess.run(cmd, check=True)
    names = sorted(p.name for p in dest.glob("*.whl"))
    missing = [w for w in WHEELS if not any(n.lower().startswith(w.split("==")[0].replace("-", "_") + "-")
                                            for n in (x.lower() for x in names))]
    if missing:
        raise FileNotFoundError(f"{dest}: no wheel for {', '.join(missing)}")


def make_tar(stage: Path, tar_path: Path) -> None:
    """An uncompressed tar of the stage (FLAC and fp16 weights barely compress), members in sorted order."""
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            tar.add(path, arcname=str(path.relative_to(stage)), recursive=False)


def cut_parts(tar_path: Path, out: Path, first_room: int, part_bytes: int) -> list[Path]:
    """Cut the tar into call folders: call1 gets `first_room` bytes (it also carries the wheels), the others
    `part_bytes` each."""
    parts = []
    with open(tar_path, "rb") as f:
        n = 1
        while True:
            room = first_room if n == 1 else part_bytes
            chunk = f.read(room)
            if not chunk:
                break
            folder = out / f"call{n}"
            folder.mkdir(exist_ok=True)
            part = folder / f"{TAR_NAME}.{n:02d}"
            part.write_bytes(chunk)
            parts.append(part)
            n += 1
    return parts


def write_sums(folder: Path, extra: dict[str, str] | None = None) -> None:
    lines = [f"{sha256_file(p)}  {p.relative_to(folder)}" for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != "SHA256SUMS"]
    lines += [f"{digest}  {name}" for name, digest in (extra or {}).items()]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def device_calls(calls: int, out_name: str, check_args: str = "") -> list[dict]:
    """The device `run` calls, in order: stash every call folder but the last, then run with the last."""
    plan = [{"command": f"bash recipes/gpu_check.sh stash {n}", "carry": [f"{out_name}/call{n}"], "timeout_s": 90}
            for n in range(1, calls)]
    plan.append({"command": f"bash recipes/gpu_check.sh run {calls}" + (f" {check_args}" if check_args else ""),
                 "carry": [f"{out_name}/call{calls}"], "timeout_s": 360})
    return plan


def calls_markdown(plan: list[dict], sizes: list[int]) -> str:
    lines = ["# Device calls for the GPU check (made by `make gpu-pack`; recipes/GPU.md explains them)", "",
             "Make them back to back from the repository root (a machine idle for 30 s is given back, and the",
             "stashed parts with it); if one fails, start again from call 1.", ""]
    for n, (call, size) in enumerate(zip(plan, sizes), 1):
        lines += [f"{n}. carry `{json.dumps(call['carry'])}` ({size / MIB:.1f} MiB), timeout_s {call['timeout_s']}:",
                  f"   `{call['command']}`"]
    return "\n".join(lines) + "\n"


def tracked_tree_bytes() -> int:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum((ROOT / n).stat().st_size for n in names.decode().split("\0") if n and (ROOT / n).is_file())


def pack(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    stage = out / "stage"
    copy_model(args.model, stage / "model")
    counts = copy_data(Path(args.data), stage / "data", SPLIT_BUDGET_MIB if args.data_mib is None else
                       {k: v * args.data_mib / sum(SPLIT_BUDGET_MIB.values()) for k, v in SPLIT_BUDGET_MIB.items()})
    real = copy_real(Path(args.real_speech), stage / "real" / "korean-read") if args.real_speech != "none" else 0
    fetch_wheels(out / "call1" / "wheels", args.wheels)
    files = {str(p.relative_to(stage)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in sorted(stage.rglob("*")) if p.is_file()}
    tar_path = out / TAR_NAME
    make_tar(stage, tar_path)
    part_bytes = int(args.part_mib * MIB)
    first_room = part_bytes - folder_bytes(out / "call1")
    parts = cut_parts(tar_path, out, first_room, part_bytes)
    whole = sha256_file(tar_path)
    tar_path.unlink()
    for n, part in enumerate(parts, 1):
        write_sums(part.parent, {TAR_NAME: whole} if n == len(parts) else None)
    (parts[-1].parent / "PARTS").write_text(f"{len(parts)}\n")
    sizes = [folder_bytes(p.parent) for p in parts]
    plan = device_calls(len(parts), out.name)
    tree = tracked_tree_bytes()
    manifest = {"model": args.model, "data": args.data, "data_rows": counts, "real_speech_clips": real,
                "wheels": sorted(p.name for p in (out / "call1" / "wheels").glob("*.whl")), "tar_sha256": whole,
                "tar_bytes": sum(p.stat().st_size for p in parts), "calls": [
                    {"folder": p.parent.name, "bytes": s, "part": p.name} for p, s in zip(parts, sizes)],
                "tracked_tree_bytes": tree, "files": files, "device_calls": plan}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    (out / "CALLS.md").write_text(calls_markdown(plan, sizes))
    return manifest


def print_sizes(manifest: dict, out: Path) -> None:
    groups: dict[str, int] = {}
    for name, f in manifest["files"].items():
        top = "/".join(name.split("/")[:2]) if name.startswith("real/") else name.split("/")[0]
        groups[top] = groups.get(top, 0) + f["bytes"]
    wheels = folder_bytes(out / "call1" / "wheels")
    print(f"gpu-pack: {out}")
    for top, size in sorted(groups.items()):
        print(f"  {top:<20} {size / MIB:7.1f} MiB")
    print(f"  {'wheels':<20} {wheels / MIB:7.1f} MiB ({len(manifest['wheels'])} files)")
    print(f"  data rows kept of read: {manifest['data_rows']}; real-speech clips: {manifest['real_speech_clips']}")
    tree = manifest["tracked_tree_bytes"]
    for call, plan in zip(manifest["calls"], manifest["device_calls"]):
        print(f"  {call['folder']:<8} {call['bytes'] / MIB:6.1f} MiB (+ tracked tree {tree / MIB:.1f} MiB = "
              f"{(call['bytes'] + tree) / MIB:.1f} MiB a call)  {plan['command']}")
    print(f"gpu-pack: {len(manifest['calls'])} device calls, listed in {out / 'CALLS.md'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a `kidsasr prep` output folder (recipes/GPU.md: which one)")
    p.add_argument("--model", default="openai/whisper-base", help="hub id (from the local cache) or folder")
    p.add_argument("--real-speech", default=str(ROOT.parent / "shared" / "real-speech" / "korean-read"),
                   help="the korean-read folder, or 'none'")
    p.add_argument("--out", default=str(ROOT / ".gpu"), help="output folder (emptied first; keep it git-ignored)")
    p.add_argument("--part-mib", type=float, default=56.0, help="most MiB a call's folder holds")
    p.add_argument("--data-mib", type=float, default=None,
                   help="data budget in MiB, shared out as the default 28/4/8 train/dev/test (default 40)")
    p.add_argument("--wheels", default=None, help="take the wheels from this folder instead of `pip download`")
    args = p.parse_args(argv)
    if not (Path(args.data) / "dataset").is_dir():
        p.error(f"--data {args.data}: no dataset/ folder (a `kidsasr prep` output)")
    if args.part_mib <= 8:
        p.error("--part-mib must be more than 8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    manifest = pack(args)
    print_sizes(manifest, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
