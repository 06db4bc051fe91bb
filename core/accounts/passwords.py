"""Password hashing (Argon2id through pwdlib) and the password policy.

Login costs one Argon2 verification whether the email exists or not: an unknown email is
checked against a dummy hash made once per hasher, so response time does not reveal accounts.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MAX_PASSWORD_LENGTH = 256
"""Upper bound so a megabyte 'password' cannot make hashing a denial of service."""


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1),))
        self._dummy = self._hash.hash("dummy password for unknown accounts")

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        """True when `password` matches; with no hash (unknown user) it spends the same time and is False."""
        return self.verify_and_update(password, password_hash)[0]

    def verify_and_update(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Like `verify`, plus a new hash when the stored one was made with other (older) parameters,
        so raising the Argon2 cost upgrades each account at its next sign-in."""
        if password_hash is None:
            self._hash.verify(password, self._dummy)
            return False, None
        return self._hash.verify_and_update(password, password_hash)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def password_problem(password: str, *, email: str, min_length: int) -> str | None:
    """Why `password` is refused, in words for the user; None when it is acceptable."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in common_passwords():
        return "This password is one of the most common ones; choose another."
    if len(set(password)) < 4:
        return "Use more than a few distinct characters."
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        return "Do not use your email address in your password."
    return None
