"""The report: JSON round trip (atomic write), flat summary, and the rendered table."""
from __future__ import annotations

import pytest
from rich.console import Console

from tabline.errors import InvalidArgumentError
from tabline.eval import Report


def test_json_round_trip_gives_the_same_report(real_report, tmp_path):
    path = tmp_path / "report.json"

    text = real_report.to_json(path)
    back = Report.from_json(path.read_text(encoding="utf-8"))

    assert back == real_report
    assert Report.from_json(text).summary() == real_report.summary()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # the temporary file was renamed away


def test_to_json_overwrites_an_existing_file(real_report, tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")

    real_report.to_json(path)

    assert Report.from_json(path.read_text(encoding="utf-8")) == real_report


@pytest.mark.parametrize("text", [pytest.param("not json", id="not-json"),
                                  pytest.param('{"rows": {}}', id="missing-fields"),
                                  pytest.param('{"surprise": 1}', id="unknown-field")])
def test_from_json_refuses_text_that_is_not_a_report(text):
    with pytest.raises(InvalidArgumentError, match="not a tabline evaluation report"):
        Report.from_json(text)


def test_summary_is_flat_and_always_has_every_key(real_report):
    without_target = real_report.model_copy(update={"utility": None})

    full, partial = real_report.summary(), without_target.summary()

    assert full.keys() == partial.keys()
    assert {"quality", "quality_ceiling", "c2st_auc", "c2st_auc_ceiling", "dcr_share", "tstr", "trtr"} <= full.keys()
    assert partial["tstr"] is None and full["tstr"] is not None
    assert all(v is None or isinstance(v, float) for v in full.values())


def test_render_shows_the_headline_numbers(real_report):
    console = Console(record=True, width=140)

    real_report.render(console)

    text = console.export_text()
    s = real_report.summary()
    for key in ("quality", "quality_ceiling", "c2st_auc", "c2st_auc_ceiling", "dcr_share", "tstr", "trtr"):
        assert f"{s[key]:.3f}" in text, key
    assert "C2ST" in text and "ceiling" in text
