import os

import pandas as pd
import pytest

from tabline.errors import InvalidTableError, TablineError
from tabline.io import atomic_directory, read_table, write_csv_atomic


def test_crash_while_writing_csv_keeps_the_old_file(tmp_path, monkeypatch):
    dest = tmp_path / "out.csv"
    write_csv_atomic(pd.DataFrame({"a": [1, 2, 3]}), dest)
    before = dest.read_bytes()

    def crash(fd):
        raise KeyboardInterrupt  # the new bytes are in the temporary file, not yet moved into place

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomic(pd.DataFrame({"a": range(1000)}), dest)
    assert dest.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.csv"]  # no temporary file left behind


def test_failed_directory_write_keeps_the_previous_directory(tmp_path):
    dest = tmp_path / "model"
    with atomic_directory(dest) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_directory(dest) as tmp:
            (tmp / "weights").write_text("v2-partial")
            raise RuntimeError("crash")
    assert (dest / "weights").read_text() == "v1"
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_successful_directory_write_replaces_the_old_one(tmp_path):
    dest = tmp_path / "model"
    for version in ("v1", "v2"):
        with atomic_directory(dest) as tmp:
            (tmp / "weights").write_text(version)
    assert (dest / "weights").read_text() == "v2" and sorted(os.listdir(tmp_path)) == ["model"]


def test_read_table_problems_name_the_file(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(InvalidTableError, match=r"h.csv has a header but no rows"):
        read_table(tmp_path / "h.csv")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TablineError, match=r"cannot drop \['c'\]"):
        read_table(tmp_path / "d.csv", drop=["c"])
    assert read_table(tmp_path / "d.csv", drop=["b"]).columns.tolist() == ["a"]
