from __future__ import annotations

import json
from pathlib import Path

import pytest
from giftcloud_flower.site import Site, load


@pytest.fixture
def site(tmp_path: Path) -> Site:
    (tmp_path / "key").write_text("gck_test\n")
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps(
            {
                "site": "site-a",
                "policy": {"k": 10, "max_bins_share": 0.2, "widen": [0.1, 0.3]},
                "api": {
                    "url": "http://127.0.0.1:1/",
                    "project": "p",
                    "key_file": str(tmp_path / "key"),
                },
            }
        )
    )
    return load(path)
