"""The page's sections about what the line made and what it cost: fidelity (real vs synthetic per column)
and LLM calls (alignment is in `tabline.view.alignment`).

Example:
    >>> import pandas as pd
    >>> kind_of(pd.Series([1.5, 2.0])), kind_of(pd.Series(["a", "b"])), kind_of(pd.Series(["2020-01-02", "2021-03-04"]))
    ('number', 'category', 'datetime')
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tabline.agents.profile import dependence_matrix
from tabline.eval.report import headline_rows
from tabline.schema import Schema
from tabline.view.html import Figures, esc, label, note, section, table
from tabline.view.run_data import RunData

TOP_CATEGORIES = 20   # categories drawn per column; the rest are one "other" bar
MAX_COLUMNS = 60      # columns plotted; a wider table says how many are left out
HEATMAP_COLUMNS = 30  # pairs grow as d²: past 30 columns the cells are too small to read
HEATMAP_ROWS = 5000   # rows per side the association is measured on (sampled, seeded)
FAILED_ANSWERS_CAP = 50


def kind_of(column: pd.Series) -> str:
    """'number', 'datetime' or 'category': how a column is drawn."""
    if pd.api.types.is_bool_dtype(column):
        return "category"
    if pd.api.types.is_numeric_dtype(column):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    values = column.dropna()
    if len(values) and values.map(lambda v: isinstance(v, str)).all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if parsed.notna().mean() > 0.95 and values.str.contains(r"\d{4}|\d+[-/]\d+").mean() > 0.95:
            return "datetime"
    return "category"


def _as(kind: str, column: pd.Series) -> pd.Series:
    if kind == "number":
        return pd.to_numeric(column, errors="coerce")
    if kind == "datetime":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.to_datetime(column, errors="coerce", format="mixed")
    return column.astype(object).where(column.notna(), "(blank)").astype(str)


def _column_figure(name: str, real: pd.Series, synthetic: pd.Series) -> go.Figure:
    kind = kind_of(real)
    real, synthetic = _as(kind, real).dropna(), _as(kind, synthetic).dropna()
    fig = go.Figure()
    if kind in ("number", "datetime"):
        for values, who, colour in ((real, "real", "#868e96"), (synthetic, "synthetic", "#4c6ef5")):
            fig.add_trace(go.Histogram(x=values, name=who, histnorm="probability", opacity=0.6,
                                       marker_color=colour, nbinsx=40, bingroup="1"))  # same bins for both
        fig.update_layout(barmode="overlay")
    else:
        counts = real.value_counts()
        top = list(counts.index[:TOP_CATEGORIES])
        for values, who, colour in ((real, "real", "#868e96"), (synthetic, "synthetic", "#4c6ef5")):
            shares = values.where(values.isin(top), "other").value_counts(normalize=True)
            keys = top + (["other"] if len(counts) > TOP_CATEGORIES or "other" in shares.index else [])
            fig.add_trace(go.Bar(x=[label(k) for k in keys], y=[shares.get(k, 0.0) for k in keys], name=who,
                                 marker_color=colour))
        fig.update_layout(barmode="group")
    fig.update_layout(title=f"{label(name)} ({kind})", yaxis_title="share of rows", showlegend=True,
                      legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    return fig


def association_matrices(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema | None = None,
                         *, rows: int = HEATMAP_ROWS, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise dependence (`tabline.agents.profile.dependence_matrix`: Cramér's V, correlation ratio,
    |Spearman|, each in [0, 1]) of the real and of the synthetic rows over the same columns. -> two (d, d)

    Example:
        >>> a = [i % 10 for i in range(100)]
        >>> real = pd.DataFrame({"a": a, "b": [2 * v for v in a]})
        >>> fake = pd.DataFrame({"a": a, "b": [9 - v for v in a]})   # still monotone: the same strength
        >>> r, s = association_matrices(real, fake)
        >>> round(float(r.loc["a", "b"]), 3), round(float(s.loc["a", "b"]), 3)
        (1.0, 1.0)
    """
    columns = [c for c in real.columns if c in synthetic.columns]
    schema = schema if schema is not None else Schema.infer(real[columns])
    sample = lambda f: f[columns].sample(n=min(rows, len(f)), random_state=seed)  # noqa: E731
    real_dep = dependence_matrix(sample(real), schema)
    return real_dep, dependence_matrix(sample(synthetic), schema).loc[real_dep.index, real_dep.columns]


def _association_figure(real_dep: pd.DataFrame, syn_dep: pd.DataFrame) -> tuple[go.Figure, str]:
    diff = syn_dep - real_dep                                                        # (d, d)
    names = [label(c) for c in diff.columns]
    hover = [[f"{names[i]} × {names[j]}<br>real {real_dep.iat[i, j]:.2f}, synthetic {syn_dep.iat[i, j]:.2f}"
              for j in range(len(names))] for i in range(len(names))]
    fig = go.Figure(go.Heatmap(z=diff.to_numpy().round(3), x=names, y=names, zmin=-1, zmax=1, zmid=0,
                               colorscale="RdBu_r", text=hover, hoverinfo="text",
                               colorbar=dict(title="synthetic − real")))
    fig.update_layout(title="association difference per column pair (0 = same strength as in the real rows)",
                      yaxis_autorange="reversed")
    upper = np.triu_indices(len(names), 1)
    gaps = np.abs(diff.to_numpy()[upper])
    if not len(gaps):
        return fig, "Fewer than two columns can be compared, so there is no pair to show."
    worst = int(np.argmax(gaps))
    i, j = upper[0][worst], upper[1][worst]
    return fig, (f"Mean |difference| over {len(gaps):,} pairs: {gaps.mean():.3f}. Largest: {diff.columns[i]} × "
                 f"{diff.columns[j]} (real {real_dep.iat[i, j]:.2f}, synthetic {syn_dep.iat[i, j]:.2f}).")


def _evaluation_table(run: RunData) -> str:
    report = run.evaluation
    if report is None:
        return note("No evaluation of this run against held-out real rows: run `tabline evaluate TRAIN RUN/data.csv "
                    "--holdout HOLDOUT --json RUN/evaluation.json` and reopen the page to see it here.")
    rows = [(metric, "—" if syn is None else f"{syn:.3f}", "—" if ceiling is None else f"{ceiling:.3f}", ideal)
            for metric, syn, ceiling, ideal in headline_rows(report)]
    n = report.rows
    return ("<h3>Evaluation beside the real ceiling</h3>"
            f"<p>From {esc(run.evaluation_file.name if run.evaluation_file else 'the report')}: train "
            f"{n.get('train', '?')} rows, synthetic {n.get('synthetic', '?')}, held-out real {n.get('holdout', '?')}. "
            "The ceiling is what real rows the generator never saw score against the training rows.</p>"
            + table(["metric", "synthetic", "real holdout (ceiling)", "ideal"], rows))


def fidelity_section(run: RunData, figs: Figures) -> str:
    sentence = ("How the synthetic rows compare with the real rows the line learnt from: scores beside the real "
                "ceiling, column pairs, and each column's distribution — the closer, the more faithful.")
    if run.real is None or run.synthetic is None:
        what = "the real rows (real.parquet)" if run.real is None else "any accepted rows yet"
        return section("fidelity", "Fidelity", sentence,
                       _evaluation_table(run) + note(f"Nothing to compare: the run folder has no {what}."))
    columns = [c for c in run.real.columns if c in run.synthetic.columns]
    body = f"<p>{len(run.real):,} real rows, {len(run.synthetic):,} synthetic rows.</p>" + _evaluation_table(run)
    real_dep, syn_dep = association_matrices(run.real, run.synthetic, run.schema)
    shown = list(real_dep.index[:HEATMAP_COLUMNS])
    fig, summary = _association_figure(real_dep.loc[shown, shown], syn_dep.loc[shown, shown])
    body += "<h3>Column pairs</h3>" + f"<p>{esc(summary)}</p>" + figs.div(fig, 120 + 22 * max(len(shown), 8))
    if len(real_dep) > HEATMAP_COLUMNS:
        body += note(f"The first {HEATMAP_COLUMNS} of {len(real_dep)} columns are drawn in the heatmap.")
    parts = [figs.div(_column_figure(c, run.real[c], run.synthetic[c]), 300) for c in columns[:MAX_COLUMNS]]
    body += "<h3>Columns</h3>" + '<div class="grid">' + "".join(parts) + "</div>"
    if len(columns) > MAX_COLUMNS:
        body += note(f"The first {MAX_COLUMNS} columns are drawn; {len(columns) - MAX_COLUMNS} more are left out.")
    return section("fidelity", "Fidelity", sentence, body)


_USAGE = ("calls", "cached", "input_tokens", "output_tokens", "retries", "repairs", "failures")


def llm_section(run: RunData, figs: Figures) -> str:
    sentence = "What each agent asked of a language model: calls, tokens, cost, retries and failed answers."
    trace = run.trace
    usage = []
    if "tokens" in trace:
        for agent, cell in zip(trace["agent"], trace["tokens"]):
            if isinstance(cell, dict):
                usage.append({"agent": agent, **{k: cell.get(k) or 0 for k in _USAGE},
                              "cost_usd": cell.get("cost_usd")})
    if not usage and not run.llm_calls:
        return section("llm", "LLM calls", sentence, "<p>This run made no LLM calls (every agent ran offline).</p>")
    parts = []
    if usage:
        per = pd.DataFrame(usage).groupby("agent", sort=False).agg(
            {**{k: "sum" for k in _USAGE}, "cost_usd": lambda s: s.sum() if s.notna().any() else None}).reset_index()
        parts.append(table(["agent", *(k.replace("_", " ") for k in _USAGE), "cost (USD)"], per.itertuples(index=False),
                           cls="llm-usage"))
        fig = go.Figure([go.Bar(name=k.replace("_", " "), x=[label(a) for a in per["agent"]], y=per[k])
                         for k in ("input_tokens", "output_tokens")])
        fig.update_layout(barmode="stack", title="tokens per agent", yaxis_title="tokens")
        parts.append(figs.div(fig, 300))
    # A worker's or judge's record is one request with its re-asks; it failed when rows got no valid answer
    # (``failed_rows``). The coordinator's records say ``ok`` instead.
    failed = [c for c in run.llm_calls if c.get("ok") is False or c.get("failed_rows")]
    parts.append(f"<p>{len(run.llm_calls):,} requests recorded in the run folder (re-asks included in each), "
                 f"{len(failed):,} failed; the raw answers of each failed request:</p>")
    for call in failed[:FAILED_ANSWERS_CAP]:
        raw = call.get("raw") or []
        rows = f"rows {call['failed_rows']} got no valid value, " if call.get("failed_rows") else ""
        parts.append(f'<details class="failed-call"><summary>{esc(call["agent"])}, batch {esc(call["batch"])}: '
                     f"{esc(rows)}{esc(len(raw) if isinstance(raw, list) else 1)} answer(s); last error: "
                     f"{esc(str((call.get('errors') or [''])[-1])[:300])}</summary>"
                     f"<pre>{esc(chr(10).join(map(str, raw if isinstance(raw, list) else [raw])))}</pre></details>")
    if len(failed) > FAILED_ANSWERS_CAP:
        parts.append(note(f"{len(failed) - FAILED_ANSWERS_CAP} more failed calls are left out (see batches/llm-*.json)."))
    return section("llm", "LLM calls", sentence, "".join(parts))
