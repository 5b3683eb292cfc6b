"""Every route of every service, for every kind of caller, → the status a hospital expects.

The routes are read from each service's OpenAPI: a route added without a line in ACCESS
below fails this test. Each caller is tried on each route: none may get a 5xx, nobody may
get in where the rule says no (401 without valid credentials, 403 without the right), and
everyone allowed must get past the door (any answer but 401/403). The matrix is printed.
"""

import time
import uuid
from dataclasses import dataclass

from giftcloud.client import multipart_related
from giftcloud.services import SERVICES, service_app
from giftcloud_core.tokens import TokenSigner, generate_private_key_pem
from support.dicom_files import synthetic_instance
from support.site import ADMIN_PASSWORD, Site, site, wait_until
from support.stack import Stack

PROJECT = "matrix"
STUDY = "2.25.1001"
SERIES = "2.25.1002"
SOP = "2.25.1003"
OUTSIDE = "192.0.2.99"  # not among the project's networks

#: who may use each route: public (anyone, no credentials), signed-in (any valid
#: credential), person (a signed-in person, not a key), admin, creator (admin or the
#: creator role), read / write / owner (a role on the project, from its networks),
#: reidentifier (the site role, and a role on the project), steward (the site role: no
#: caller here holds it, not even the admin), site (a site registered for
#: federation: no caller here is one), runner / gate (the hub's registered Flower runner,
#: the site's registered Flower gate: none here either), credentials (the route checks
#: credentials of its own: bogus ones are a 401 whoever calls)
ACCESS = {
    ("POST", "/auth/token"): "credentials",
    ("POST", "/auth/logout"): "public",
    ("GET", "/auth/.well-known/jwks.json"): "public",
    ("POST", "/auth/password-reset"): "public",
    ("POST", "/auth/invites/accept"): "public",
    ("GET", "/auth/me"): "signed-in",
    ("POST", "/auth/me/password"): "person",
    ("POST", "/auth/invites"): "owner",
    ("GET", "/auth/users"): "admin",
    ("POST", "/auth/users"): "admin",
    ("PATCH", "/auth/users/{username}"): "admin",
    ("DELETE", "/auth/users/{username}"): "admin",
    ("POST", "/auth/users/{username}/password-reset"): "admin",
    ("POST", "/auth/users/{username}/unlock"): "admin",
    ("GET", "/auth/projects"): "signed-in",
    ("POST", "/auth/projects"): "creator",
    ("GET", "/auth/projects/{project}"): "read",
    ("PATCH", "/auth/projects/{project}"): "owner",
    ("GET", "/auth/projects/{project}/members"): "owner",
    ("PUT", "/auth/projects/{project}/members"): "owner",
    ("DELETE", "/auth/projects/{project}/members/{username}"): "owner",
    ("GET", "/auth/projects/{project}/networks"): "owner",
    ("PUT", "/auth/projects/{project}/networks"): "owner",
    ("GET", "/auth/networks"): "admin",
    ("PUT", "/auth/networks"): "admin",
    ("POST", "/auth/projects/{project}/keys"): "read",
    ("GET", "/auth/projects/{project}/keys"): "read",
    ("DELETE", "/auth/projects/{project}/keys/{key_id}"): "read",
    ("GET", "/auth/clients"): "admin",
    ("POST", "/auth/clients"): "admin",
    ("DELETE", "/auth/clients/{client_id}"): "admin",
    ("POST", "/dicomweb/{project}/studies"): "write",
    ("POST", "/dicomweb/{project}/studies/{study}"): "write",
    ("GET", "/ingest/{project}/uploads/{upload_id}"): "write",
    ("GET", "/ingest/{project}/uploads"): "write",
    ("GET", "/ingest/{project}/uploads/{upload_id}/instances/{index}"): "write",
    ("GET", "/ingest/{project}/dicom"): "owner",
    ("PUT", "/ingest/{project}/dicom"): "owner",
    ("DELETE", "/ingest/{project}/dicom"): "owner",
    ("GET", "/ingest/nodes"): "admin",
    ("GET", "/ingest/forwarding"): "admin",
    ("GET", "/ingest/{project}/forwarding"): "owner",
    ("PUT", "/ingest/{project}/forwarding"): "owner",
    ("POST", "/ingest/{project}/forwarding/retry"): "owner",
    ("PUT", "/ingest/nodes/{name}"): "admin",
    ("DELETE", "/ingest/nodes/{name}"): "admin",
    ("POST", "/ingest/{project}/retrievals"): "write",
    ("GET", "/ingest/{project}/retrievals"): "write",
    ("GET", "/ingest/{project}/retrievals/{retrieval_id}"): "write",
    ("POST", "/ingest/{project}/retrievals/{retrieval_id}/cancel"): "write",
    ("POST", "/ingest/{project}/retrievals/{retrieval_id}/resume"): "write",
    ("GET", "/ingest/{project}/returns"): "owner",
    ("PUT", "/ingest/{project}/returns"): "owner",
    ("GET", "/ingest/{project}/returns/items"): "reidentifier",
    ("GET", "/ingest/{project}/returns/destinations"): "reidentifier",
    ("POST", "/ingest/{project}/returns/items/{key}/approve"): "reidentifier",
    ("POST", "/ingest/{project}/returns/items/{key}/decline"): "reidentifier",
    ("POST", "/ingest/{project}/returns/items/{key}/retry"): "reidentifier",
    ("GET", "/ingest/{project}/returns/items/{key}/content"): "reidentifier",
    ("GET", "/anonymise/reidentify/{project}/{subject}"): "reidentifier",
    ("GET", "/anonymise/projects/{project}/profile"): "read",
    ("PUT", "/anonymise/projects/{project}/profile"): "owner",
    ("GET", "/anonymise/projects/{project}/quarantine"): "owner",
    ("GET", "/anonymise/projects/{project}/quarantine/{key}"): "owner",
    ("POST", "/anonymise/projects/{project}/quarantine/release"): "owner",
    ("POST", "/anonymise/projects/{project}/quarantine/delete"): "owner",
    ("GET", "/api/projects"): "signed-in",
    ("GET", "/api/projects/{project}/subjects"): "read",
    ("GET", "/api/projects/{project}/download"): "read",
    ("HEAD", "/api/projects/{project}/download"): "read",
    ("GET", "/api/projects/{project}/subjects/{subject}/studies"): "read",
    ("GET", "/api/projects/{project}/studies/{study}/results"): "read",
    ("GET", "/api/projects/{project}/results"): "read",
    ("POST", "/api/projects/{project}/files"): "write",
    ("GET", "/api/projects/{project}/files"): "read",
    ("GET", "/api/projects/{project}/files/{ident}"): "read",
    ("DELETE", "/api/projects/{project}/files/{ident}"): "owner",
    ("GET", "/api/projects/{project}/audit"): "owner",
    ("GET", "/api/audit"): "admin",
    ("GET", "/api/pipeline"): "admin",
    ("POST", "/api/federation/sites"): "admin",
    ("GET", "/api/federation/sites"): "signed-in",
    ("DELETE", "/api/federation/sites/{name}"): "admin",
    ("POST", "/api/federation/heartbeat"): "site",
    ("GET", "/api/federation/tasks"): "site",
    ("PUT", "/api/federation/tasks/{question}"): "site",
    ("POST", "/api/projects/{project}/federation/counts"): "read",
    ("GET", "/api/projects/{project}/federation/counts"): "read",
    ("GET", "/api/projects/{project}/federation/counts/{question}"): "read",
    ("GET", "/api/federation/policy"): "admin",
    ("PUT", "/api/federation/policy"): "admin",
    ("GET", "/api/federation/answers"): "admin",
    ("POST", "/api/projects/{project}/federation/jobs"): "read",
    ("GET", "/api/projects/{project}/federation/jobs"): "read",
    ("GET", "/api/projects/{project}/federation/jobs/{job}"): "read",
    ("POST", "/api/projects/{project}/federation/jobs/{job}/cancel"): "read",
    ("POST", "/api/projects/{project}/federation/jobs/{job}/retry"): "read",
    ("PUT", "/api/federation/jobs/{job}/report"): "site",
    ("GET", "/api/federation/algorithms"): "admin",
    ("PUT", "/api/federation/algorithms/{name}"): "admin",
    ("DELETE", "/api/federation/algorithms/{name}"): "admin",
    ("GET", "/api/dimse/callers"): "person",
    ("PUT", "/api/dimse/callers/{ae_title}"): "person",
    ("DELETE", "/api/dimse/callers/{ae_title}"): "person",
    ("GET", "/api/federation/flower/apps"): "signed-in",
    ("PUT", "/api/federation/flower/apps/{digest}"): "admin",
    ("DELETE", "/api/federation/flower/apps/{digest}"): "admin",
    ("POST", "/api/projects/{project}/federation/flower/decisions"): "gate",
    ("PUT", "/api/federation/flower/gate"): "admin",
    ("GET", "/api/federation/flower/gate"): "admin",
    ("POST", "/api/projects/{project}/federation/flower/spend"): "gate",
    ("PUT", "/api/federation/flower/runner"): "admin",
    ("GET", "/api/federation/flower/runner"): "signed-in",
    ("POST", "/api/projects/{project}/federation/flower/runs"): "read",
    ("GET", "/api/projects/{project}/federation/flower/runs"): "read",
    ("GET", "/api/projects/{project}/federation/flower/runs/{run}"): "read",
    ("POST", "/api/projects/{project}/federation/flower/runs/{run}/cancel"): "read",
    ("POST", "/api/federation/flower/runner/claim"): "runner",
    ("GET", "/api/federation/flower/nodes"): "admin",
    ("PUT", "/api/federation/flower/nodes/{name}"): "admin",
    ("DELETE", "/api/federation/flower/nodes/{name}"): "admin",
    ("PUT", "/api/federation/flower/runner/nodes/{name}"): "runner",
    ("PUT", "/api/federation/flower/runner/runs/{run}"): "runner",
    ("GET", "/api/federation/jobs"): "steward",
    ("GET", "/api/federation/jobs/{job}"): "steward",
    ("POST", "/api/federation/jobs/{job}/decision"): "steward",
    ("GET", "/dicomweb/{project}/studies"): "read",
    ("GET", "/dicomweb/{project}/series"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/instances"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/metadata"): "read",
    ("GET", "/dicomweb/{project}/instances"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/instances"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/metadata"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/metadata"): "read",
    (
        "GET",
        "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}",
    ): "read",
    (
        "GET",
        "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/bulk/{tag}",
    ): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/rendered"): "read",
    (
        "GET",
        "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/rendered",
    ): "read",
    (
        "GET",
        "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/thumbnail",
    ): "read",
    (
        "GET",
        "/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}/thumbnail",
    ): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/thumbnail"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/thumbnail"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/series/{series}/rendered"): "read",
    ("GET", "/dicomweb/{project}/studies/{study}/rendered"): "read",
}


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    address: str = "127.0.0.1"
    kind: str = "user"  # user | key | none
    role: str | None = None  # on PROJECT
    admin: bool = False
    password: str = ""


#: a quarantined instance's name (none is held: owners get past the door to a 404)
HELD = f"{PROJECT}/{'0' * 32}/000000.dcm"


def expected(rule: str, caller: Caller, route_has_project: bool) -> str:
    """'401', '403' or 'in' (past the door: anything but 401/403, never 5xx)."""
    if rule == "credentials":
        return "401"
    if rule == "public":
        return "in"
    if caller.kind == "none":
        return "401"
    outside = caller.address == OUTSIDE and route_has_project
    allowed = {
        "signed-in": True,
        "person": caller.kind == "user",
        "admin": caller.admin,
        "creator": caller.admin and caller.kind == "user",
        "read": caller.admin or caller.role in ("collaborator", "member", "owner"),
        "write": caller.admin or caller.role in ("member", "owner"),
        "owner": caller.admin or caller.role == "owner",
        "reidentifier": False,  # no caller here holds the reidentifier site role
        "steward": False,  # no caller here holds the steward site role
        "site": False,
        "runner": False,  # no caller here is the hub's registered Flower runner
        "gate": False,  # nor the site's registered Flower gate
    }[rule]
    if rule in ("read", "write", "owner") and outside:
        allowed = False
    return "in" if allowed else "403"


def body_for(method: str, path: str, caller: Caller) -> dict[str, object]:
    """A request the route would accept, so only the door decides."""
    unique = uuid.uuid4().hex[:8]
    json_bodies: dict[tuple[str, str], object] = {
        ("POST", "/auth/logout"): {"refresh_token": "not-a-real-one"},
        ("POST", "/auth/password-reset"): {"token": "nope", "new_password": "x" * 12},
        ("POST", "/auth/invites/accept"): {
            "token": "nope",
            "username": f"mx-{unique}",
            "password": "a long enough password here",
        },
        # the right current password and a new one the policy refuses: nothing changes
        ("POST", "/auth/me/password"): {
            "current_password": caller.password or "x",
            "new_password": "short",
        },
        ("POST", "/auth/invites"): {"project": PROJECT, "role": "collaborator"},
        ("POST", "/auth/users"): {"username": f"mx-{unique}", "password": "mx rides a blue bike"},
        ("PATCH", "/auth/users/{username}"): {"disabled": False},
        ("POST", "/auth/projects"): {"name": f"mx-{unique}"},
        ("PATCH", "/auth/projects/{project}"): {"title": "the matrix"},
        ("PUT", "/auth/projects/{project}/members"): {
            "username": "mx-target",
            "role": "collaborator",
        },
        ("PUT", "/auth/projects/{project}/networks"): {"networks": ["127.0.0.0/8"]},
        ("PUT", "/auth/networks"): {"networks": []},
        ("POST", "/auth/projects/{project}/keys"): {"name": "k", "role": "collaborator"},
        ("PUT", "/ingest/nodes/{name}"): {"ae_title": "PACS", "host": "127.0.0.1", "port": 104},
        ("PUT", "/ingest/{project}/dicom"): {"ae_title": "MATRIX"},
        ("PUT", "/ingest/{project}/forwarding"): {"enabled": False},
        ("PUT", "/ingest/{project}/returns"): {"enabled": False},
        ("POST", "/ingest/{project}/retrievals"): {"node": "pacs", "queries": [{"PatientID": "1"}]},
        ("POST", "/anonymise/projects/{project}/quarantine/release"): {"keys": [HELD]},
        ("POST", "/anonymise/projects/{project}/quarantine/delete"): {"keys": [HELD]},
        ("POST", "/api/federation/sites"): {"name": f"mx-{unique}", "client_id": f"gcc_{unique}"},
        ("POST", "/api/federation/heartbeat"): {"enabled": False},
        ("PUT", "/api/federation/tasks/{question}"): {"state": "refused", "reason": "no"},
        ("POST", "/api/projects/{project}/federation/counts"): {"group_by": ["patient_sex"]},
        ("PUT", "/api/federation/policy"): {"enabled": False},
        ("POST", "/api/projects/{project}/federation/jobs"): {"algorithm": "series-sizes"},
        ("PUT", "/api/federation/jobs/{job}/report"): {
            "attempt": 1,
            "state": "queued",
            "as_of": "2026-12-05T00:00:00Z",
        },
        ("PUT", "/api/federation/algorithms/{name}"): {"digest": "0" * 64},
        ("PUT", "/api/federation/flower/apps/{digest}"): {"name": "matrix"},
        ("PUT", "/api/dimse/callers/{ae_title}"): {"host": "127.0.0.1", "api_key": "gck_x_y"},
        ("POST", "/api/projects/{project}/federation/flower/decisions"): {"decision": "run"},
        ("PUT", "/api/federation/flower/runner"): {"client_id": "gck_matrixrun"},
        ("PUT", "/api/federation/flower/gate"): {"client_id": "gck_matrixgate"},
        ("POST", "/api/projects/{project}/federation/flower/spend"): {
            "asked_by": "matrix",
            "epsilon": 0.1,
            "budget": 1000.0,
        },
        ("POST", "/api/projects/{project}/federation/flower/runs"): {"app": "statistics"},
        ("POST", "/api/federation/flower/runner/claim"): {"apps": []},
        ("PUT", "/api/federation/flower/runner/runs/{run}"): {"state": "running"},
        ("PUT", "/api/federation/flower/nodes/{name}"): {"public_key": "ecdsa-sha2-nistp384 x"},
        ("PUT", "/api/federation/flower/runner/nodes/{name}"): {"state": "registered"},
        ("POST", "/api/federation/jobs/{job}/decision"): {"release": False},
        ("POST", "/auth/clients"): {
            "name": "c",
            "grants": [{"project": PROJECT, "role": "member"}],
        },
    }
    if (method, path) == ("POST", "/auth/token"):
        return {
            "data": {"grant_type": "client_credentials", "client_id": "gck_x", "client_secret": "y"}
        }
    if path.startswith("/dicomweb/") and method == "POST":
        body, content_type = multipart_related([synthetic_instance(study_uid=STUDY)])
        return {"content": body, "headers": {"Content-Type": content_type}}
    if (method, path) == ("POST", "/api/projects/{project}/files"):
        return {"files": {"file": ("counts.csv", b"label,n\nlesion,1\n", "text/csv")}}
    if (method, path) in json_bodies:
        return {"json": json_bodies[(method, path)]}
    return {}


def fill(path: str) -> str:
    if "/returns/" in path:  # a result's key: its SOP Instance UID at the hub
        path = path.replace("{key}", SOP)
    return (
        path.replace("{project}", PROJECT)
        .replace("{study}", STUDY)
        .replace("{series}", SERIES)
        .replace("{sop}", SOP)
        .replace("{username}", "mx-target")
        .replace("{subject}", "SUBJ-NOBODY")
        .replace("{upload_id}", "0" * 32)
        .replace("{index}", "0")
        .replace("{key}", HELD)
        .replace("{digest}", "ab" * 32)
        .replace("{ae_title}", "MX_WS")
        .replace("{ident}", "0" * 32)
        .replace("{key_id}", "gck_0000000000")
        .replace("{client_id}", "gck_0000000000")
        .replace("{name}", "mx-nosite")
        .replace("{question}", "0" * 32)
        .replace("{job}", "0" * 32)
        .replace("{run}", "0" * 32)
    )


def openapi_routes(stack: Stack) -> set[tuple[str, str]]:
    settings = stack.settings()
    routes = set()
    for name in SERVICES:
        for path, operations in service_app(name, settings).openapi()["paths"].items():
            routes |= {(method.upper(), path) for method in operations}
    return routes


async def callers(s: Site) -> list[Caller]:
    admin = await s.token()
    people = {}
    async with s.client() as client:
        for name in ("mx-nobody", "mx-collaborator", "mx-member", "mx-owner", "mx-target"):
            password = f"{name} rides a blue bicycle"
            made = await client.post(
                "/auth/users", json={"username": name, "password": password}, headers=admin
            )
            assert made.status_code == 201, made.text
            people[name] = password
        for project in (PROJECT, "elsewhere"):
            await client.post("/auth/projects", json={"name": project}, headers=admin)
        for role in ("collaborator", "member", "owner"):
            await client.put(
                f"/auth/projects/{PROJECT}/members",
                json={"username": f"mx-{role}", "role": role},
                headers=admin,
            )
        await client.put(
            f"/auth/projects/{PROJECT}/networks", json={"networks": ["127.0.0.0/8"]}, headers=admin
        )
        other_key = await client.post(
            "/auth/projects/elsewhere/keys", json={"name": "x", "role": "owner"}, headers=admin
        )

    async def known() -> bool:
        async with s.client() as client:
            return (
                await client.get(f"/dicomweb/{PROJECT}/studies", headers=admin)
            ).status_code in (200, 204) and (
                await client.get(f"/ingest/{PROJECT}/uploads", headers=admin)
            ).status_code == 200

    await wait_until(known, "the project known to every service")
    now = int(time.time())
    expired = s.auth.signing.signer.sign(
        "mx-owner", site_roles=[], projects={PROJECT: "owner"}, lifetime_seconds=-60
    )
    forged = TokenSigner(generate_private_key_pem(), "giftcloud", "giftcloud").sign(
        "mx-owner", site_roles=["admin"], projects={PROJECT: "owner"}, lifetime_seconds=300
    )
    assert now
    tokens = {n: await s.token(n, p) for n, p in people.items()}
    return [
        Caller("anonymous", {}, kind="none"),
        Caller("expired token", {"Authorization": f"Bearer {expired}"}, kind="none"),
        Caller("forged token", {"Authorization": f"Bearer {forged}"}, kind="none"),
        Caller("no role", tokens["mx-nobody"], password=people["mx-nobody"]),
        Caller(
            "collaborator",
            tokens["mx-collaborator"],
            role="collaborator",
            password=people["mx-collaborator"],
        ),
        Caller("member", tokens["mx-member"], role="member", password=people["mx-member"]),
        Caller("owner", tokens["mx-owner"], role="owner", password=people["mx-owner"]),
        Caller("admin", admin, admin=True, password=ADMIN_PASSWORD),
        Caller(
            "key of another project",
            {"Authorization": f"Bearer {other_key.json()['key']}"},
            kind="key",
        ),
        Caller(
            "owner, disallowed address",
            tokens["mx-owner"],
            address=OUTSIDE,
            role="owner",
            password=people["mx-owner"],
        ),
    ]


async def test_every_route_for_every_caller(stack: Stack) -> None:
    routes = openapi_routes(stack)
    unlisted = sorted(routes - set(ACCESS))
    assert not unlisted, f"routes without an access rule in this test: {unlisted}"
    assert not set(ACCESS) - routes, f"rules for routes that are gone: {set(ACCESS) - routes}"
    async with site(stack.settings(auth={"rate_per_second": 1000})) as s:
        assert {
            (m.upper(), p) for p, ops in s.app.openapi()["paths"].items() for m in ops
        } == routes
        everyone = await callers(s)
        results: dict[tuple[str, str], dict[str, int]] = {}
        wrong: list[str] = []
        for method, path in sorted(routes, key=lambda r: (r[1], r[0])):
            rule = ACCESS[(method, path)]
            for caller in everyone:
                request = body_for(method, path, caller)
                headers = {**caller.headers, **request.pop("headers", {})}  # type: ignore[dict-item]
                async with s.client(caller.address) as client:
                    response = await client.request(
                        method,
                        fill(path),
                        headers=headers,
                        **request,  # type: ignore[arg-type]
                    )
                status = response.status_code
                results.setdefault((method, path), {})[caller.name] = status
                scoped = "{project}" in path or (method, path) == ("POST", "/auth/invites")
                want = expected(rule, caller, scoped)
                ok = status < 500 and (
                    (want == "in" and status not in (401, 403)) or str(status) == want
                )
                if not ok:
                    wrong.append(
                        f"{method} {path} as {caller.name}: {status} (expected {want}):"
                        f" {response.text[:150]}"
                    )
    names = [c.name for c in everyone]
    print("\ncallers: " + "; ".join(f"{i} {n}" for i, n in enumerate(names, start=1)))
    print(f"{'route':82}" + "".join(f"{i:>5}" for i in range(1, len(names) + 1)))
    for (method, path), by_caller in results.items():
        print(f"{method + ' ' + path:82}" + "".join(f"{by_caller[n]:>5}" for n in names))
    assert not wrong, "\n".join(wrong)
