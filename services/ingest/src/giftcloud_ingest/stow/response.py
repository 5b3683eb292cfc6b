"""The STOW-RS answer (PS3.18 §10.5.3): valid DICOM JSON saying what was stored and what
failed, why, and where each stored instance will be."""

from typing import Any

from fastapi.responses import JSONResponse
from giftcloud_core.errors import (
    GiftcloudError,
)
from giftcloud_dicom.instance import (
    STUDY_UID_MISMATCH,
)

from giftcloud_ingest.receiving.checks import StoreResult

DICOM_JSON = "application/dicom+json"

#: giftcloud's private block in STOW-RS answers: (0009,0010) names it, (0009,1001) holds a
#: failure's whole reason (ErrorComment is LO: 64 characters), (0009,1002) the request's own
#: refusal, (0009,1003) the part's place in the request (0-based), so a client ties each
#: answer to the file it sent
PRIVATE_CREATOR = {"00090010": {"vr": "LO", "Value": ["GIFTCLOUD"]}}
WHOLE_REASON, REQUEST_REFUSED, PART_INDEX = "00091001", "00091002", "00091003"


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def stow_response(
    result: StoreResult,
    base_url: str,
    project: str,
    error: GiftcloudError | None = None,
    first_index: int = 0,
) -> JSONResponse:
    """The PS3.18 STOW-RS response, valid DICOM JSON: 200 all stored, 202 some stored, 400
    (409 for a study conflict) none stored; each stored instance with a RetrieveURL that
    leads to it once it is archived (under its de-identified UIDs), each failure with its
    reason code and its reason. A request refused part way (``error``) answers with its
    status and says what was stored before."""
    status_url = f"{base_url}/ingest/{project}/uploads/{result.upload_id}"
    body: dict[str, Any] = {}
    if result.stored:
        body["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _uid(s.sop_class_uid),
                    "00081155": _uid(s.sop_instance_uid),
                    "00081190": {"vr": "UR", "Value": [f"{status_url}/instances/{s.index}"]},
                    **PRIVATE_CREATOR,
                    PART_INDEX: {"vr": "UL", "Value": [s.index - first_index]},
                }
                for s in result.stored
            ],
        }
    if result.failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _uid(f.sop_class_uid),
                    "00081155": _uid(f.sop_instance_uid),
                    "00081197": {"vr": "US", "Value": [f.reason]},
                    "00000902": {"vr": "LO", "Value": [f.message[:64]]},
                    **PRIVATE_CREATOR,
                    WHOLE_REASON: {"vr": "UT", "Value": [f.message]},
                    PART_INDEX: {"vr": "UL", "Value": [f.index - first_index]},
                }
                for f in result.failed
            ],
        }
    if error is not None:
        stored = f"{len(result.stored)} instance(s) before it were stored"
        body.update(PRIVATE_CREATOR)
        body[REQUEST_REFUSED] = {"vr": "UT", "Value": [f"{error.message}; {stored}"]}
    body["00081190"] = {"vr": "UR", "Value": [f"{base_url}/dicomweb/{project}/studies"]}
    if error is not None:
        status = error.status
    elif not result.failed:
        status = 200
    elif result.stored:
        status = 202
    elif all(f.reason == STUDY_UID_MISMATCH for f in result.failed):
        status = 409  # well-formed, but in conflict with the study named in the URL
    else:
        status = 400
    return JSONResponse(
        body,
        status_code=status,
        media_type=DICOM_JSON,
        headers={"X-Giftcloud-Upload": result.upload_id, "Link": f'<{status_url}>; rel="status"'},
    )
