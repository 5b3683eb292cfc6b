"""Object storage: S3 (MinIO in deployment, SeaweedFS in tests) or a folder, same interface."""

from giftcloud_dicom.uid import check_uid

from giftcloud_core.crypto import EnvelopeCipher
from giftcloud_core.names import check_project_name
from giftcloud_core.settings import StorageSettings
from giftcloud_core.storage.base import InvalidKey, ObjectStore, check_key
from giftcloud_core.storage.encrypted import EncryptedObjectStore
from giftcloud_core.storage.fs import FileObjectStore
from giftcloud_core.storage.s3 import S3ObjectStore

__all__ = [
    "EncryptedObjectStore",
    "FileObjectStore",
    "InvalidKey",
    "ObjectStore",
    "S3ObjectStore",
    "archive_key",
    "check_key",
    "create_store",
]


def archive_key(project: str, study: str, series: str, sop: str) -> str:
    """Where an instance lives in the archive bucket; its metadata sits beside it as ``.json``.

    Built only from a valid project name and valid UIDs (:class:`ValueError` otherwise), so
    one project's instance can never be written over another's.
    """
    check_project_name(project)
    check_uid(study, "StudyInstanceUID")
    check_uid(series, "SeriesInstanceUID")
    check_uid(sop, "SOPInstanceUID")
    return f"{project}/{study}/{series}/{sop}.dcm"


def create_store(settings: StorageSettings) -> ObjectStore:
    """The store the settings name, encrypting ``incoming`` and ``quarantine`` (and
    ``archive`` and ``outgoing`` when ``encrypt_archive``) with the envelope key; without a
    key, no bucket that must be encrypted can be written."""
    inner: ObjectStore = (
        FileObjectStore(settings.path) if settings.kind == "fs" else S3ObjectStore(settings)
    )
    encrypted = {settings.buckets.incoming, settings.buckets.quarantine}
    if settings.encrypt_archive:  # and what is on its way there
        encrypted |= {settings.buckets.archive, settings.buckets.outgoing}
    cipher = (
        EnvelopeCipher.from_base64(settings.encryption_key.get_secret_value())
        if settings.encryption_key is not None
        else None
    )
    return EncryptedObjectStore(inner, cipher, frozenset(encrypted))
