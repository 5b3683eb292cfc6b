from __future__ import annotations

from datetime import datetime

from giftcloud_core.clock import now as _now
from sqlmodel import Field, SQLModel

SCHEMA = "auth"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=128)
    #: empty for an account that signs in only through its identity provider
    password_hash: str
    site_roles: str = ""  # comma-separated: admin, creator, reidentifier, steward
    email: str = ""
    #: a disabled account cannot sign in, refresh, or use its keys
    disabled: bool = False
    #: the identity provider's issuer and subject of an account made or matched by SSO
    oidc_issuer: str = ""
    oidc_subject: str = ""
    password_changed_at: datetime = Field(default_factory=_now)
    created_at: datetime = Field(default_factory=_now)

    def roles(self) -> list[str]:
        return [r for r in self.site_roles.split(",") if r]


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = {"schema": SCHEMA}

    name: str = Field(primary_key=True, max_length=64)
    title: str = ""
    created_by: str
    #: CIDRs its data may be reached from, comma-separated; None: the site's default
    networks: str | None = None
    created_at: datetime = Field(default_factory=_now)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = {"schema": SCHEMA}

    project: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.projects.name")
    username: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.users.username")
    role: str


class SiteSetting(SQLModel, table=True):
    """Site-wide settings an admin changes at run time (the default networks)."""

    __tablename__ = "site_settings"
    __table_args__ = {"schema": SCHEMA}

    key: str = Field(primary_key=True)
    value: str


class SigningKey(SQLModel, table=True):
    """A token-signing key: published in the JWKS from its creation, signing from
    ``activates_at``, published until ``retires_at`` (its last tokens have expired)."""

    __tablename__ = "signing_keys"
    __table_args__ = {"schema": SCHEMA}

    kid: str = Field(primary_key=True)
    private_pem: str
    created_at: datetime = Field(default_factory=_now)
    activates_at: datetime = Field(default_factory=_now)
    retires_at: datetime | None = None


class RefreshToken(SQLModel, table=True):
    """One refresh token (its SHA-256); each use replaces it with the next of its family.
    A used token shown again means it was stolen: the whole family is revoked."""

    __tablename__ = "refresh_tokens"
    __table_args__ = {"schema": SCHEMA}

    token_hash: str = Field(primary_key=True)
    family: str = Field(index=True)
    username: str = Field(index=True)
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class Client(SQLModel, table=True):
    """A machine credential: an API key (one project, one role) or an OAuth2 client of a
    site or pipeline. The secret is kept as its SHA-256 (it is random, 256 bits)."""

    __tablename__ = "clients"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)  # public: gck_ + 10 characters, shown in lists and logs
    name: str
    secret_hash: str
    created_by: str = Field(index=True)
    #: CIDRs the credential may be used from, comma-separated; empty: anywhere
    networks: str = ""
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ClientGrant(SQLModel, table=True):
    __tablename__ = "client_grants"
    __table_args__ = {"schema": SCHEMA}

    client_id: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.clients.id")
    project: str = Field(primary_key=True, foreign_key=f"{SCHEMA}.projects.name")
    role: str


class OneTimeLink(SQLModel, table=True):
    """An invitation or a password reset: a secret link (its SHA-256 kept), used once."""

    __tablename__ = "one_time_links"
    __table_args__ = {"schema": SCHEMA}

    token_hash: str = Field(primary_key=True)
    kind: str  # invite | reset
    created_by: str
    username: str = ""  # reset: whose password
    project: str = ""  # invite: the project and role it grants
    role: str = ""
    site_roles: str = ""  # invite by an admin: site roles it grants
    email: str = ""
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    used_at: datetime | None = None


class SignInFailures(SQLModel, table=True):
    """Failed sign-ins of one account name or one address, for throttling and lockout.
    Unknown names are counted like real ones, so the answers never tell them apart."""

    __tablename__ = "sign_in_failures"
    __table_args__ = {"schema": SCHEMA}

    key: str = Field(primary_key=True)  # user:<name>, user:<name>|<ip> or address:<ip>
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=_now)
    locked_until: datetime | None = None


class OidcRequest(SQLModel, table=True):
    """A sign-in sent to the identity provider, until it comes back (once, within minutes):
    its PKCE verifier and nonce, and where the person was going."""

    __tablename__ = "oidc_requests"
    __table_args__ = {"schema": SCHEMA}

    state_hash: str = Field(primary_key=True)
    verifier: str
    nonce: str
    next_path: str = "/"
    expires_at: datetime


class Revocation(SQLModel, table=True):
    """Access tokens of a subject (a user, a key) issued before a moment are refused: the
    services learn these from auth every few seconds."""

    __tablename__ = "revocations"
    __table_args__ = {"schema": SCHEMA}

    subject: str = Field(primary_key=True)
    revoked_before: datetime


class OutboxEvent(SQLModel, table=True):
    """An event committed in the transaction of the change it announces; the relay publishes
    it and then deletes it, so a broker that is away loses no event."""

    __tablename__ = "outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    body: str  # the event as JSON
    created_at: datetime = Field(default_factory=_now)
