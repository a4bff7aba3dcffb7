"""`tabline view --serve` and the Fidelity section's column pairs and evaluation summary.

The live refresh is checked in a real headless Chromium: the served page polls the real server, the test
changes the run folder after the first poll, and the DOM Chromium dumps is the reloaded page's.
"""
from __future__ import annotations

import shutil
import subprocess
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.agents.team import Team
from tabline.cli import app
from tabline.eval.report import Comparison, DetectionScores, Report, ValidityScores
from tabline.line.assembly import AssemblyLine
from tabline.view import render_view
from tabline.view.data_sections import association_matrices
from tabline.view.serve import ViewServer, folder_version

CHROMIUM = shutil.which("chromium")
browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def run_dir(diamonds, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "run"
    team = Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100)
    AssemblyLine(team).run(200, path, data=diamonds.head(400), progress=False)
    return path


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_served_page_is_rendered_again_only_when_the_folder_changes(run_dir, tmp_path):
    # Setup
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    with ViewServer(folder, port=0, poll_seconds=0.5) as server:
        # Run
        first_version, (status, html) = get(server.url + "version")[1], get(server.url)
        _, again = get(server.url)
        renders_before = server.renders
        with open(folder / "trace.jsonl", "a", encoding="utf-8") as fh:  # the run writes one more event
            fh.write('{"ts": 1, "run_id": "x", "node": "sanity", "agent": "sanity", "seconds": 0.1}\n')
        second_version = get(server.url + "version")[1]
        _, after = get(server.url)
        missing_status, _ = get(server.url + "nothing-here")
    # Assert
    assert server.url.startswith("http://127.0.0.1:")
    assert status == 200 and "QC funnel" in html and again == html and renders_before == 1
    assert "fetch('/version'" in html and "live: refreshes" in html  # the served page polls …
    assert "fetch('/version'" not in render_view(folder)  # … the page on disk does not (it has no server)
    assert first_version != second_version == folder_version(folder) and server.renders == 2 and after != html
    assert missing_status == 404


@browser
def test_chromium_reloads_the_served_page_when_the_run_finishes(run_dir, tmp_path):
    # Setup: a run that has not finished yet (no report.json)
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    report = (folder / "report.json").read_text()
    (folder / "report.json").unlink()
    with ViewServer(folder, port=0, poll_seconds=0.5) as server:
        def finish_after_first_poll() -> None:
            deadline = time.monotonic() + 60
            while server.hits["/version"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            (folder / "report.json").write_text(report)

        writer = threading.Thread(target=finish_after_first_poll)
        writer.start()
        # Run
        dom = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
             "--virtual-time-budget=15000", "--dump-dom", server.url], capture_output=True, text=True, timeout=120)
        writer.join()
    # Assert: the page Chromium ended on is the reloaded one, which says the run finished
    assert server.hits["/version"] >= 2 and server.hits["/"] >= 2
    assert "accepted 200 of 200 requested rows" in dom.stdout and "not finished" not in dom.stdout
    assert "Uncaught" not in dom.stderr


def test_serve_on_a_port_in_use_is_a_clear_error(run_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["view", str(run_dir), "--serve", "--port", str(port)])
    assert result.exit_code != 0 and f"port {port}" in result.output and "Traceback" not in result.output


def test_serve_of_a_folder_without_a_run_fails_before_taking_a_port(tmp_path):
    result = CliRunner().invoke(app, ["view", str(tmp_path), "--serve", "--port", "0"])
    assert result.exit_code != 0 and "holds no run" in result.output


def test_association_matrices_see_a_pair_the_synthetic_rows_lost():
    # Setup: b follows a in the real rows; in the "synthetic" rows b is shuffled, c follows a in both
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    real = pd.DataFrame({"a": a, "b": a + rng.normal(scale=0.1, size=2000), "c": -a})
    fake = real.assign(b=rng.permutation(real["b"].to_numpy()))
    # Run
    r, s = association_matrices(real, fake)
    # Assert
    assert r.loc["a", "b"] > 0.95 and s.loc["a", "b"] < 0.1  # |Spearman ρ|: lost in the synthetic rows
    assert r.loc["a", "c"] == pytest.approx(1.0) and s.loc["a", "c"] == pytest.approx(1.0)  # kept


def test_fidelity_shows_the_column_pairs_and_the_evaluation_beside_its_ceiling(run_dir, tmp_path):
    # Setup: a hand-made evaluation report written where `tabline evaluate --json` would put it
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    without = render_view(folder)
    report = Report(rows={"train": 400, "synthetic": 200, "holdout": 100}, seed=0, max_rows=1000,
                    detection=Comparison[DetectionScores](synthetic=DetectionScores(auc=0.6123, rows_per_class=100, folds=5),
                                                          ceiling=DetectionScores(auc=0.5077, rows_per_class=100, folds=5)),
                    validity=Comparison[ValidityScores](synthetic=ValidityScores(rows=200, invalid_rows=0),
                                                        ceiling=ValidityScores(rows=100, invalid_rows=0)))
    report.to_json(folder / "evaluation.json")
    # Run
    html = render_view(folder)
    # Assert
    assert "Column pairs" in html and "Mean |difference| over" in html
    assert "No evaluation of this run" in without and "No evaluation of this run" not in html
    assert "<td>detection ROC-AUC (C2ST)</td><td>0.612</td><td>0.508</td>" in html


def test_ctrl_c_stops_the_server_and_writes_the_page(run_dir, tmp_path):
    # Setup
    import re
    import signal
    import sys

    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    (folder / "view.html").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "tabline.cli", "view", str(folder), "--serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Run: wait for the address line, fetch the page, then Ctrl-C
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", first).group(0)
        status, html = get(url)
        proc.send_signal(signal.SIGINT)
        code, rest = proc.wait(timeout=60), proc.stdout.read()
    finally:
        proc.kill()
    # Assert
    assert status == 200 and "QC funnel" in html
    assert code == 0 and "page →" in rest and "Traceback" not in rest
    assert (folder / "view.html").exists() and "fetch('/version'" not in (folder / "view.html").read_text()
