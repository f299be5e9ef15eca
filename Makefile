# kidsasr: every target calls the `kidsasr` CLI inside .venv.
# `make setup` is idempotent and runs first for `demo` and `test`.

PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
KIDSASR    := $(BIN)/kidsasr
SHARED_HUB := $(abspath ../shared/hf-cache/hub)
# Use the shared offline copy of openai/whisper-base when it is beside the checkout.
ifneq ($(wildcard $(SHARED_HUB)),)
export HF_HUB_CACHE ?= $(SHARED_HUB)
export HF_HUB_OFFLINE ?= 1
endif
export TOKENIZERS_PARALLELISM ?= false

DEB_PACKAGES := ffmpeg espeak-ng sox chromium chromium-driver fonts-nanum
WORK     ?= work
CORPUS   ?= $(WORK)/corpus-demo
OUT      ?= $(WORK)/prep-demo
RECIPE   ?= recipes/demo_cpu.yaml
MODEL    ?= openai/whisper-base
BASELINE ?= openai/whisper-base
DATA     ?= $(OUT)
SPLIT    ?= test
SIZE     ?= demo
WORKERS  ?= 1
SEED     ?= 0

.PHONY: setup deps-system demo test synth prep train eval subtitle export \
        bench-subtitle bench-prep bench-align bench-condition bench-cues bench-eval bench-train-cpu distil fast clean \
        gpu-data gpu-pack gpu-check calibration bench-review

setup: $(VENV)/.setup-done deps-system

$(VENV)/.setup-done: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $@

deps-system:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "kidsasr needs these Debian packages; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

demo: setup
	$(BIN)/python -m kidsasr.cli demo --work $(WORK)

test: setup
	$(BIN)/python -m pytest -q -ra

synth: setup
	$(KIDSASR) synth --size $(SIZE) --seed $(SEED) --out $(CORPUS)

prep: setup
	$(KIDSASR) prep --config data_prep/config.yaml --corpus $(CORPUS) --out $(OUT) --workers $(WORKERS)

train: setup
	$(KIDSASR) train --recipe $(RECIPE) $(if $(PREP),--data $(PREP))

eval: setup
	$(KIDSASR) eval --model $(MODEL) --baseline $(BASELINE) --data $(DATA) --split $(SPLIT) $(if $(REAL_SPEECH),--real-speech $(REAL_SPEECH))

subtitle: setup
	$(KIDSASR) subtitle $(EPISODE) -o $(VTT)

bench-subtitle: setup
	$(BIN)/python eval/bench_subtitle.py $(if $(BENCH_MODEL),--model $(BENCH_MODEL))

bench-prep: setup
	$(BIN)/python data_prep/bench_prep.py

bench-align: setup
	$(BIN)/python data_prep/bench_align.py --corpus $(CORPUS)

bench-condition: setup
	$(BIN)/python data_prep/bench_condition.py

bench-cues: setup
	$(BIN)/python subtitle/oracle_cues.py

bench-eval: setup
	$(BIN)/python eval/bench_scoring.py

# The review loop measured (issue 19): corrected vs machine text of the same reviewed audio, held-out CER.
bench-review: setup
	$(BIN)/python eval/bench_review_loop.py --work $(WORK)/review-loop

bench-train-cpu: setup
	$(KIDSASR) train --recipe recipes/bench_cpu.yaml $(if $(PREP),--data $(PREP))

distil: setup
	$(KIDSASR) train --recipe recipes/distil_cpu.yaml $(if $(PREP),--data $(PREP))

fast: setup
	$(KIDSASR) train --recipe recipes/fast_cpu.yaml $(if $(PREP),--data $(PREP))

# The GPU check (recipes/GPU.md). gpu-data: its fixed data, the first hour of the bench corpus (seed 0) through prep
# with larger dev/test shares; gpu-pack: every folder the device calls carry, under .gpu/; gpu-check: the check
# itself (on the GPU machine recipes/gpu_check.sh runs it; here it stops at once without a GPU).
GPU_DATA ?= $(WORK)/prep-gpu
GPU_ARGS ?=
gpu-data: setup
	test -f $(WORK)/corpus-bench/synth.done || $(KIDSASR) synth --size bench --seed 0 --out $(WORK)/corpus-bench
	$(KIDSASR) prep --config data_prep/gpu_check.yaml --corpus $(WORK)/corpus-bench --out $(GPU_DATA) \
	    --limit-hours 1.0 --workers $(WORKERS)

gpu-pack: setup
	test -d $(GPU_DATA)/dataset || $(MAKE) gpu-data
	$(BIN)/python recipes/gpu_pack.py --data $(GPU_DATA) --out .gpu

gpu-check: setup
	$(BIN)/python recipes/gpu_check.py --data $(GPU_DATA) $(GPU_ARGS)

# The shipped confidence calibration of the default model, rebuilt from scratch with the current decoding (issue 19):
# fitted on the real read-speech TUNE half (one long episode) + the generated tiny corpus (seed 0, every split),
# scored on the REPORT half; writes kidsasr/data/calibration/ and the PR curve, prints the report half's goals.
# The episodes and the prep are kept under CAL_WORK; the decodes are always redone.
CAL_WORK  ?= $(WORK)/calibration
CAL_MODEL ?= openai/whisper-base
calibration: setup
	$(BIN)/python eval/real_halves.py --out $(CAL_WORK) $(if $(REAL_SPEECH),--real-speech $(REAL_SPEECH))
	test -f $(CAL_WORK)/corpus-tiny/synth.done || $(KIDSASR) synth --size tiny --seed 0 --out $(CAL_WORK)/corpus-tiny
	$(KIDSASR) prep --corpus $(CAL_WORK)/corpus-tiny --out $(CAL_WORK)/prep-tiny --aligner none
	rm -rf $(CAL_WORK)/decoded
	$(KIDSASR) calibrate --model $(CAL_MODEL) --data $(CAL_WORK)/real-tune --data $(CAL_WORK)/prep-tiny --split all \
	    --report $(CAL_WORK)/real-report --work $(CAL_WORK)/decoded \
	    --out kidsasr/data/calibration/$(subst /,__,$(CAL_MODEL)).json --plot eval/calibration_whisper_base_pr.png

clean:
	rm -rf $(WORK) .pytest_cache
