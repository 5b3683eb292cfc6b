"""The site's SuperExec: Flower's task loop, launching the site's ClientApp process
(:mod:`giftcloud_flower.clientapp`) for ClientApp tasks and nothing else.

Run beside a SuperNode started with ``--isolation process``::

    GIFTCLOUD_FLOWER_SITE=/etc/giftcloud/flower-site.json \\
        giftcloud-flower-exec --runtime-api-address 127.0.0.1:9094
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import flwr.supercore.superexec.run_superexec as superexec
from flwr.supercore.constant import TaskType
from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResult

from giftcloud_flower import siteapi
from giftcloud_flower.site import ENV, SiteConfigError, load


class SiteExecutor(SubprocessExecutor):
    """Flower's subprocess executor, starting the site's ClientApp process; any other
    kind of task (agents, connectors, models) is refused."""

    def __init__(self, site_file: str) -> None:
        self.site_file = site_file

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        if spec.task_type != TaskType.CLIENT_APP:
            return LaunchResult.failed(f"this site runs ClientApps only, not {spec.task_type}")
        args = [sys.executable, "-m", "giftcloud_flower.clientapp"]
        args += ["--runtime-api-address", spec.runtime_api_address, "--token", spec.token]
        if spec.insecure:
            args.append("--insecure")
        elif spec.root_certificates_path is not None:
            args += ["--root-certificates", spec.root_certificates_path]
        if spec.parent_pid is not None:
            args += ["--parent-pid", str(spec.parent_pid)]
        subprocess.Popen(args, env={**os.environ, ENV: self.site_file})
        return LaunchResult.accepted()


def arguments() -> argparse.ArgumentParser:
    """The gate's command line (also read by the deployment tests)."""
    parser = argparse.ArgumentParser(
        prog="giftcloud-flower-exec",
        description="Run approved Flower ClientApps for this site's SuperNode.",
    )
    parser.add_argument("--runtime-api-address", default="127.0.0.1:9094")
    parser.add_argument("--site", default=os.environ.get(ENV), help="the site's file")
    parser.add_argument(
        "--health-server-address",
        help="serve gRPC health (no TLS) at this address, for the deployment's probes",
    )
    return parser


def main() -> None:
    args = arguments().parse_args()
    try:
        site = load(args.site)
    except SiteConfigError as error:
        sys.exit(f"giftcloud-flower-exec: {error}")
    try:
        approvals = f"{len(siteapi.approved(site))} approved app(s)"
    except siteapi.SiteApiError as error:  # asked again before each app: nothing runs till then
        approvals = f"approvals not readable yet ({error})"
    print(
        f"giftcloud-flower-exec: {site.name}: {approvals}, k = {site.policy.k}",
        file=sys.stderr,
        flush=True,
    )
    site_file = os.path.abspath(str(args.site))
    setattr(superexec, "get_executor", lambda *a, **k: SiteExecutor(site_file))  # noqa: B010
    # the Runtime API is the SuperNode's, on this machine: plain HTTP on 127.0.0.1
    superexec.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=True,
        health_server_address=args.health_server_address,
    )


if __name__ == "__main__":
    main()
