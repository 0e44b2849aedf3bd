"""GS1 Barcode Syntax Tests ("linters"): pure checks of one component of an AI value.

A linter takes the component text and returns None when it is valid, or the GS1 linter error
name saying what is wrong: the GS1_LINTER_* code without its prefix, e.g. "ILLEGAL_DAY".
LINTERS maps the names used in the Syntax Dictionary to these functions.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date

Linter = Callable[[str], str | None]

# Character sets, in the order GS1 weighs them for the alphanumeric check character pair.
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
CSET39 = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CSET32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CSET64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# ISO 3166-1 numeric and alpha-2 country codes, ISO 4217 numeric currency codes, and the
# AIDC media types, as listed by the GS1 Barcode Syntax Tests reference implementation.
ISO3166_NUMERIC = frozenset(
    """
    004 008 010 012 016 020 024 028 031 032 036 040 044 048 050 051 052 056 060 064 068 070 072
    074 076 084 086 090 092 096 100 104 108 112 116 120 124 132 136 140 144 148 152 156 158 162
    166 170 174 175 178 180 184 188 191 192 196 203 204 208 212 214 218 222 226 231 232 233 234
    238 239 242 246 248 250 254 258 260 262 266 268 270 275 276 288 292 296 300 304 308 312 316
    320 324 328 332 334 336 340 344 348 352 356 360 364 368 372 376 380 384 388 392 398 400 404
    408 410 414 417 418 422 426 428 430 434 438 440 442 446 450 454 458 462 466 470 474 478 480
    484 492 496 498 499 500 504 508 512 516 520 524 528 531 533 534 535 540 548 554 558 562 566
    570 574 578 580 581 583 584 585 586 591 598 600 604 608 612 616 620 624 626 630 634 638 642
    643 646 652 654 659 660 662 663 666 670 674 678 682 686 688 690 694 702 703 704 705 706 710
    716 724 728 729 732 740 744 748 752 756 760 762 764 768 772 776 780 784 788 792 795 796 798
    800 804 807 818 826 831 832 833 834 840 850 854 858 860 862 876 882 887 894
    """.split()
)
ISO3166_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
    """.split()
)
ISO4217_NUMERIC = frozenset(
    """
    008 012 032 036 044 048 050 051 052 060 064 068 072 084 090 096 104 108 116 124 132 136 144
    152 156 170 174 188 191 192 203 208 214 222 230 232 238 242 262 270 292 320 324 328 332 340
    344 348 352 356 360 364 368 376 388 392 398 400 404 408 410 414 417 418 422 426 430 434 446
    454 458 462 480 484 496 498 504 512 516 524 532 533 548 554 558 566 578 586 590 598 600 604
    608 634 643 646 654 682 690 694 702 704 706 710 728 748 752 756 760 764 776 780 784 788 800
    807 818 826 834 840 858 860 882 886 901 925 927 928 929 930 931 932 933 934 936 938 940 941
    943 944 946 947 948 949 950 951 952 953 955 956 957 958 959 960 961 962 963 964 965 967 968
    969 970 971 972 973 975 976 977 978 979 980 981 984 985 986 990 994 997 999
    """.split()
)
AIDC_MEDIA_TYPES = frozenset(f"{n:02d}" for n in (*range(1, 11), *range(80, 100)))
IMPORTER_INDEX = frozenset("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")

GCP_MIN_LENGTH = 4
_HEX = frozenset("0123456789ABCDEFabcdef")
IBAN_LENGTHS = range(11, 35)

# Linters named by the dictionary that this module does not enforce (coupon codes and UN/ECE
# package types: nothing a cold-chain gateway reads); values there get the character-set check.
UNCHECKED_LINTERS = frozenset({"couponcode", "couponposoffer", "packagetype"})


class LintError(ValueError):
    """A value rejected by a linter; code is the GS1 linter error name."""

    def __init__(self, code: str) -> None:
        super().__init__(code.lower().replace("_", " "))
        self.code = code


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit for a GTIN/SSCC/GLN body given without its check digit."""
    if not _digits(digits):
        raise ValueError(f"check digit needs digits only, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def century_year(yy: int, today: date) -> int:
    """Four-digit year for YY by the GS1 rule: within -49..+50 years of today's year."""
    century, current = divmod(today.year, 100)
    if yy - current >= 51:
        century -= 1
    elif yy - current <= -50:
        century += 1
    return century * 100 + yy


def _year_month_day(
    text: str, year_digits: int, zero_day: bool, today: date | None
) -> tuple[int, int, int]:
    size = year_digits + 4
    if len(text) != size:
        raise LintError("DATE_TOO_SHORT" if len(text) < size else "DATE_TOO_LONG")
    if not _digits(text):
        raise LintError("NON_DIGIT_CHARACTER")
    year, month, day = int(text[:-4]), int(text[-4:-2]), int(text[-2:])
    if year_digits == 2:
        year = century_year(year, today or date.today())
    if not 1 <= month <= 12:
        raise LintError("ILLEGAL_MONTH")
    last = calendar.monthrange(year, month)[1]
    if day == 0 and zero_day:
        day = last
    if not 1 <= day <= last:
        raise LintError("ILLEGAL_DAY")
    return year, month, day


def decode_date(
    text: str, *, year_digits: int = 2, zero_day: bool = False, today: date | None = None
) -> date:
    """Calendar date of a YYMMDD/YYYYMMDD value; with zero_day, DD=00 means the last day."""
    year, month, day = _year_month_day(text, year_digits, zero_day, today)
    if year < 1:
        raise LintError("ILLEGAL_YEAR")
    return date(year, month, day)


def _date_linter(year_digits: int, zero_day: bool) -> Linter:
    def linter(text: str) -> str | None:
        try:
            _year_month_day(text, year_digits, zero_day, None)
        except LintError as error:
            return error.code
        return None

    return linter


def _range_linter(unit: str, highest: int) -> Linter:
    def linter(text: str) -> str | None:
        if len(text) != 2:
            return f"{unit}_TOO_SHORT" if len(text) < 2 else f"{unit}_TOO_LONG"
        if not _digits(text):
            return "NON_DIGIT_CHARACTER"
        return f"ILLEGAL_{unit}" if int(text) > highest else None

    return linter


lint_hh = _range_linter("HOUR", 23)
lint_mi = _range_linter("MINUTE", 59)
lint_ss = _range_linter("SECOND", 59)


def lint_hhmi(text: str) -> str | None:
    """Time of day HHMI."""
    if len(text) != 4:
        return "HOUR_WITH_MINUTE_TOO_SHORT" if len(text) < 4 else "HOUR_WITH_MINUTE_TOO_LONG"
    return lint_hh(text[:2]) or lint_mi(text[2:])


def _first_outside(text: str, allowed: str | frozenset[str], code: str) -> str | None:
    return code if any(c not in allowed for c in text) else None


def lint_numeric(text: str) -> str | None:
    """Digits only (type N)."""
    return _first_outside(text, "0123456789", "NON_DIGIT_CHARACTER")


def lint_cset82(text: str) -> str | None:
    """GS1 AI encodable character set 82 (type X)."""
    return _first_outside(text, CSET82, "INVALID_CSET82_CHARACTER")


def lint_cset39(text: str) -> str | None:
    """GS1 AI encodable character set 39 (type Y)."""
    return _first_outside(text, CSET39, "INVALID_CSET39_CHARACTER")


def lint_cset64(text: str) -> str | None:
    """File-safe base64 with optional "=" padding (type Z)."""
    body = text.rstrip("=")
    pads = len(text) - len(body)
    if pads > 2 or (pads and len(text) % 3):
        return "INVALID_CSET64_PADDING"
    return _first_outside(body, CSET64, "INVALID_CSET64_CHARACTER")


def lint_csum(text: str) -> str | None:
    """Ends in a valid GS1 mod-10 check digit."""
    if not text:
        return "TOO_SHORT_FOR_CHECK_DIGIT"
    if not _digits(text):
        return "NON_DIGIT_CHARACTER"
    return None if check_digit(text[:-1]) == text[-1] else "INCORRECT_CHECK_DIGIT"


def _primes(count: int) -> tuple[int, ...]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found):
            found.append(candidate)
        candidate += 1
    return tuple(found)


_CHECK_PAIR_PRIMES = _primes(97)


def lint_csumalpha(text: str) -> str | None:
    """Ends in a valid GS1 alphanumeric check character pair (GMN, MUDI)."""
    if len(text) < 2:
        return "TOO_SHORT_FOR_CHECK_PAIR"
    body, pair = text[:-2], text[-2:]
    if len(body) > len(_CHECK_PAIR_PRIMES):
        return "TOO_LONG_FOR_CHECK_PAIR_IMPLEMENTATION"
    if error := _first_outside(body, CSET82, "INVALID_CSET82_CHARACTER"):
        return error
    if error := _first_outside(pair, CSET32, "INVALID_CSET32_CHARACTER"):
        return error
    weights = reversed(_CHECK_PAIR_PRIMES[: len(body)])
    total = sum(CSET82.index(c) * w for c, w in zip(body, weights, strict=True)) % 1021
    return None if pair == CSET32[total >> 5] + CSET32[total & 31] else "INCORRECT_CHECK_PAIR"


def lint_gcppos1(text: str) -> str | None:
    """Starts with a plausible GS1 Company Prefix (no GCP register lookup)."""
    if len(text) < GCP_MIN_LENGTH:
        return "TOO_SHORT_FOR_GCP"
    return None if _digits(text[:GCP_MIN_LENGTH]) else "INVALID_GCP_PREFIX"


def lint_gcppos2(text: str) -> str | None:
    """GS1 Company Prefix starting at the second character (after an indicator digit)."""
    return lint_gcppos1(text[1:])


def _member(allowed: frozenset[str], code: str) -> Linter:
    return lambda text: None if text in allowed else code


def _predicate(test: Callable[[str], bool], code: str) -> Linter:
    return lambda text: None if test(text) else code


def lint_pieceoftotal(text: str) -> str | None:
    """Piece number then total count, equal halves, 1 <= piece <= total."""
    if len(text) % 2:
        return "INVALID_LENGTH_FOR_PIECE_OF_TOTAL"
    if not _digits(text):
        return "NON_DIGIT_CHARACTER"
    piece, total = int(text[: len(text) // 2]), int(text[len(text) // 2 :])
    if piece == 0:
        return "ZERO_PIECE_NUMBER"
    if total == 0:
        return "ZERO_TOTAL_PIECES"
    return "PIECE_NUMBER_EXCEEDS_TOTAL" if piece > total else None


def lint_posinseqslash(text: str) -> str | None:
    """ "<position>/<end>" with 1 <= position <= end."""
    position, slash, end = text.partition("/")
    if not (slash and _digits(position) and _digits(end)) or "0" in (position[0], end[0]):
        return "POSITION_IN_SEQUENCE_MALFORMED"
    return "POSITION_EXCEEDS_END" if int(position) > int(end) else None


def lint_pcenc(text: str) -> str | None:
    """Every "%" starts a two-hex-digit percent escape."""
    for index, char in enumerate(text):
        escape = text[index + 1 : index + 3]
        if char == "%" and (len(escape) < 2 or any(c not in _HEX for c in escape)):
            return "INVALID_PERCENT_SEQUENCE"
    return None


def _coordinate(unit: str, highest: int) -> Linter:
    def linter(text: str) -> str | None:
        if len(text) != 10:
            return f"{unit}_INVALID_LENGTH"
        if not _digits(text):
            return "NON_DIGIT_CHARACTER"
        return f"INVALID_{unit}" if int(text) > highest else None

    return linter


def lint_iban(text: str) -> str | None:
    """International Bank Account Number: country code, length and mod-97 check."""
    if len(text) < 4:
        return "IBAN_TOO_SHORT"
    if text[:2] not in ISO3166_ALPHA2:
        return "ILLEGAL_IBAN_COUNTRY_CODE"
    if len(text) not in IBAN_LENGTHS:
        return "IBAN_TOO_LONG" if len(text) > IBAN_LENGTHS[-1] else "IBAN_TOO_SHORT"
    if any(not (c.isascii() and (c.isdigit() or c.isupper())) for c in text):
        return "INVALID_IBAN_CHARACTER"
    rearranged = text[4:] + text[:4]
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return None if number % 97 == 1 else "INCORRECT_IBAN_CHECKSUM"


CSET_LINTERS: dict[str, Linter] = {
    "N": lint_numeric,
    "X": lint_cset82,
    "Y": lint_cset39,
    "Z": lint_cset64,
}

LINTERS: dict[str, Linter] = {
    "csum": lint_csum,
    "csumalpha": lint_csumalpha,
    "gcppos1": lint_gcppos1,
    "gcppos2": lint_gcppos2,
    "yymmdd": _date_linter(2, zero_day=False),
    "yymmd0": _date_linter(2, zero_day=True),
    "yyyymmdd": _date_linter(4, zero_day=False),
    "yyyymmd0": _date_linter(4, zero_day=True),
    "hh": lint_hh,
    "mi": lint_mi,
    "ss": lint_ss,
    "hhmi": lint_hhmi,
    "iso3166": _member(ISO3166_NUMERIC, "NOT_ISO3166"),
    "iso3166999": _member(ISO3166_NUMERIC | {"999"}, "NOT_ISO3166_OR_999"),
    "iso3166alpha2": _member(ISO3166_ALPHA2, "NOT_ISO3166_ALPHA2"),
    "iso4217": _member(ISO4217_NUMERIC, "NOT_ISO4217"),
    "iso5218": _member(frozenset("0129"), "INVALID_BIOLOGICAL_SEX_CODE"),
    "mediatype": _member(AIDC_MEDIA_TYPES, "INVALID_MEDIA_TYPE"),
    "importeridx": _member(IMPORTER_INDEX, "INVALID_IMPORT_IDX_CHARACTER"),
    "winding": _member(frozenset("019"), "INVALID_WINDING_DIRECTION"),
    "yesno": _member(frozenset("01"), "NOT_ZERO_OR_ONE"),
    "zero": _member(frozenset({"0"}), "NOT_ZERO"),
    "nonzero": _predicate(lambda t: t.strip("0") != "", "ILLEGAL_ZERO_VALUE"),
    "nozeroprefix": _predicate(lambda t: t == "0" or not t.startswith("0"), "ILLEGAL_ZERO_PREFIX"),
    "hasnondigit": _predicate(lambda t: not _digits(t), "REQUIRES_NON_DIGIT_CHARACTER"),
    "hyphen": _predicate(lambda t: set(t) <= {"-"}, "NOT_HYPHEN"),
    "pieceoftotal": lint_pieceoftotal,
    "posinseqslash": lint_posinseqslash,
    "pcenc": lint_pcenc,
    "latitude": _coordinate("LATITUDE", 1800000000),
    "longitude": _coordinate("LONGITUDE", 3600000000),
    "iban": lint_iban,
}


def lint(name: str, text: str) -> str | None:
    """Run the named GS1 linter (or character set N/X/Y/Z); None if valid, else the error name."""
    if name in UNCHECKED_LINTERS:
        return None
    linter = CSET_LINTERS.get(name) or LINTERS.get(name)
    if linter is None:
        raise ValueError(f"unknown GS1 linter {name!r}")
    return linter(text)
