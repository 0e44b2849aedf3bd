"""Two-person release of holds and the release for shipment, as pure rules."""

from __future__ import annotations

import pytest

from cloud.domain.holds import (
    DispositionError,
    Signatories,
    decide,
    hold_reasons,
    parse_two_person_reasons,
    reason_kinds,
    two_person_because,
)
from cloud.domain.holds import ExcursionFacts as Facts
from cloud.domain.holds import ProductFacts as Product
from cloud.domain.release_gate import missing_release

FREEZING = hold_reasons(
    Facts(kind="freezing", level="alarm", rule="alarm freezing", suppressed=False),
    Product(freeze_sensitive=True, budget_min=60),
    -5,
)
ALARM = "alarm-level excursion (alarm high)"


def test_the_kinds_of_a_holds_reasons_come_from_the_texts_the_rules_write() -> None:
    assert reason_kinds("; ".join(FREEZING)) == {"freezing", "budget"}
    assert reason_kinds(ALARM) == {"alarm"}
    assert reason_kinds("monitoring gap longer than allowed: conditions unknown") == {
        "unknown_conditions"
    }


def test_who_needs_two_people() -> None:
    freezing = "; ".join(FREEZING)
    assert two_person_because("standard", freezing, frozenset({"freezing"})) == [
        "hold reason freezing"
    ]
    assert two_person_because("standard", ALARM, frozenset({"freezing"})) == []
    assert two_person_because("high", ALARM, frozenset()) == ["product risk class high"]
    assert parse_two_person_reasons(None) == {"freezing"}
    assert parse_two_person_reasons("") == frozenset()
    assert parse_two_person_reasons(" alarm, budget ") == {"alarm", "budget"}
    with pytest.raises(ValueError, match="melting is not one of"):
        parse_two_person_reasons("freezing,melting")


def test_a_two_person_hold_is_reviewed_then_decided_by_somebody_else() -> None:
    fresh = Signatories(two_person=True, signer="ann")
    assert decide("open", "review", None, fresh) == ("open", "review")
    with pytest.raises(DispositionError, match="nobody has reviewed it yet"):
        decide("open", "release", None, fresh)
    reviewed = Signatories(two_person=True, reviewed_by="ann", signer="ann")
    with pytest.raises(DispositionError, match="ann reviewed this hold; .* different QA"):
        decide("open", "release", None, reviewed)
    with pytest.raises(DispositionError, match="reviewed by ann already"):
        decide("open", "review", None, reviewed)
    other = Signatories(two_person=True, reviewed_by="ann", signer="bob")
    assert decide("open", "release", None, other) == ("released", "approval")
    assert decide("investigating", "reject", "rejection", other) == ("rejected", "rejection")
    with pytest.raises(DispositionError, match="meaning 'approval', not 'release'"):
        decide("open", "release", "release", other)
    assert decide("open", "investigate", None, other) == ("investigating", None)


def test_a_standard_hold_takes_one_signature_and_no_review() -> None:
    assert decide("open", "release", None, Signatories(signer="ann")) == ("released", "release")
    with pytest.raises(DispositionError, match="nothing to review"):
        decide("open", "review", None, Signatories(signer="ann"))


def test_cold_lots_without_a_signed_release_are_named() -> None:
    lots = {"2-8C": ["L2", "L1"], "frozen": ["F1"], "15-25C": ["A1"]}
    missing = missing_release("shipment SH-1", lots, None)
    assert [(r.code, r.subject) for r in missing] == [
        ("shipping_release", "F1"),
        ("shipping_release", "L1"),
        ("shipping_release", "L2"),
    ]
    assert "shipment SH-1 has no signed release for shipment" in missing[1].detail
    partial = missing_release("transfer TR-1", lots, frozenset({"L1", "F1"}))
    assert [r.subject for r in partial] == ["L2"]
    assert "is not in the signed release" in partial[0].detail
    assert missing_release("transfer TR-1", {"15-25C": ["A1"]}, None) == []
