"""The training plan: how long a fit trains, how big the model is, and its learning-rate schedule.

A fit gets a time budget sized from its table (``TabularLMConfig.time_budget_s="auto"``): about 100 s for
a 10,000-row, 10-column table, growing with the square root of the training tokens (a table ten times
larger gets ~3x the time, not 10x). The budget is turned into a number of epochs **at a reference speed**
(what each model size trains per second on two cores of the reference machine), not by watching the clock:
so the same seed trains the same model on any machine, fast or slow. Only when a fit runs much slower
than planned (a busy machine) does the clock step in (`over_budget`).

The model is the size `choose_size` gives the table, made smaller while the budget would not buy it
``MIN_EPOCHS`` epochs: at a fixed budget a smaller model that sees the data more often measured better
than a larger one stopped early (docs/tabular-lm.md).

The schedule: linear warm-up, a constant rate (halved whenever validation stalls), then a linear anneal to
``ANNEAL_FLOOR`` of the rate over the last ``anneal_fraction`` of the planned epochs. Early stopping before
the anneal starts it at once, from the best weights so far.

Example:
    >>> p = plan_training(n_rows=9_000, row_length=27, budget_s="auto", max_epochs=60)
    >>> (p.n_layer, p.n_embd), p.epochs, round(p.budget_s)
    ((2, 96), 20, 99)
    >>> round(lr_factor(step=50, warmup=100, anneal_start=None, anneal_steps=0), 2)  # half-way up
    0.51
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Training tokens per second of each (n_layer, n_embd) at batch 64 on 2 cores of the reference machine
# (Xeon with AVX512, torch 2.13 float32), measured with benchmarks' throughput probe; rows of 27-60 tokens
# trained within 5 % of these.
REFERENCE_TOKENS_PER_S: dict[tuple[int, int], float] = {(2, 96): 50_000, (3, 128): 27_000, (4, 128): 21_000,
                                                       (4, 192): 13_000}
SIZES = sorted(REFERENCE_TOKENS_PER_S, key=lambda s: REFERENCE_TOKENS_PER_S[s], reverse=True)  # small -> large
MIN_EPOCHS = 12
ANNEAL_FLOOR = 0.05
# The wall clock stops a fit only when it runs this much slower than planned.
OVERRUN = 1.5


@dataclass(frozen=True)
class Plan:
    """What `plan_training` decided. ``epochs`` includes the anneal's ``anneal_epochs``."""

    n_layer: int
    n_embd: int
    epochs: int
    anneal_epochs: int
    budget_s: float | None  # None: no time budget (epochs from ``max_epochs`` only)
    expected_s: float  # the plan's length at the reference speed


def auto_budget_s(train_tokens: int) -> float:
    """Default seconds of training for ``train_tokens`` tokens per epoch (rows x tokens per row).

    Example:
        >>> round(auto_budget_s(243_000)), round(auto_budget_s(2_430_000)), auto_budget_s(1_000)
        (99, 312, 30.0)
    """
    return float(min(600.0, max(30.0, 100.0 * math.sqrt(train_tokens / 250_000))))


def choose_size(n_rows: int, row_length: int) -> tuple[int, int]:
    """(n_layer, n_embd) from the amount of training text: larger tables get a deeper, wider model.

    Example:
        >>> choose_size(1_000, 27), choose_size(100_000, 27)
        ((2, 96), (4, 192))
    """
    tokens = n_rows * row_length
    if tokens < 100_000:
        return 2, 96
    if tokens < 400_000:
        return 3, 128
    if tokens < 2_000_000:
        return 4, 128
    return 4, 192


def plan_training(n_rows: int, row_length: int, *, budget_s: float | Literal["auto"] | None, max_epochs: int,
                  n_layer: int | None = None, n_embd: int | None = None, anneal_fraction: float = 0.2,
                  model_length: int | None = None) -> Plan:
    """The plan for ``n_rows`` training rows of ``row_length`` tokens. Sizes given are kept as given.

    ``model_length``: the positions the model actually runs per row when that is fewer than the tokens
    (`tabline.training.gpt.TabularGPT` folds the column markers away). The table's size, and so the budget and
    the model's size, is counted in tokens; the epochs that fit the budget are counted in positions run."""
    budget = auto_budget_s(n_rows * row_length) if budget_s == "auto" else budget_s
    size = choose_size(n_rows, row_length)
    tokens = n_rows * (model_length or row_length)
    if budget is not None and n_layer is None and n_embd is None:
        while size != SIZES[0] and _epochs_in(budget, size, tokens) < MIN_EPOCHS:
            size = SIZES[SIZES.index(size) - 1]
    size = (n_layer or size[0], n_embd or size[1])
    epochs = max_epochs if budget is None else max(1, min(max_epochs, _epochs_in(budget, size, tokens)))
    anneal = min(epochs - 1, round(anneal_fraction * epochs)) if anneal_fraction > 0 and epochs > 1 else 0
    if anneal_fraction > 0 and epochs > 2:
        anneal = max(1, anneal)
    return Plan(size[0], size[1], epochs, anneal, budget, epochs * tokens / _speed(size))


def _speed(size: tuple[int, int]) -> float:
    if size in REFERENCE_TOKENS_PER_S:
        return REFERENCE_TOKENS_PER_S[size]
    # An explicit size: scale the nearest known one by the per-token work (~ layers x width^2).
    base = (2, 96)
    return REFERENCE_TOKENS_PER_S[base] * (base[0] * base[1] ** 2) / (size[0] * size[1] ** 2)


def _epochs_in(budget_s: float, size: tuple[int, int], tokens: int) -> int:
    return int(budget_s * _speed(size) // max(tokens, 1))


def lr_factor(step: int, *, warmup: int, anneal_start: int | None, anneal_steps: int) -> float:
    """Multiplier of the learning rate at optimizer ``step`` (0-based): warm-up, constant, linear anneal.

    Example:
        >>> [round(lr_factor(s, warmup=2, anneal_start=4, anneal_steps=4), 3) for s in range(9)]
        [0.5, 1.0, 1.0, 1.0, 0.762, 0.525, 0.288, 0.05, 0.05]
    """
    factor = min(1.0, (step + 1) / max(warmup, 1))
    if anneal_start is not None and step >= anneal_start and anneal_steps > 0:
        done = min(1.0, (step - anneal_start + 1) / anneal_steps)  # the last step trains at the floor
        factor *= 1.0 - (1.0 - ANNEAL_FLOOR) * done
    return factor


def over_budget(elapsed_s: float, epoch_s: float, budget_s: float | None) -> bool:
    """True when one more epoch would end past ``OVERRUN`` x the budget: the machine is slower than planned.

    Example:
        >>> over_budget(100, 10, 100), over_budget(150, 10, 100)
        (False, True)
    """
    return budget_s is not None and elapsed_s + epoch_s > OVERRUN * budget_s
