"""The official GS1 EPCIS 2.0 JSON schema, applied to a document (jsonschema, draft 7)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

# jsonschema checks these formats only when rfc3339-validator and rfc3986-validator are
# installed; without them every date-time and URI would pass unseen.
REQUIRED_FORMATS = frozenset({"date-time", "uri"})


def validate(doc: Mapping[str, Any], schema_path: str | Path) -> list[str]:
    """Problems of `doc` against the GS1 EPCIS JSON schema at `schema_path`; [] when valid."""
    validator = _validator(str(Path(schema_path).resolve()))
    errors = sorted(validator.iter_errors(doc), key=lambda error: list(map(str, error.path)))
    return [_message(best_match([error])) for error in errors]


@lru_cache(maxsize=4)
def _validator(schema_path: str) -> Draft7Validator:
    checker = Draft7Validator.FORMAT_CHECKER
    missing = REQUIRED_FORMATS - set(checker.checkers)
    if missing:
        raise RuntimeError(
            f"jsonschema cannot check the formats {sorted(missing)}: install the cloud extra "
            "(rfc3339-validator, rfc3986-validator)"
        )
    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=checker)


def _message(error: ValidationError) -> str:
    where = "/".join(map(str, error.absolute_path)) or "(document)"
    return f"{where}: {error.message}"
