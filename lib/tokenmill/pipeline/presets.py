"""The `presets` job: the named datasets tokenmill knows (conf/presets/sources), with what each card
records: use, modality, licence, access, hub repository and files, and the mapping onto our columns."""

from __future__ import annotations

import argparse

from ..cli import Job
from ..config import find_named_yaml, load_yaml
from ..errors import ConfigError
from .plan import SOURCE_PRESET_DIRS as SOURCE_DIRS


def preset_names() -> list[str]:
    """Every source preset name (the working directory's conf/ first, then the shipped ones)."""
    names: set[str] = set()
    for folder in SOURCE_DIRS:
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.yaml")}
    return sorted(names)


def load_preset(name: str) -> dict:
    return load_yaml(find_named_yaml(name, SOURCE_DIRS, "source preset"))


def table(use: str | None = None, modality: str | None = None) -> list[dict]:
    """One row per preset with a card (optionally only those of one use or modality)."""
    rows = []
    for name in preset_names():
        raw = load_preset(name)
        about, hub = raw.get("about") or {}, raw.get("hub") or {}
        if not about:
            continue
        if (use and use not in about.get("use", [])) or (modality and modality != about.get("modality")):
            continue
        rows.append({"name": name, "title": about.get("title", ""), "use": ",".join(about.get("use", [])),
                     "modality": about.get("modality", ""), "access": about.get("access", "open"),
                     "license": about.get("license", ""), "repo": hub.get("repo", "")})
    return rows


def show(name: str) -> str:
    """A preset's card and how to read it, as text."""
    raw = load_preset(name)
    about, hub = raw.get("about") or {}, raw.get("hub") or {}
    lines = [f"{name}: {about.get('title', name)}",
             f"  use {', '.join(about.get('use', []))}; modality {about.get('modality')}; languages "
             f"{', '.join(about.get('languages', [])) or '-'}; licence {about.get('license')}; access {about.get('access', 'open')}",
             f"  hub: {hub.get('repo')} (revision {hub.get('revision', 'main')}, config {hub.get('config') or '-'}, "
             f"split {hub.get('split', 'train')}), files {hub.get('files')} [{about.get('hub_layout')}]",
             f"  read as: format {raw.get('format')}"
             + (f", instruct {raw['instruct']}" if raw.get("instruct") else f", fields {raw.get('fields') or 'text'}"),
             "  published schema: " + ", ".join(f"{k}: {v}" for k, v in (about.get("schema") or {}).items()),
             "  mapping: " + "; ".join(f"{k} <- {v}" for k, v in (about.get("mapping") or {}).items())]
    if about.get("size"):
        lines.append(f"  size: {about['size']}")
    if about.get("note"):
        lines.append(f"  note: {about['note']}")
    lines.append(f"  use it: sources: [{{preset: {name}}}]  (a local copy: --set sources[0].path=DIR, laid out as "
                 f"the repository)")
    return "\n".join(lines)


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a preset to show in full (default: list them all)")
    parser.add_argument("--use", default=None, help="only presets for this use (pretrain, sft, dpo, grpo, eval, ...)")
    parser.add_argument("--modality", default=None, help="only this modality (text, code, image-text, audio-text)")


def _run(args: argparse.Namespace) -> int:
    if args.name:
        if args.name not in preset_names():
            raise ConfigError(f"no source preset {args.name!r}; known: {', '.join(preset_names())}")
        print(show(args.name))
        return 0
    rows = table(args.use, args.modality)
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) if rows else len(k) for k in ("name", "use", "access", "repo")}
    print(f"{'name':<{widths['name']}}  {'use':<{widths['use']}}  {'access':<{widths['access']}}  repo")
    for r in rows:
        print(f"{r['name']:<{widths['name']}}  {r['use']:<{widths['use']}}  {r['access']:<{widths['access']}}  {r['repo']}")
    print(f"{len(rows)} presets; `tokenmill presets NAME` shows one")
    return 0


JOBS = [Job("presets", "list the named datasets tokenmill reads (source presets), or show one's card and mapping",
            _args, _run)]
