"""giftcloud's de-identification engine: pure (no network, no database).

Used by the anonymise service and by the ``giftcloud`` command alike.
"""

from giftcloud_deid.admission import Admission
from giftcloud_deid.conformance import audit
from giftcloud_deid.engine import DeidentifiedInstance, Deidentifier, PatientKey, deidentify
from giftcloud_deid.errors import Rejected
from giftcloud_deid.keys import ProjectKeys
from giftcloud_deid.namespace import DEFAULT_NAMESPACE, NamespaceError, PatientNamespace
from giftcloud_deid.profile import DEFAULT_PROFILE, Profile, ProfileError
from giftcloud_deid.rewrite import Change, cap_age, well_known_uid
from giftcloud_deid.rules import Option
from giftcloud_deid.verify import Identity, verify

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_PROFILE",
    "Admission",
    "Change",
    "DeidentifiedInstance",
    "Deidentifier",
    "Identity",
    "NamespaceError",
    "Option",
    "PatientKey",
    "PatientNamespace",
    "Profile",
    "ProfileError",
    "ProjectKeys",
    "Rejected",
    "audit",
    "cap_age",
    "deidentify",
    "verify",
    "well_known_uid",
]
