"""`python -m backend.reports` (also `deepscreen-report`): check a report.json, or manage the key.

    python -m backend.reports verify FILE [--public-key BASE64]   exit 0 valid, 1 not valid, 2 unreadable
    python -m backend.reports public-key                           this server's public key (base64)
    python -m backend.reports keygen                               a new REPORT_SIGNING_KEY value

Without --public-key, `verify` uses this server's key from its settings (SECRET_KEY or
REPORT_SIGNING_KEY in the environment or .env): run it where the server runs. Anyone else passes
the key the server publishes at GET /api/reports/public-key.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from core.reports.signing import ReportSigner, public_key_from_text, report_signer, verify

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepscreen-report", description="Check DeepScreen report signatures.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check that a report.json was signed by the server, unaltered")
    check.add_argument("file", type=Path)
    check.add_argument("--public-key", metavar="BASE64", help="the server's published key (default: this server's)")
    check.add_argument("--json", action="store_true", help="print the outcome as JSON")
    commands.add_parser("public-key", help="print this server's report-signing public key")
    commands.add_parser("keygen", help="print a new random REPORT_SIGNING_KEY")
    args = parser.parse_args(argv)

    if args.command == "keygen":
        _out(base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
        return EXIT_VALID
    if args.command == "public-key":
        _out(_server_signer().public_key_text)
        return EXIT_VALID
    try:
        document = json.loads(args.file.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        key = public_key_from_text(args.public_key) if args.public_key else _server_signer().public_key
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"deepscreen-report: {args.file}: {exc}\n")
        return EXIT_UNREADABLE
    checked = verify(document, key)
    if args.json:
        _out(json.dumps({"file": str(args.file), "valid": checked.valid, "outcome": checked.outcome.value,
                         "message": checked.message, "key_id": checked.key_id}))
    else:
        _out(f"{args.file}: {'VALID' if checked.valid else 'NOT VALID'} ({checked.outcome.value}): {checked.message}")
    return EXIT_VALID if checked.valid else EXIT_INVALID


def _server_signer() -> ReportSigner:
    """This server's signer; settings are read only when its key is needed."""
    from core.settings import get_settings

    return report_signer(get_settings())


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
