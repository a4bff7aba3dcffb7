"""`tabline view`: the page of small real runs, opened from file:// in a real headless Chromium."""
from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.agents.team import Team
from tabline.cli import app
from tabline.line.assembly import AssemblyLine
from tabline.view import REJECTED_ROWS_CAP, SECTIONS, write_view

CHROMIUM = shutil.which("chromium")
browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)")
HEADINGS = [title for _, title, _ in SECTIONS]
PWN = ["<script>document.title='pwned'</script>", "\"><img src=x onerror=\"document.title='pwned'\">",
       "</script><script>document.title='pwned'</script>"]


def tiny_team(**extra) -> Team:
    return Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100, **extra)


@pytest.fixture(scope="module")
def run_dir(diamonds, tmp_path_factory) -> Path:
    """A finished run with several arms (DATE tree arms on the target give the bandit a choice)."""
    path = tmp_path_factory.mktemp("view") / "run"
    AssemblyLine(tiny_team(target="cut", coordinator={"partitions": "tree"})).run(300, path, data=diamonds.head(400), progress=False)
    return path


@pytest.fixture(scope="module")
def injected_run(diamonds, tmp_path_factory) -> Path:
    """A run on a table whose column names and cells are HTML and script that would retitle the page."""
    data = diamonds.head(400).rename(columns={"cut": PWN[0], "color": PWN[1], "clarity": PWN[2]})
    data[PWN[0]] = [PWN[i % 3] for i in range(len(data))]
    path = tmp_path_factory.mktemp("view") / "run"
    AssemblyLine(tiny_team()).run(200, path, data=data, progress=False)
    return path


def chromium(*args: str) -> subprocess.CompletedProcess:
    # --virtual-time-budget lets the page's scripts (plotly) finish before the DOM is dumped
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


def png_colours(path: Path) -> int:
    """How many distinct bytes the PNG's decompressed pixel rows hold (a blank page holds a handful)."""
    data, idat, pos = path.read_bytes(), b"", 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


@browser
def test_page_of_a_real_run_renders_offline(run_dir, tmp_path):
    # Run
    page = write_view(run_dir)
    dom = chromium("--dump-dom", page.as_uri())
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri())
    # Assert
    assert page == run_dir / "view.html" and "https://" not in re.sub(r"<script>.*?</script>", "", page.read_text(), flags=re.S)
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in dom.stdout
    assert dom.stdout.count('class="main-svg"') >= 10  # plotly drew the figures
    assert "pulls per arm" in dom.stdout and "has one arm" not in dom.stdout  # the bandit had arms to draw
    assert "Uncaught" not in dom.stderr  # no script error in the console
    assert "rows match; page 1 of" in dom.stdout  # the rejected-rows table was drawn by its script
    assert shot.stat().st_size > 50_000 and png_colours(shot) > 50


@browser
def test_injected_names_and_cells_render_as_text(injected_run):
    # Run
    page = write_view(injected_run)
    dom = chromium("--dump-dom", page.as_uri()).stdout
    # Assert
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert title.startswith("tabline run") and "pwned" not in title
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text
    assert dom.count('class="main-svg"') >= 5


def test_truncated_trace_is_named_on_the_page(run_dir, tmp_path):
    # Setup: a copy whose last trace line a kill cut short
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    text = (cut / "trace.jsonl").read_text()
    (cut / "trace.jsonl").write_text(text[:-30])
    # Run
    result = CliRunner().invoke(app, ["view", str(cut), "-o", str(tmp_path / "p.html")])
    # Assert
    assert result.exit_code == 0, result.output
    assert "1 line(s) of trace.jsonl were cut short" in (tmp_path / "p.html").read_text()


@pytest.mark.parametrize("remove, says", [
    pytest.param(["report.json", "data.csv", "rejected.csv"], "report.json (the run has not finished", id="running"),
    pytest.param(["report.json", "data.csv", "rejected.csv", "trace.jsonl"], "trace.jsonl (no node has run yet", id="no-trace"),
])
def test_unfinished_run_page_says_what_is_missing(run_dir, tmp_path, remove, says):
    # Setup
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for name in remove:
        (copy / name).unlink()
    # Run
    html_text = write_view(copy).read_text()
    # Assert
    assert says in html_text and all(f"<h2>{h}</h2>" in html_text for h in HEADINGS)


@browser
def test_running_run_says_it_is_not_finished_and_shows_what_the_batches_hold(run_dir, tmp_path):
    # Setup: a copy that looks like a run still going: no report.json or data.csv, the last trace line half-written
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.json").unlink()
    (copy / "data.csv").unlink()
    lines = (copy / "trace.jsonl").read_text().splitlines(keepends=True)
    (copy / "trace.jsonl").write_text("".join(lines[:-1]) + lines[-1][:len(lines[-1]) // 2])
    accepted = sum(len(pd.read_parquet(f)) for f in (copy / "batches").glob("accepted-*.parquet"))
    rejected = len(pd.read_csv(copy / "rejected.csv"))
    # Run
    result = CliRunner().invoke(app, ["view", str(copy)])
    dom = chromium("--dump-dom", (copy / "view.html").as_uri())
    # Assert
    assert result.exit_code == 0, result.output
    status = html.unescape(re.search(r"<header>.*?<p>(.*?)</p>", dom.stdout, re.S).group(1))
    assert status.startswith("not finished (no report.json")
    assert status.endswith(f"so far the run folder holds {accepted:,} accepted rows and {rejected:,} rejected rows")
    assert accepted > 0 and "1 line(s) of trace.jsonl were cut short" in dom.stdout
    assert all(f"<h2>{h}</h2>" in dom.stdout for h in HEADINGS) and "Uncaught" not in dom.stderr


def test_folder_with_only_an_empty_trace_says_what_is_missing(tmp_path):
    # Setup
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "trace.jsonl").write_text("")
    # Run
    result = CliRunner().invoke(app, ["view", str(folder)])
    # Assert
    missing = re.findall(r'<p class="missing">Missing: (.*?) \(', html.unescape((folder / "view.html").read_text()))
    assert result.exit_code == 0, result.output
    assert missing == ["run.json", "report.json", "plan.json", "graph.mmd", "events in trace.jsonl", "accepted rows",
                       "real.parquet"]


def test_empty_trace_page_says_so(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "trace.jsonl").write_text("")
    assert "it is empty: no node has finished yet" in write_view(copy).read_text()


@pytest.mark.parametrize("make", [pytest.param(lambda p: p.mkdir(), id="empty-folder"),
                                  pytest.param(lambda p: None, id="no-folder")])
def test_folder_without_a_run_is_one_line_error(tmp_path, make):
    folder = tmp_path / "nothing"
    make(folder)
    result = CliRunner().invoke(app, ["view", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "error:" in result.output
    assert "give a folder made by `tabline run`, `tabline demo` or `tabline align`" in result.output


def test_rejected_rows_embedded_are_capped(run_dir, tmp_path, monkeypatch):
    # Setup: a cap below the run's rejected rows
    import tabline.view.sections as sections

    monkeypatch.setattr(sections, "REJECTED_ROWS_CAP", 10)
    rejected = pd.read_csv(run_dir / "rejected.csv")
    # Run
    html_text = write_view(run_dir, tmp_path / "p.html").read_text()
    # Assert
    assert len(rejected) > 10 and REJECTED_ROWS_CAP == 2000
    assert f"The first 10 are embedded; {len(rejected) - 10:,} more are left out" in html_text
