"""`tabline view`: one self-contained HTML page of a run — the line, the QC funnel, the timeline, the
bandit, fidelity per column, LLM calls and alignment — or of a `tabline align` folder: its loop, node runs by
round and per-round rewards, loss and held-out AUC (`tabline.view.alignment`). All JavaScript (plotly's, from
the installed `plotly` package) and CSS are inline, so the page opens from disk with the network off.

Example:
    >>> import tempfile
    >>> from tabline.demo import load_demo_table
    >>> from tabline.agents.team import Team
    >>> from tabline.line.assembly import AssemblyLine
    >>> team = Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100)
    >>> run_dir = tempfile.mkdtemp()
    >>> _ = AssemblyLine(team).run(100, run_dir, data=load_demo_table().head(300), progress=False)
    >>> page = write_view(run_dir)
    >>> page.name, "QC funnel" in page.read_text()
    ('view.html', True)
"""
from __future__ import annotations

from pathlib import Path

from tabline.io import write_text_atomic
from tabline.view.alignment import align_page, alignment_section, is_align_folder
from tabline.view.data_sections import fidelity_section, llm_section
from tabline.view.html import Figures, esc, page
from tabline.view.run_data import RunData, read_run, run_files_dir
from tabline.view.sections import REJECTED_ROWS_CAP, bandit_section, line_section, qc_section, timeline_section

__all__ = ["REJECTED_ROWS_CAP", "render_view", "write_view"]

SECTIONS = [("line", "The line", line_section), ("qc", "QC funnel", qc_section),
            ("timeline", "Timeline", timeline_section), ("bandit", "Bandit", bandit_section),
            ("fidelity", "Fidelity", fidelity_section), ("llm", "LLM calls", llm_section),
            ("alignment", "Alignment", alignment_section)]


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # the library is inlined in a <script>; a "</script" inside one of its strings would end it early
    return get_plotlyjs().replace("</script", "<\\/script")


def _status(run: RunData) -> str:
    r, m = run.report, run.manifest
    if r:
        return (f"accepted {r['accepted']:,} of {r['n_requested']:,} requested rows from {r['generated']:,} generated "
                f"(yield {r['yield']:.0%}) in {r['batches']} batch{'' if r['batches'] == 1 else 'es'}, {r['seconds']:.1f} s; stopped: {r['stop_reason']}")
    held = f"{len(run.synthetic):,} accepted rows" if run.synthetic is not None else "no accepted rows"
    return (f"not finished (no report.json; run.json says status '{m.get('status', 'unknown')}'): so far the run "
            f"folder holds {held} and {len(run.rejected):,} rejected rows")


def render_view(run_dir: str | Path, *, live: str = "") -> str:
    """The page of the run in ``run_dir`` (a line run, a folder made by `tabline align`, or a `tabline dream`
    run, each with its own page), as HTML text; ``live`` is the served page's refresh script
    (`tabline.view.serve`)."""
    if is_align_folder(run_dir):
        return align_page(run_dir, _plotly_js(), live)
    if _kind(run_dir) == "dream":
        from tabline.view.dream import render_dream_view

        return render_dream_view(run_dir, live)
    run = read_run(run_dir)
    figs = Figures()
    warnings = []
    if run.damaged_lines:
        warnings.append(f"{run.damaged_lines} line(s) of trace.jsonl were cut short (the run was killed while "
                        "writing them) and are skipped.")
    warnings += [f"Missing: {m}." for m in run.missing]
    body = "".join(f'<p class="missing">{esc(w)}</p>' for w in warnings)
    body += "".join(build(run, figs) for _, _, build in SECTIONS)
    run_id = run.manifest.get("run_id") or (run.report or {}).get("run_id") or "?"
    return page(f"tabline run {run_id} — {run.path.name}", _status(run),
                [(a, t) for a, t, _ in SECTIONS], body, _plotly_js(), live)


def _kind(run_dir: str | Path) -> str:
    import json

    try:
        return json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8")).get("kind", "line")
    except (OSError, ValueError, AttributeError):
        return "line"


def write_view(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the page (atomically) to ``output``, by default ``RUN_DIR/view.html``; return its path."""
    html_text = render_view(run_dir)
    target = Path(output) if output else run_files_dir(run_dir) / "view.html"
    write_text_atomic(html_text, target)
    return target

