"""bench/federation: the time from a researcher's question to the hub's pooled answer, with
2 and with 10 sites. The hub is the five services as processes on the real servers; the
sites are simulated in this process -- each is giftcloud's own site code (the poller, the
policy, the disclosure control, the audit) on a PostgreSQL database of its own holding a
catalogue of SERIES series, calling the hub over HTTP with a machine credential the hub
issued, as a real site's api does. Prints the median, best and worst of ROUNDS questions
(each question new, so no site answers from what it gave before), and the ratio 10 : 2.

    uv run python bench/federation.py [--rounds 5] [--series 2000]

Run from the repository after scripts/test has set the machine up (PostgreSQL, RabbitMQ,
nginx).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from giftcloud_api.app import MIGRATIONS
from giftcloud_api.audit.service import AuditTrail
from giftcloud_api.federation.poller import SitePoller
from giftcloud_api.federation.schemas import PolicyIn
from giftcloud_api.federation.site import SiteFederation
from giftcloud_api.models import SCHEMA, Project, Series, Study
from giftcloud_core.access import Auditor
from giftcloud_core.bus.memory import MemoryBus
from giftcloud_core.db import Database
from giftcloud_core.hub import HubClient
from giftcloud_core.settings import (
    BusSettings,
    DatabaseSettings,
    FederationSettings,
    ForwardSettings,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.deployment import deployed  # noqa: E402
from support.infra import Seaweed, create_database, db_url, drop_database  # noqa: E402

PROJECT = "bench"
SEXES = ("F", "M", "O")
MODALITIES = ("CT", "MR", "PT", "US")


async def _site_database(name: str, series: int, index: int) -> Database:
    db = Database(DatabaseSettings(url=db_url(name), pool_size=2))
    await db.migrate(SCHEMA, MIGRATIONS)
    async with db.session() as session:
        session.add(Project(name=PROJECT))
        for n in range(series // 2):  # two series per study, a study per subject
            study = f"2.25.{index}{n:06d}"
            session.add(
                Study(
                    project=PROJECT,
                    study_uid=study,
                    subject=f"SUBJ-{index}-{n}",
                    study_date=f"20{10 + n % 14}0101",
                    attributes={"00100040": {"vr": "CS", "Value": [SEXES[n % 3]]}},
                    series_count=2,
                    instance_count=20,
                )
            )
            for s in range(2):
                session.add(
                    Series(
                        project=PROJECT,
                        series_uid=f"{study}.{s}",
                        study_uid=study,
                        modality=MODALITIES[(n + s) % 4],
                        instance_count=10,
                    )
                )
    await SiteFederation(db, Auditor(MemoryBus(BusSettings()))).set_policy(
        PolicyIn(enabled=True), "bench"
    )
    return db


async def _run(
    databases_made: list[str],
    hub_url: str,
    admin: dict[str, str],
    researcher: dict[str, str],
    sites: int,
    rounds: int,
    series: int,
) -> list[float]:
    databases, pollers, names = [], [], []
    async with httpx.AsyncClient(base_url=hub_url, timeout=60) as http:
        for index in range(sites):
            name = f"s{sites}-{index}"
            made = await http.post(
                "/auth/clients",
                json={"name": name, "grants": [{"project": PROJECT, "role": "member"}]},
                headers=admin,
            )
            made.raise_for_status()
            credential = made.json()
            registered = await http.post(
                "/api/federation/sites",
                json={"name": name, "client_id": credential["client_id"]},
                headers=admin,
            )
            registered.raise_for_status()
            database = databases_made[index]
            db = await _site_database(database, series, index)
            trail = AuditTrail(db)
            site = SiteFederation(db, Auditor(MemoryBus(BusSettings()), sink=trail.keep_audit))
            link = HubClient(
                ForwardSettings(
                    hub_url=hub_url,
                    client_id=credential["client_id"],
                    client_secret=credential["client_secret"],
                )
            )
            pollers.append(SitePoller(site, link, FederationSettings(wait_seconds=20), "bench"))
            databases.append((database, db, link))
            names.append(name)

        async def forever(poller: SitePoller) -> None:
            while True:
                try:
                    await poller.round(False)
                except Exception as exc:  # a bench site keeps calling, as a real one does
                    print(f"  a site's call failed: {exc}", file=sys.stderr)
                    await asyncio.sleep(0.5)

        tasks = [asyncio.create_task(forever(p)) for p in pollers]
        timings = []
        try:
            await asyncio.sleep(1.0)
            for n in range(rounds):
                started = time.perf_counter()
                asked = await http.post(
                    f"/api/projects/{PROJECT}/federation/counts",
                    json={
                        "criteria": [
                            {"attribute": "study_date", "op": "gte", "value": f"20{10 + n}0101"}
                        ],
                        "group_by": ["patient_sex", "modality"],
                        "unit": "series",
                        "sites": names,
                    },
                    headers=researcher,
                )
                asked.raise_for_status()
                url = f"/api/projects/{PROJECT}/federation/counts/{asked.json()['id']}"
                while True:
                    found = (await http.get(url, headers=researcher)).json()
                    if all(p["state"] != "pending" for p in found["parts"]):
                        break
                    await asyncio.sleep(0.02)
                timings.append(time.perf_counter() - started)
                states = {p["state"] for p in found["parts"]}
                assert states == {"answered"}, found["parts"]
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for _database, db, link in databases:
                await link.close()
                await db.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--series", type=int, default=2000, help="series in each site's catalogue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        seaweed = Seaweed(work / "seaweed").start()
        (work / "hub").mkdir()
        try:
            with deployed(seaweed, work / "hub") as hub:
                hub.create_project(PROJECT)
                admin = hub.token()
                results = {}
                for sites in (2, 10):
                    made = [create_database() for _ in range(sites)]
                    try:
                        timings = asyncio.run(
                            _run(made, hub.url, admin, admin, sites, args.rounds, args.series)
                        )
                    finally:
                        for name in made:
                            drop_database(name)
                    results[sites] = timings
                    print(
                        f"{sites:>2} sites ({args.series} series each): question to pooled answer"
                        f" median {statistics.median(timings):.3f} s, best {min(timings):.3f} s,"
                        f" worst {max(timings):.3f} s over {len(timings)} questions"
                    )
                ratio = statistics.median(results[10]) / statistics.median(results[2])
                print(f"10 sites : 2 sites = {ratio:.2f}")
        finally:
            seaweed.stop()


if __name__ == "__main__":
    main()
