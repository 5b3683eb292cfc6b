"""`giftcloud up` as a process: its own embedded PostgreSQL, bus and object folder."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.infra import VENV_BIN, free_port, stop_process, wait_for


@dataclass
class Up:
    data: Path
    log: Path
    password: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "giftcloud"),
                "up",
                "--data-dir",
                str(self.data),
                "--port",
                str(self.port),
            ],
            env={**os.environ, "GIFTCLOUD_ADMIN_PASSWORD": self.password},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200,
            timeout=120,
            what="giftcloud up",
        )

    def token(self) -> dict[str, str]:
        response = httpx.post(
            f"{self.url}/auth/token", data={"username": "admin", "password": self.password}
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def instances(self, project: str, headers: dict[str, str]) -> int:
        response = httpx.get(
            f"{self.url}/dicomweb/{project}/studies", params={"limit": 1000}, headers=headers
        )
        return sum(int(s["00201208"]["Value"][0]) for s in response.json())

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=90)
        # the embedded PostgreSQL outlives a kill -9 of its parent: stop whatever is left
        postgres = self.data / "postgres"
        subprocess.run(["pkill", "-f", f"postgres -D {postgres}"], check=False, capture_output=True)
