from pathlib import Path

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


def test_secrets_from_files_as_kubernetes_mounts_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "GIFTCLOUD_DB__URL").write_text("postgresql+asyncpg://u:pw@db:5432/x")
    (tmp_path / "GIFTCLOUD_ANONYMISE__SECRET").write_text("c2VjcmV0LXNlY3JldA==")
    (tmp_path / "GIFTCLOUD_ADMIN_PASSWORD").write_text("from a file, not the env")
    monkeypatch.setenv("GIFTCLOUD_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("GIFTCLOUD_ADMIN_PASSWORD", "the environment wins")
    settings = Settings()
    assert settings.db.url == "postgresql+asyncpg://u:pw@db:5432/x"
    assert settings.anonymise.secret is not None
    assert settings.anonymise.secret.get_secret_value() == "c2VjcmV0LXNlY3JldA=="
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "the environment wins"


def test_a_missing_secrets_folder_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GIFTCLOUD_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(Exception, match="absent"):
        Settings()
