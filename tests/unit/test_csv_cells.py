"""Strict CSV records and formula-safe cells (cloud.domain.csv_cells)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.domain.csv_cells import FIELD_LIMIT, CsvError, records, safe_cell, safe_row


def lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()


def test_records_carry_the_line_they_began_on() -> None:
    text = 'a,b\r\n1,"x, y"\r\n\r\n2,z\n'
    assert list(records(lines(text))) == [
        (1, ["a", "b"]),
        (2, ["1", "x, y"]),
        (3, []),
        (4, ["2", "z"]),
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('a,b\n1,"open\n2,x\n3,"y"\n', 2, "quote is not closed"),
        ('a,b\n1,x\n2,"never closed\n', 3, "is not closed before the end"),
        ('a,b\n1,"multi\nline"\n', 2, "runs on to line 3"),
        ("a,b\n1,x\x00y\n", 2, "U+0000"),
        ("a,b\n1,x\x7fy\n", 2, "U+007F"),
        ('a,b\n1,"x"y\n', 2, "expected after"),
        ("a,b\n1," + "z" * (FIELD_LIMIT + 1) + "\n", 2, "longer than"),
        ("a,b\n1," + "z" * 200_000 + "\n", 2, "longer than"),
    ],
)
def test_malformed_records_name_where_they_began(text: str, line: int, words: str) -> None:
    with pytest.raises(CsvError) as refused:
        list(records(lines(text)))
    assert refused.value.line == line, refused.value
    assert words in refused.value.message, refused.value.message


@pytest.mark.parametrize(
    "cell", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


def test_other_cells_are_left_as_they_are() -> None:
    assert safe_row(["Insulin", -5.0, 3, None, "5-7 days", ""]) == [
        "Insulin",
        -5.0,
        3,
        None,
        "5-7 days",
        "",
    ]


@given(
    st.lists(
        st.lists(
            st.text(
                alphabet=st.characters(
                    min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="\x7f"
                ),
                max_size=12,
            ),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_what_csv_writes_on_one_line_reads_back(rows: list[list[str]]) -> None:
    """Any cells without line breaks or control characters round-trip through the writer."""
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    read = [fields for _, fields in records(lines(out.getvalue()))]
    assert read == rows
