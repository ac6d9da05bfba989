"""The instruction-data fixtures (tests/instruct/fixtures/, each in its dataset's published schema)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def records(name: str) -> list[dict]:
    """The records of fixtures/<name>.jsonl that parse (the deliberately broken lines left out)."""
    out = []
    for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
