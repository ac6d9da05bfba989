"""Recipes (`conf/recipes/<name>.yaml`, `tokenmill prepare --recipe NAME`): a whole training set in one
command. A recipe is sources (presets, usually) with their stages, a token counter and a budget; preparing
it runs one pipeline per source (each resumable: an up-to-date source is skipped), plans the budget with
the Chinchilla planner, builds the mixture and exports it, with one manifest (`recipe.json`) for the run.
The configs it runs are written next to the output (`<output>/configs/`), so every step can be rerun alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any

import yaml
from pydantic import Field, model_validator

from ..cli import Job, spark_args
from ..config import Strict, conf_dirs, find_named_yaml, load_yaml, validate
from ..errors import ConfigError
from .config import BuildSettings
from .export import folder_name
from .plan import PlanSettings, PlanSource, SourceLimits, format_plan, plan_mixture

log = logging.getLogger("tokenmill.recipe")

RECIPE_DIRS = conf_dirs("recipes")


class RecipeSource(Strict):
    """A source of the recipe: the source config (a preset plus overrides), its stages if they differ from
    the recipe's, its published size (what a dry run plans with) and its mixture limits."""

    model_config = Strict.model_config | {"extra": "allow"}  # the source's own keys (preset, path, ...)

    stages: list[Any] | None = None
    unique_tokens: float | None = Field(default=None, gt=0)  # published; the run counts the real ones
    mix: SourceLimits = Field(default_factory=SourceLimits)

    def source_config(self) -> dict:
        return dict(self.model_extra or {})


class Export(Strict):
    """What `prepare` writes besides the mixture's shards: per source a folder with its documents as Parquet
    and as one plain-text `input.txt` (documents in shard order, joined by `separator`)."""

    input_txt: bool = True
    parquet: bool = True
    separator: str = "\n\n"


class Recipe(Strict):
    name: str
    output: str
    description: str | None = None
    tokens: dict[str, Any]  # the `tokens` stage's params (tokenizer, method, ...)
    stages: list[Any] = Field(default_factory=list)  # every source's stages after `read` (before tokens)
    sources: list[RecipeSource]
    plan: PlanSettings
    build: BuildSettings = Field(default_factory=BuildSettings)
    export: Export = Field(default_factory=Export)

    @model_validator(mode="after")
    def _some(self):
        if not self.sources:
            raise ValueError("sources: at least one source is needed")
        return self


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Recipe, str]:
    path = find_named_yaml(name_or_path, RECIPE_DIRS, "recipe")
    return validate(Recipe, load_yaml(path, overrides), str(path), overrides=overrides), str(path)


def resolved_sources(recipe: Recipe, where: str) -> list[dict]:
    """Each source's config with its preset resolved (names must be unique)."""
    from ..pipeline.plan import resolve_source_presets

    raw = resolve_source_presets({"sources": [s.source_config() for s in recipe.sources]}, where)["sources"]
    names = [s.get("name") for s in raw]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: sources: names must be unique, got {names}")
    return raw


def pipeline_configs(recipe: Recipe, where: str) -> list[tuple[str, dict]]:
    """(source name, pipeline config) per source: read -> the source's stages -> tokens -> write."""
    out = []
    for src, raw in zip(recipe.sources, resolved_sources(recipe, where), strict=True):
        stages = recipe.stages if src.stages is None else src.stages
        cfg = {"name": f"{recipe.name}-{folder_name(raw['name'])}",
               "output": f"{recipe.output.rstrip('/')}/sources/{folder_name(raw['name'])}",
               "sources": [raw], "stages": ["read", *stages, {"stage": "tokens", **recipe.tokens}, {"stage": "write"}]}
        out.append((raw["name"], cfg))
    return out


def mixture_config(recipe: Recipe, pipelines: list[tuple[str, dict]]) -> dict:
    sources = []
    for (name, cfg), src in zip(pipelines, recipe.sources, strict=True):
        limits = src.mix.model_dump(exclude_defaults=True)
        sources.append({"name": name, "path": f"{cfg['output']}/data", "manifest": f"{cfg['output']}/manifest.json",
                        **limits})
    return {"name": recipe.name, "output": f"{recipe.output.rstrip('/')}/mixture",
            "plan": recipe.plan.model_dump(mode="json", exclude_none=True),
            "build": recipe.build.model_dump(mode="json", exclude_none=True), "sources": sources}


def dry_run(recipe: Recipe, where: str) -> str:
    """The resolved sources, their stages and the budget planned from the published sizes; reads no data."""
    from ..catalog import load_stages
    from ..pipeline.plan import plan_config

    load_stages()
    lines = [f"recipe {recipe.name}: {recipe.description or ''}".rstrip(": "), ""]
    plan_sources = []
    for (name, cfg), src in zip(pipeline_configs(recipe, where), recipe.sources, strict=True):
        planned = plan_config(cfg, where)  # every stage's params validated, columns checked
        source = planned.config.sources[0]
        lines.append(f"{name}  ({source.format}; {', '.join(source.resolved_paths()) or 'no paths'})")
        lines.append("    stages: " + " -> ".join(p.label for p in planned.stages))
        if src.unique_tokens is None:
            raise ConfigError(f"{where}: sources[{name}]: a dry run plans with `unique_tokens` (the published size)")
        plan_sources.append(PlanSource(name=name, unique_tokens=src.unique_tokens,
                                       **src.mix.model_dump(exclude_defaults=True)))
    lines += ["", "planned from the published sizes (the run plans from the tokens it counts):", ""]
    plan = plan_mixture(recipe.plan, plan_sources)
    lines.append(format_plan(plan))
    unused = [f"{p.name} {p.unique_tokens - p.target_tokens:.4g}" for p in plan.sources if p.target_tokens < p.unique_tokens]
    if unused:
        lines.append("left unused (unique tokens not in the mixture): " + ", ".join(unused))
    return "\n".join(lines)


def _write_config(folder: str, name: str, cfg: dict) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{folder_name(name)}.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(cfg, handle, sort_keys=False, allow_unicode=True)
    return path


def prepare(spark, recipe: Recipe, where: str, force: bool = False) -> dict:
    """Run the recipe: per-source pipelines (skipped when up to date), the mixture, the exports."""
    from ..pipeline import load_pipeline, run
    from .build import build_mixture
    from .config import load_mixture
    from .export import export_sources

    started = time.time()
    configs = os.path.join(recipe.output, "configs")
    pipelines = pipeline_configs(recipe, where)
    sources = {}
    for name, cfg in pipelines:
        path = _write_config(configs, f"source-{name}", cfg)
        result = run(spark, load_pipeline(path), force=force)
        sources[name] = {"config": path, "output": result.output, "skipped": result.skipped,
                         "tokens": (result.manifest.get("output", {}).get("tokens_by_source") or {}).get(name)}
    mix_path = _write_config(configs, "mixture", mixture_config(recipe, pipelines))
    mixture = build_mixture(spark, load_mixture(mix_path), mix_path, force=force)
    exported = export_sources(spark, mixture.output, recipe.output, [n for n, _ in pipelines], recipe.export)
    manifest = {"recipe": recipe.name, "config": os.path.abspath(where), "sources": sources,
                "mixture": {"output": mixture.output, "skipped": mixture.skipped,
                            "planned_tokens": mixture.manifest.get("planned_tokens"),
                            "realised_tokens": mixture.manifest.get("realised_tokens")},
                "plan": mixture.manifest.get("plan"), "export": exported,
                "wall_seconds": round(time.time() - started, 2)}
    _recipe_report(manifest, recipe.output, mixture.manifest,
                   {name: _read_json(os.path.join(s["output"], "manifest.json")) for name, s in sources.items()})
    with open(os.path.join(recipe.output, "recipe.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, default=str)
        handle.write("\n")
    return manifest


def _read_json(path: str) -> dict | None:
    import fsspec

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _recipe_report(manifest: dict, folder: str, mixture_manifest: dict, sources: dict) -> None:
    """report.html beside recipe.json (TOKENMILL_REPORT=0 skips it); a plot failing never fails the run."""
    if os.environ.get("TOKENMILL_REPORT", "1") == "0":
        return
    from ..report.html import render_recipe

    try:
        page = render_recipe(manifest, mixture_manifest, sources)
    except Exception:  # noqa: BLE001 - the data is written; the page is a view of it
        log.warning("the recipe's report.html could not be written", exc_info=True)
        return
    path = os.path.join(folder, "report.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    manifest["report"] = path


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="a recipe name (conf/recipes/<name>.yaml) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set output=out/x --set sources[0].path=/data/dolma")
    parser.add_argument("--force", action="store_true", help="recompute every step even if up to date")
    spark_args(parser)


def _run(args: argparse.Namespace) -> int:
    recipe, where = load_recipe(args.recipe, args.overrides)
    if args.dry_run:
        print(dry_run(recipe, where))
        return 0
    from ..spark import build_session

    spark = build_session(args.spark_profile, app_name=f"tokenmill-prepare-{recipe.name}")
    try:
        manifest = prepare(spark, recipe, where, force=args.force)
    finally:
        spark.stop()
    print(format_prepare(manifest))
    print(f"\nrecipe   {os.path.join(os.path.abspath(recipe.output), 'recipe.json')}")
    if manifest.get("report"):
        print(f"report   {os.path.abspath(manifest['report'])}")
    return 0


def format_prepare(manifest: dict) -> str:
    """What `prepare` prints: per source whether it ran, its tokens and export folder; the mixture's totals."""
    lines = [f"{'source':<34} {'state':>10} {'tokens':>12}  export"]
    for name, s in manifest["sources"].items():
        tokens = (s.get("tokens") or {}).get("tokens", "-")
        state = "skipped" if s["skipped"] else "computed"
        lines.append(f"{name[:34]:<34} {state:>10} {tokens:>12}  {manifest['export'].get(name, {}).get('folder', '-')}")
    mix = manifest["mixture"]
    lines.append(f"\nmixture  {mix['output']}  planned {mix['planned_tokens']}  realised {mix['realised_tokens']}")
    return "\n".join(lines)


JOBS = [Job("prepare", "prepare a whole training set from a recipe: per-source pipelines, token budget, mixture, "
            "exports (--dry-run: the plan only)", _args, _run, own_dry_run=True)]
