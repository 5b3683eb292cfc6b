"""The gate's calls to the site's api, against a real HTTP server on this machine: the
ledger's refusal (409) becomes the reason the hub reads; anything else stays an api error
(nothing leaves either way); an answer that is not JSON is still one line."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from giftcloud_flower import siteapi
from giftcloud_flower.site import Site

#: path -> (status, body) the server answers
ANSWERS: dict[str, tuple[int, bytes]] = {}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api(site: Site) -> Iterator[Site]:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield dataclasses.replace(site, api_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()


SPEND = "/api/projects/p/federation/flower/spend"
WHAT = {"asked_by": "rosa", "epsilon": 2.0, "budget": 5.0, "run": 1}


def test_a_spend_the_ledger_allows_is_recorded(api: Site) -> None:
    ANSWERS[SPEND] = (200, json.dumps({"asked_by": "rosa", "spent": 2.0, "budget": 5.0}).encode())
    assert siteapi.spend(api, WHAT) == {"asked_by": "rosa", "spent": 2.0, "budget": 5.0}


def test_the_ledger_s_refusal_is_the_reason_and_nothing_else_is(api: Site) -> None:
    refusal = "the learning budget of rosa on p at this site would be passed: 4 of 5 spent"
    ANSWERS[SPEND] = (409, json.dumps({"detail": refusal}).encode())
    with pytest.raises(siteapi.OverBudget) as over:
        siteapi.spend(api, WHAT)
    assert str(over.value) == refusal
    ANSWERS[SPEND] = (403, b"not json at all")  # not the gate's key: an api error, not a budget
    with pytest.raises(siteapi.SiteApiError) as refused:
        siteapi.spend(api, WHAT)
    assert not isinstance(refused.value, siteapi.OverBudget)
    assert refused.value.status == 403
    assert "answered 403" in str(refused.value)
    assert "not json at all" in str(refused.value)
