"""The page's sections about the line itself: the line, the QC funnel, the timeline and the bandit. Each
function takes the `RunData` and the page's `Figures` and returns one section's HTML.

Example:
    >>> import pandas as pd
    >>> wall_seconds(pd.DataFrame({"ts": [10.0, 12.0], "seconds": [1.0, 0.5]}))
    3.0
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tabline.view.html import Figures, esc, label, note, row_table, section, table
from tabline.view.run_data import RunData

REJECTED_ROWS_CAP = 2000  # rows embedded in the page's rejected-rows table; the rest are counted, not shown
_NO_TRACE = "The trace has no events yet, so there is nothing to show here."


def wall_seconds(trace: pd.DataFrame) -> float:
    """Seconds from the start of the first node run to the end of the last (``ts`` is written at the end)."""
    return float(trace["ts"].max() - (trace["ts"] - trace["seconds"].fillna(0)).min())


def line_section(run: RunData, figs: Figures) -> str:
    parts = []
    if run.nodes is not None:
        nodes = run.nodes.copy()
        wall = max(wall_seconds(run.trace), 1e-9)
        nodes["share"] = (nodes["seconds"] / wall).map(lambda s: f"{s:.0%}")
        parts.append(table(["station", "agent", "runs", "rows in", "rows out", "rejected", "seconds", "share of wall time"],
                           nodes[["node", "agent", "runs", "rows_in", "rows_out", "rejected", "seconds", "share"]]
                           .itertuples(index=False)))
        fig = go.Figure(go.Bar(x=[label(n) for n in nodes["node"]], y=nodes["seconds"],
                               text=nodes["share"], textposition="outside", marker_color="#4c6ef5"))
        fig.update_layout(title=f"seconds per station (wall time {wall:.1f} s)", yaxis_title="seconds")
        parts.append(figs.div(fig, 320))
    else:
        parts.append(note(_NO_TRACE))
    if run.plan:
        parts.append("<h3>The coordinator's plan</h3>")
        if run.plan.get("rationale"):
            parts.append(f"<p>Why: {esc(run.plan['rationale'])}</p>")
        parts.append(table(["component", "worker", "columns", "depends on", "why"],
                           [(c.get("name"), c.get("worker"), ", ".join(map(str, c.get("columns", []))),
                             ", ".join(map(str, c.get("depends_on", []))), c.get("rationale", ""))
                            for c in run.plan.get("components", [])]))
        parts.append(table(["arm", "rule", "real rows"],
                           [(a.get("name"), a.get("rule") or "(every row)", a.get("size"))
                            for a in run.plan.get("arms", [])]))
    if run.graph:
        parts.append("<h3>The graph (mermaid text, graph.mmd)</h3>"
                     f"<pre>{esc(run.graph)}</pre><p>Paste it into any mermaid viewer to draw it.</p>")
    return section("line", "The line",
                   "Each station of the assembly line in the order rows pass through it: how many rows went in "
                   "and out, and how much of the run's time it took.", "".join(parts))


def _rejections(trace: pd.DataFrame) -> pd.DataFrame:
    """(stage, reason, rows) summed over the trace's ``rejected`` cells."""
    rows = []
    for cell in trace.get("rejected", pd.Series(dtype=object)):
        if isinstance(cell, dict):
            for stage, reasons in cell.items():
                for reason, n in (reasons or {}).items():
                    rows.append((stage, reason, n))
    frame = pd.DataFrame(rows, columns=["stage", "reason", "rows"])
    return frame.groupby(["stage", "reason"], sort=False, as_index=False)["rows"].sum()


def qc_section(run: RunData, figs: Figures) -> str:
    parts = []
    trace = run.trace
    if len(trace) and run.nodes is not None:
        bandit = trace[trace.node == "bandit"]
        generated = int(run.report["generated"]) if run.report else int(bandit["rows_in"].fillna(0).sum())
        rejecting = [n for n in run.nodes.loc[run.nodes.rejected > 0, "node"]]
        steps = [("generated", generated)] + [(f"after {n}", int(run.nodes.loc[run.nodes.node == n, "rows_out"].sum()))
                                              for n in rejecting]
        accepted = int(run.report["accepted"]) if run.report else int(bandit["rows_out"].fillna(0).sum())
        steps.append(("accepted", accepted))
        fig = go.Figure(go.Funnel(y=[label(s) for s, _ in steps], x=[n for _, n in steps], textinfo="value+percent initial"))
        fig.update_layout(title="rows left after each stage")
        parts.append(figs.div(fig, 300))
        rej = _rejections(trace)
        if len(rej):
            fig = go.Figure([go.Bar(name=label(reason), x=[label(s) for s in g["stage"]], y=g["rows"])
                             for reason, g in rej.groupby("reason", sort=False)])
            fig.update_layout(barmode="stack", title="rejected rows by stage and reason", yaxis_title="rows")
            parts.append(figs.div(fig, 320))
            parts.append(table(["stage", "reason", "rows"], rej.itertuples(index=False)))
        else:
            parts.append(note("No row was rejected."))
    else:
        parts.append(note(_NO_TRACE))
    parts.append(_rejected_rows(run.rejected))
    return section("qc", "QC funnel",
                   "How many generated rows survived each quality-control stage, which stage rejected rows and "
                   "why, and the rejected rows themselves.", "".join(parts))


def _rejected_rows(rejected: pd.DataFrame) -> str:
    if rejected.empty:
        return note("No rejected rows were written.")
    shown = rejected.head(REJECTED_ROWS_CAP)
    first = [c for c in ("stage", "reason") if c in shown.columns]
    cols = first + [c for c in shown.columns if c not in first]
    rows = shown[cols].astype(object).where(shown[cols].notna(), "").astype(str).values.tolist()
    left = len(rejected) - len(shown)
    head = (f"<h3>Rejected rows ({len(rejected):,})</h3>"
            + (note(f"The first {len(shown):,} are embedded; {left:,} more are left out of the page "
                    f"(all are in rejected.csv).") if left else ""))
    return head + row_table([str(c) for c in cols], rows, "search rejected rows (any cell, e.g. a reason)")


def timeline_section(run: RunData, figs: Figures) -> str:
    trace = run.trace
    if trace.empty:
        body = note(_NO_TRACE)
    else:
        t0 = (trace["ts"] - trace["seconds"].fillna(0)).min()
        start = trace["ts"] - trace["seconds"].fillna(0) - t0
        fig = go.Figure()
        for node in trace["node"].drop_duplicates():
            m = trace["node"] == node
            fig.add_trace(go.Bar(
                name=label(node), y=[label(node)] * int(m.sum()), x=trace.loc[m, "seconds"].fillna(0), base=start[m],
                orientation="h", customdata=trace.loc[m, "batch_id"],
                hovertemplate="batch %{customdata}: %{base:.3f} s + %{x:.3f} s<extra>" + label(node) + "</extra>"))
        fig.update_layout(barmode="overlay", title="node runs over the run's wall-clock time",
                          xaxis_title="seconds since the first node started",
                          yaxis=dict(autorange="reversed"))
        body = figs.div(fig, 120 + 34 * trace["node"].nunique())
    return section("timeline", "Timeline",
                   "Every node run as a bar along the run's clock, one lane per node: where the time goes, batch "
                   "after batch.", body)


def bandit_section(run: RunData, figs: Figures) -> str:
    trace = run.trace
    bandit = trace[trace.node == "bandit"].copy() if len(trace) else pd.DataFrame()
    n_arms = len(run.plan.get("arms", [])) if run.plan else (bandit["arm"].nunique() if len(bandit) else 0)
    if bandit.empty:
        body = note("No batch has reached the bandit yet.")
    elif n_arms <= 1:
        arm = bandit["arm"].iloc[0]
        body = (f"<p>This line has one arm ({esc(arm)}), so the bandit had nothing to choose: every batch drew "
                f"from it. Its yield was {bandit['rows_out'].sum() / max(1, bandit['rows_in'].sum()):.0%}.</p>")
    else:
        bandit["reward"] = bandit["detail"].map(lambda d: d.get("reward") if isinstance(d, dict) else None)
        pulls, reward = go.Figure(), go.Figure()
        for arm, g in bandit.groupby("arm", sort=False):
            pulls.add_trace(go.Scatter(x=g["batch_id"], y=list(range(1, len(g) + 1)), name=label(arm), mode="lines+markers"))
            reward.add_trace(go.Scatter(x=g["batch_id"], y=g["reward"], name=label(arm), mode="markers"))
        pulls.update_layout(title="pulls per arm (cumulative)", xaxis_title="batch", yaxis_title="pulls")
        reward.update_layout(title="reward of each pull", xaxis_title="batch", yaxis_title="reward")
        arms = run.arms
        yields = go.Figure(go.Bar(x=[label(a) for a in arms["arm"]], y=arms["yield"], marker_color="#12b886"))
        yields.update_layout(title="yield per arm (accepted / generated)", yaxis_tickformat=".0%")
        body = ('<div class="grid">' + figs.div(pulls, 320) + figs.div(reward, 320) + figs.div(yields, 320) + "</div>"
                + table(["arm", "batches", "generated", "accepted", "yield", "mean reward"],
                        arms[["arm", "batches", "generated", "accepted", "yield", "mean_reward"]].itertuples(index=False)))
    return section("bandit", "Bandit",
                   "Which part of the real data (arm) the bandit chose to generate from, batch by batch, and how "
                   "well each arm's rows passed QC.", body)
