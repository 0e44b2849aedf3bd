"""GS1 element strings from barcode scans (UDI on medical devices): AIs, FNC1, check digits, dates.

Every AI value is checked against the GS1 Barcode Syntax Dictionary (edge.gs1.dictionary) and
its linters (edge.gs1.lint). Accepted inputs, all giving an ElementString:
  parse_scan            scanner output with an AIM symbology identifier, GS (ASCII 29) = FNC1:
                        "]d2" "0109506000134352" "17271231" "10AB12" GS "21S-001"
  parse_bracketed       human-readable form "(01)09506000134352(17)271231(10)AB12(21)S-001"
  parse_ai_data         GS1 Syntax Engine normal form, "^" = FNC1: "^0109506000134352...^21S-001"
  parse_element_string  raw AI data with no symbology identifier (scanner without AIM prefix)
  parse_dl_uri          GS1 Digital Link URI "https://id.gs1.org/01/09506000134352/10/AB12"
Pairing rules (req/ex attributes) are only checked on request: ElementString.check_associations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from urllib.parse import unquote_plus

from edge.gs1.dictionary import AI_TABLE, DL_KEY_PATHS, DL_PRIMARY_KEYS, AIEntry
from edge.gs1.lint import CSET_LINTERS, LINTERS, LintError, decode_date, lint_csum

GS = "\x1d"
FNC1 = "^"

# Linters that make an AI a date, with (year digits, DD=00 allowed).
_DATE_LINTERS = {"yymmdd": (2, False), "yymmd0": (2, True), "yyyymmdd": (4, False)}
_URI_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)


class ElementStringError(ValueError):
    """Scan data or an element string that is not valid GS1 data; says which AI and why."""

    def __init__(self, message: str, *, ai: str | None = None, linter_error: str | None = None):
        super().__init__(f"AI ({ai}): {message}" if ai else message)
        self.ai = ai
        self.linter_error = linter_error


class Symbology(StrEnum):
    """The barcode a scan came from; values are the GS1 Syntax Engine's symbology names."""

    NONE = "NONE"
    GS1_128 = "GS1_128_CCA"
    DATABAR_EXPANDED = "DataBarExpanded"
    DATAMATRIX = "DM"
    QR = "QR"
    DOTCODE = "DotCode"
    EAN13 = "EAN13"
    EAN8 = "EAN8"


# AIM symbology identifier -> (symbology, carries GS1 AI data). "E0"/"E4" carry a bare GTIN,
# optionally followed by a composite component "|]e0..." of AI data.
SYMBOLOGY_IDENTIFIERS: dict[str, tuple[Symbology, bool]] = {
    "C1": (Symbology.GS1_128, True),
    "e0": (Symbology.DATABAR_EXPANDED, True),
    "d1": (Symbology.DATAMATRIX, False),
    "d2": (Symbology.DATAMATRIX, True),
    "Q1": (Symbology.QR, False),
    "Q3": (Symbology.QR, True),
    "J0": (Symbology.DOTCODE, False),
    "J1": (Symbology.DOTCODE, True),
    "E0": (Symbology.EAN13, False),
    "E4": (Symbology.EAN8, False),
}
_EAN_LENGTHS = {Symbology.EAN13: 13, Symbology.EAN8: 8}
_COMPOSITE = "|]e0"


@dataclass(frozen=True, slots=True)
class AIElement:
    """One Application Identifier and its value."""

    ai: str
    value: str

    @property
    def title(self) -> str:
        """The AI's data title from the dictionary, e.g. "USE BY or EXPIRY"."""
        return AI_TABLE[self.ai].title


@dataclass(frozen=True, slots=True)
class ElementString:
    """Validated GS1 AI elements from one scan or string, in the order given."""

    elements: tuple[AIElement, ...]
    symbology: Symbology = Symbology.NONE
    data_str: str = ""  # Syntax Engine normal form: "^..." AI data, else the plain text or URI

    def get(self, ai: str) -> str | None:
        """Value of the first element with this AI, or None."""
        return next((e.value for e in self.elements if e.ai == ai), None)

    def as_dict(self) -> dict[str, str]:
        """AI -> value (first occurrence of each AI)."""
        result: dict[str, str] = {}
        for element in self.elements:
            result.setdefault(element.ai, element.value)
        return result

    @property
    def gtin(self) -> str | None:
        """GTIN-14, AI (01)."""
        return self.get("01")

    @property
    def sscc(self) -> str | None:
        """SSCC-18, AI (00)."""
        return self.get("00")

    @property
    def lot(self) -> str | None:
        """Batch or lot number, AI (10)."""
        return self.get("10")

    @property
    def serial(self) -> str | None:
        """Serial number, AI (21)."""
        return self.get("21")

    @property
    def expiry(self) -> date | None:
        """Expiry (use-by) date, AI (17); DD=00 is the last day of the month."""
        return self.date_of("17")

    def date_of(self, ai: str, *, today: date | None = None) -> date | None:
        """Date in a date AI such as (11), (15), (17) or (7003); None if the AI is absent."""
        value = self.get(ai)
        if value is None:
            return None
        first = AI_TABLE[ai].components[0]
        kind = next((_DATE_LINTERS[n] for n in first.linters if n in _DATE_LINTERS), None)
        if kind is None:
            raise ElementStringError("is not a date", ai=ai)
        year_digits, zero_day = kind
        try:
            return decode_date(
                value[: year_digits + 4], year_digits=year_digits, zero_day=zero_day, today=today
            )
        except LintError as error:
            raise ElementStringError(
                f"{error} in {value!r}", ai=ai, linter_error=error.code
            ) from None

    def bracketed(self) -> str:
        """Human-readable form "(01)...(17)...", with data "(" escaped as "\\("."""
        return "".join(f"({e.ai})" + e.value.replace("(", "\\(") for e in self.elements)

    def unbracketed(self, separator: str = GS) -> str:
        """Element string as encoded, with separator after each variable-length AI but the last."""
        parts: list[str] = []
        for index, element in enumerate(self.elements):
            parts.append(element.ai + element.value)
            if AI_TABLE[element.ai].fnc1_required and index < len(self.elements) - 1:
                parts.append(separator)
        return "".join(parts)

    def check_associations(self) -> None:
        """Raise ElementStringError on repeated AIs that differ or broken req/ex pairing rules."""
        seen: dict[str, str] = {}
        for element in self.elements:
            if seen.setdefault(element.ai, element.value) != element.value:
                raise ElementStringError("appears twice with different values", ai=element.ai)
        for ai in sorted(seen):
            others = seen.keys() - {ai}
            for attribute in AI_TABLE[ai].attributes:
                key, _, rule = attribute.partition("=")
                if key == "ex" and any(_present(p, others) for p in rule.split(",")):
                    raise ElementStringError(f"must not appear together with {rule}", ai=ai)
                if key == "req" and not any(
                    all(_present(member, others) for member in group.split("+"))
                    for group in rule.split(",")
                ):
                    raise ElementStringError(f"requires one of {rule}", ai=ai)


def _present(pattern: str, ais: set[str]) -> bool:
    """Whether an AI matching a dictionary pattern such as "01", "31nn" or "394n" is present."""
    return any(
        len(ai) == len(pattern) and all(p in ("n", a) for p, a in zip(pattern, ai, strict=True))
        for ai in ais
    )


def _consume(entry: AIEntry, region: str) -> int:
    """Validate the value at the start of region against the AI's components; return its length."""
    if not region:
        raise ElementStringError("has no value", ai=entry.ai)
    position = 0
    for component in entry.components:
        size = min(len(region) - position, component.max_length)
        if component.optional and size == 0:
            continue
        if size < component.min_length:
            raise ElementStringError(
                f"value {region!r} is too short for format {entry.spec}", ai=entry.ai
            )
        text = region[position : position + size]
        checks = [("", CSET_LINTERS[component.cset])]
        checks += [(name, LINTERS[name]) for name in component.linters if name in LINTERS]
        for name, linter in checks:
            if code := linter(text):
                problem = code.lower().replace("_", " ")
                where = f" ({name} check)" if name else ""
                raise ElementStringError(
                    f"{problem} in {text!r}{where}", ai=entry.ai, linter_error=code
                )
        position += size
    return position


def _element(entry: AIEntry, value: str) -> AIElement:
    """Validate a complete value (bracketed or Digital Link input) for the AI."""
    if FNC1 in value:
        raise ElementStringError('value contains "^", which would be read as FNC1', ai=entry.ai)
    if not entry.min_length <= len(value) <= entry.max_length:
        allowed = f"{entry.min_length}..{entry.max_length}"
        if entry.min_length == entry.max_length:
            allowed = f"exactly {entry.max_length}"
        raise ElementStringError(
            f"value {value!r} has {len(value)} characters; format {entry.spec} allows {allowed}",
            ai=entry.ai,
        )
    if _consume(entry, value) != len(value):
        raise ElementStringError(f"value {value!r} is too long", ai=entry.ai)
    return AIElement(entry.ai, value)


def _entry_at(data: str, position: int) -> AIEntry:
    for size in (2, 3, 4):
        entry = AI_TABLE.get(data[position : position + size])
        if entry is not None:
            return entry
    raise ElementStringError(f"no known AI at the start of {data[position : position + 8]!r}")


def _split_ai_data(ai_data: str) -> tuple[AIElement, ...]:
    """Split FNC1-form AI data ("^" first, "^" = FNC1) into validated elements."""
    if not ai_data.startswith(FNC1):
        raise ElementStringError("AI data must start with FNC1 in first position")
    if len(ai_data) == 1:
        raise ElementStringError("AI data is empty")
    elements: list[AIElement] = []
    position = 1
    while position < len(ai_data):
        entry = _entry_at(ai_data, position)
        start = position + len(entry.ai)
        end = ai_data.find(FNC1, start)
        region = ai_data[start:] if end < 0 else ai_data[start:end]
        size = _consume(entry, region)
        elements.append(AIElement(entry.ai, region[:size]))
        position = start + size
        if position < len(ai_data):
            if ai_data[position] == FNC1:
                position += 1  # separator; also tolerated after a fixed-length AI
            elif entry.fnc1_required:
                raise ElementStringError(
                    f"value {region!r} is longer than format {entry.spec} allows "
                    "(FNC1/GS must end this AI's value)",
                    ai=entry.ai,
                )
    return tuple(elements)


def parse_ai_data(ai_data: str) -> ElementString:
    """Parse GS1 Syntax Engine AI data, "^" = FNC1 and first, e.g. "^0109506000134352^"."""
    return ElementString(_split_ai_data(ai_data), Symbology.NONE, ai_data)


def parse_element_string(data: str, separators: tuple[str, ...] = (GS,)) -> ElementString:
    """Parse raw AI data with no symbology identifier; any separator character acts as FNC1."""
    if FNC1 in data and FNC1 not in separators:
        raise ElementStringError('element string contains "^", which is not a GS1 character')
    ai_data = FNC1 + "".join(FNC1 if char in separators else char for char in data)
    return ElementString(_split_ai_data(ai_data), Symbology.NONE, ai_data)


def parse_bracketed(text: str) -> ElementString:
    """Parse the bracketed form "(01)...(10)..."; a data "(" is written "\\("."""
    elements: list[AIElement] = []
    position = 0
    while position < len(text):
        if text[position] != "(":
            raise ElementStringError(f"expected '(' to start an AI at {text[position:]!r}")
        close = text.find(")", position + 1)
        if close < 0:
            raise ElementStringError(f"AI not closed with ')' in {text[position:]!r}")
        entry = AI_TABLE.get(text[position + 1 : close])
        if entry is None:
            raise ElementStringError(f"unknown AI ({text[position + 1 : close]})")
        value, position = "", close + 1
        if position == len(text):
            raise ElementStringError("has no value", ai=entry.ai)
        while (bracket := text.find("(", position)) > 0 and text[bracket - 1] == "\\":
            value += text[position : bracket - 1] + "("
            position = bracket + 1
        end = len(text) if bracket < 0 else bracket
        value += text[position:end]
        position = end
        elements.append(_element(entry, value))
    if not elements:
        raise ElementStringError("no AIs given")
    ai_data = FNC1 + "".join(
        e.ai + e.value + (FNC1 if AI_TABLE[e.ai].fnc1_required and i < len(elements) - 1 else "")
        for i, e in enumerate(elements)
    )
    return ElementString(tuple(elements), Symbology.NONE, ai_data)


def _dl_element(ai: str, raw: str) -> AIElement:
    value = unquote_plus(raw)
    if ai == "01" and len(value) in (8, 12, 13):
        value = value.zfill(14)  # GTIN-8/12/13 are written as GTIN-14 in element strings
    return _element(AI_TABLE[ai], value)


def parse_dl_uri(uri: str) -> ElementString:
    """Parse a GS1 Digital Link URI: primary key and qualifiers in the path, AIs in the query."""
    if not uri or any(char not in _URI_CHARACTERS for char in uri):
        raise ElementStringError("Digital Link URI contains characters not allowed in a URI")
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        raise ElementStringError("Digital Link URI must start with http:// or https://")
    domain, slash, path = rest.partition("/")
    if not domain or not slash:
        raise ElementStringError("Digital Link URI needs a domain and a path")
    path, _, query = path.partition("#")[0].partition("?")
    segments = path.split("/")
    root = None
    for index in range(len(segments) - 2, -1, -2):  # /AI/value pairs, from the end
        if segments[index] not in AI_TABLE:
            break
        if segments[index] in DL_PRIMARY_KEYS:
            root = index
            break
    if root is None:
        raise ElementStringError(
            "Digital Link URI has no GS1 primary key (e.g. /01/<GTIN>) in its path"
        )
    path_ais = tuple(segments[root::2])
    if path_ais not in DL_KEY_PATHS:
        raise ElementStringError(
            f"Digital Link path AIs {'/'.join(path_ais)} are not a valid key-qualifier sequence"
        )
    elements = [
        _dl_element(ai, raw)
        for ai, raw in zip(segments[root::2], segments[root + 1 :: 2], strict=True)
    ]
    for parameter in query.split("&"):
        key, equals, raw = parameter.partition("=")
        if not equals or not (key.isascii() and key.isdigit()):
            continue  # parameters that are not AIs are not GS1 data
        entry = AI_TABLE.get(key)
        if entry is None:
            raise ElementStringError(f"unknown AI ({key}) in Digital Link query")
        if not entry.dl_data_attribute:
            raise ElementStringError("is not allowed as a Digital Link query attribute", ai=key)
        elements.append(_dl_element(key, raw))
    return ElementString(tuple(elements), Symbology.NONE, uri)


def _parse_ean(symbology: Symbology, body: str) -> ElementString:
    size = _EAN_LENGTHS[symbology]
    primary, rest = body[:size], body[size:]
    if len(primary) < size:
        raise ElementStringError(f"{symbology} scan data must be {size} digits, got {primary!r}")
    if rest and not rest.startswith(_COMPOSITE):
        raise ElementStringError(f"{symbology} scan data is longer than {size} digits")
    if code := lint_csum(primary):
        raise ElementStringError(f"{symbology} {primary!r}: {code.lower().replace('_', ' ')}")
    elements = (AIElement("01", primary.zfill(14)),)
    if not rest:
        return ElementString(elements, symbology, primary)
    composite = _ai_mode_data(rest[len(_COMPOSITE) :])
    return ElementString(elements + _split_ai_data(composite), symbology, f"{primary}|{composite}")


def _ai_mode_data(body: str) -> str:
    if FNC1 in body:
        raise ElementStringError('scan data contains "^", which is not a GS1 character')
    return FNC1 + body.replace(GS, FNC1)


def parse_scan(scan_data: str) -> ElementString:
    """Parse scanner output that starts with an AIM symbology identifier such as "]d2"."""
    if len(scan_data) < 3 or not scan_data.startswith("]"):
        raise ElementStringError(f"scan data must start with a symbology identifier: {scan_data!r}")
    known = SYMBOLOGY_IDENTIFIERS.get(scan_data[1:3])
    if known is None:
        raise ElementStringError(f"unsupported symbology identifier {scan_data[:3]!r}")
    symbology, gs1_data = known
    body = scan_data[3:]
    if symbology in _EAN_LENGTHS:
        return _parse_ean(symbology, body)
    if gs1_data:
        ai_data = _ai_mode_data(body)
        return ElementString(_split_ai_data(ai_data), symbology, ai_data)
    # Plain data: escape a leading "^" (after any backslashes) so it is not read as FNC1.
    data_str = "\\" + body if body.lstrip("\\").startswith(FNC1) else body
    if body[:8].lower().startswith(("https://", "http://")):
        return ElementString(parse_dl_uri(body).elements, symbology, data_str)
    return ElementString((), symbology, data_str)
