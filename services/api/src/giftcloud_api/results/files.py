"""Files that are not DICOM — NIfTI masks, CSV tables, PDFs, model cards — attached to a
project, a subject, a study or a series, with their provenance (inputs, tool and version,
who and when) and a SHA-256. They are kept in the archive bucket under
``{project}/files/{id}`` and served only to those who may read the project, as attachments
(never rendered by the browser on the site's origin)."""

from __future__ import annotations

import hashlib
import re
import uuid

from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, NotFound
from giftcloud_core.storage import ObjectStore
from sqlmodel import col, select

from giftcloud_api.catalogue.reads import within
from giftcloud_api.models import AttachedFile, Series, Study
from giftcloud_api.results.schemas import FileOut

#: a file's name: what a user's folder would hold, no path
NAME = re.compile(r"[^/\\\x00-\x1f]{1,200}")
#: an input: a UID, a file's id or a short name
INPUT = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def out(row: AttachedFile) -> FileOut:
    return FileOut(
        id=row.id,
        name=row.name,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        subject=row.subject,
        study_uid=row.study_uid,
        series_uid=row.series_uid,
        inputs=list(row.inputs),
        tool=row.tool,
        tool_version=row.tool_version,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at.isoformat(),
    )


class Files:
    def __init__(self, db: Database, store: ObjectStore, bucket: str) -> None:
        self.db = db
        self.store = store
        self.bucket = bucket

    async def _target(
        self, project: str, subject: str, study: str, series: str
    ) -> tuple[str, str, str]:
        """Where a file goes, its parents filled in; NotFound for what the project lacks."""
        async with self.db.session() as session:
            if series:
                found = await session.get(Series, (project, series))
                if found is None or (study and found.study_uid != study):
                    raise NotFound(f"no series {series} in project {project!r}")
                study = found.study_uid
            if study:
                owner = await session.get(Study, (project, study))
                if owner is None:
                    raise NotFound(f"no study {study} in project {project!r}")
                if subject and owner.subject != subject:
                    raise BadRequest(f"study {study} is not subject {subject}'s")
                subject = owner.subject
            elif subject:
                known = (
                    await session.exec(
                        select(Study.study_uid).where(
                            col(Study.project) == project, col(Study.subject) == subject
                        )
                    )
                ).first()
                if known is None:
                    raise NotFound(f"no subject {subject!r} in project {project!r}")
        return subject, study, series

    async def attach(
        self,
        project: str,
        by: str,
        name: str,
        media_type: str,
        data: bytes,
        where: tuple[str, str, str],
        provenance: tuple[list[str], str, str, str],
    ) -> FileOut:
        if not NAME.fullmatch(name) or name in (".", ".."):
            raise BadRequest(f"{name[:60]!r} is not a file name (no folders, 1 to 200 characters)")
        inputs, tool, version, description = provenance
        bad = [i for i in inputs if not INPUT.fullmatch(i)]
        if bad:
            raise BadRequest(f"{bad[0][:60]!r} is not an input: a UID, a file's id or a name")
        subject, study, series = await self._target(project, *where)
        ident = uuid.uuid4().hex
        row = AttachedFile(
            id=ident,
            project=project,
            subject=subject,
            study_uid=study,
            series_uid=series,
            name=name,
            media_type=media_type or "application/octet-stream",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            object_key=f"{project}/files/{ident}",
            inputs=inputs,
            tool=tool[:200],
            tool_version=version[:100],
            description=description[:1000],
            created_by=by,
        )
        await self.store.put(self.bucket, row.object_key, data)  # the bytes first: no row
        async with self.db.session() as session:  # without its file
            session.add(row)
        return out(row)

    async def listed(
        self, project: str, subject: str | None, study: str | None, series: str | None
    ) -> list[FileOut]:
        query = select(AttachedFile).where(*within(AttachedFile, project, subject, study, series))
        async with self.db.session() as session:
            rows = (await session.exec(query.order_by(col(AttachedFile.created_at)))).all()
        return [out(row) for row in rows]

    async def one(self, project: str, ident: str) -> AttachedFile:
        async with self.db.session() as session:
            row = await session.get(AttachedFile, ident)
        if row is None or row.project != project:
            raise NotFound(f"no file {ident!r} in project {project!r}")
        return row

    async def content(self, row: AttachedFile) -> bytes:
        return await self.store.get(self.bucket, row.object_key)

    async def remove(self, project: str, ident: str) -> FileOut:
        row = await self.one(project, ident)
        async with self.db.session() as session:  # the row first: no file listed
            await session.delete(row)  # without its bytes
        await self.store.delete(self.bucket, row.object_key)
        return out(row)
