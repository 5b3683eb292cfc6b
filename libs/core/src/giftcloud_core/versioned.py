"""Rows kept per project with a version, shared by a service's replicas through a table: each
replica reads the table again every few seconds (and the one that wrote, at once), and tells
its listeners when any project's version changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Versioned(Generic[T]):
    def __init__(
        self, read: Callable[[], Awaitable[dict[str, T]]], version: Callable[[T], int]
    ) -> None:
        self._read = read
        self._version = version
        #: the rows as last read, by project
        self.rows: dict[str, T] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def version(self, project: str) -> int:
        row = self.rows.get(project)
        return self._version(row) if row is not None else 0

    async def refresh(self, first: bool = False) -> None:
        """Read every project's row; the listeners hear of any change of version."""
        rows = await self._read()
        now = {p: self._version(r) for p, r in rows.items()}
        if now != {p: self._version(r) for p, r in self.rows.items()}:
            self.rows = rows
            for listener in self._listeners:
                listener()
