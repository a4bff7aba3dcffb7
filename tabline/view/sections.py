"""The page's sections about the line itself: the line, the QC funnel, the timeline and the bandit. Each
function takes the `RunData` and the page's `Figures` and returns one section's HTML.

Example:
    >>> import pandas as pd
    >>> wall_seconds(pd.DataFrame({"ts": [10.0, 12.0], "seconds": [1.0, 0.5]}))
    3.0
"""
from __future__ import annotations

import re

import networkx as nx
import pandas as pd
import plotly.graph_objects as go

from tabline.view.html import Figures, esc, label, note, row_table, section, table
from tabline.view.run_data import RunData

REJECTED_ROWS_CAP = 2000  # rows embedded in the page's rejected-rows table; the rest are counted, not shown
_NO_TRACE = "The trace has no events yet, so there is nothing to show here."


def wall_seconds(trace: pd.DataFrame) -> float:
    """Seconds from the start of the first node run to the end of the last (``ts`` is written at the end)."""
    return float(trace["ts"].max() - (trace["ts"] - trace["seconds"].fillna(0)).min())


_EDGE = re.compile(r"^\s*(\S+)\s+(-[-.].*?>)\s+([^\s;]+);?\s*$")


def graph_edges(mermaid_text: str) -> list[tuple[str, str, bool]]:
    """(source, target, conditional) for every edge of a LangGraph mermaid diagram (``-.->`` is conditional).

    Example:
        >>> graph_edges(chr(10).join(["graph TD;", "a --> b;", "b -.-> a;", "b -. &nbsp;done&nbsp; .-> __end__;"]))
        [('a', 'b', False), ('b', 'a', True), ('b', '__end__', True)]
    """
    return [(m.group(1), m.group(3), "." in m.group(2))
            for m in map(_EDGE.match, mermaid_text.splitlines()) if m]


def graph_levels(edges: list[tuple[str, str, bool]]) -> dict[str, int]:
    """Each node's precedence level: the longest path to it from ``__start__`` once the loop-back edges (the
    ones that close a cycle on a depth-first walk from the start) are left out.

    Example:
        >>> graph_levels([("__start__", "a", False), ("a", "b", False), ("a", "c", False), ("b", "d", False),
        ...               ("c", "d", False), ("d", "a", True), ("d", "__end__", True)])
        {'__start__': 0, 'a': 1, 'b': 2, 'c': 2, 'd': 3, '__end__': 4}
    """
    graph = nx.DiGraph((a, b) for a, b, _ in edges)
    start = "__start__" if "__start__" in graph else next(iter(graph), None)
    if start is None:
        return {}
    back, state = [], {}  # state: 1 while a node is on the walk's stack, 2 once finished
    stack = [(start, iter(graph.successors(start)))]
    state[start] = 1
    while stack:
        node, successors = stack[-1]
        nxt = next(successors, None)
        if nxt is None:
            state[node] = 2
            stack.pop()
        elif state.get(nxt) == 1:
            back.append((node, nxt))  # it returns to a node still being walked: the loop
        elif nxt not in state:
            state[nxt] = 1
            stack.append((nxt, iter(graph.successors(nxt))))
    dag = graph.copy()
    dag.remove_edges_from(back)
    while not nx.is_directed_acyclic_graph(dag):  # a cycle the walk did not reach from the start
        dag.remove_edge(*nx.find_cycle(dag)[-1][:2])
    levels: dict[str, int] = {}
    for node in nx.topological_sort(dag):
        levels[node] = max((levels[p] + 1 for p in dag.predecessors(node)), default=0)
    return levels


def mermaid_details(graph: str) -> str:
    """The graph's mermaid text (graph.mmd), folded: the drawing above shows it; this is for other tools."""
    return (f"<details><summary>The graph as mermaid text (graph.mmd) — paste it into any mermaid viewer"
            f"</summary><pre>{esc(graph)}</pre></details>")


def node_totals(trace: pd.DataFrame) -> pd.DataFrame | None:
    """Per node, in first-run order: agent, runs, rows in, rows out (blank when never given), seconds.

    Example:
        >>> t = pd.DataFrame({"node": ["a", "b", "a"], "agent": ["x", "y", "x"], "rows_in": [None, 2, None],
        ...                   "rows_out": [2, 1, 3], "seconds": [0.5, 0.25, 0.5]})
        >>> node_totals(t).values.tolist()
        [['a', 'x', 2, nan, 5, 1.0], ['b', 'y', 1, 2.0, 1, 0.25]]
    """
    if trace.empty:
        return None
    t = trace.reindex(columns=["node", "agent", "rows_in", "rows_out", "seconds"])
    total = lambda c: pd.to_numeric(c, errors="coerce").sum(min_count=1)  # noqa: E731 — never given stays blank
    return t.groupby("node", sort=False).agg(agent=("agent", "first"), runs=("node", "size"), rows_in=("rows_in", total),
                                             rows_out=("rows_out", total), seconds=("seconds", "sum")).reset_index()


def _rows(n: float | None) -> str:
    return "—" if n is None or pd.isna(n) else f"{int(n):,}"


def graph_figure(graph: str | None, nodes: pd.DataFrame | None, wall: float, loop: str = "next batch") -> go.Figure | None:
    """The graph of ``graph`` (mermaid text) drawn as boxes by precedence level, each with its totals from
    ``nodes`` (columns node, agent, runs, rows_in, rows_out, seconds); the loop-back edge labelled ``loop``.
    None when the text holds no edge."""
    edges = graph_edges(graph or "")
    levels = graph_levels(edges)
    if not levels:
        return None
    stats = {} if nodes is None else {r.node: r for r in nodes.itertuples(index=False)}
    by_level: dict[int, list[str]] = {}
    for node, level in levels.items():
        by_level.setdefault(level, []).append(node)
    pos = {n: (level, i - (len(ns) - 1) / 2) for level, ns in by_level.items() for i, n in enumerate(ns)}
    w, h = 0.42, 0.3  # half-width and half-height of a box, in data units (one level = 1)
    low = min(y for _, y in pos.values()) - h - 0.2  # the loop back runs under every box
    fig = go.Figure()
    for a, b, conditional in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        colour, dash = ("#868e96", "dash") if conditional else ("#495057", "solid")
        if x1 > x0:  # forward: an arrow from box edge to box edge
            fig.add_annotation(x=x1 - w, y=y1, ax=x0 + w, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=2, arrowwidth=1.2, arrowcolor=colour, text="")
        else:  # the loop back: a line under the boxes
            fig.add_shape(type="path", path=f"M {x0},{y0 - h} L {x0},{low} L {x1},{low} L {x1},{y1 - h}",
                          line=dict(color=colour, dash=dash, width=1.2))
            fig.add_annotation(x=(x0 + x1) / 2, y=low - 0.08, text=loop,
                               showarrow=False, font=dict(size=11, color=colour))
    for node, (x, y) in pos.items():
        r = stats.get(node)
        name = node.strip("_") if node.startswith("__") else node
        name = name if len(name) <= 14 else name[:13] + "…"  # the box's width; the hover has the whole name
        fig.add_shape(type="rect", x0=x - w, x1=x + w, y0=y - h, y1=y + h, line=dict(color="#4c6ef5"),
                      fillcolor="#e9ecef" if r is None else "#dbe4ff", layer="below")
        text = f"<b>{label(name)}</b>" + ("" if r is None else f"<br>{_rows(r.rows_in)} → {_rows(r.rows_out)}<br>"
                                                               f"{r.seconds:.2f} s · {r.seconds / wall:.0%}")
        fig.add_annotation(x=x, y=y, text=text, showarrow=False, font=dict(size=10),
                           hovertext=label(node) if r is None else f"{label(node)} ({label(r.agent)}): {r.runs} runs; "
                           "rows in → out; seconds · share of the time")
    fig.update_layout(title="the graph: nodes in precedence order (dashed: conditional edges)", showlegend=False,
                      plot_bgcolor="#fff", margin=dict(l=10, r=10),
                      xaxis=dict(visible=False, range=[-0.5, max(levels.values()) + 0.5]),
                      yaxis=dict(visible=False, range=[low - 0.25, max(y for _, y in pos.values()) + h + 0.1]))
    return fig


def line_section(run: RunData, figs: Figures) -> str:
    parts = []
    drawn = graph_figure(run.graph, run.nodes, max(wall_seconds(run.trace), 1e-9) if len(run.trace) else 1.0)
    if drawn is not None:
        parts.append(figs.div(drawn, 120 + 80 * max(1, max(drawn.layout.yaxis.range) - min(drawn.layout.yaxis.range))))
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
        parts.append(mermaid_details(run.graph))
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
