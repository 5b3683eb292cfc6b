"""CPU time spent by each part of a run (giftcloud services, S3 server, RabbitMQ, PostgreSQL,
nginx, Orthanc, the bench client), read from /proc: where the time of a run goes."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _component(cmdline: list[str], comm: str) -> str | None:
    if "serve" in cmdline and any(part.endswith("giftcloud") for part in cmdline):
        return "giftcloud " + cmdline[cmdline.index("serve") + 1]
    if "up" in cmdline and any(part.endswith("giftcloud") for part in cmdline):
        return "giftcloud up (all five)"
    if comm == "weed":
        return "s3 (seaweedfs)"
    if comm.startswith("beam") or comm in {"erl_child_setup", "inet_gethost", "epmd"}:
        return "rabbitmq"
    if comm.startswith("postgres"):
        return "postgresql"
    if comm == "nginx":
        return "nginx"
    if comm.lower().startswith("orthanc"):
        return "orthanc"
    return None


def _snapshot() -> dict[int, tuple[str, float]]:
    """Every known process: (component, CPU seconds of it and of its reaped children)."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        name = "bench client" if int(entry.name) == os.getpid() else _component(cmdline, comm)
        if name is None:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), here offset by the two before
        seconds = sum(int(value) for value in fields[11:15]) / TICKS
        found[int(entry.name)] = (name, seconds)
    return found


class CpuMeter:
    """Take ``start()`` before and ``stop()`` after a run; ``per_item`` gives ms per item."""

    def __init__(self) -> None:
        self._before: dict[int, tuple[str, float]] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> None:
        self._before = _snapshot()

    def stop(self) -> None:
        totals: dict[str, float] = defaultdict(float)
        for pid, (name, seconds) in _snapshot().items():
            earlier = self._before.get(pid)
            totals[name] += seconds - (earlier[1] if earlier and earlier[0] == name else 0.0)
        self.seconds = dict(totals)

    def report(self, items: int, wall: float) -> list[str]:
        """One line per component, busiest first, then the total against the machine."""
        lines = [
            f"    {name:<22} {seconds * 1000 / items:6.2f} ms/instance"
            for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1])
            if seconds > 0
        ]
        total = sum(self.seconds.values())
        cores = os.cpu_count() or 1
        lines.append(
            f"    {'total':<22} {total * 1000 / items:6.2f} ms/instance "
            f"({total / (wall * cores):.0%} of {cores} cores for {wall:.1f} s)"
        )
        return lines
