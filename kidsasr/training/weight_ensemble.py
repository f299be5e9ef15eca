"""Weight-space ensembles of a fine-tuned model with its start model (WiSE-FT, Wortsman et al. 2022).

Fine-tuning on generated voices teaches the corpus but can cost accuracy on real speech. Moving the weights
only part of the way, start + alpha * (tuned - start), keeps most of the gain on the target data while staying
close to the start model elsewhere. Parts of the model may take their own alpha (e.g. the Whisper encoder, whose
adaptation to generated voices carries both the synthetic gain and the real-speech cost). `choose_alpha` takes the
largest alpha whose guard score (CER on a held-out guard set, e.g. the real read-speech `tune` half of
kidsasr.evaluation.real_speech) is no worse than the start model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch


def snapshot(model: torch.nn.Module, device: str | None = None) -> dict[str, torch.Tensor]:
    """A detached copy of the model's floating-point parameters and buffers (on `device`, else where they are)."""
    return {k: v.detach().to(device or v.device, copy=True) for k, v in model.state_dict().items()
            if v.is_floating_point()}


@torch.no_grad()
def interpolate_(model: torch.nn.Module, start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                 alpha: float, alpha_by_prefix: Mapping[str, float] | None = None) -> None:
    """Set the model's weights to start + alpha * (tuned - start), in place (alpha 0: start, 1: tuned); a weight
    whose name starts with a key of `alpha_by_prefix` takes that key's alpha instead."""
    prefixed = dict(alpha_by_prefix or {})
    for a in (alpha, *prefixed.values()):
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {a}")
    state = model.state_dict()
    missing = sorted(set(tuned) - set(start))
    if missing:
        raise ValueError(f"start weights lack {len(missing)} tensors of the tuned model, e.g. {missing[0]}")
    for name, value in tuned.items():
        a = next((a for prefix, a in prefixed.items() if name.startswith(prefix)), alpha)
        state[name].copy_(torch.lerp(start[name].to(value.device, value.dtype), value, a))


@dataclass
class Choice:
    alpha: float
    guard_score: float
    limit: float
    tried: list[tuple[float, float]] = field(default_factory=list)  # (alpha, guard score), in the order tried


def choose_alpha(model: torch.nn.Module, start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                 guard: Callable[[torch.nn.Module], float], limit: float, alphas: list[float]) -> Choice:
    """Try `alphas` from the largest down and keep the first whose guard score is at most `limit` (the start
    model's score); alpha 0 (the start model, whose score is the limit) closes the list. The model is left at the
    chosen weights."""
    tried = []
    for alpha in sorted(set(alphas) | {0.0}, reverse=True):
        if alpha == 0.0:
            interpolate_(model, start, tuned, 0.0)
            return Choice(0.0, limit, limit, tried)
        interpolate_(model, start, tuned, alpha)
        score = guard(model)
        tried.append((alpha, score))
        if score <= limit:
            return Choice(alpha, score, limit, tried)
    raise AssertionError("unreachable: alpha 0 ends the loop")
