"""Write the JSON-schema snapshot of every event into tests/contract/event_schemas/."""

import json
from pathlib import Path

from giftcloud_core.events import event_json_schemas

target = Path(__file__).resolve().parents[1] / "tests" / "contract" / "event_schemas"
target.mkdir(parents=True, exist_ok=True)
for old in target.glob("*.json"):
    old.unlink()
for key, schema in event_json_schemas().items():
    (target / f"{key}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
print(f"wrote {len(list(target.glob('*.json')))} snapshots to {target}")
