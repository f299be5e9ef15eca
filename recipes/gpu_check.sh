#!/usr/bin/env bash
# The GPU check's stages on the lent GPU machine (recipes/GPU.md); each device call runs one, from the repo root.
#   bash recipes/gpu_check.sh stash N          check .gpu/callN against its SHA256SUMS and move it to $STASH
#                                              (call 1 also installs the wheels and checks the imports)
#   bash recipes/gpu_check.sh run N [ARGS...]  stash the last part, join and check the tar, unpack it, and run
#                                              recipes/gpu_check.py (ARGS go to it); report and log under $OUT
set -euo pipefail
stage=${1:?usage: gpu_check.sh stash N | run N [ARGS...]}
n=${2:?usage: gpu_check.sh stash N | run N [ARGS...]}
shift 2
PACK=${PACK:-.gpu}
STASH=${STASH:-/tmp/kidsasr-gpu}
SITE=${SITE:-/tmp/site}
OUT=${OUT:-$PWD/work/gpu-check-out}
src=$PACK/call$n
TAR=kidsasr-gpu.tar

say() { echo "gpu_check.sh: $*"; }

[ -d "$src" ] || { say "$src is missing: carry it in this call (carry: [\"$src\"])"; exit 2; }
(cd "$src" && sha256sum --quiet --check --ignore-missing SHA256SUMS) || { say "$src: checksum mismatch"; exit 3; }
mkdir -p "$STASH"
cp "$src"/$TAR.* "$STASH"/
say "call $n: $(du -sh "$src" | cut -f1) checked and stashed in $STASH ($(ls "$STASH" | grep -c "^$TAR\.") parts there)"

if [ -d "$src/wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$src"/wheels/*.whl
  PYTHONPATH=$SITE python3 -c "
import datasets, jiwer, soundfile, torch, transformers, accelerate, pyarrow
print('gpu_check.sh: imports ok: torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers',
      transformers.__version__, '| accelerate', accelerate.__version__, '| datasets', datasets.__version__,
      '| pyarrow', pyarrow.__version__, '| soundfile', soundfile.__version__)"
  nvidia-smi -L || true
fi

case $stage in
  stash) exit 0 ;;
  run) ;;
  *) say "unknown stage $stage (stash or run)"; exit 2 ;;
esac

parts=$(cat "$src/PARTS")
for k in $(seq 1 "$parts"); do
  [ -f "$STASH/$TAR.$(printf %02d "$k")" ] || { say "part $k of $parts is not in $STASH: the machine was \
given back between calls; make every call again from call 1"; exit 4; }
done
[ -d "$SITE/datasets" ] || { say "wheels are not installed in $SITE: make every call again from call 1"; exit 4; }
whole=$(cat "$STASH"/$TAR.* | sha256sum | cut -d' ' -f1)
grep -q "^$whole  $TAR\$" "$src/SHA256SUMS" || { say "the joined tar's SHA-256 does not match"; exit 3; }
rm -rf "$STASH/unpacked" && mkdir -p "$STASH/unpacked"
cat "$STASH"/$TAR.* | tar -x -C "$STASH/unpacked"
say "unpacked $(du -sh "$STASH/unpacked" | cut -f1) into $STASH/unpacked"

mkdir -p "$OUT"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  HF_DATASETS_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1
real=$STASH/unpacked/real/korean-read
[ -d "$real" ] || real=none
set -o pipefail
python3 recipes/gpu_check.py --model "$STASH/unpacked/model" --data "$STASH/unpacked/data" \
  --real-speech "$real" --out "$OUT" --work "$STASH/work" "$@" 2>&1 | tee "$OUT/log.txt"
