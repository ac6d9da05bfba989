"""Planning a pipeline: load and validate its config, resolve source presets, look up every stage, and check
each stage's required columns against what the sources and earlier stages provide, before Spark starts."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from ..config import Strict, blame, conf_dirs, find_named_yaml, load_yaml, validate
from ..errors import ConfigError
from ..io.hadoopfs import qualify
from ..io.sources import Source, list_files, one_listing
from ..io.stamps import referenced_stamps
from ..schema import CANONICAL_COLUMNS, INSTRUCT_COLUMNS, REMOVED_BY
from .stage import StageParams, StageSpec, lookup

SOURCE_PRESET_DIRS = conf_dirs("presets/sources")


class PipelineConfig(Strict):
    """A pipeline: its sources, its stages in order, and where the output goes."""

    name: str = "tokenmill"
    output: str
    # Replace an earlier tokenmill output at `output` when the config or inputs changed (False: only with
    # --force). Anything that is not a tokenmill output is never replaced.
    overwrite: bool = True
    work_dir: str | None = None  # checkpoints and staging; default: <output>.work
    # A checkpoint before a stage that shuffles whole rows or reads its input several times (exact and
    # near dedup), when filters before it in the same segment tagged rows: the removed rows are written
    # aside once instead of riding through the shuffles (measured: docs/COST.md). False: only the
    # checkpoints the config asks for.
    auto_checkpoint: bool = True
    # Consecutive stages of a segment that have an Arrow form run as one Python pass per task (one
    # `mapInArrow`, one Python worker per running task; pipeline/passes.py). False: each stage runs on its
    # own (its Spark form), for debugging a stage; the rows are the same either way.
    fuse: bool = Field(default=True, description="run consecutive Arrow-form stages as one Python pass per task")
    sources: list[Source] = Field(default_factory=list)
    stages: list[dict[str, Any]] = Field(default_factory=lambda: [{"stage": "read"}, {"stage": "write"}])

    @field_validator("stages", mode="before")
    @classmethod
    def _names_to_entries(cls, value):
        if isinstance(value, list):
            return [{"stage": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def work(self) -> str:
        return qualify(self.work_dir or f"{self.output.rstrip('/')}.work")


@dataclass
class PlannedStage:
    label: str
    name: str
    kind: str
    params: StageParams
    spec: StageSpec

    def fingerprint_part(self) -> dict:
        """What decides this stage's output: its name, version, params, what they resolve to, and the
        files they name (editing a referenced model, list or benchmark reruns the stage)."""
        part = {"stage": self.name, "version": self.spec.version, "params": self.params.model_dump(mode="json")}
        extra = getattr(self.params, "fingerprint_extra", None)
        if extra is not None:  # what the params point to (a rule set file, word lists) changes the output too
            part["extra"] = extra()
        unstamped = getattr(self.params, "unstamped", None)
        part["files"] = referenced_stamps([part["params"], part.get("extra")], set(unstamped() if unstamped else []))
        return part


@dataclass
class Plan:
    config: PipelineConfig
    config_path: str
    raw: dict
    stages: list[PlannedStage] = field(default_factory=list)
    _inputs: list[dict] | None = None
    listings: dict = field(default_factory=dict)  # each source's files, listed once (io.sources.one_listing)

    def inputs(self) -> list[dict]:
        """Every source's files with sizes and times (listed once; a missing path is a ConfigError)."""
        if self._inputs is None:
            with one_listing(self.listings):
                self._inputs = list_inputs(self.config, self.config_path)
        return self._inputs

    def input_paths(self) -> list[str]:
        paths = [f["path"] for i in self.inputs() for f in i.get("files", [])]
        return paths + [i["dataset"] for i in self.inputs() if i.get("format") == "hf"]

    def audit_columns(self, upto: int) -> set[str]:
        """The audit columns declared by the stages up to index ``upto``: kept on removed rows."""
        return {c for st in self.stages[: upto + 1] for c in st.spec.columns("audit", st.params)}


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def resolve_source_presets(raw: dict, path: str, overrides=()) -> dict:
    """`sources: [{preset: sample_warc, paths: ...}]` -> the preset's keys (conf/presets/sources/<name>.yaml,
    or a YAML path) overridden by the entry's own."""
    sources = raw.get("sources")
    if not isinstance(sources, list) or not any(isinstance(s, dict) and "preset" in s for s in sources):
        return raw
    raw = copy.deepcopy(raw)
    for i, entry in enumerate(raw["sources"]):
        if not isinstance(entry, dict) or "preset" not in entry:
            continue
        where = blame(f"sources[{i}].preset", path, overrides)
        try:
            preset_file = find_named_yaml(str(entry["preset"]), SOURCE_PRESET_DIRS, "source preset")
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        merged = load_yaml(preset_file)
        merged.update({k: v for k, v in entry.items() if k != "preset"})
        raw["sources"][i] = merged
    return raw


def load_pipeline(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """Load, validate and plan a pipeline config; every error names the file and key path."""
    from ..catalog import load_stages

    load_stages()
    return plan_config(load_yaml(path, overrides), str(path), overrides)


def plan_config(raw: dict, path: str, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """A pipeline config given as a mapping (``path`` names it in errors), validated and planned: presets
    resolved, stages looked up, the order and the columns checked. Reads no data."""
    raw = resolve_source_presets(raw, path, overrides)
    cfg = validate(PipelineConfig, raw, path, overrides=overrides)
    _check_sources(cfg, path)
    plan = Plan(cfg, path, raw)
    plan.stages = _plan_stages(cfg, path, overrides)
    _check_order(plan, path)
    check_columns(plan.stages, path, source_columns(cfg, path))
    return plan


def source_columns(cfg: PipelineConfig, path: str) -> tuple[str, ...]:
    """The columns the sources give: canonical documents, or one method's instruction rows (all sources alike)."""
    uses = {src.instruct.use if getattr(src, "instruct", None) is not None else "text" for src in cfg.sources}
    if len(uses) > 1:
        raise ConfigError(f"{path}: sources: one pipeline reads one kind of data; these sources give "
                          f"{', '.join(sorted(uses))} (run one pipeline per kind)")
    use = uses.pop() if uses else "text"
    return (*CANONICAL_COLUMNS, REMOVED_BY, *INSTRUCT_COLUMNS.get(use, ()))


def _check_sources(cfg: PipelineConfig, path: str) -> None:
    if not cfg.sources:
        raise ConfigError(f"{path}: sources: at least one source is needed")
    names = [s.name for s in cfg.sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: sources: names must be unique, got {names}")


def _plan_stages(cfg: PipelineConfig, path: str, overrides=()) -> list[PlannedStage]:
    """Each stage entry looked up and validated against its params; labels are unique."""
    planned, labels = [], set()
    for i, entry in enumerate(cfg.stages):
        where = blame(f"stages[{i}]", path, overrides)
        if "stage" not in entry:
            raise ConfigError(f"{where}: missing key 'stage'")
        spec = lookup(str(entry["stage"]), blame(f"stages[{i}].stage", path, overrides))
        params = validate(spec.params, entry, path, prefix=f"stages[{i}]", overrides=overrides)
        label = params.id or spec.name
        if label in labels:
            raise ConfigError(f"{where}: stage {label!r} appears twice; give one an `id`")
        labels.add(label)
        planned.append(PlannedStage(label, spec.name, spec.kind, params, spec))
    return planned


def _check_order(plan: Plan, path: str) -> None:
    kinds = [s.kind for s in plan.stages]
    if not kinds or kinds[0] != "read":
        raise ConfigError(f"{path}: stages: the first stage must be `read`")
    if kinds.count("read") != 1:
        raise ConfigError(f"{path}: stages: `read` may appear only once")
    if kinds[-1] != "write" or kinds.count("write") != 1:
        raise ConfigError(f"{path}: stages: the last stage must be `write`, and only the last")


def check_columns(stages: list[PlannedStage], path: str,
                  provided: tuple[str, ...] = (*CANONICAL_COLUMNS, REMOVED_BY)) -> None:
    """Every stage's required columns are provided by the sources or an earlier stage; otherwise one
    ConfigError naming the stage, the missing column and the stages that would add it."""
    available = set(provided)
    for i, st in enumerate(stages):
        missing = [c for c in st.spec.columns("requires", st.params) if c not in available]
        if missing:
            adders = sorted(name for name, cols in _default_adds().items() if set(missing) & cols)
            hint = f"; a stage that adds it: {', '.join(adders)}" if adders else ""
            raise ConfigError(f"{path}: stages[{i}] ({st.label}): needs column(s) {', '.join(missing)}, which "
                              f"no source or earlier stage provides{hint} (available: {', '.join(sorted(available))})")
        available.update(st.spec.columns("adds", st.params))


def _default_adds() -> dict[str, set[str]]:
    """What each registered stage adds with its default params (for the hint of a missing column)."""
    from .stage import REGISTRY

    out = {}
    for name, spec in REGISTRY.items():
        try:
            out[name] = set(spec.columns("adds", spec.params.model_construct(stage=name)))
        except Exception:  # noqa: BLE001 - a stage whose added columns need real params gives no hint
            continue
    return out


def list_inputs(cfg: PipelineConfig, config_path: str) -> list[dict]:
    """Per source: its files with sizes and modification times (a Hugging Face dataset: its id and split)."""
    inputs = []
    for i, src in enumerate(cfg.sources):
        if src.format == "hf":
            inputs.append({"source": src.name, "format": "hf", "dataset": src.dataset, "split": src.split})
            continue
        files = list_files(src, f"{config_path}: sources[{i}]")
        unknown = sum(f.size < 0 for f in files)  # listed by a paths manifest, not stat-ed
        inputs.append({"source": src.name, "format": src.format, "n_files": len(files),
                       "bytes": sum(max(f.size, 0) for f in files), **({"unknown_sizes": unknown} if unknown else {}),
                       "files": [{"path": f.path, "size": f.size, "mtime": f.mtime} for f in files]})
    return inputs
