"""Typed, validated configs: YAML files -> pydantic models, with `--set a.b=c` overrides.

Unknown keys, wrong types and missing required values are errors that name the file and key path.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def format_loc(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    """('stages', 1, 'keep_removed') -> 'stages[1].keep_removed'."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to a mistyped ``name``, or nothing."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists and dict values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, dict, typing.Annotated) or origin is not None:
        args = typing.get_args(annotation)
        if origin is dict and len(args) == 2:
            args = (args[1],)
        return [m for a in args for m in _models(a)]
    return []


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The keys allowed where ``loc`` points (the parent of an unknown key), following the model's fields."""
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt = [m for mod in models if part in mod.model_fields for m in _models(mod.model_fields[part].annotation)]
        models = nxt or [m for m in models if part not in m.model_fields]  # a union tag or dict key: stay
        if not nxt and not models:
            return set()
    return {name for m in models for name in m.model_fields}


def _override_keys(overrides) -> list[tuple[str, str]]:
    return [(format_loc(_split_key(a.split("=", 1)[0].strip())), a) for a in overrides if "=" in a]


def blame(loc: str, where: str, overrides=()) -> str:
    """``--set <assignment>: <loc>`` when one of ``overrides`` set ``loc`` (or a key above it), else
    ``<where>: <loc>``: an error names what the user typed."""
    given = next((a for key, a in reversed(_override_keys(overrides))
                  if loc == key or loc.startswith(key + ".") or loc.startswith(key + "[")), None)
    return f"--set {given}: {loc}" if given else f"{where}: {loc}"


def validate(model: type[M], data: Any, where: str, prefix: str = "", overrides=()) -> M:
    """Validate ``data`` as ``model``; errors list every bad key path, prefixed with the file, or with the
    ``--set`` that gave the value when one of ``overrides`` did. Unknown keys get a "did you mean"."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        keys = _override_keys(overrides)
        lines = []
        for err in exc.errors():
            loc = format_loc(err["loc"], prefix)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                try:
                    allowed = _fields_at(model, tuple(err["loc"][:-1]))
                except (KeyError, TypeError):
                    allowed = set()
                msg = "unknown key" + did_you_mean(err["loc"][-1], allowed)
            # the loc without each one of its names too: a union's tag (`sources[0].warc.x`) is not in the key
            variants = {loc} | {format_loc(err["loc"][:j] + err["loc"][j + 1:], prefix)
                                for j, part in enumerate(err["loc"]) if isinstance(part, str)}
            given = next((a for key, a in reversed(keys) for v in variants
                          if v == key or v.startswith(key + ".") or v.startswith(key + "[")), None)
            lines.append(f"--set {given}: {loc}: {msg}" if given else f"{where}: {loc}: {msg}")
        raise ConfigError("\n".join(lines)) from None


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_key(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in _SEGMENT.findall(key):
        if index:
            parts.append(int(index))
        elif name.isdigit():
            parts.append(int(name))
        else:
            parts.append(name)
    return parts


def apply_override(data: dict, assignment: str) -> dict:
    """Apply one `a.b=c` / `stages[1].keep_removed=true` override; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. output=out/run1")
    key, raw = assignment.split("=", 1)
    parts = _split_key(key.strip())
    if not parts:
        raise ConfigError(f"--set {assignment!r}: empty key")
    value = yaml.safe_load(raw) if raw.strip() else ""
    data = copy.deepcopy(data)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        try:
            if isinstance(part, int):
                node = node[part]
            else:
                if part not in node or node[part] is None:
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
        except (IndexError, KeyError, TypeError):
            raise ConfigError(f"--set {assignment!r}: no {format_loc(parts[: i + 1])} to set into") from None
    last = parts[-1]
    try:
        if isinstance(last, int):
            node[last] = value
        else:
            if not isinstance(node, dict):
                raise TypeError
            node[last] = value
    except (IndexError, TypeError):
        raise ConfigError(f"--set {assignment!r}: cannot set {format_loc(parts)}") from None
    return data


def load_yaml(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Read a YAML mapping and apply overrides; a missing file or bad YAML is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, not {type(data).__name__}")
    for assignment in overrides:
        data = apply_override(data, assignment)
    return data


def load(model: type[M], path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> M:
    """Load and validate a YAML config file as ``model``."""
    return validate(model, load_yaml(path, overrides), str(path), overrides=overrides)


def conf_dirs(sub: str) -> list[Path]:
    """conf/<sub> of the working directory, then of the source tree (presets shipped with tokenmill)."""
    return [Path.cwd() / "conf" / sub, Path(__file__).resolve().parents[2] / "conf" / sub]


def find_named_yaml(name: str, folders: list[Path], what: str) -> Path:
    """A YAML path as given, or ``<name>.yaml`` in the first of ``folders`` that has it (a preset)."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        if candidate.exists():
            return candidate
        raise ConfigError(f"{what} file {name!r} not found")
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    known = sorted({p.stem for d in folders if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(f"unknown {what} {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}")
