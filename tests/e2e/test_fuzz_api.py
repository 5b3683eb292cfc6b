"""Schemathesis against every service's OpenAPI, on the five services as processes: requests
generated from the schemas (valid and not), sent with an admin's token. No answer may be a
5xx, and every documented answer must match its schema. Bounded: a fixed number of
examples per operation, derandomised, so a CI run takes a few minutes and repeats."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from support.deployment import SERVICES, Deployment, deployed
from support.infra import Seaweed

EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzzed(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp("fuzz")
    env = {  # the fuzzer is one address making many requests and many bad sign-ins
        "GIFTCLOUD_AUTH__RATE_PER_SECOND": "100000",
        "GIFTCLOUD_AUTH__ADDRESS_THROTTLE_AFTER": "1000000",
    }
    with deployed(seaweed, logs, **env) as running:
        running.create_project("fuzz")
        yield running


def test_no_service_answers_a_generated_request_with_a_5xx_or_off_its_schema(
    fuzzed: Deployment,
) -> None:
    failures: list[str] = []
    tried = 0
    for name in SERVICES:
        base = fuzzed.services[name].url
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            headers = fuzzed.token()  # fresh each time: an operation may revoke the last one
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: schemathesis.Case) -> None:
                    case.call_and_validate(
                        base_url=base,
                        headers=headers,
                        checks=[not_a_server_error, response_schema_conformance],
                        timeout=60,
                    )

                tried += 1
                try:
                    run()
                except Unsatisfiable:  # no input can be invalid: a route without parameters
                    tried -= 1
                except (Exception, BaseExceptionGroup) as exc:  # all reported together
                    failures.append(f"{name} {operation.label} ({mode.value}): {str(exc)[:600]}")
    print(f"{tried} operations x modes, {EXAMPLES} examples each")
    assert tried > 80
    assert not failures, "\n\n".join(failures)
