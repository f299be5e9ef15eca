"""Keep fine-tuned weights near the start model (L2-SP, Li et al. 2018, in the decoupled form of AdamW).

After every optimiser step each trainable weight w moves back towards its start value w0:
    w <- w - lr * strength * (w - w0)
with the step's learning rate. Adam moves a weight by about lr per step whatever the gradient's scale, so a weight
settles within about 1/strength of its start: the pull bounds how far the fine-tuned model can drift from the
start model however many steps it trains, which is what keeps what it knew (real speech) while it learns the
generated corpus. Unlike a penalty in the loss it works with any Trainer and is untouched by gradient scaling.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback


class PullToStart(TrainerCallback):
    def __init__(self, model: torch.nn.Module, strength: float):
        if strength <= 0:
            raise ValueError(f"strength must be > 0, not {strength}")
        self.strength = strength
        # taken when the callback is built, from the freshly loaded start model: a resumed run pulls towards the
        # same weights as the run it continues
        self.start = {p: p.detach().clone() for p in model.parameters() if p.requires_grad}

    @torch.no_grad()
    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        for group in optimizer.param_groups:
            rate = group["lr"] * self.strength
            for p in group["params"]:
                start = self.start.get(p)
                if start is not None:
                    p.sub_(rate * (p - start.to(p.device, p.dtype)))

