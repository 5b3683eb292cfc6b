"""giftcloud's de-identification engine: pure (no network, no database).

Used by the anonymise service and by the ``giftcloud`` command alike.
"""

from giftcloud_deid.engine import DeidentifiedInstance, Rejected, deidentify
from giftcloud_deid.keys import ProjectKeys

__all__ = ["DeidentifiedInstance", "ProjectKeys", "Rejected", "deidentify"]
