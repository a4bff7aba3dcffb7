"""The page's alignment parts: the **Alignment** section of a line run with ``align_every`` (one row per
alignment step, from the trace's ``align`` events), and the whole page of a folder made by `tabline align`
(``align.json``, ``trace.jsonl``, ``graph.mmd``): the loop, its node runs round by round, and per round the
reward groups, the loss and the scorer's held-out AUC.

A round of ``align.json``'s history and a line's alignment step hold the same fields (see
`tabline.training.tabgraa.LineAlignment.step`), so one function draws both.

Example:
    >>> steps = history_frame([{"round": 1, "rows": 64, "reward_mean": 0.7, "steps": 8, "align_loss": 1.4}], ["round"])
    >>> list(steps.columns), heading("align_loss"), heading("align_margin")
    (['round', 'rows', 'reward_mean', 'steps', 'align_loss'], 'loss', 'align margin')
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from tabline.run_folder import read_trace
from tabline.training.tabgraa import step_metrics
from tabline.view.html import Figures, esc, label, note, page, section, table
from tabline.view.run_data import RunData
from tabline.view.sections import graph_figure, mermaid_details, node_totals

ALIGN_SECTIONS = [("loop", "The loop"), ("timeline", "Timeline"), ("alignment", "Alignment")]
_GROUPS = ("reward_mean", "reward_high", "reward_low")
_HEADINGS = {"reward_mean": "mean reward", "reward_high": "high group", "reward_low": "low group",
             "heldout_auc": "held-out AUC", "median_dcr": "median DCR", "copies": "share copied from real",
             "unencodable_rows": "unencodable rows", "steps": "optimizer steps", "align_loss": "loss",
             "after_batch": "after batch", "batches": "learnt from batches", "model": "saved as"}
# Fields of a line's align event besides the reward groups and the loss's metrics (``align_*``; a trace written
# before that prefix has the metrics unprefixed — its ``reward_high`` is the loss's, not a reward group).
_STEP_FIELDS = {"steps", "rows", "unencodable_rows", "skipped", "batches", "model"}
_LINE_FIELDS = _STEP_FIELDS | set(_GROUPS)


def heading(column: str) -> str:
    """A history field's column heading: ``align_*`` are the loss's metrics, named after the loss."""
    return _HEADINGS.get(column) or column.replace("_", " ")


def history_frame(entries: list[dict[str, Any]], first: list[str]) -> pd.DataFrame:
    """Entries (rounds or steps) as a table: ``first``, rows, the reward groups, the scorer's diagnostics,
    steps, the ``align_*`` metrics (loss first), then anything else."""
    frame = pd.DataFrame(entries)
    aligned = sorted((c for c in frame.columns if c.startswith("align_")), key=lambda c: c != "align_loss")
    lead = [*first, "rows", *_GROUPS]
    scorer = [c for c in frame.columns if c not in lead and c not in aligned and c not in _LINE_FIELDS]
    order = lead + ["unencodable_rows"] + scorer + ["steps"] + aligned + ["skipped", "batches", "model"]
    return frame[[c for c in dict.fromkeys(order) if c in frame.columns]]


def _numbers(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()]


def _chart(frame: pd.DataFrame, x: str, columns: list[str], title: str, figs: Figures,
           line: float | None = None) -> str:
    fig = go.Figure([go.Scatter(x=frame[x], y=pd.to_numeric(frame[c], errors="coerce"), name=label(heading(c)),
                                mode="lines+markers") for c in columns])
    if line is not None:
        fig.add_hline(y=line, line_dash="dash", line_color="#868e96", annotation_text="indistinguishable")
    fig.update_layout(title=title, xaxis_title=heading(x), xaxis=dict(dtick=1), showlegend=True)
    return figs.div(fig, 320)


def history_body(frame: pd.DataFrame, x: str, figs: Figures) -> str:
    """Charts (reward groups, loss, held-out AUC, other scorer diagnostics) and the table of ``frame``."""
    charts = []
    groups = _numbers(frame, list(_GROUPS))
    if groups:
        charts.append(_chart(frame, x, groups, f"reward groups per {x}", figs))
    loss = _numbers(frame, [c for c in frame.columns if c.startswith("align_") and c != "align_seconds"])
    if loss:
        charts.append(_chart(frame, x, loss, f"loss and its metrics per {x}", figs))
    if _numbers(frame, ["heldout_auc"]):
        charts.append(_chart(frame, x, ["heldout_auc"], f"scorer's held-out AUC per {x}", figs, line=0.5))
    other = _numbers(frame, [c for c in frame.columns if c not in {x, "after_batch", "heldout_auc", *_LINE_FIELDS}
                             and not c.startswith("align_")])
    if other:
        charts.append(_chart(frame, x, other, f"scorer diagnostics per {x}", figs))
    shown = frame.astype(object).where(frame.notna(), None)
    return ('<div class="grid">' + "".join(charts) + "</div>"
            + table([heading(c) for c in frame.columns], shown.itertuples(index=False), cls="alignment-history"))


# ---------------------------------------------------------------------- a line run with align_every
def _line_steps(trace: pd.DataFrame) -> pd.DataFrame:
    steps = []
    for i, (batch, detail) in enumerate(zip(trace.get("batch_id", [None] * len(trace)), trace["detail"]), start=1):
        detail = detail if isinstance(detail, dict) else {}
        if "align_loss" not in detail and "reward_mean" not in detail:  # a trace written before the prefix
            detail = {k: v for k, v in detail.items() if k in _STEP_FIELDS} | step_metrics(
                {k: v for k, v in detail.items() if k not in _STEP_FIELDS})
        batches = detail.get("batches")
        if isinstance(batches, list) and batches:
            detail = {**detail, "batches": f"{batches[0]}–{batches[-1]}" if len(batches) > 1 else str(batches[0])}
        steps.append({"step": i, "after_batch": batch, **detail})
    return history_frame(steps, ["step", "after_batch"])


def alignment_section(run: RunData, figs: Figures) -> str:
    """The Alignment section of a line run: one row per alignment step (``align_every``)."""
    every = run.manifest.get("align_every")
    often = "batch" if every == 1 else f"{every or 'k'} batches"
    sentence = ("How the line's language model was aligned (TabGRAA) on its own QC verdicts after every "
                f"{often}: per alignment step, the reward groups (reward = 1 + mean judge score of "
                "an accepted row, the mean judge score of a rejected one; the high and low halves are what the "
                "loss contrasts), and the loss with its other metrics.")
    trace = run.trace
    rounds = trace[trace.node == "align"] if len(trace) and "node" in trace else pd.DataFrame()
    if rounds.empty:
        text = (f"No alignment step has run yet (align_every={every})." if every else
                "This run did not align its model (no align_every). A folder made by `tabline align` has a page "
                "of its own: `tabline view ALIGNED_DIR`.")
        return section("alignment", "Alignment", sentence, f"<p>{esc(text)}</p>")
    return section("alignment", "Alignment", sentence, history_body(_line_steps(rounds), "step", figs))


# ---------------------------------------------------------------------- a folder made by `tabline align`
@dataclass
class AlignRun:
    """A `tabline align` output folder as its page needs it (see `read_align`)."""

    path: Path
    report: dict[str, Any]                 # align.json; empty when missing or damaged
    history: list[dict[str, Any]]          # per round: align.json's history, or rebuilt from the trace
    trace: pd.DataFrame                    # one row per node execution (generate, score, align)
    damaged_lines: int
    graph: str | None
    missing: list[str] = field(default_factory=list)


def is_align_folder(path: str | Path) -> bool:
    """Was ``path`` written by `tabline align` (its ``align.json``, or a trace that starts with ``generate``)?"""
    path = Path(path)
    if (path / "align.json").is_file():
        return True
    if (path / "run.json").exists() or not (path / "trace.jsonl").is_file():
        return False
    with open(path / "trace.jsonl", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        return json.loads(first).get("node") == "generate"
    except (ValueError, AttributeError):
        return False


def read_align(path: str | Path) -> AlignRun:
    """Read a `tabline align` output folder; whatever is missing or damaged is named in ``missing``."""
    path, missing = Path(path), []
    try:
        report = json.loads((path / "align.json").read_text(encoding="utf-8"))
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        report = {}
        missing.append("align.json (the settings and per-round history; rebuilt from trace.jsonl)")
    except (OSError, ValueError) as exc:
        report = {}
        missing.append(f"align.json is damaged ({exc}); the history is rebuilt from trace.jsonl")
    trace, damaged = pd.DataFrame(), 0
    if (path / "trace.jsonl").is_file():
        trace = read_trace(path / "trace.jsonl")
        with open(path / "trace.jsonl", encoding="utf-8", errors="replace") as fh:
            damaged = sum(1 for line in fh if line.strip()) - len(trace)
        if trace.empty:
            missing.append("events in trace.jsonl (it is empty)")
    else:
        missing.append("trace.jsonl (the node runs of the loop)")
    graph = (path / "graph.mmd").read_text(encoding="utf-8") if (path / "graph.mmd").is_file() else None
    if graph is None:
        missing.append("graph.mmd (the loop's graph)")
    history = report.get("history")
    if not isinstance(history, list):
        history = _history_from_trace(trace)
    return AlignRun(path, report, [h for h in history if isinstance(h, dict)], trace, damaged, graph, missing)


def _history_from_trace(trace: pd.DataFrame) -> list[dict[str, Any]]:
    """Per round: the score event's summary and the align event's metrics, as `Aligner.record` joins them."""
    if trace.empty or not {"node", "round", "detail"} <= set(trace.columns):
        return []
    history: dict[Any, dict] = {}
    for node, round_, detail in zip(trace["node"], trace["round"], trace["detail"]):
        detail = detail if isinstance(detail, dict) else {}
        if node == "score":
            history.setdefault(round_, {"round": round_}).update(detail)
        elif node == "align":
            history.setdefault(round_, {"round": round_}).update(step_metrics(detail))
    return list(history.values())


def _status(run: AlignRun) -> str:
    cfg = run.report.get("config") if isinstance(run.report.get("config"), dict) else {}
    n = len(run.history)
    text = f"{n} round{'' if n == 1 else 's'} of {cfg.get('loss', '?')} loss on the {cfg.get('reward', '?')} reward"
    if isinstance(run.report.get("rows"), int):
        text += f" against {run.report['rows']:,} real rows"
    if isinstance(run.report.get("seconds"), (int, float)):
        text += f", {run.report['seconds']:.1f} s"
    last = run.history[-1] if run.history else {}
    said = [f"{name} {last[key]:.3f}" for key, name in (("align_loss", "loss"), ("reward_mean", "mean reward"),
                                                         ("heldout_auc", "held-out AUC"))
            if isinstance(last.get(key), (int, float))]
    return text + (f"; last round: {', '.join(said)}" if said else "") + ("" if run.report else " (align.json missing)")


def _loop_section(run: AlignRun, figs: Figures) -> str:
    parts = []
    nodes = node_totals(run.trace)  # a node that never takes rows (generate) shows blank, not 0
    wall = max(float(nodes["seconds"].sum()), 1e-9) if nodes is not None else 1.0
    if nodes is not None:
        shown = nodes.assign(share=(nodes["seconds"] / wall).map(lambda s: f"{s:.0%}"))
        parts.append(table(["node", "agent", "runs", "rows in", "rows out", "seconds", "share of the time"],
                           shown.itertuples(index=False)))
    else:
        parts.append(note("The trace has no events, so there is nothing to count here."))
    settings = [(k, v) for k, v in run.report.items() if k not in ("history", "config")]
    settings += [(f"config.{k}", v) for k, v in (run.report.get("config") or {}).items()]
    if settings:
        parts.append("<h3>Settings (align.json)</h3>"
                     + table(["setting", "value"], [(k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                    for k, v in settings]))
    drawn = graph_figure(run.graph, nodes, wall, loop="next round")
    if drawn is not None:
        parts.insert(0, figs.div(drawn, 240))
    if run.graph:
        parts.append(mermaid_details(run.graph))
    return section("loop", "The loop", "TabGRAA's loop — generate rows from the model, score them, align the model "
                   "on the high and low groups — with how often each node ran and how long it took, the settings "
                   "and the graph.", "".join(parts))


def _timeline_section(run: AlignRun, figs: Figures) -> str:
    trace = run.trace.reindex(columns=["node", "round", "seconds"])
    if trace.empty:
        body = note("The trace has no events, so there is nothing to draw.")
    else:
        # The loop runs one node at a time and its trace holds durations, not clock times: lay them end to end.
        secs = pd.to_numeric(trace["seconds"], errors="coerce").fillna(0)
        start = secs.cumsum() - secs
        fig = go.Figure()
        for round_ in trace["round"].drop_duplicates():
            m = trace["round"] == round_
            fig.add_trace(go.Bar(name=f"round {label(round_)}", y=[label(n) for n in trace.loc[m, "node"]],
                                 x=secs[m], base=start[m], orientation="h",
                                 hovertemplate="%{y}: %{base:.3f} s + %{x:.3f} s<extra>round " + label(round_) + "</extra>"))
        fig.update_layout(barmode="overlay", title="node runs, round after round", yaxis=dict(autorange="reversed"),
                          xaxis_title="seconds since the first node started (durations laid end to end)")
        per = trace.assign(seconds=secs).pivot_table(index="round", columns="node", values="seconds", aggfunc="sum",
                                                     sort=False)
        per["total"] = per.sum(axis=1)
        body = (figs.div(fig, 120 + 34 * trace["node"].nunique())
                + table(["round", *(f"{c} (s)" for c in per.columns)], per.reset_index().itertuples(index=False)))
    return section("timeline", "Timeline", "Every node run of the loop as a bar, coloured by round, and the seconds "
                   "each node took per round.", body)


def _history_section(run: AlignRun, figs: Figures) -> str:
    sentence = ("Per round: the scorer's reward of the sampled rows (the mean, and the means of the high and low "
                "halves the loss contrasts), the loss and its other metrics (align_*; its 'reward high/low' are the "
                "loss's implicit rewards, log π/π_ref, not the scorer's), and, with the classifier reward, the "
                "scorer's AUC on held-out real rows against the samples (0.5: it cannot tell them apart).")
    if not run.history:
        return section("alignment", "Alignment", sentence, note("No round has a recorded history."))
    return section("alignment", "Alignment", sentence,
                   history_body(history_frame(run.history, ["round"]), "round", figs))


def align_page(path: str | Path, plotly_js: str, live: str = "") -> str:
    """The page of a `tabline align` output folder, as HTML text (`tabline.view.render_view` calls this)."""
    run, figs = read_align(path), Figures()
    warnings = ([f"{run.damaged_lines} line(s) of trace.jsonl were cut short and are skipped."]
                if run.damaged_lines else []) + [f"Missing: {m}." for m in run.missing]
    body = "".join(f'<p class="missing">{esc(w)}</p>' for w in warnings)
    body += _loop_section(run, figs) + _timeline_section(run, figs) + _history_section(run, figs)
    return page(f"tabline align {run.report.get('run_id') or '?'} — {run.path.name}", _status(run),
                ALIGN_SECTIONS, body, plotly_js, live)


__all__ = ["ALIGN_SECTIONS", "AlignRun", "align_page", "alignment_section", "heading", "history_body",
           "history_frame", "is_align_folder", "read_align"]
