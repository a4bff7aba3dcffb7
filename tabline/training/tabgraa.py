"""TabGRAA's alignment trainer: generate → score → align against a frozen reference, round after round —
and the same step inside the assembly line (`LineAlignment`), rewarded by the line's own QC verdicts.

One round (paper §3): sample N rows from the policy (at temperature 1, see `AlignConfig`), score every row (`reward`), sort,
split into high/low halves, then one epoch of AdamW over mini-batches of B high and B low rows with the
chosen loss (`tabline.training.losses`). The reference is a frozen copy of the model taken when the
aligner is built (the SFT model) and never changes. Baselines run in the same loop with the same number of
optimizer steps: DPO (B pairs rank i ↔ N+1−i), KTO (B high + B low rows), NPO (B low rows), and SFT (2B real
rows per step: "training longer" with equal compute).

The steps of a round are public (`generate`, `score`, `align`) so `tabline.graphs.tabgraa` can run them as
graph nodes; `Aligner.run` is the same loop without a graph.

Inside the line (``align_every=k``), the reward of a row is what QC thought of it: ``1 + mean judge score``
for an accepted row, ``mean judge score`` for a rejected one (so every accepted row ranks above every
rejected row, and judges order rows within each). Rows set aside as surplus are not judged bad and are left
out. The rows of the last k batches, sorted by that reward, form the high and low halves of one alignment
step (`Aligner.align`). The reference stays the SFT model (``model/`` in the run folder, saved before the
first batch); each aligned version is saved as ``model-aligned-NNNNNN/`` (NNNNNN = the batch after which it
was made) and the checkpointed state names the current one, so a resumed run samples from the right weights.

Example:
    >>> AlignConfig(loss="dpo", rounds=2).steps_per_round(1000)  # (N/2) / B with B = 4
    125
    >>> line_rewards(np.array([0.2, 0.9]), np.array([0.95, 0.1])).tolist()  # two accepted, two rejected rows
    [1.2, 1.9, 0.95, 0.1]
    >>> row_scores({"rules": [1.0, 0.0, 1.0], "llm": [0.5, float("nan"), float("nan")]}, 3).tolist()
    [0.75, 0.0, 1.0]
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from tabline.errors import InvalidArgumentError
from tabline.training.groups import dpo_pairs, epoch_batches, reward_groups
from tabline.training.losses import dpo_loss, graa_loss, kto_loss, kto_reference_point, npo_loss
from tabline.training.lm import TabularLM
from tabline.training.policies import Policy, TabularLMPolicy, batched_logprob
from tabline.training.rewards import REWARDS, classifier_rewards, dcr_rewards, random_rewards, split_real

LOSSES = ("graa", "graa-logsig", "dpo", "kto", "npo", "sft")


class AlignConfig(BaseModel):
    """Settings of one alignment run. The defaults are the ones tuned on Benefits (benchmarks/tabgraa).

    Example:
        >>> AlignConfig(loss="graa", reward="dcr", rounds=3).samples is None  # None: as many as real rows
        True
    """

    model_config = ConfigDict(extra="forbid")

    loss: Literal["graa", "graa-logsig", "dpo", "kto", "npo", "sft"] = "graa"
    reward: Literal["classifier", "dcr", "random"] = "classifier"
    rounds: int = Field(2, ge=1, le=100)
    beta: float = Field(1.0, gt=0, description="β of every loss (GRAA: z = r̄_H − β·r̄_L, s = β)")
    learning_rate: float = Field(1e-5, gt=0, le=1)
    group_batch: int = Field(4, ge=1, description="B: rows drawn from each group per step")
    samples: int | None = Field(None, ge=2, description="N rows sampled per round (None: the real table's size)")
    # The paper samples GReaT at 0.7, its generation temperature. Alignment must sample the distribution users
    # will sample, and a TabularLM samples at 1.0: rewards computed at 0.7 push the 1.0 samples off target.
    temperature: float = Field(1.0, ge=0)
    b: float = 2.0
    s: float | None = None
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    trees: int = Field(100, ge=1, description="trees of the classifier reward's random forest")
    seed: int = 0

    def steps_per_round(self, n: int) -> int:
        """Optimizer steps of one round with ``n`` scored rows: one epoch over a group of n/2 rows."""
        return max(1, (n // 2) // self.group_batch)


def reward_for(name: str) -> str:
    """Check a reward name; `InvalidArgumentError` lists the valid ones.

    Example:
        >>> reward_for("dcr")
        'dcr'
    """
    if name not in REWARDS:
        raise InvalidArgumentError(f"unknown reward {name!r}; choose one of: {', '.join(REWARDS)}")
    return name


class Aligner:
    """Aligns ``policy`` to rewards computed against ``real`` rows. See the module docstring.

    Example (a tiny model, one round):
        >>> import pandas as pd
        >>> from tabline.training import TabularLM, TabularLMConfig
        >>> from tabline.training.policies import TabularLMPolicy
        >>> df = pd.DataFrame({"a": list(range(20)) * 3, "b": ["x", "y", "z"] * 20})
        >>> lm = TabularLM(TabularLMConfig(max_epochs=1, n_layer=1, n_embd=16)).fit(df, progress=False)
        >>> aligner = Aligner(TabularLMPolicy(lm), df, AlignConfig(rounds=1, reward="dcr"))
        >>> history = aligner.run(progress=False)
        >>> len(history), history[0]["steps"]
        (1, 7)
    """

    def __init__(self, policy: Policy, real: pd.DataFrame, config: AlignConfig | None = None):
        self.policy, self.config = policy, config or AlignConfig()
        self.real = real.reset_index(drop=True)
        self.scorer_real, self.heldout_real = split_real(self.real, self.config.seed)
        # The frozen reference: a deep copy taken now, never handed to an optimizer.
        self.reference = copy.deepcopy(policy.model).eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ the three steps of a round
    def generate(self, round_: int) -> tuple[pd.DataFrame, Any]:
        """Sample this round's rows (N = ``samples`` or the real table's size)."""
        n = self.config.samples or len(self.real)
        return self.policy.sample(n, seed=self.config.seed + 1000 * (round_ + 1), temperature=self.config.temperature)

    def score(self, frame: pd.DataFrame, round_: int) -> tuple[np.ndarray, dict[str, float]]:
        """Rewards (N,) in [0, 1] for the sampled rows, and diagnostics."""
        cfg, seed = self.config, self.config.seed + round_
        if len(frame) < 2:
            raise InvalidArgumentError(f"round {round_ + 1} produced {len(frame)} valid row(s); at least 2 are needed")
        if cfg.reward == "classifier":
            return classifier_rewards(self.scorer_real, self.heldout_real, frame, self.policy.schema,
                                      seed=seed, trees=cfg.trees)
        if cfg.reward == "dcr":
            return dcr_rewards(self.scorer_real, frame, self.policy.schema)
        return random_rewards(len(frame), seed)

    def align(self, items: Any, rewards: np.ndarray, round_: int) -> dict[str, float]:
        """One epoch of the configured loss over ``items`` scored by ``rewards`` (N,). Returns step means."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed + 7919 * (round_ + 1))
        n = len(rewards)
        steps = cfg.steps_per_round(n)
        started = time.perf_counter()
        if cfg.loss == "sft":
            losses = self.policy.sft(self.real, steps=steps, batch_size=2 * cfg.group_batch,
                                     learning_rate=cfg.learning_rate, seed=cfg.seed + round_)
            return {"steps": steps, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started}
        ref = batched_logprob(self.policy, self.reference, items, n)  # (N,) fixed for the round
        model = self.policy.model
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate,
                                weight_decay=cfg.weight_decay)
        model.train()
        metrics: list[dict[str, float]] = []
        for idx_a, idx_b in self._batches(rewards, rng):
            loss, m = self._loss(items, ref, idx_a, idx_b)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the {cfg.loss} loss became {float(loss)}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            metrics.append(m)
        model.eval()
        out = {k: float(np.mean([m[k] for m in metrics if k in m])) for k in metrics[0]} if metrics else {}
        return {"steps": len(metrics), **out, "seconds": time.perf_counter() - started}

    def _batches(self, rewards: np.ndarray, rng: np.random.Generator):
        """(a, b) row indices per step: (high, low) for GRAA/KTO, (chosen, rejected) for DPO, (low, -) NPO."""
        B = self.config.group_batch
        steps = self.config.steps_per_round(len(rewards))
        if self.config.loss == "dpo":
            chosen, rejected = dpo_pairs(rewards)
            return [(chosen[i], rejected[i]) for i in epoch_batches(len(chosen), B, rng)][:steps]
        high, low = reward_groups(rewards)
        if self.config.loss == "npo":
            return [(low[i], None) for i in epoch_batches(len(low), B, rng)][:steps]
        return list(zip((high[i] for i in epoch_batches(len(high), B, rng)),
                        (low[i] for i in epoch_batches(len(low), B, rng))))[:steps]

    def _loss(self, items: Any, ref: torch.Tensor, a: np.ndarray, b: np.ndarray | None):
        cfg, lp = self.config, self.policy.logprob
        model = self.policy.model
        if cfg.loss == "npo":
            return npo_loss(lp(model, items, a), ref[a], beta=cfg.beta)
        pol_a, pol_b = lp(model, items, a), lp(model, items, b)  # (B,), (B,)
        if cfg.loss in ("graa", "graa-logsig"):
            form = "sigmoid" if cfg.loss == "graa" else "logsigmoid"
            return graa_loss(pol_a, ref[a], pol_b, ref[b], beta=cfg.beta, form=form, b=cfg.b, s=cfg.s)
        if cfg.loss == "dpo":
            return dpo_loss(pol_a, ref[a], pol_b, ref[b], beta=cfg.beta)
        kl = kto_reference_point(torch.cat([pol_a, pol_b]), torch.cat([ref[a], ref[b]]))
        return kto_loss(pol_a, ref[a], pol_b, ref[b], beta=cfg.beta, kl=kl)

    # ------------------------------------------------------------------ the whole loop without a graph
    def run_round(self, round_: int) -> dict[str, Any]:
        """generate → score → align for one round; returns (and records) the round's summary."""
        started = time.perf_counter()
        frame, items = self.generate(round_)
        rewards, info = self.score(frame, round_)
        summary = self.record(self.summarise(round_, frame, rewards, info), self.align(items, rewards, round_))
        summary["seconds"] = round(time.perf_counter() - started, 3)
        return summary

    def record(self, summary: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
        """A round's history entry: the scoring summary plus the step metrics (``align_*``); appended."""
        entry = {**summary, **step_metrics(metrics)}
        self.history.append(entry)
        return entry

    def summarise(self, round_: int, frame: pd.DataFrame, rewards: np.ndarray, info: dict[str, float]) -> dict[str, Any]:
        return {"round": round_ + 1, "rows": int(len(frame)), **group_means(rewards), **info}

    def run(self, *, progress: bool = True) -> list[dict[str, Any]]:
        """All ``rounds`` rounds; returns the per-round history."""
        from tabline._progress import progress_bar

        with progress_bar(self.config.rounds, f"aligning ({self.config.loss})", enabled=progress) as bar:
            for t in range(self.config.rounds):
                s = self.run_round(t)
                bar.advance(1, info=f"reward {s['reward_mean']:.3f}")
        return self.history


def group_means(rewards: np.ndarray) -> dict[str, float | None]:
    """Mean reward of all rows, of the high group and of the low group (`reward_groups`); None when empty.

    Example:
        >>> group_means(np.array([0.0, 1.0, 0.5, 0.9]))
        {'reward_mean': 0.6, 'reward_high': 0.95, 'reward_low': 0.25}
    """
    def mean(idx: np.ndarray) -> float | None:
        return float(np.mean(rewards[idx])) if len(idx) else None

    high, low = reward_groups(rewards)
    return {"reward_mean": mean(np.arange(len(rewards))), "reward_high": mean(high), "reward_low": mean(low)}


def step_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """`Aligner.align`'s metrics as history fields: ``steps``, and ``align_*`` for the rest — the loss's
    own ``reward_high`` is its implicit reward (log π/π_ref), not the scorer's, so it must not share a name.

    Example:
        >>> step_metrics({"steps": 3, "loss": 0.5, "reward_high": 0.1})
        {'steps': 3, 'align_loss': 0.5, 'align_reward_high': 0.1}
    """
    return {k if k == "steps" else f"align_{k}": v for k, v in metrics.items()}


# ---------------------------------------------------------------------- TabGRAA inside the assembly line
def line_rewards(accepted_scores: np.ndarray, rejected_scores: np.ndarray) -> np.ndarray:
    """Rewards of accepted rows (1 + score) then rejected rows (score); scores in [0, 1]. -> (A + R,)"""
    return np.r_[1.0 + np.asarray(accepted_scores, dtype=float), np.asarray(rejected_scores, dtype=float)]


def row_scores(scores: dict[str, list[float]], n: int) -> np.ndarray:
    """Mean judge score per row of a batch (0.5 when no judge scored it). -> (n,)"""
    if not scores:
        return np.full(n, 0.5)
    stacked = np.array([np.asarray(v, dtype=float) for v in scores.values()])  # (judges, n)
    seen = np.isfinite(stacked)
    # A row no judge could score (an LLM judge's failed call) counts as undecided, not as bad.
    mean = np.where(seen, stacked, 0.0).sum(0) / np.maximum(seen.sum(0), 1)
    return np.clip(np.where(seen.any(0), mean, 0.5), 0, 1)


class LineAlignment:
    """The line's alignment step: settings, and (after `attach`) the `Aligner` with its frozen reference.

    Example:
        >>> LineAlignment(3).due({"batches": 6}), LineAlignment(3).due({"batches": 7})
        (True, False)
    """

    def __init__(self, every: int, config: AlignConfig | None = None):
        self.every, self.config = int(every), config or AlignConfig()
        self.aligner: Aligner | None = None

    def attach(self, lm: TabularLM, real: pd.DataFrame) -> None:
        """Align ``lm`` in place (the line's LM workers share it) against a frozen copy of it taken now."""
        self.aligner = Aligner(TabularLMPolicy(lm), real, self.config)

    def restore(self, lm: TabularLM, run_dir: Path, lm_dir: str | None, real: pd.DataFrame) -> None:
        """After a resume: ``lm`` holds the SFT weights from ``model/``; it becomes the reference, and the
        checkpointed aligned version (``lm_dir``), if any, is loaded into ``lm`` itself."""
        self.attach(lm, real)  # the reference is copied while lm still holds the SFT weights
        if lm_dir:
            lm.model.load_state_dict(TabularLM.load(Path(run_dir) / lm_dir).model.state_dict())

    def due(self, state: dict[str, Any]) -> bool:
        """After the bandit step of ``state``: is this an alignment batch (every k-th, the run going on)?"""
        return not state.get("stop") and state["batches"] % self.every == 0

    def batch_ids(self, batches: int) -> list[int]:
        """The k batches an alignment step after batch ``batches`` learns from (batch ids run 1, 2, ...)."""
        return list(range(max(1, batches - self.every + 1), batches + 1))

    def step(self, frame: pd.DataFrame, rewards: np.ndarray, index: int) -> dict[str, Any]:
        """One alignment step on ``frame``'s rows with ``rewards``. Returns the fields of a round of
        ``align.json``'s history: rows, the QC reward's mean and group means, steps and ``align_*`` metrics."""
        policy = self.aligner.policy
        items, kept = policy.items(frame[policy.schema.names])
        rewards = rewards[kept]
        entry = {"rows": int(len(rewards)), **group_means(rewards), "unencodable_rows": int((~kept).sum())}
        if len(rewards) < 2 * self.config.group_batch:
            return {"steps": 0, **entry, "skipped": "too few rows to form two groups"}
        return {**entry, **step_metrics(self.aligner.align(items, rewards, index))}

    def save(self, directory: Path) -> Path:
        return self.aligner.policy.lm.save(directory)


__all__ = ["LOSSES", "AlignConfig", "Aligner", "LineAlignment", "group_means", "line_rewards", "reward_for", "row_scores",
           "step_metrics"]
