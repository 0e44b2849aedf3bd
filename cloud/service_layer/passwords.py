"""Passwords: the policy a new one must meet, and argon2id hashes (old scrypt ones still verify
once and are then rehashed).

The policy follows NIST SP 800-63B: at least 12 characters, and not one of the commonly used
passwords in the shipped list (about 20,000, most common first, the list Django ships).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 12
MAX_PASSWORD = 256  # a longer one only makes the hash slow: nobody types that
LEGACY_SCRYPT = "scrypt$"
_HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters (64 MiB)


class WeakPassword(ValueError):
    """A new password that the policy refuses; the message says why."""


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of commonly used passwords, lowercased."""
    data = resources.files("cloud.service_layer").joinpath("common-passwords.txt.gz")
    with data.open("rb") as packed:
        text = gzip.decompress(packed.read()).decode()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_policy(password: str, username: str = "") -> None:
    """Refuse a password that is short, common, or the username (WeakPassword says which)."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"a password may have at most {MAX_PASSWORD} characters")
    if password.lower() in common_passwords():
        raise WeakPassword("this password is in the list of commonly used passwords")
    if len(username) >= 4 and username.lower() in password.lower():
        raise WeakPassword("a password may not contain the username")


def hash_password(password: str) -> str:
    """An argon2id hash of the password (salt and parameters kept in the string)."""
    return _HASHER.hash(password)


def verify_password(stored: str, salt: str, password: str) -> bool:
    """True if `password` matches the stored hash (argon2id, or a legacy scrypt one)."""
    if stored.startswith(LEGACY_SCRYPT):
        _, n, r, p, expected = stored.split("$")
        digest = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected) // 2,
        )
        return hmac.compare_digest(digest.hex(), expected)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True if the stored hash is scrypt or argon2 with weaker parameters than today's."""
    return stored.startswith(LEGACY_SCRYPT) or _HASHER.check_needs_rehash(stored)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("no account has this password: it only costs the same time")


def spend_verification_time(password: str) -> None:
    """Verify against a dummy hash, so an unknown username takes as long as a known one."""
    verify_password(_dummy_hash(), "", password)
