"""The password policy, argon2id and legacy scrypt hashes, the login rate limit, and the
control room's rule for where a login may send the browser next (no I/O)."""

from __future__ import annotations

import hashlib

import pytest

from cloud.adapters.throttle import Throttle
from cloud.service_layer.passwords import (
    WeakPassword,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from dashboard.auth import local_path


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short-pass1", "at least 12"),
        ("1234567890123", "commonly used"),
        ("Password1234", "commonly used"),  # compared without case
        ("x" * 257, "at most 256"),
        ("jane.doe-cold-room", "username"),
    ],
)
def test_policy_refuses(password: str, says: str) -> None:
    with pytest.raises(WeakPassword, match=says):
        check_policy(password, "jane.doe")


def test_policy_accepts_a_long_uncommon_password_and_short_usernames_inside_it() -> None:
    check_policy("frost-line pallet 2026", "jane.doe")
    check_policy("freezer qa shift 2026", "qa")  # a 2-letter username is not looked for


def test_argon2id_and_legacy_scrypt_verify_and_only_the_latter_needs_a_rehash() -> None:
    stored = hash_password("frost-line pallet 2026")
    assert stored.startswith("$argon2id$") and not needs_rehash(stored)
    assert verify_password(stored, "", "frost-line pallet 2026")
    assert not verify_password(stored, "", "frost-line pallet 2027")
    salt = "00" * 16
    digest = hashlib.scrypt(b"old password 1", salt=bytes(16), n=2**14, r=8, p=1, dklen=32)
    legacy = f"scrypt$16384$8$1${digest.hex()}"
    assert verify_password(legacy, salt, "old password 1") and needs_rehash(legacy)
    assert not verify_password(legacy, salt, "old password 2")
    assert not verify_password("not a hash", "", "anything")


def test_throttle_per_account_and_per_client() -> None:
    throttle = Throttle("4/minute", "2/minute")
    assert throttle.attempt("login", "10.0.0.1", "qa") is None
    assert throttle.attempt("login", "10.0.0.1", "qa") is None
    wait = throttle.attempt("login", "10.0.0.1", "qa")
    assert wait is not None and 1 <= wait <= 60
    assert throttle.attempt("login", "10.0.0.1", "op") is None  # another account
    assert throttle.attempt("login", "10.0.0.1", "viewer") is None
    assert throttle.attempt("login", "10.0.0.1", "admin") is not None  # the address: 4 a minute
    assert throttle.attempt("signing", "10.0.0.1", "admin") is None  # another action


@pytest.mark.parametrize(
    ("target", "goes_to"),
    [
        ("/alerts", "/alerts"),
        ("/zone?zone=cold", "/zone?zone=cold"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/x", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_login_goes_on_only_to_a_local_path(target: str | None, goes_to: str) -> None:
    assert local_path(target) == goes_to
