"""One isolated giftcloud configuration on the shared real infrastructure: its own
database, its own queue namespace and exchange, its own buckets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from giftcloud_core.settings import Settings

from support.infra import AMQP, db_url, test_secrets


@dataclass
class Stack:
    database: str
    s3_endpoint: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    secrets: dict[str, str] = field(default_factory=test_secrets)
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The environment a service process reads its settings from."""
        return {
            "GIFTCLOUD_LOG_LEVEL": "INFO",
            "GIFTCLOUD_DB__URL": db_url(self.database),
            "GIFTCLOUD_DB__POOL_SIZE": "3",
            "GIFTCLOUD_BUS__URL": AMQP,
            "GIFTCLOUD_BUS__EXCHANGE": self.exchange,
            "GIFTCLOUD_BUS__NAMESPACE": f"gc-test-{self.tag}.",
            "GIFTCLOUD_BUS__RETRY_BASE_SECONDS": "0.2",
            "GIFTCLOUD_STORAGE__KIND": "s3",
            "GIFTCLOUD_STORAGE__ENDPOINT": self.s3_endpoint,
            "GIFTCLOUD_STORAGE__BUCKETS__INCOMING": f"{self.bucket_prefix}incoming",
            "GIFTCLOUD_STORAGE__BUCKETS__ARCHIVE": f"{self.bucket_prefix}archive",
            "GIFTCLOUD_STORAGE__BUCKETS__QUARANTINE": f"{self.bucket_prefix}quarantine",
            "GIFTCLOUD_STORAGE__BUCKETS__OUTGOING": f"{self.bucket_prefix}outgoing",
            "GIFTCLOUD_ADMIN_PASSWORD": "admin-test-password",
            "GIFTCLOUD_INGEST__DICOM_PORT": "0",  # tests that want a DICOM node give a port
            **self.secrets,
            **self.extra,
        }

    def settings(self, **overrides: object) -> Settings:
        import os

        saved = dict(os.environ)
        try:
            os.environ.update(self.env())
            return Settings(**overrides)  # type: ignore[arg-type]
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @property
    def bucket_prefix(self) -> str:
        return f"gc-{self.tag}-"

    def buckets(self) -> list[str]:
        return [value for key, value in self.env().items() if "__BUCKETS__" in key]

    @property
    def exchange(self) -> str:
        return f"gc-test-{self.tag}"

    @property
    def namespace(self) -> str:
        return f"gc-test-{self.tag}."
