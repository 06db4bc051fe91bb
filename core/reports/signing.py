"""Ed25519 signatures over a report's canonical JSON.

Why Ed25519 and not HMAC-SHA256: with HMAC only a holder of the server's secret can check a
report, and whoever can check can also forge. An Ed25519 signature is checked with the public key
alone (GET /api/reports/public-key), so a court, a colleague or a script can verify a report
without being trusted with anything. The private key is derived from SECRET_KEY (HKDF-SHA256 with
its own label, so it is never SECRET_KEY itself), so every API replica and worker signs with the
same key and there is nothing more to configure; REPORT_SIGNING_KEY sets it apart instead, so
SECRET_KEY can rotate without making every filed report unverifiable.

The canonical form is the JSON of the report without its `signature` member, keys sorted, no
spaces, UTF-8 (`canonical_json`); a verifier re-serialises the parsed report the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.settings import Settings

ALGORITHM = "Ed25519"
CANONICALIZATION = "json-sorted-keys-compact-utf8"
_DERIVATION_LABEL = b"deepscreen report signing key v1"


class VerificationOutcome(StrEnum):
    """Why a report is or is not one this server signed, unaltered."""

    valid = "valid"
    not_signed = "not_signed"
    """No `signature` member, or one without the fields a signature needs."""
    unsupported_algorithm = "unsupported_algorithm"
    unknown_key = "unknown_key"
    """Signed, but not with this server's key (another server, or a key since replaced)."""
    altered = "altered"
    """Signed with this server's key, but the content is not what was signed."""


@dataclass(frozen=True)
class Verification:
    outcome: VerificationOutcome
    message: str
    key_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.outcome is VerificationOutcome.valid


def canonical_json(document: dict[str, Any]) -> bytes:
    """The bytes that are signed: the document without `signature`, keys sorted, compact, UTF-8."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """A public key given as base64 of its 32 raw bytes (as GET /api/reports/public-key answers)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Not an Ed25519 public key (base64 of 32 bytes).") from exc


class ReportSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)
        self.public_key_text = base64.b64encode(_raw(self.public_key)).decode("ascii")

    @classmethod
    def from_secret(cls, secret: str, signing_key: str = "") -> ReportSigner:
        """The server's signer: REPORT_SIGNING_KEY (base64 of a 32-byte seed) when set, else derived from SECRET_KEY."""
        if signing_key:
            try:
                seed = base64.b64decode(signing_key.strip(), validate=True)
            except binascii.Error as exc:
                raise ValueError("REPORT_SIGNING_KEY must be base64 of 32 bytes.") from exc
            if len(seed) != 32:
                raise ValueError("REPORT_SIGNING_KEY must be base64 of 32 bytes.")
        else:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_LABEL)
            seed = hkdf.derive(secret.encode("utf-8"))
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document with its `signature` member (any previous one replaced)."""
        value = self.private_key.sign(canonical_json(document))
        return {
            **{key: item for key, item in document.items() if key != "signature"},
            "signature": {
                "algorithm": ALGORITHM, "canonicalization": CANONICALIZATION, "key_id": self.key_id,
                "public_key": self.public_key_text, "value": base64.b64encode(value).decode("ascii"),
            },
        }

    def verify(self, document: dict[str, Any]) -> Verification:
        return verify(document, self.public_key)


def verify(document: dict[str, Any], public_key: Ed25519PublicKey) -> Verification:
    """Whether `document` was signed with `public_key` and is unaltered.

    The key in the report is never trusted: anyone can sign with a key of their own and put it
    there. Only the given key (this server's, or one published by it) counts.
    """
    signature = document.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        return Verification(VerificationOutcome.not_signed, "The report carries no signature.")
    if signature.get("algorithm") != ALGORITHM:
        return Verification(VerificationOutcome.unsupported_algorithm,
                            f"The report is signed with {signature.get('algorithm')!r}, not {ALGORITHM}.")
    expected_id = key_id(public_key)
    if signature.get("key_id") != expected_id or signature.get("public_key") != base64.b64encode(
        _raw(public_key)
    ).decode("ascii"):
        return Verification(VerificationOutcome.unknown_key,
                            f"The report was not signed with this server's key ({expected_id}).",
                            key_id=str(signature.get("key_id")))
    try:
        public_key.verify(base64.b64decode(signature["value"], validate=True), canonical_json(document))
    except (InvalidSignature, binascii.Error, ValueError):
        return Verification(VerificationOutcome.altered,
                            "The signature does not match the content: the report was altered after signing.",
                            key_id=expected_id)
    return Verification(VerificationOutcome.valid, "Signed by this server; unaltered since.", key_id=expected_id)


@cache
def _signer(secret: str, signing_key: str) -> ReportSigner:
    return ReportSigner.from_secret(secret, signing_key)


def report_signer(settings: Settings) -> ReportSigner:
    """This server's signer (cached: the key is derived once per process)."""
    return _signer(settings.SECRET_KEY, settings.REPORT_SIGNING_KEY)
