"""``giftcloud repair``: find (and fix) catalogue rows that describe another copy than the
archive holds, as a re-sent instance could leave them before re-sends kept the first copy.
Run where the api runs, configured from the same environment (database and object store)."""

from __future__ import annotations

import argparse
import asyncio

from giftcloud.anonymise import Command


def repair(args: argparse.Namespace) -> int:
    """Exit 0 when every row agrees with its object (after fixing, unless ``--check``), 1
    otherwise; one line of counts."""
    from giftcloud_api.catalogue.service import CatalogueService
    from giftcloud_core.db import Database
    from giftcloud_core.settings import Settings
    from giftcloud_core.storage import create_store

    async def run() -> dict[str, int]:
        settings = Settings(service="api")
        db = Database(settings.db)
        try:
            service = CatalogueService(settings, db, create_store(settings.storage))
            return await service.repair(args.project, fix=not args.check)
        finally:
            await db.close()

    counts = asyncio.run(run())
    print(
        f"{counts['checked']} instance(s) checked: {counts['disagreeing']} described another "
        f"copy than the archive holds, {counts['fixed']} fixed, {counts['missing']} without "
        "an object"
    )
    unsettled = counts["disagreeing"] - counts["fixed"] + counts["missing"]
    return 1 if unsettled else 0


def add_parser(command: Command) -> None:
    """``giftcloud repair``, made by the CLI's ``command``."""
    parser = command(
        "repair",
        "compare the catalogue with the archive and fix rows that describe another copy"
        " (run where the api runs: its database and object store, from the environment)",
        repair,
    )
    parser.add_argument("--project", default=None, help="only this project (default: all)")
    parser.add_argument(
        "--check", action="store_true", help="report only, change nothing (exit 1 if any)"
    )
