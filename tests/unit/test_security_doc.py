"""docs/security.md shows who may do what as the code says it: the table between its markers
is the one `coldchain-cloud access-table` prints from cloud/domain/access.py."""

from __future__ import annotations

import re

from click.testing import CliRunner

from cloud.domain.access import ACTIONS, ROLES, access_table
from cloud.entrypoints.cli import main
from tests.conftest import ROOT


def test_the_security_page_holds_the_generated_table() -> None:
    page = (ROOT / "docs" / "security.md").read_text()
    found = re.search(r"<!-- access-table:[^>]*-->\n(.*?)<!-- /access-table -->", page, re.S)
    assert found is not None, "docs/security.md lost its access-table markers"
    assert found.group(1) == access_table(), "regenerate: coldchain-cloud access-table"


def test_the_table_has_a_row_per_action_and_a_column_per_role() -> None:
    printed = CliRunner().invoke(main, ["access-table"]).output
    rows = printed.strip().splitlines()[2:]
    assert len(rows) == len(ACTIONS)
    for row, (name, action) in zip(rows, ACTIONS.items(), strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith(f"`{name}`")
        assert {r for r, c in zip(ROLES, cells[1:5], strict=True) if c == "yes"} == action.roles
