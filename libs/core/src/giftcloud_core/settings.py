"""Settings read from the environment: prefix ``GIFTCLOUD_``, nested with ``__``.

Build a :class:`Settings` in the entry point (``create_app``, the CLI) and pass it
down; nothing in giftcloud reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class DatabaseSettings(BaseModel):
    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/giftcloud"
    pool_size: int = 5
    #: create the database named in ``url`` if it does not exist (dev, tests, ``up``)
    create_database: bool = False


class BusSettings(BaseModel):
    #: rabbitmq (deployments), postgres (``giftcloud up``: durable, in the database), or
    #: memory (one process, nothing kept: unit tests)
    kind: Literal["rabbitmq", "postgres", "memory"] = "rabbitmq"
    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "giftcloud"
    #: prefix of every queue name: several deployments (or test runs) can share one vhost
    namespace: str = ""
    prefetch: int = 16
    max_retries: int = 5
    retry_base_seconds: float = 0.5
    #: deliveries before a quorum queue dead-letters a message that keeps crashing its consumer
    delivery_limit: int = 50
    #: the postgres bus's schema in the database (``db.url``)
    table_schema: str = "bus"
    #: bytes of instances a process's handlers hold at once, whatever ``prefetch`` lets in
    #: (anonymise needs about three times this in memory, archive about twice)
    memory_budget_bytes: int = 128 * 1024**2


class Buckets(BaseModel):
    incoming: str = "giftcloud-incoming"
    archive: str = "giftcloud-archive"
    quarantine: str = "giftcloud-quarantine"
    #: de-identified bundles between anonymise and archive (short-lived)
    outgoing: str = "giftcloud-outgoing"

    def all(self) -> list[str]:
        return [self.incoming, self.archive, self.quarantine, self.outgoing]


class StorageSettings(BaseModel):
    kind: Literal["s3", "fs"] = "s3"
    endpoint: str = "127.0.0.1:9000"
    access_key: SecretStr = SecretStr("giftcloud")
    secret_key: SecretStr = SecretStr("giftcloud-secret")
    secure: bool = False
    region: str | None = None
    path: Path = Path("./giftcloud-data/objects")
    buckets: Buckets = Field(default_factory=Buckets)
    #: base64 of 32 bytes: the key-encryption key for envelope encryption at rest
    encryption_key: SecretStr | None = None
    #: buckets encrypted at rest besides ``incoming`` and ``quarantine`` (always encrypted)
    encrypt_archive: bool = False


class AuthSettings(BaseModel):
    #: where services other than auth fetch the token-signing keys
    jwks_url: str = "http://127.0.0.1:8001/auth/.well-known/jwks.json"
    #: where services other than auth reach it directly (not through the gateway): to
    #: exchange API keys for tokens and to learn which tokens were revoked
    url: str = "http://127.0.0.1:8001"
    #: how often services ask auth which tokens were revoked (a disabled account, a
    #: removed member, a revoked key stop working within this many seconds)
    revocation_poll_seconds: float = 10.0
    issuer: str = "giftcloud"
    audience: str = "giftcloud"
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    #: PEM of the RSA private key that signs tokens; generated and kept in the database if unset
    signing_key: SecretStr | None = None
    #: after a signing-key rotation, how long the new key is published before it signs (the
    #: services' JWKS cache holds keys for five minutes)
    key_publish_seconds: int = 360
    #: how often events committed but not yet published (broker away) are retried, in seconds
    outbox_interval_seconds: float = 5.0
    #: failed sign-ins of an account or address before each attempt must wait (2^n s)
    throttle_after: int = 5
    #: failed sign-ins of one address (any accounts) before it must wait
    address_throttle_after: int = 20
    #: failed sign-ins (throttled attempts count too) before an account locks
    lockout_after: int = 20
    #: how long a lockout lasts; 0: until an admin lifts it
    lockout_minutes: int = 60
    #: requests per second one address may make to /auth (and a burst of this many times 5)
    rate_per_second: float = 20.0
    invite_hours: int = 72
    reset_hours: int = 24

    #: OpenID Connect: the identity provider's issuer URL; unset: no single sign-on
    oidc_issuer: str | None = None
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    #: the provider's claim matched to a giftcloud username when an account is made
    oidc_username_claim: str = "preferred_username"
    #: make an account (no roles) for a new identity, or refuse it until an admin makes one
    oidc_create_users: bool = True

    @property
    def token_url(self) -> str:
        return f"{self.url.rstrip('/')}/auth/token"

    @property
    def revocations_url(self) -> str:
        return f"{self.url.rstrip('/')}/auth/internal/revocations"


class NetworkSettings(BaseModel):
    #: CIDRs of the proxies in front (the gateway, the ingress): only their X-Forwarded-For
    #: is believed; JSON list, e.g. ``["10.0.0.0/8"]``
    trusted_proxies: list[str] = Field(default_factory=list)


class HttpSettings(BaseModel):
    #: origins allowed to call the API from a browser (CORS); none by default
    cors_origins: list[str] = Field(default_factory=list)
    #: serve the API documentation at /docs and /openapi.json
    docs: bool = True


class LimitsSettings(BaseModel):
    """Sizes every way in and every service keeps to, whatever the input says of itself."""

    #: the largest DICOM instance accepted (a STOW-RS part, a C-STORE, an uploaded file)
    max_instance_bytes: int = 256 * 1024**2
    #: the largest file that is not DICOM attached to a project (a result: a mask, a table)
    max_file_bytes: int = 128 * 1024**2
    #: the most a deflated instance may inflate to (it is inflated as a stream and refused
    #: past this); unset: twice ``max_instance_bytes``
    max_inflated_bytes: int | None = None

    @property
    def inflated_ceiling(self) -> int:
        """The ceiling on inflating a deflated instance, in bytes."""
        if self.max_inflated_bytes is not None:
            return self.max_inflated_bytes
        return 2 * self.max_instance_bytes


class IngestSettings(BaseModel):
    #: largest STOW-RS request body accepted, in bytes
    max_request_bytes: int = 2 * 1024**3
    #: most parts (instances) in one STOW-RS request
    max_parts: int = 10_000
    #: a request body that sends nothing for this long is refused (408)
    body_idle_seconds: float = 30.0
    #: after its first ``body_idle_seconds``, a request body must average this rate (408
    #: otherwise): a trickle holds no upload open for ever
    body_min_bytes_per_second: float = Field(default=16 * 1024, ge=0)
    #: STOW-RS requests one caller has under way at once (one more: 429)
    max_uploads_per_caller: int = Field(default=8, ge=1)
    #: a bundle stored but never announced (its process died in between) is removed from
    #: ``incoming`` this long after it was begun; no store and publish takes near this long
    orphan_seconds: float = 600.0
    #: this ingest is the only one (``giftcloud up``): at its start nothing else can be
    #: under way, so what its previous life left half done is removed at once
    sole_instance: bool = False
    #: the DICOM node's port (C-ECHO, C-STORE SCP); 0: no DICOM node
    dicom_port: int = Field(default=11112, ge=0, le=65535)
    #: the address the DICOM node listens on (a deployment reached by modalities: 0.0.0.0)
    dicom_host: str = "127.0.0.1"
    #: the node's own AE title, answered to C-ECHO on any called AE title a project routes
    dicom_ae_title: str = Field(default="GIFTCLOUD", min_length=1, max_length=16)
    #: the largest PDU the node receives (bytes; 0: no limit). Larger PDUs cost less CPU
    dicom_max_pdu: int = Field(default=1024**2, ge=0)
    #: associations the node serves at once (accepted ones: a connection that has not
    #: asked for an association takes no slot); one more is rejected (local limit exceeded)
    dicom_max_associations: int = Field(default=32, ge=1)
    #: connections at once from one address (associations or not); more are closed at once
    dicom_max_connections_per_address: int = Field(default=16, ge=1)
    #: an association that sends nothing for this long is aborted (seconds)
    dicom_idle_seconds: float = Field(default=60.0, gt=0)
    #: a retrieval's worker holds it this long, renewing as it works; a retrieval whose
    #: ingest died is taken up by another (or the restarted one) once it runs out
    retrieval_lease_seconds: float = Field(default=30.0, gt=0)
    #: how often an idle worker looks for retrievals to carry out
    retrieval_poll_seconds: float = Field(default=2.0, gt=0)


class ForwardSettings(BaseModel):
    """A site forwarding its archived (de-identified) instances to a hub's STOW-RS."""

    #: the hub's base URL (its gateway, https in production); empty: nothing is forwarded
    hub_url: str = ""
    #: the machine credential the hub issued: an OAuth2 client (client credentials) ...
    client_id: str = ""
    client_secret: SecretStr | None = None
    #: ... or an API key of the hub (``gck_...``); never a person's password
    api_key: SecretStr | None = None
    #: instances in one STOW-RS request to the hub
    batch: int = Field(default=20, ge=1, le=500)
    #: tries before an instance is set aside as failed (it can be retried by hand)
    max_attempts: int = Field(default=12, ge=1)
    #: the first back-off after a failed try (doubles, at most 10 minutes)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    #: how often an idle forwarder looks for work
    poll_seconds: float = Field(default=1.0, gt=0)
    #: one request to the hub may take this long
    timeout_seconds: float = Field(default=120.0, gt=0)
    #: how often a project's results are pulled back from the hub (when it pulls them)
    pull_seconds: float = Field(default=15.0, gt=0)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after a failed try that had ``attempts`` before it: the first
        back-off, doubling, at most 10 minutes (a forward to the hub, a delivery)."""
        return float(min(600.0, self.retry_base_seconds * 2**attempts))


class ApiSettings(BaseModel):
    #: the most results one QIDO-RS page returns (a larger ``limit`` is cut to it, with a
    #: ``Warning: 299`` header when more remain)
    qido_max_limit: int = 1000
    #: WADO-RS keeps instances it transcoded here (default: the system's temporary folder)
    transcode_cache_dir: Path | None = None
    #: ... the least recently used removed past this many bytes (an api pod's /tmp is 1Gi)
    transcode_cache_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    #: the most frames a rendered series or study answers (each a JPEG or PNG, held at once)
    rendered_max_frames: int = Field(default=1000, ge=1)
    #: OHIF's viewer, installed here (``python -m giftcloud_api.ohif.install``), is served at
    #: /ohif/; unset or not installed: no OHIF (the image sets it; ``giftcloud up`` installs it)
    ohif_dir: Path | None = None
    #: DICOM query/retrieve (C-FIND, C-GET, C-MOVE on the catalogue) on this port; 0: off
    #: (the default: a hub turns it on, a site has no reason to)
    dimse_port: int = Field(default=0, ge=0, le=65535)
    dimse_host: str = "127.0.0.1"
    dimse_ae_title: str = "GIFTCLOUD"
    #: an association idle this long is ended
    dimse_idle_seconds: float = Field(default=60.0, gt=0)
    dimse_max_connections_per_address: int = Field(default=8, ge=1)
    #: TLS (PEM files); with a CA, callers must present a certificate it signed
    dimse_tls_cert: Path | None = None
    dimse_tls_key: Path | None = None
    dimse_tls_ca: Path | None = None


class FederationSettings(BaseModel):
    """Federated questions: a hub waits for its sites' answers; a site (its api) fetches
    questions from its hub (GIFTCLOUD_FORWARD__HUB_URL, the same machine credential)."""

    #: a site's part not answered this long after the question was asked is failed
    answer_seconds: float = Field(default=60.0, gt=0)
    #: a site's request for questions is held open this long when there are none
    wait_seconds: float = Field(default=20.0, gt=0, le=60)
    #: how soon a site asks again after an error (its hub away)
    retry_seconds: float = Field(default=5.0, gt=0)
    #: a job's algorithm running longer than this at a site is stopped and failed
    job_seconds: float = Field(default=600.0, gt=0)
    #: the largest output (JSON) a job's algorithm may give
    job_output_bytes: int = Field(default=262_144, gt=0)
    #: how often a site looks for queued jobs and for new series for its standing jobs
    standing_seconds: float = Field(default=30.0, gt=0)
    #: a Flower run whose runner has not reported for this long is failed (the runner died)
    flower_lease_seconds: float = Field(default=120.0, gt=0)


class AnonymiseSettings(BaseModel):
    #: deidentify (a site: keys, vault, the full engine) or verify (a hub: no secrets; checks
    #: that what arrives is de-identified, quarantines what is not)
    mode: Literal["deidentify", "verify"] = "deidentify"
    #: the site's pseudonymisation secret (base64 of >= 32 bytes); per-project keys derive from it
    secret: SecretStr | None = None
    #: a folder of per-project profiles, ``{project}.yaml``; others get the default profile
    profiles_dir: Path | None = None
    #: the site's patient namespace (YAML: its own name, issuer aliases, what to do with an
    #: unknown issuer); unset: every patient is the site's own. A profile may set its own.
    namespace_file: Path | None = None
    #: scan every output for the input's identifiers (reject on a hit)
    verify: bool = True
    #: PEM file of the re-identification vault's public key (X25519): writers seal with it
    vault_public_key: Path | None = None
    #: PEM file of the vault's private key: only where re-identification is served
    vault_private_key: Path | None = None


class MetricsSettings(BaseModel):
    #: when set, /metrics answers only ``Authorization: Bearer <token>`` (Prometheus's
    #: ``bearer_token``); when unset, only requests that did not come through a proxy
    token: SecretStr | None = None


class Settings(BaseSettings):
    """Every setting; from the environment, and from files in ``GIFTCLOUD_SECRETS_DIR`` (one
    file per variable, named like it: how Kubernetes mounts a Secret), the environment first."""

    model_config = SettingsConfigDict(
        env_prefix="GIFTCLOUD_", env_nested_delimiter="__", extra="ignore"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        folder = os.environ.get("GIFTCLOUD_SECRETS_DIR")
        if not folder:
            return init_settings, env_settings, dotenv_settings
        secrets = NestedSecretsSettingsSource(
            file_secret_settings,
            secrets_dir=folder,
            secrets_dir_missing="error",
            secrets_nested_delimiter="__",
            env_prefix="GIFTCLOUD_",
        )
        return init_settings, env_settings, dotenv_settings, secrets

    service: str = "giftcloud"
    #: the address people and clients use (RetrieveURLs, BulkDataURIs, one-time links,
    #: the single sign-on callback): one setting every service builds its URLs on
    public_url: str = "http://127.0.0.1:8000"
    #: where a process keeps what it makes for its operator (the first admin's password)
    data_dir: Path = Path("./giftcloud-data")
    log_level: str = "INFO"
    log_json: bool = True
    admin_password: SecretStr | None = None
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    anonymise: AnonymiseSettings = Field(default_factory=AnonymiseSettings)
    forward: ForwardSettings = Field(default_factory=ForwardSettings)

    @model_validator(mode="before")
    @classmethod
    def _public_url_of_old(cls, data: Any) -> Any:
        """``GIFTCLOUD_INGEST__PUBLIC_URL`` (before there was one setting for every service)
        still counts when ``GIFTCLOUD_PUBLIC_URL`` is not set."""
        if isinstance(data, dict):
            ingest = data.get("ingest")
            if isinstance(ingest, dict) and "public_url" in ingest:
                data = {**data, "ingest": {k: v for k, v in ingest.items() if k != "public_url"}}
                data.setdefault("public_url", ingest["public_url"])
        return data
