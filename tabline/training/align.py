"""TabGRAA's alignment trainer: generate → score → align against a frozen reference, round after round.

One round (paper §3): sample N rows from the policy (at temperature 1, see `AlignConfig`), score every row (`reward`), sort,
split into high/low halves, then one epoch of AdamW over mini-batches of B high and B low rows with the
chosen loss (`tabline.training.losses`). The reference is a frozen copy of the model taken when the
aligner is built (the SFT model) and never changes. Baselines run in the same loop with the same number of
optimizer steps: DPO (B pairs rank i ↔ N+1−i), KTO (B high + B low rows), NPO (B low rows), and SFT (2B real
rows per step: "training longer" with equal compute).

The steps of a round are public (`generate`, `score`, `align`) so `tabline.graphs.align` can run them as
graph nodes; `Aligner.run` is the same loop without a graph.

Example:
    >>> AlignConfig(loss="dpo", rounds=2).steps_per_round(1000)  # (N/2) / B with B = 4
    125
"""
from __future__ import annotations

import copy
import time
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from tabline.errors import InvalidArgumentError
from tabline.training.groups import dpo_pairs, epoch_batches, reward_groups
from tabline.training.losses import dpo_loss, graa_loss, kto_loss, kto_reference_point, npo_loss
from tabline.training.policies import Policy, batched_logprob
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
        entry = {**summary, **{f"align_{k}" if k != "steps" else k: v for k, v in metrics.items()}}
        self.history.append(entry)
        return entry

    def summarise(self, round_: int, frame: pd.DataFrame, rewards: np.ndarray, info: dict[str, float]) -> dict[str, Any]:
        high, low = reward_groups(rewards)
        return {"round": round_ + 1, "rows": int(len(frame)), "reward_mean": float(np.mean(rewards)),
                "reward_high": float(np.mean(rewards[high])) if len(high) else None,
                "reward_low": float(np.mean(rewards[low])) if len(low) else None, **info}

    def run(self, *, progress: bool = True) -> list[dict[str, Any]]:
        """All ``rounds`` rounds; returns the per-round history."""
        from tabline._progress import progress_bar

        with progress_bar(self.config.rounds, f"aligning ({self.config.loss})", enabled=progress) as bar:
            for t in range(self.config.rounds):
                s = self.run_round(t)
                bar.advance(1, info=f"reward {s['reward_mean']:.3f}")
        return self.history


class AlignNodes:
    """The round's three steps as graph node functions ``state -> (partial state, trace info)``, wired by
    `tabline.graphs.align`. The sampled rows stay in memory between nodes (one round's worth); the state
    carries the round counter and the per-round history.

    Example:
        >>> AlignNodes.initial_state()
        {'round': 0, 'history': [], 'done': False}
    """

    def __init__(self, aligner: Aligner):
        self.aligner = aligner
        self._frame: pd.DataFrame | None = None
        self._items: Any = None
        self._rewards: np.ndarray | None = None
        self._summary: dict[str, Any] = {}

    @staticmethod
    def initial_state() -> dict[str, Any]:
        return {"round": 0, "history": [], "done": False}

    def generate_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        started = time.perf_counter()
        self._frame, self._items = self.aligner.generate(state["round"])
        return {"rows": len(self._frame)}, {"agent": "policy", "rows_out": len(self._frame),
                                            "detail": {"sample_seconds": round(time.perf_counter() - started, 3)}}

    def score_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        t = state["round"]
        self._rewards, info = self.aligner.score(self._frame, t)
        self._summary = self.aligner.summarise(t, self._frame, self._rewards, info)
        return {"reward_mean": self._summary["reward_mean"]}, {
            "agent": f"{self.aligner.config.reward} reward", "rows_in": len(self._frame),
            "rows_out": len(self._rewards), "detail": {k: v for k, v in self._summary.items() if k != "round"}}

    def align_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        t = state["round"]
        metrics = self.aligner.align(self._items, self._rewards, t)
        summary = self.aligner.record(self._summary, metrics)
        self._frame = self._items = self._rewards = None
        done = t + 1 >= self.aligner.config.rounds
        return {"round": t + 1, "history": state["history"] + [summary], "done": done}, {
            "agent": f"{self.aligner.config.loss} loss", "rows_in": summary["rows"], "detail": metrics}


__all__ = ["LOSSES", "AlignConfig", "AlignNodes", "Aligner", "reward_for"]
