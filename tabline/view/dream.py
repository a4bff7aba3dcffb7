"""The page of a `tabline dream` run: rounds (items, kept, verdicts), what was kept per task type and
direction (a plotly bar chart per round), the graph, and every item — instruction, reference answer, the
target's reply and its verdict — searchable. It reads the round files and the trace, so a run that is still
going (or was stopped) shows its finished rounds.

Example:
    >>> import tempfile
    >>> from tabline.dream.config import DreamConfig
    >>> from tabline.line.dreamer import Dreamer
    >>> run = Dreamer(DreamConfig(rounds=1, per_round=6, tables=1)).run(None, tempfile.mkdtemp()).run_dir
    >>> html = render_dream_view(run)
    >>> "Rounds" in html and "not answered" in html
    True
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from tabline.dream.items import DreamItem
from tabline.run_folder import DreamFolder, read_trace
from tabline.view.html import Figures, note, page, row_table, section, table
from tabline.view.sections import graph_figure, mermaid_details, node_totals

ITEMS_CAP = 5000  # rows embedded in the page; the rest stay in items.jsonl / rounds/


def _rounds(folder: DreamFolder) -> list[dict[str, Any]]:
    """Each finished round's summary, from the trace's ``select`` events (the last of a re-run round wins)."""
    if not folder.trace.exists():
        return []
    trace = read_trace(folder.trace)
    if "node" not in trace:
        return []
    by_round: dict[int, dict[str, Any]] = {}
    for _, event in trace[trace.node == "select"].iterrows():
        by_round[int(event["round"])] = {"round": int(event["round"]), **event["detail"]}
    return [by_round[r] for r in sorted(by_round)]


def _item_rows(folder: DreamFolder, n_rounds: int) -> list[list[str]]:
    rows = []
    for records in folder.read_rounds(n_rounds):
        for rec in records:
            item = DreamItem.from_json(rec["item"])
            verdict = (rec.get("verdict") or {}).get("verdict", "not answered")
            reply = (rec.get("reply") or {}).get("text", "")
            rows.append([str(item.round), item.task_type, item.direction, item.fmt, item.instruction,
                         item.answer.text(), reply, verdict, "kept" if rec["kept"] else ""])
            if len(rows) >= ITEMS_CAP:
                return rows
    return rows


def _kept_figure(rounds: list[dict[str, Any]], figs: Figures) -> str:
    fig = go.Figure()
    for r in rounds:
        kept = r.get("kept_by_task_type", {})
        fig.add_bar(name=f"round {r['round']}", x=list(kept), y=list(kept.values()))
    fig.update_layout(barmode="group", title="kept items per task type", xaxis_tickangle=-40)
    return figs.div(fig, 380)


def render_dream_view(run_dir: str | Path, live: str = "") -> str:
    """The page of the dream run in ``run_dir``, as HTML text (``live``: the served page's refresh script)."""
    from tabline.view import _plotly_js

    folder = DreamFolder(run_dir)
    manifest = folder.read_manifest()
    report_path = folder.path / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else None
    rounds = _rounds(folder)
    figs = Figures()
    filtered = manifest.get("target_model") is not None
    status = (f"{report['items']:,} items in {report['rounds']} round(s), {report['dataset_rows']:,} in the dataset; "
              f"stopped: {report['stop_reason']}" if report else f"status: {manifest.get('status')} — not finished")
    verdicts = sorted({v for r in rounds for v in r.get("by_verdict", {})})
    round_rows = [[r["round"], r["items"], r["kept"], *[r.get("by_verdict", {}).get(v, 0) for v in verdicts]]
                  for r in rounds]
    body = "" if filtered else note("No target model: every evolved item is kept (the set is unfiltered).")
    body += section("rounds", "Rounds", "Items made per round, how many were kept (the target's weaknesses), "
                    "and the verdicts on the target's replies.",
                    table(["round", "items", "kept", *verdicts], round_rows) +
                    (_kept_figure(rounds, figs) if rounds else ""))
    directions = sorted({d for r in rounds for d in r.get("by_direction", {})})
    body += section("directions", "Directions", "Items and kept items per evolution direction and round.",
                    table(["round", *[f"{d} (kept)" for d in directions]],
                          [[r["round"], *[f"{r['by_direction'].get(d, 0)} ({r.get('kept_by_direction', {}).get(d, 0)})"
                                          for d in directions]] for r in rounds]))
    graph = (folder.path / "graph.mmd").read_text(encoding="utf-8") if (folder.path / "graph.mmd").exists() else ""
    trace = read_trace(folder.trace) if folder.trace.exists() else pd.DataFrame()
    drawn = graph_figure(graph, node_totals(trace), max(float(trace["seconds"].sum()), 1e-9) if len(trace) else 1.0,
                         loop="next round")
    body += section("graph", "The graph", "The LangGraph loop this run ran: each node with its items in → out and "
                    "its share of the time, then the same graph as mermaid text.",
                    (figs.div(drawn, 260) if drawn is not None else "") + mermaid_details(graph))
    rows = _item_rows(folder, len(rounds))
    columns = ["round", "task type", "direction", "format", "instruction", "reference", "reply", "verdict", "kept"]
    body += section("items", "Items", f"Every item of the finished rounds (at most {ITEMS_CAP:,}); the table "
                    "each was asked about is in items.jsonl.", row_table(columns, rows, "search items"))
    nav = [("rounds", "Rounds"), ("directions", "Directions"), ("graph", "The graph"), ("items", "Items")]
    return page(f"tabline dream {manifest.get('run_id', '?')} — {folder.path.name}", status, nav, body, _plotly_js(), live)


__all__ = ["render_dream_view"]
