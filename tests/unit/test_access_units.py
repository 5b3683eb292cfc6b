"""The pure parts of access control: password policy, networks and client addresses, the
signing-key ring, API-key syntax, the rate limit."""

from datetime import UTC, datetime, timedelta

import pytest
from giftcloud_auth.keyring import KeyRing, RingKey
from giftcloud_auth.passwords import WeakPassword, check_password, common_passwords
from giftcloud_core.credentials import split_key
from giftcloud_core.errors import Unauthorized
from giftcloud_core.network import (
    InvalidNetwork,
    address_in,
    client_address,
    normalise_networks,
)
from giftcloud_core.tokens import TokenSigner, generate_private_key_pem


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "at least 12"),
        ("x" * 1025, "at most 1024"),
        ("password1234", "commonly used"),
        ("Password1234!", "commonly used"),  # a common word dressed in digits and symbols
        ("!!!baseball2024", "commonly used"),
        ("aaaaaaaaaaaaaaa", "repeated"),
        ("abababababababab", "repeated"),
        ("1234567890123", "consecutive"),
        ("zyxwvutsrqponm", "consecutive"),
        ("qwertyuiopasdf", "consecutive"),
        ("giftcloud2024!", "service name"),
        ("rosalind-1999!", "account"),
    ],
)
def test_the_policy_refuses_guessable_passwords_and_says_why(password: str, rule: str) -> None:
    with pytest.raises(WeakPassword, match=rule):
        check_password(password, username="rosalind")


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "zoe rides a blue bicycle",
        "Ω-λ-ß unicode is fine too",
        "rosalind franklin's photo 51",  # the name, but far from all of it
    ],
)
def test_the_policy_accepts_long_uncommon_passwords_without_composition_rules(
    password: str,
) -> None:
    assert check_password(password, username="rosalind") == password


def test_the_common_password_list_ships_with_auth() -> None:
    common = common_passwords()
    assert len(common) > 29_000 and "123456" in common and "password" in common


def test_networks_are_checked_and_made_canonical() -> None:
    assert normalise_networks(["10.0.0.0/8", " 10.0.0.0/8", "2001:DB8::/32", "192.0.2.7"]) == (
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7/32",
    )
    for bad in ("10.1.2.3/8", "10.0.0.0/33", "example.org", ""):
        with pytest.raises(InvalidNetwork):
            normalise_networks([bad])


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("2001:db8::1", True),
        ("10.2.0.1", False),
        ("not-an-address", False),
        ("", False),
    ],
)
def test_address_in(address: str, inside: bool) -> None:
    assert address_in(address, ["10.1.0.0/16", "2001:db8::/32"]) is inside


def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    trusted = ["10.0.0.0/8"]
    xff = {"x-forwarded-for": "203.0.113.9, 10.0.0.5"}
    assert client_address("10.0.0.1", xff, trusted) == "203.0.113.9"  # past both proxies
    assert client_address("198.51.100.1", xff, trusted) == "198.51.100.1"  # not a proxy
    assert client_address("10.0.0.1", xff, []) == "10.0.0.1"  # no proxies configured
    assert client_address("10.0.0.1", {"x-forwarded-for": "junk, 10.0.0.5"}, trusted) == "10.0.0.5"
    spoofed = {"x-forwarded-for": "10.1.1.1, 203.0.113.9"}  # the client wrote the first hop
    assert client_address("10.0.0.1", spoofed, trusted) == "203.0.113.9"


def test_a_rotated_key_is_published_before_it_signs_and_the_old_one_until_its_tokens_expire() -> (
    None
):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = TokenSigner(generate_private_key_pem(), "i", "a")
    new = TokenSigner(generate_private_key_pem(), "i", "a")
    activates = now + timedelta(minutes=6)
    retires = KeyRing.retirement(activates, 15 * 60)
    ring = KeyRing([RingKey(old, now - timedelta(days=1), retires), RingKey(new, activates, None)])
    kids = lambda at: [k["kid"] for k in ring.jwks(at)["keys"]]  # noqa: E731
    assert kids(now) == [old.kid, new.kid] and ring.active(now) is old
    assert ring.active(activates) is new and kids(activates) == [old.kid, new.kid]
    assert kids(activates + timedelta(minutes=15)) == [old.kid, new.kid]
    assert kids(retires + timedelta(seconds=1)) == [new.kid]


def test_api_keys_name_their_client() -> None:
    assert split_key("gck_0123456789_s3cr_et") == ("gck_0123456789", "s3cr_et")
    for bad in ("gck_", "gck_abc", "xyz_abc_def", "gck__secret"):
        with pytest.raises(Unauthorized):
            split_key(bad)
