"""The algorithms installed at this site: entry points in the ``giftcloud.algorithms`` group
(``name = "module:function"``), each known by the SHA-256 of its module's source. Nothing
here imports or runs an algorithm: its summary is read from the source's syntax tree, and
only :mod:`giftcloud_api.jobs.child` runs one, from the very bytes whose digest was
approved."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "giftcloud.algorithms"


@dataclass(frozen=True)
class Algorithm:
    name: str
    entry_point: str
    module: str
    function: str
    path: Path

    def source(self) -> bytes:
        return self.path.read_bytes()

    def summary(self) -> str:
        try:
            tree = ast.parse(self.source())
        except (OSError, SyntaxError):
            return ""
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == self.function:
                return (ast.get_docstring(node) or "").strip().split("\n")[0]
        return ""


def digest(source: bytes) -> str:
    return hashlib.sha256(source).hexdigest()


def installed() -> dict[str, Algorithm]:
    found = {}
    for point in entry_points(group=GROUP):
        module, _, function = point.value.partition(":")
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None or not function:
            continue
        found[point.name] = Algorithm(point.name, point.value, module, function, Path(spec.origin))
    return dict(sorted(found.items()))
