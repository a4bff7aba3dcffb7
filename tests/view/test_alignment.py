"""`tabline view` of alignment: a folder made by `tabline align` (its own page), and the Alignment section of a
line run with ``align_every``, opened in a real headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tabline.agents.team import Team
from tabline.cli import app
from tabline.graphs.tabgraa import align_model
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import read_trace
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.tabgraa import AlignConfig
from tabline.view import render_view, write_view
from tabline.view.alignment import heading
from view_dom import console, drawn_figures, number, table_cells
from test_view import browser, chromium

LINE_ONLY = ["The line", "QC funnel", "Bandit", "Fidelity", "LLM calls"]
ROUND_FIELDS = ["round", "rows", "reward_mean", "reward_high", "reward_low", "heldout_auc", "steps", "align_loss",
                "align_margin"]


@pytest.fixture(scope="module")
def aligned_dir(diamonds, tmp_path_factory) -> Path:
    """A real `align_model` output: a tiny TabularLM, 2 rounds of GRAA on the classifier reward."""
    root = tmp_path_factory.mktemp("align")
    data = diamonds.iloc[:300]
    TabularLM(TabularLMConfig(max_epochs=1, n_layer=1, n_embd=32)).fit(data, progress=False).save(root / "m")
    align_model(root / "m", data, AlignConfig(rounds=2, samples=64, learning_rate=1e-3), root / "aligned", progress=False)
    return root / "aligned"


@pytest.fixture(scope="module")
def aligned_line(diamonds, tmp_path_factory) -> Path:
    """A line run that aligns its LM after every batch; the classifier judge makes the rewards differ."""
    team = Team.from_dict({"batch_rows": 100, "lm": {"max_epochs": 2, "n_layer": 1, "n_embd": 32},
                           "judges": [{"kind": "classifier", "calibration_rows": 200}, {"kind": "rules", "threshold": 1.0}]})
    path = tmp_path_factory.mktemp("line") / "run"
    line = AssemblyLine(team, align_every=1, align={"learning_rate": 1e-3, "group_batch": 4})
    line.fit(diamonds.iloc[:600], progress=False).run(250, path, progress=False)
    return path


def assert_rows_equal(page: str, entries: list[dict], fields: list[str]) -> None:
    """One table row per entry, and each shown number is the entry's value (the table rounds to 3 decimals)."""
    head, rows = table_cells(page, "alignment-history")
    assert len(rows) == len(entries) >= 2
    for row, entry in zip(rows, entries):
        shown = dict(zip(head, row))
        for field in fields:
            assert number(shown[heading(field)]) == pytest.approx(entry[field], abs=5.1e-4), field


@browser
def test_page_of_an_align_folder(aligned_dir, tmp_path):
    # Setup
    history = json.loads((aligned_dir / "align.json").read_text())["history"]
    # Run: as a user would
    result = CliRunner().invoke(app, ["view", str(aligned_dir), "-o", str(tmp_path / "p.html")])
    dom = chromium("--dump-dom", (tmp_path / "p.html").as_uri())
    # Assert: the align page's sections only, one row per round equal to align.json's history
    assert result.exit_code == 0, result.output
    assert re.findall(r"<h2>(.*?)</h2>", dom.stdout) == ["The loop", "Timeline", "Alignment"]
    assert_rows_equal(dom.stdout, history, ROUND_FIELDS)
    status = re.search(r"<header>.*?<p>(.*?)</p>", dom.stdout, re.S).group(1)
    assert status.startswith("2 rounds of graa loss on the classifier reward against 300 real rows")
    assert f"held-out AUC {history[-1]['heldout_auc']:.3f}" in status
    # the loop's node table, the graph, and the timeline round by round
    head, nodes = table_cells(dom.stdout, "")
    assert [r[:3] for r in nodes] == [["generate", "policy", "2"], ["score", "classifier reward", "2"],
                                      ["align", "graa loss", "2"]]
    assert "align -.-&gt; generate;" in dom.stdout
    assert drawn_figures(dom.stdout, "timeline") == 1 and "round 2" in dom.stdout
    # reward groups, loss, held-out AUC: three charts, drawn
    assert drawn_figures(dom.stdout, "alignment") == 3
    assert console(dom.stderr) == []


def test_align_folder_without_align_json_is_rebuilt_from_the_trace(aligned_dir, tmp_path):
    # Setup: a copy that lost align.json
    history = json.loads((aligned_dir / "align.json").read_text())["history"]
    copy = tmp_path / "aligned"
    shutil.copytree(aligned_dir, copy)
    (copy / "align.json").unlink()
    # Run
    page = render_view(copy)
    # Assert
    assert "Missing: align.json (the settings and per-round history; rebuilt from trace.jsonl)." in page
    assert_rows_equal(page, history, ROUND_FIELDS)
    assert not any(f"<h2>{h}</h2>" in page for h in LINE_ONLY)


@browser
def test_line_run_with_align_every_shows_each_alignment_step(aligned_line):
    # Setup: what the trace says of each alignment step
    trace = read_trace(aligned_line / "trace.jsonl")
    steps = [{**e["detail"], "after_batch": e["batch_id"]} for _, e in trace[trace.node == "align"].iterrows()]
    # Run
    dom = chromium("--dump-dom", write_view(aligned_line).as_uri())
    # Assert: the line's page, with one row per alignment step equal to the trace
    assert "<h2>QC funnel</h2>" in dom.stdout and "<h2>Alignment</h2>" in dom.stdout
    assert_rows_equal(dom.stdout, steps, ["after_batch", "rows", "reward_mean", "reward_high", "reward_low", "steps",
                                          "align_loss"])
    # QC rewards: accepted rows score above 1, so the high group cannot sit below the low group
    assert all(s["reward_high"] >= s["reward_low"] and s["reward_high"] > 1 for s in steps)
    assert drawn_figures(dom.stdout, "alignment") == 2  # reward groups, loss
    assert console(dom.stderr) == []


def test_a_trace_written_before_the_align_prefix_still_shows_the_loss(aligned_line, tmp_path):
    # Setup: align events as older versions wrote them (loss metrics unprefixed, no reward groups)
    copy = tmp_path / "run"
    shutil.copytree(aligned_line, copy)
    events = [json.loads(line) for line in (copy / "trace.jsonl").read_text().splitlines()]
    for e in events:
        if e["node"] == "align":
            d = e["detail"]
            e["detail"] = {"steps": d["steps"], "loss": d["align_loss"], "reward_high": d["align_reward_high"],
                           "rows": d["rows"], "batches": d["batches"], "model": d["model"]}
    (copy / "trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    # Run
    head, rows = table_cells(render_view(copy), "alignment-history")
    # Assert: the old loss is the loss column; the loss's implicit reward is not taken for a reward group
    old = [e["detail"] for e in events if e["node"] == "align"]
    assert [number(r[head.index("loss")]) for r in rows] == pytest.approx([d["loss"] for d in old], abs=5.1e-4)
    assert "align reward high" in head and "high group" not in head

