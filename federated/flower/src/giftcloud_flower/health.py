"""``giftcloud-flower-health ADDRESS``: exit 0 when the Flower process at ADDRESS (its
``--health-server-address``, gRPC health without TLS) answers SERVING, else 1 with the
reason in one line. The container image's HEALTHCHECK and compose use it; Kubernetes
probes the same port with its own gRPC probe."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

#: the port every Flower process of a giftcloud deployment serves its health on
PORT = 9095


def serving(address: str, timeout: float = 3.0) -> str | None:
    """None when ``address`` answers SERVING, else why not."""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )
        try:
            answer = check(HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as error:
            return f"{address} did not answer: {error.code().name}"
    if answer.status != HealthCheckResponse.SERVING:
        return f"{address} is {HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="giftcloud-flower-health", description=__doc__)
    parser.add_argument("address", nargs="?", default=f"127.0.0.1:{PORT}")
    reason = serving(parser.parse_args(argv).address)
    if reason is not None:
        sys.exit(f"giftcloud-flower-health: {reason}")
