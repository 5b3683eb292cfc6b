"""What the DICOM route routes answer."""

from pydantic import BaseModel


class DicomRouteOut(BaseModel):
    """The project's AE title, and who may send to it (empty lists: anyone)."""

    project: str
    ae_title: str
    calling_ae_titles: list[str]
    networks: list[str]
