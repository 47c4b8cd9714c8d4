"""ops/_json.py writes exactly what json.dumps(sort_keys=True, default=str) writes."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest

from ops._json import dumps

CASES = [
    None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e-300, 1e300, "", "plain", 'q"uote\\back',
    "tab\tnl\ncr\r\x00\x1f\x7f", "é ü 中文", "emoji \U0001F600", "surrogate \udcff",
    [], {}, [1, [2, [3]]], {"b": 1, "a": {"z": None, "y": [True, False]}},
    {"mounts": [{"mountpoint": "/srv/data", "use_pct": 87, "over": ["space_warn"]}]},
    (1, "two"), {2: "int keys", 10: "sorted as text"}, PurePosixPath("/a/b"),
]


@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_same_text_as_json_dumps(value):
    assert dumps(value) == json.dumps(value, sort_keys=True, default=str)


def test_output_parses_back():
    doc = {"ok": True, "changed": False, "data": {"x": ["é", 1.25, None]}, "error": None}
    assert json.loads(dumps(doc)) == doc
