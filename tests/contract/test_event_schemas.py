"""Committed JSON-schema snapshots of every event: a contract change shows in review.

After an intended change: ``uv run python scripts/snapshot_events.py`` and commit the result.
"""

import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from giftcloud_core.events import EVENT_TYPES, QUEUES, event_json_schemas, parse_event
from pydantic import BaseModel

SNAPSHOTS = Path(__file__).parent / "event_schemas"


def test_every_event_matches_its_snapshot() -> None:
    schemas = event_json_schemas()
    on_disk = {p.stem: json.loads(p.read_text()) for p in SNAPSHOTS.glob("*.json")}
    assert sorted(on_disk) == sorted(schemas), "an event was added or removed: re-snapshot"
    for key, schema in schemas.items():
        assert schema == on_disk[key], f"{key} changed: keep it additive or publish a new version"


def test_routing_keys_carry_a_version_and_every_queue_binds_known_events() -> None:
    for key in EVENT_TYPES:
        assert key.rsplit(".", 1)[-1].startswith("v")
    for types in QUEUES.values():
        assert set(types) <= set(EVENT_TYPES)


def sample(cls: type[BaseModel]) -> dict[str, Any]:
    """Every required field filled: numbers, the source, one item in a tuple of models or
    of strings."""
    fields: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if not field.is_required():
            continue
        (item,) = get_args(field.annotation)[:1] or (None,)
        if field.annotation is int:
            fields[name] = 1
        elif get_origin(field.annotation) is Literal:  # the first allowed value
            fields[name] = get_args(field.annotation)[0]
        elif isinstance(item, type) and issubclass(item, BaseModel):
            fields[name] = (item(**sample(item)),)
        elif get_origin(field.annotation) is tuple and item is str:
            fields[name] = ("x",)
        else:
            fields[name] = "x"
    return fields


def test_events_round_trip_through_json_and_ignore_unknown_fields() -> None:
    for key, cls in EVENT_TYPES.items():
        event = cls(**sample(cls))
        body = json.loads(event.model_dump_json())
        body["added_later"] = "ignored"
        assert parse_event(json.dumps(body).encode()) == event, key
