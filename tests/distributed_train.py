"""One process of a 2-process CPU training run, started by tests/test_distributed.py under torchrun or accelerate.

    distributed_train.py PREPARED MODEL OUT

Trains a tiny Whisper with the encoder cache (kidsasr.training.driver.train) and writes what this process saw to
OUT/rank-N.json: its steps and losses, how many batches it ran through the frozen lower encoder (the cache's
cost), and what train() returned. The second process reads its clock through a stand-in that runs a second ahead
per reading, so its time budget (5 s) runs out at step 6 of 8 while the first process's (10 min) does not.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from kidsasr.training import driver, encoder_cache
from kidsasr.training.recipe import Recipe, validate


def main() -> int:
    prepared, model, out = sys.argv[1:4]
    rank = int(os.environ["RANK"])
    seen = {"encoded_batches": 0, "setups": []}
    encode_lower, build = encoder_cache.encode_lower, driver.build

    def counted_encode(*args, **kwargs):
        seen["encoded_batches"] += 1
        return encode_lower(*args, **kwargs)

    def kept_build(*args, **kwargs):
        seen["setups"].append(build(*args, **kwargs))
        return seen["setups"][-1]

    encoder_cache.encode_lower, driver.build = counted_encode, kept_build
    if rank == 1:
        ticks = iter(range(1, 10_000))
        driver.time = SimpleNamespace(monotonic=lambda: float(next(ticks)))

    recipe = Recipe(name="two-processes")
    recipe.model.name_or_path = model
    recipe.model.frozen_encoder_layers = 1
    recipe.data.prep_dir = prepared
    recipe.data.pack_seconds = 30.0
    recipe.augment.enabled = False
    t = recipe.train
    t.output_dir, t.batch_size, t.eval_batch_size, t.learning_rate = out, 2, 2, 3e-3
    t.max_steps, t.logging_steps, t.eval_steps, t.save_steps, t.max_new_tokens = 8, 1, 100, 100, 4
    t.warmup_steps, t.encoder_cache_layer = 0, 1
    t.max_minutes = 5 / 60 if rank == 1 else 10.0
    recipe.export.ct2 = recipe.export.evaluate_zero_shot = False
    results = driver.train(validate(recipe), resume=False)

    trainer = seen["setups"][0].trainer
    state = {"rank": rank, "world_size": trainer.args.world_size, "global_step": trainer.state.global_step,
             "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
             "encoded_batches": seen["encoded_batches"], "returned": sorted(results)}
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
