"""Who an association acts as. DICOM viewers (dcmtk, 3D Slicer, Horos) send no user of their
own, so a person registers the AE title they query from, the address it comes from, where a
C-MOVE reaches it, and one of their API keys: an association from that AE title at that
address acts as the key (its maker's roles now, its networks). A client that negotiates a
user identity (PS3.7 D.3.3.7) acts as it instead: a username with an API key of theirs as
passcode, or an access token (JWT). A password is never taken (without TLS it would travel
in clear)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable

from giftcloud_core.crypto import DecryptionError, EnvelopeCipher
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from giftcloud_core.tokens import API_KEY_PREFIX, Principal
from sqlmodel import col, select

from giftcloud_api.dimse.models import DimseCaller

#: PS3.5 AE: 1 to 16 characters of the default repertoire, no backslash or control
_AE_TITLE = re.compile(r"[ -\[\]-~]{1,16}")
#: user identity types (PS3.7 D.3.3.7.1): username and passcode; JSON Web Token
USERNAME_AND_PASSCODE = 2
JWT = 5

KeyPrincipal = Callable[[str], Awaitable[Principal]]
TokenPrincipal = Callable[[str], Awaitable[Principal]]


def ae_title(value: str) -> str:
    """An AE title as registered and compared: without its padding spaces."""
    title = value.strip(" ")
    if not _AE_TITLE.fullmatch(title):
        raise BadRequest(f"{value[:20]!r} is not an AE title: 1 to 16 characters, no backslash")
    return title


def owned_by(principal: Principal, username: str) -> bool:
    """The credential is ``username``'s (a person, or a key they made)."""
    return (principal.creator if principal.kind == "client" else principal.subject) == username


class Callers:
    def __init__(
        self,
        db: Database,
        cipher: EnvelopeCipher | None,
        key_principal: KeyPrincipal,
        token_principal: TokenPrincipal,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.key_principal = key_principal
        self.token_principal = token_principal

    async def register(
        self, owner: Principal, title: str, host: str, port: int | None, api_key: str
    ) -> DimseCaller:
        """``title`` registered to ``owner`` (again: changed); the key must be theirs."""
        title = ae_title(title)
        if self.cipher is None:
            raise Conflict(
                "this server keeps no keys: set GIFTCLOUD_STORAGE__ENCRYPTION_KEY (they are"
                " kept encrypted)"
            )
        if not api_key.startswith(API_KEY_PREFIX):
            raise BadRequest("api_key: one of your API keys (gck_...), which the AE title acts as")
        try:
            acting = await self.key_principal(api_key)
        except Unauthorized as exc:
            raise BadRequest(f"api_key: {exc.message}") from None
        if not owned_by(acting, owner.subject):
            raise Forbidden("api_key: that API key is not yours")
        sealed = self.cipher.encrypt(api_key.encode(), title.encode())
        async with self.db.session() as session:
            row = await session.get(DimseCaller, title)
            if row is not None and row.username != owner.subject and not owner.is_admin:
                raise Conflict(f"AE title {title} is registered by someone else")
            row = row or DimseCaller(
                ae_title=title, username=owner.subject, host=host, key_sealed=b""
            )
            row.username, row.host, row.port, row.key_sealed = owner.subject, host, port, sealed
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def listed(self, caller: Principal) -> list[DimseCaller]:
        """The caller's AE titles (an admin's: everyone's)."""
        statement = select(DimseCaller).order_by(col(DimseCaller.ae_title))
        if not caller.is_admin:
            statement = statement.where(col(DimseCaller.username) == caller.subject)
        async with self.db.session() as session:
            return list((await session.exec(statement)).all())

    async def remove(self, caller: Principal, title: str) -> None:
        async with self.db.session() as session:
            row = await session.get(DimseCaller, ae_title(title))
            if row is None or (row.username != caller.subject and not caller.is_admin):
                raise NotFound(f"no AE title {title!r} of yours")
            await session.delete(row)
            await session.commit()

    async def acting_for(self, title: str, address: str) -> Principal:
        """Who an association from ``title`` at ``address`` acts as (Unauthorized: why not)."""
        async with self.db.session() as session:
            row = await session.get(DimseCaller, title.strip(" "))
        if row is None:
            raise Unauthorized(f"AE title {title.strip()!r} is not registered here")
        if address not in await _addresses(row.host):
            raise Unauthorized(
                f"AE title {row.ae_title} is registered for {row.host}, not {address}"
            )
        if self.cipher is None:
            raise Unauthorized("this server keeps no keys (GIFTCLOUD_STORAGE__ENCRYPTION_KEY)")
        try:
            key = self.cipher.decrypt(row.key_sealed, row.ae_title.encode()).decode()
        except DecryptionError:
            raise Unauthorized(f"the key of AE title {row.ae_title} cannot be read") from None
        return await self.key_principal(key)

    async def identified(self, kind: int, primary: bytes, secondary: bytes) -> Principal:
        """The user an association's identity names (Unauthorized: why not)."""
        if kind == JWT:
            return await self.token_principal(primary.decode(errors="replace").strip())
        if kind != USERNAME_AND_PASSCODE:
            raise Unauthorized(
                "only a username with an API key as passcode, or an access token, is taken"
            )
        username = primary.decode(errors="replace").strip()
        passcode = secondary.decode(errors="replace").strip()
        if not passcode.startswith(API_KEY_PREFIX):
            raise Unauthorized("the passcode is one of your API keys (gck_...), never a password")
        principal = await self.key_principal(passcode)
        if not owned_by(principal, username):
            raise Unauthorized(f"that API key is not {username}'s")
        return principal

    async def destination(self, owner: Principal, title: str) -> tuple[str, int]:
        """Where a C-MOVE by ``owner`` to ``title`` goes: an AE title of theirs with a port."""
        async with self.db.session() as session:
            row = await session.get(DimseCaller, title.strip(" "))
        username = owner.creator if owner.kind == "client" else owner.subject
        if row is None or row.username != username or row.port is None:
            raise Forbidden(
                f"move destination {title.strip()!r} is no AE title of yours with a port"
            )
        return row.host, row.port


async def _addresses(host: str) -> set[str]:
    """The addresses a registered host stands for (a name is looked up)."""
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, None)
    except OSError:
        return {host}
    return {str(info[4][0]) for info in infos} | {host}
