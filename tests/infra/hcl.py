"""Reading infra/ for the offline infra tests: every .tf file parsed with python-hcl2, as plain dicts."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
EXAMPLE = INFRA / "examples" / "single-project"

# Plain values: "x" instead of "\"x\"", nested blocks as lists of dicts, comments dropped.
_PLAIN = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


@cache
def load(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=_PLAIN)


def tf_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def module_dirs() -> list[Path]:
    """Every Terraform directory: the modules and the examples."""
    return sorted({p.parent for p in tf_files()})


def blocks(directory: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, body) of every `kind` block with one label (variable, output, module) in a directory."""
    for tf in sorted(directory.glob("*.tf")):
        for entry in load(tf).get(kind, []):
            for label, body in entry.items():
                yield label, body


def resources(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """name -> body of every resource of one type in a directory."""
    found: dict[str, dict[str, Any]] = {}
    for tf in sorted(directory.glob("*.tf")):
        for entry in load(tf).get("resource", []):
            found.update(entry.get(kind, {}))
    return found


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for tf in sorted(directory.glob("*.tf")):
        for entry in load(tf).get("locals", []):
            merged.update(entry)
    return merged


def example_functions() -> dict[str, dict[str, Any]]:
    """The example's local.functions map (functions.tf): one entry per guardrail function."""
    return locals_of(EXAMPLE)["functions"]
