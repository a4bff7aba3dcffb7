"""`align_model`: TabGRAA post-training of a saved model, run as the LangGraph loop of `tabline.graphs.align`.

The output is a model directory like the input (a `TabularLM` directory, or a transformers one), written
atomically, with three more files: ``align.json`` (settings, reference, per-round history), ``trace.jsonl``
(one event per node execution) and ``graph.mmd`` (the loop's diagram).

Example:
    >>> import tempfile, os, pandas as pd
    >>> from tabline.training import TabularLM, TabularLMConfig
    >>> from tabline.training.align import AlignConfig
    >>> df = pd.DataFrame({"a": list(range(20)) * 3, "b": ["x", "y", "z"] * 20})
    >>> root = tempfile.mkdtemp()
    >>> _ = TabularLM(TabularLMConfig(max_epochs=1, n_layer=1, n_embd=16)).fit(df, progress=False).save(f"{root}/m")
    >>> result = align_model(f"{root}/m", df, AlignConfig(rounds=2, reward="dcr"), f"{root}/aligned", progress=False)
    >>> [h["round"] for h in result["history"]], os.path.exists(f"{root}/aligned/align.json")
    ([1, 2], True)
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from tabline import __version__
from tabline._progress import progress_bar
from tabline.errors import InvalidTableError
from tabline.graphs.align import build_align_graph
from tabline.training.align import AlignConfig, AlignNodes, Aligner
from tabline.training.policies import load_policy


def align_model(model_dir: str | os.PathLike, data: pd.DataFrame, config: AlignConfig | None = None,
                output: str | os.PathLike = "aligned", *, sft_steps: int = 0, threads: int | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Align the model in ``model_dir`` against the real rows ``data`` and write it to ``output``.

    ``sft_steps`` > 0 first fine-tunes on ``data`` (for a transformers model that has not seen the table;
    trl's `SFTTrainer` does it) and the reference is taken after that. Returns the ``align.json`` content."""
    config = config or AlignConfig()
    policy = load_policy(model_dir, data, threads=threads)
    schema = policy.schema
    missing = [c for c in schema.names if c not in data.columns]
    if missing:
        raise InvalidTableError(f"the training table lacks the model's column(s) {missing}")
    real = schema.format(schema.coerce(data[schema.names])).reset_index(drop=True)
    schema.validate_table(real, data_label="the training table")
    started = time.perf_counter()
    if sft_steps:
        policy.sft(real, steps=sft_steps, batch_size=2 * config.group_batch, learning_rate=config.learning_rate,
                   seed=config.seed)
    aligner = Aligner(policy, real, config)
    nodes = AlignNodes(aligner)
    run_id = uuid.uuid4().hex[:12]
    events: list[dict] = []
    with progress_bar(config.rounds, f"aligning ({config.loss}, {config.reward} reward)", enabled=progress) as bar:
        def on_event(event: dict) -> None:
            events.append(event)
            if event["node"] == "align":
                bar.advance(1, info=f"round {event['round']}: {event.get('detail', {}).get('steps', 0)} steps")

        graph = build_align_graph(nodes, run_id=run_id, on_event=on_event)
        final = graph.compile().invoke(AlignNodes.initial_state(), {"recursion_limit": 10 * config.rounds + 10})
    report = {"tabline_version": __version__, "run_id": run_id, "reference": str(Path(model_dir).resolve()),
              "rows": len(real), "sft_steps": sft_steps, "config": config.model_dump(),
              "seconds": round(time.perf_counter() - started, 2), "history": final["history"]}
    if hasattr(policy, "invalid"):
        report["invalid_samples"] = policy.invalid
    trace = "".join(json.dumps(e, default=str) + "\n" for e in events)
    policy.save(output, {"align.json": json.dumps(report, indent=1, default=str), "trace.jsonl": trace,
                         "graph.mmd": graph.compile().get_graph().draw_mermaid()})
    return report


__all__ = ["align_model"]
