"""CSV read strictly and written safely: what the master-data import and the reports share.

Reading follows RFC 4180 with the strictness of a regulated import: every record reports the
line it began on; a field may not run over a line break (no master-data value has one, and an
unbalanced quote otherwise swallows the lines after it silently); NUL and other control
characters are refused; any malformation stops the read with the line where the record began.

Writing neutralises cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, and tab
or carriage return before them): such a text cell gets a leading apostrophe (OWASP's
advice), so `=HYPERLINK(...)` from an import is shown, never followed. Numbers are written
as numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FIELD_LIMIT = 64 * 1024  # characters; a master-data cell is short


class CsvError(ValueError):
    """A malformed file: `line` is where the offending record began."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def _control(text: str) -> str | None:
    """The first control character in `text` other than tab, CR and LF, if any."""
    for char in text:
        if char < " " and char not in "\t\r\n" or char == "\x7f":
            return char
    return None


def records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line the record began on, its fields) for every record of the file, header included.

    `lines` are the file's lines with their endings (a text file object will do)."""
    numbered = _checked_lines(lines)
    reader = csv.reader(numbered, strict=True)
    begins = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvError(begins, _explain(str(exc), begins, reader.line_num)) from exc
        if reader.line_num > begins:
            raise CsvError(
                begins,
                f"a quoted field that begins on this line runs on to line {reader.line_num}: "
                "a quote is not closed (fields may not hold line breaks)",
            )
        too_long = next((n for n, f in enumerate(fields, 1) if len(f) > FIELD_LIMIT), None)
        if too_long is not None:
            raise CsvError(begins, f"field {too_long} is longer than {FIELD_LIMIT} characters")
        yield begins, fields
        begins = reader.line_num + 1


def _checked_lines(lines: Iterable[str]) -> Iterator[str]:
    for number, line in enumerate(lines, 1):
        char = _control(line)
        if char is not None:
            raise CsvError(number, f"control character U+{ord(char):04X} (only text is allowed)")
        yield line


def _explain(message: str, begins: int, now: int) -> str:
    if "field larger than field limit" in message:
        return f"a field is longer than {FIELD_LIMIT} characters"
    if "unexpected end of data" in message:
        return "a quote opened in this record is not closed before the end of the file"
    if now > begins:
        return (
            f"{message} (the record that begins here runs on to line {now}: a quote is not closed?)"
        )
    return message


def safe_cell(value: Any) -> Any:
    """A cell as written to CSV: text that a spreadsheet would run as a formula is quoted
    with a leading apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through `safe_cell`."""
    return [safe_cell(v) for v in values]
