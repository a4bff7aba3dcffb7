import os

import pandas as pd
import pytest

from tabline.errors import InvalidTableError, TablineError
from tabline.io import atomic_directory, read_table, write_csv_atomic, write_parquet_atomic
from tabline.tables import TableNote


@pytest.mark.parametrize("writer, name", [
    pytest.param(write_csv_atomic, "out.csv", id="csv"),
    pytest.param(write_parquet_atomic, "out.parquet", id="parquet"),
])
def test_a_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch, writer, name):
    dest = tmp_path / name
    writer(pd.DataFrame({"a": [1, 2, 3]}), dest)
    before = dest.read_bytes()

    def crash(fd):
        raise KeyboardInterrupt  # the new bytes are in the temporary file, not yet moved into place

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        writer(pd.DataFrame({"a": range(1000)}), dest)
    assert dest.read_bytes() == before
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


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


def test_notes_become_warnings_when_no_list_is_given(tmp_path):
    (tmp_path / "d.csv").write_text("a;b\n1;2\n")
    with pytest.warns(TableNote, match="d.csv: fields are separated by semicolons"):
        assert read_table(tmp_path / "d.csv").columns.tolist() == ["a", "b"]


def test_blank_and_whitespace_lines_are_not_rows(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n\n1,2\n   \n3,4\n\n")
    notes = []
    assert read_table(tmp_path / "d.csv", notes=notes).values.tolist() == [[1, 2], [3, 4]] and notes == []


# ---------------------------------------------------------------------- found by the fuzz suite
@pytest.mark.parametrize("frame", [
    # one column: pandas writes a missing value as a "" line, which the reader took for a blank line
    pytest.param(pd.DataFrame({"a": [1.5, None, None, 2.0]}), id="one-column-with-missing"),
    # pandas quotes only "\n": a bare "\r" in a value or a name split the line for every reader
    pytest.param(pd.DataFrame({"a\rb": ["x\ry", "z"], "c": [1, 2]}), id="carriage-return"),
    # a name holding a semicolon, unquoted, split the header in two at semicolons: the file read as 2 columns
    pytest.param(pd.DataFrame({";": [0, 0, 1]}), id="semicolon-in-a-name"),
    pytest.param(pd.DataFrame({"a|b": [1, 2], "c\td": ["x", "y"]}), id="pipe-and-tab-in-names"),
])
def test_written_csv_reads_back_the_same(tmp_path, frame):
    write_csv_atomic(frame, tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv", notes=[])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
