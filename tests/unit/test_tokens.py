import time

import pytest
from giftcloud_core.errors import Forbidden, Unauthorized
from giftcloud_core.tokens import (
    Principal,
    SignerJwks,
    TokenSigner,
    TokenVerifier,
    generate_private_key_pem,
)
from jose import jwt

PEM = generate_private_key_pem()


def verifier_for(signer: TokenSigner, audience: str = "giftcloud") -> TokenVerifier:
    return TokenVerifier(SignerJwks(lambda: signer), "giftcloud", audience)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(PEM, "giftcloud", "giftcloud")


async def test_a_signed_token_verifies_to_its_principal(signer: TokenSigner) -> None:
    token = signer.sign(
        "alice", site_roles=["reidentifier"], projects={"p1": "member"}, lifetime_seconds=60
    )
    principal = await verifier_for(signer).verify(token)
    assert principal.subject == "alice"
    assert principal.site_roles == {"reidentifier"}
    assert principal.role_on("p1") == "member"
    assert principal.role_on("p2") is None


async def test_expired_token_is_refused(signer: TokenSigner) -> None:
    token = signer.sign("alice", site_roles=[], projects={}, lifetime_seconds=-10)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier_for(signer).verify(token)


async def test_token_for_another_audience_is_refused(signer: TokenSigner) -> None:
    token = signer.sign("alice", site_roles=[], projects={}, lifetime_seconds=60)
    with pytest.raises(Unauthorized):
        await verifier_for(signer, audience="elsewhere").verify(token)


async def test_token_of_another_key_is_refused(signer: TokenSigner) -> None:
    other = TokenSigner(generate_private_key_pem(), "giftcloud", "giftcloud")
    token = other.sign("mallory", site_roles=["admin"], projects={}, lifetime_seconds=60)
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier_for(signer).verify(token)


async def test_symmetric_forgery_with_the_public_key_is_refused(signer: TokenSigner) -> None:
    # the classic alg-confusion attack: HS256 keyed with the public JWK
    forged = jwt.encode(
        {
            "sub": "mallory",
            "iss": "giftcloud",
            "aud": "giftcloud",
            "exp": int(time.time()) + 60,
            "roles": ["admin"],
        },
        "public-key-bytes",
        algorithm="HS256",
        headers={"kid": signer.kid},
    )
    with pytest.raises(Unauthorized):
        await verifier_for(signer).verify(forged)


async def test_garbage_is_refused(signer: TokenSigner) -> None:
    with pytest.raises(Unauthorized):
        await verifier_for(signer).verify("not.a.token")


def test_roles_decide_access() -> None:
    member = Principal("bob", projects={"p1": "collaborator"})
    assert member.require("p1") == "collaborator"
    with pytest.raises(Forbidden, match="p1"):
        member.require("p1", frozenset({"owner", "member"}))
    with pytest.raises(Forbidden):
        member.require("p2")
    assert Principal("root", site_roles=frozenset({"admin"})).require("anything") == "owner"


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud"])
async def test_a_token_without_a_required_claim_is_refused(
    signer: TokenSigner, missing: str
) -> None:
    """A token without an expiry would be valid for ever: refused, as is one without the
    other claims every check relies on."""
    now = int(time.time())
    claims = {"iss": "giftcloud", "aud": "giftcloud", "sub": "alice", "iat": now, "exp": now + 60}
    del claims[missing]
    token = jwt.encode(claims, signer._private_pem, algorithm="RS256", headers={"kid": signer.kid})
    with pytest.raises(Unauthorized):
        await verifier_for(signer).verify(token)


def test_a_registered_machine_is_its_credential_never_a_person_of_that_name() -> None:
    key = Principal("gck_runner", kind="client", projects={"p": "collaborator"})
    assert key.is_credential("gck_runner")
    assert not key.is_credential("gck_other")
    assert not key.is_credential(None)  # nothing registered: nobody is it
    assert not Principal("gck_runner", site_roles=frozenset({"admin"})).is_credential("gck_runner")
