import pytest
from giftcloud_core.settings import Settings


def test_nested_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTCLOUD_DB__URL", "postgresql+asyncpg://u@db:5432/x")
    monkeypatch.setenv("GIFTCLOUD_BUS__PREFETCH", "7")
    monkeypatch.setenv("GIFTCLOUD_STORAGE__BUCKETS__ARCHIVE", "my-archive")
    monkeypatch.setenv("GIFTCLOUD_ADMIN_PASSWORD", "s3cret-password")
    settings = Settings()
    assert settings.db.url.endswith("@db:5432/x")
    assert settings.bus.prefetch == 7
    assert settings.storage.buckets.archive == "my-archive"
    assert settings.admin_password is not None
    assert "s3cret" not in repr(settings)
