"""TabGRAA inside the assembly line: every k batches, the line's own verdicts align its TabularLM.

The reward of a row is what QC thought of it: ``1 + mean judge score`` for an accepted row, ``mean judge
score`` for a rejected one (so every accepted row ranks above every rejected row, and judges order rows
within each). Rows set aside as surplus are not judged bad and are left out. The rows of the last k batches,
sorted by that reward, form the high and low halves of one alignment step (`Aligner.align`).

The reference stays the SFT model (``model/`` in the run folder, saved before the first batch); each
aligned version is saved as ``model-aligned-NNNNNN/`` (NNNNNN = the batch after which it was made) and the
checkpointed state names the current one, so a resumed run samples from the right weights.

Example:
    >>> import numpy as np
    >>> line_rewards(np.array([0.2, 0.9]), np.array([0.95, 0.1])).tolist()  # two accepted, two rejected rows
    [1.2, 1.9, 0.95, 0.1]
    >>> row_scores({"rules": [1.0, 0.0, 1.0], "llm": [0.5, float("nan"), float("nan")]}, 3).tolist()
    [0.75, 0.0, 1.0]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabline.training import TabularLM
from tabline.training.align import AlignConfig, Aligner
from tabline.training.policies import TabularLMPolicy


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
    """The line's alignment step: settings, and (after `attach`) the `Aligner` with its frozen reference."""

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
        return not state.get("stop") and state["batches"] % self.every == 0

    def step(self, frame: pd.DataFrame, rewards: np.ndarray, index: int) -> dict[str, Any]:
        """One alignment step on ``frame``'s rows with ``rewards``; returns metrics and group sizes."""
        policy = self.aligner.policy
        items, kept = policy.items(frame[policy.schema.names])
        rewards = rewards[kept]
        if len(rewards) < 2 * self.config.group_batch:
            return {"steps": 0, "rows": int(len(rewards)), "skipped": "too few rows to form two groups"}
        metrics = self.aligner.align(items, rewards, index)
        return {**metrics, "rows": int(len(rewards)), "unencodable_rows": int((~kept).sum())}

    def save(self, directory: Path) -> Path:
        return self.aligner.policy.lm.save(directory)


__all__ = ["LineAlignment", "line_rewards", "row_scores"]
