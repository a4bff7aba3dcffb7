"""`AssemblyLine(..., align_every=k)`: the line's verdicts align its own TabularLM every k batches."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from tabline.agents.team import Team
from tabline.errors import InvalidArgumentError
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import read_trace
from tabline.training import TabularLM

TEAM = {"batch_rows": 100, "judges": [{"kind": "classifier", "calibration_rows": 200}, {"kind": "rules", "threshold": 1.0}]}


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


@pytest.fixture(scope="module")
def aligned_run(tiny_lm, diamonds, tmp_path_factory):
    lm = copy.deepcopy(tiny_lm)  # alignment changes the LM in place; the session fixture must stay as it is
    line = AssemblyLine(Team.from_dict(TEAM), lm=lm, align_every=2,
                        align={"learning_rate": 1e-3, "group_batch": 4}).fit(diamonds.iloc[:1500], progress=False)
    result = line.run(350, tmp_path_factory.mktemp("aligned") / "run", progress=False)
    return line, lm, result


def test_an_align_step_follows_every_second_batch(aligned_run):
    line, lm, result = aligned_run
    events = read_trace(result.trace_path)
    aligns = events[events.node == "align"]
    batches = result.report["batches"]
    expected = (batches - 1) // 2 if batches % 2 == 0 else batches // 2  # none after the batch that ends the run
    assert len(aligns) == expected >= 1
    for _, e in aligns.iterrows():
        detail = e["detail"]
        assert detail["steps"] >= 1 and detail["rows"] >= 8
        assert len(detail["batches"]) == 2
        assert (result.run_dir / detail["model"] / "model.safetensors").exists()
    assert "align" in (result.run_dir / "graph.mmd").read_text()


def test_the_lm_moved_and_the_reference_is_still_the_sft_model(aligned_run):
    line, lm, result = aligned_run
    sft = TabularLM.load(result.run_dir / "model")  # saved before the first batch
    assert not _same(lm.model, sft.model)
    assert _same(line.agents.alignment.aligner.reference, sft.model)
    last = sorted(p for p in result.run_dir.iterdir() if p.name.startswith("model-aligned-"))[-1]
    assert _same(TabularLM.load(last).model, lm.model)  # the newest saved version is the one sampling


def test_scores_are_kept_per_row_for_every_batch(aligned_run):
    _, _, result = aligned_run
    import pandas as pd

    scores = pd.read_parquet(result.run_dir / "batches" / "scores-000001.parquet")
    accepted = pd.read_parquet(result.run_dir / "batches" / "accepted-000001.parquet")
    rejected = pd.read_parquet(result.run_dir / "batches" / "rejected-000001.parquet")
    assert len(scores) == len(accepted) + len(rejected) and int(scores.accepted.sum()) == len(accepted)
    assert scores.score.between(0, 1).all()


def test_resume_restores_the_aligned_weights_and_the_sft_reference(aligned_run):
    line, lm, result = aligned_run
    state = json.loads(json.dumps(read_trace(result.trace_path).query("node == 'align'").iloc[-1]["detail"]))
    fresh = TabularLM.load(result.run_dir / "model")
    alignment = copy.deepcopy(line.agents.alignment)
    alignment.restore(fresh, result.run_dir, state["model"], line.agents.coordinator.real)
    assert _same(fresh.model, lm.model)
    assert _same(alignment.aligner.reference, TabularLM.load(result.run_dir / "model").model)


@pytest.mark.parametrize("every", [0, -1, 1.5])
def test_align_every_must_be_a_positive_whole_number(every):
    with pytest.raises(InvalidArgumentError, match="align_every must be a positive whole number"):
        AssemblyLine(Team(), align_every=every)
