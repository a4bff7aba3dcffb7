"""Post-training losses as small pure functions of per-row log-probabilities.

Every input is a summed row log-probability: ``pol_*`` under the model being trained (with gradient),
``ref_*`` under the frozen reference (no gradient). ``r = pol − ref`` is the implicit reward of a row.
Each function returns ``(loss, metrics)``: a scalar tensor and a dict of floats for the trace.

- `graa_loss` — TabGRAA (arXiv 2604.18966): the *group means* r̄_H, r̄_L are taken before the sigmoid,
  z = r̄_H − β·r̄_L; sigmoid form L = b − s·σ(z) (b = 2, s = β), log-sigmoid form L = −log σ(z).
- `dpo_loss` — DPO: −log σ(β[(r_chosen) − (r_rejected)]) per pair, averaged.
- `kto_loss` — KTO (eq. 7): 1 − σ(β(r_c − z₀)) for desirable rows, 1 − σ(β(z₀ − r_r)) for undesirable,
  z₀ a detached reference point (`kto_reference_point`).
- `npo_loss` — NPO on the low group only: (2/β)·log(1 + (π_θ/π_ref)^β) = (2/β)·softplus(β·r).

Example (at the reference every log-ratio is 0, so σ(0) = ½):
    >>> import torch
    >>> zero = torch.zeros(4)
    >>> graa_loss(zero, zero, zero, zero, beta=2.0)[0].item()  # 2 − 2·½
    1.0
    >>> round(dpo_loss(zero, zero, zero, zero, beta=0.1)[0].item(), 4)  # log 2
    0.6931
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Metrics = dict[str, float]


def _f(t: torch.Tensor) -> float:
    return float(t.detach().mean())


def graa_loss(
    pol_high: torch.Tensor, ref_high: torch.Tensor, pol_low: torch.Tensor, ref_low: torch.Tensor, *,
    beta: float, form: Literal["sigmoid", "logsigmoid"] = "sigmoid", b: float = 2.0, s: float | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """TabGRAA's group-relative loss for one mini-batch: B high-reward rows and B low-reward rows.

    Example (r̄_H = 1, r̄_L = 0.5, β = 1: z = 0.5):
        >>> import torch
        >>> loss, m = graa_loss(torch.tensor([1.0, 1.0]), torch.zeros(2), torch.tensor([0.5, 0.5]), torch.zeros(2),
        ...                     beta=1.0, form="logsigmoid")
        >>> round(loss.item(), 4), m["margin"]
        (0.4741, 0.5)
    """
    r_high = (pol_high - ref_high).mean()  # () group mean of (B,) — before the sigmoid
    r_low = (pol_low - ref_low).mean()  # ()
    z = r_high - beta * r_low  # ()
    if form == "sigmoid":
        loss = b - (beta if s is None else s) * torch.sigmoid(z)
    elif form == "logsigmoid":
        loss = -F.logsigmoid(z)
    else:
        raise ValueError(f"unknown GRAA form {form!r}; use 'sigmoid' or 'logsigmoid'")
    return loss, {"loss": _f(loss), "reward_high": _f(r_high), "reward_low": _f(r_low),
                  "margin": _f(z)}


def dpo_loss(pol_chosen: torch.Tensor, ref_chosen: torch.Tensor, pol_rejected: torch.Tensor,
             ref_rejected: torch.Tensor, *, beta: float) -> tuple[torch.Tensor, Metrics]:
    """DPO over B (chosen, rejected) pairs; (B,) each -> scalar.

    Example (margin 1, β = 1: −log σ(1)):
        >>> import torch
        >>> round(dpo_loss(torch.ones(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), beta=1.0)[0].item(), 4)
        0.3133
    """
    r_chosen = pol_chosen - ref_chosen  # (B,)
    r_rejected = pol_rejected - ref_rejected  # (B,)
    margin = r_chosen - r_rejected  # (B,)
    loss = -F.logsigmoid(beta * margin).mean()
    return loss, {"loss": _f(loss), "reward_high": _f(r_chosen.mean()),
                  "reward_low": _f(r_rejected.mean()), "margin": _f(margin.mean())}


def kto_reference_point(pol: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """KTO's z₀: the batch's mean log-ratio, clipped at 0 and detached. (B,), (B,) -> ().

    trl estimates it from mismatched prompt/completion pairs; rows have no prompt, so the batch's own rows
    are the sample of the policy the KL is taken against.
    """
    return (pol - ref).mean().detach().clamp(min=0)


def kto_loss(pol_chosen: torch.Tensor, ref_chosen: torch.Tensor, pol_rejected: torch.Tensor,
             ref_rejected: torch.Tensor, *, beta: float, kl: torch.Tensor | float = 0.0,
             desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> tuple[torch.Tensor, Metrics]:
    """KTO over B_c desirable and B_r undesirable rows (unpaired); mean over all B_c + B_r losses.

    Example (r_c = 2, r_r = −2, z₀ = 0, β = 1: both terms are 1 − σ(2)):
        >>> import torch
        >>> loss, _ = kto_loss(torch.tensor([2.0]), torch.zeros(1), torch.tensor([-2.0]), torch.zeros(1), beta=1.0)
        >>> round(loss.item(), 4)
        0.1192
    """
    kl = torch.as_tensor(kl, dtype=pol_chosen.dtype)
    r_chosen = pol_chosen - ref_chosen  # (B_c,)
    r_rejected = pol_rejected - ref_rejected  # (B_r,)
    losses = torch.cat([desirable_weight * (1 - torch.sigmoid(beta * (r_chosen - kl))),  # (B_c,)
                        undesirable_weight * (1 - torch.sigmoid(beta * (kl - r_rejected)))])  # (B_r,)
    loss = losses.mean()
    return loss, {"loss": _f(loss), "reward_high": _f(r_chosen.mean()),
                  "reward_low": _f(r_rejected.mean()), "kl": _f(kl)}


def npo_loss(pol_low: torch.Tensor, ref_low: torch.Tensor, *, beta: float) -> tuple[torch.Tensor, Metrics]:
    """NPO on low-reward rows only: (2/β)·softplus(β·r), averaged. (B,), (B,) -> scalar.

    Example (r = 0: (2/β)·log 2):
        >>> import torch
        >>> round(npo_loss(torch.zeros(3), torch.zeros(3), beta=2.0)[0].item(), 4)
        0.6931
    """
    r = pol_low - ref_low  # (B,)
    loss = (2.0 / beta) * F.softplus(beta * r).mean()
    return loss, {"loss": _f(loss), "reward_low": _f(r.mean())}


__all__ = ["dpo_loss", "graa_loss", "kto_loss", "kto_reference_point", "npo_loss"]
