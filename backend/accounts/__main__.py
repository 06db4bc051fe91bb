"""Account administration for operators: `python -m backend.accounts set-tier EMAIL pro`, `deactivate EMAIL`,
`activate EMAIL`, `prune`. Uses the same settings (DATABASE_URL, .env) as the API."""

from __future__ import annotations

import argparse
import logging
import sys

from core.accounts import service
from core.db import Database
from core.errors import DomainError
from core.settings import Tier, get_settings

logger = logging.getLogger("backend.accounts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.accounts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tier = commands.add_parser("set-tier", help="move a user to the free or pro tier")
    tier.add_argument("email")
    tier.add_argument("tier", choices=[t.value for t in Tier])
    for name in ("activate", "deactivate"):
        command = commands.add_parser(name, help=f"{name} a user (deactivating ends their sessions and keys)")
        command.add_argument("email")
    commands.add_parser("prune", help="delete ended sessions and past upload counters")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    database = Database.from_settings(get_settings())
    try:
        with database.session() as session:
            if args.command == "set-tier":
                service.set_tier(session, args.email, Tier(args.tier))
            elif args.command in ("activate", "deactivate"):
                service.set_active(session, args.email, args.command == "activate")
            else:
                logger.info("removed %d rows", service.prune(session))
    except DomainError as exc:
        logger.error("%s", exc.message)
        return 1
    finally:
        database.dispose()
    logger.info("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
