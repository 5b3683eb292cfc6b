"""Forged and stale tokens against every service's routes (all in one app on the real
servers, verified as each service verifies): every one is a 401."""

import base64
import hashlib
import hmac
import json
import time

from cryptography.hazmat.primitives import serialization
from giftcloud_core.tokens import TokenSigner, generate_private_key_pem
from support.site import site, wait_until
from support.stack import Stack

ROUTES = (
    "/auth/me",
    "/auth/projects",
    "/dicomweb/chest/studies",
    "/ingest/chest/uploads",
    "/api/projects/chest/subjects",
    "/anonymise/reidentify/chest/SUBJ-X",
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, object], claims: dict[str, object], sign: bytes | None) -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    if sign is None:
        return head + "."
    return head + "." + b64(hmac.new(sign, head.encode(), hashlib.sha256).digest())


async def test_forged_and_stale_tokens_are_refused_everywhere(stack: Stack) -> None:
    async with site(stack.settings()) as s, s.client() as client:
        admin = await s.token()
        await client.post(
            "/auth/users",
            json={"username": "zoe", "password": "zoe rides a blue bicycle"},
            headers=admin,
        )
        await client.post("/auth/projects", json={"name": "chest"}, headers=admin)
        await client.put(
            "/auth/projects/chest/members",
            json={"username": "zoe", "role": "owner"},
            headers=admin,
        )

        async def known() -> bool:
            return (await client.get("/ingest/chest/uploads", headers=admin)).status_code == 200

        await wait_until(known, "the project known to ingest")
        real = s.auth.signing.signer
        now = int(time.time())
        claims = {
            "iss": "giftcloud",
            "aud": "giftcloud",
            "sub": "mallory",
            "iat": now,
            "exp": now + 300,
            "roles": ["admin", "reidentifier"],
            "projects": {"chest": "owner"},
        }
        private = serialization.load_pem_private_key(real._private_pem.encode(), password=None)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk = real.public_jwk
        other = TokenSigner(generate_private_key_pem(), "giftcloud", "giftcloud")
        zoe = await s.token("zoe", "zoe rides a blue bicycle")
        attacks = {
            "alg none": raw_token({"alg": "none", "typ": "JWT", "kid": real.kid}, claims, None),
            "HS256 keyed with the public key": raw_token(
                {"alg": "HS256", "typ": "JWT", "kid": real.kid},
                claims,
                json.dumps(jwk).encode(),
            ),
            "HS256 keyed with PEM bytes": raw_token(
                {"alg": "HS256", "typ": "JWT", "kid": real.kid}, claims, public_pem
            ),
            "unknown kid": raw_token(
                {"alg": "RS256", "typ": "JWT", "kid": "no-such-key"}, claims, b"x"
            ),
            "another deployment's key": other.sign(
                "mallory", site_roles=["admin"], projects={"chest": "owner"}, lifetime_seconds=300
            ),
            "expired": real.sign(
                "zoe", site_roles=[], projects={"chest": "owner"}, lifetime_seconds=-5
            ),
            "not a token": "not.a.token",
        }
        # the header of a validly signed token with our kid swapped in
        head, body, signature = attacks["another deployment's key"].split(".")
        swapped = json.loads(base64.urlsafe_b64decode(head + "=="))
        swapped["kid"] = real.kid
        attacks["our kid, another key"] = f"{b64(json.dumps(swapped).encode())}.{body}.{signature}"
        refused: dict[str, set[int]] = {}
        for name, token in attacks.items():
            headers = {"Authorization": f"Bearer {token}"}
            refused[name] = {(await client.get(r, headers=headers)).status_code for r in ROUTES}
        # the owner's own token works, until the account is disabled
        assert (await client.get("/auth/me", headers=zoe)).status_code == 200
        await client.patch("/auth/users/zoe", json={"disabled": True}, headers=admin)
        refused["disabled subject"] = {
            (await client.get(r, headers=zoe)).status_code for r in ROUTES
        }
    print("\n".join(f"{name:32} {sorted(codes)}" for name, codes in refused.items()))
    assert all(codes == {401} for codes in refused.values()), refused
