"""The layering the architecture promises (docs/ARCHITECTURE.md), checked on the source: the engine, io/ and
the CLI import no feature package, the stage contract imports no stage, and no module-level import circle."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"
FEATURES = {"langid", "quality", "classify", "dedup", "decontam", "tokens", "mixing", "sample", "instruct",
            "multimodal"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _path(module: str) -> Path | None:
    base = LIB.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imports(module: str, top_level_only: bool = False) -> set[str]:
    """The tokenmill modules ``module`` imports (relative imports resolved; `from x import name` counts x,
    and x.name when that is a module)."""
    path = _path(module)
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tokenmill"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("tokenmill"):
                continue
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names if _path(f"{target}.{a.name}"))
    return {m for m in out if _path(m)}


def _closure(start: list[str]) -> dict[str, str]:
    """Every module reachable from ``start`` through imports, with the module that first imported it."""
    seen: dict[str, str] = {m: "" for m in start}
    todo = list(start)
    while todo:
        m = todo.pop()
        for dep in imports(m):
            # importing a.b.c also runs a/__init__ and a/b/__init__
            parts = dep.split(".")
            for k in range(2, len(parts) + 1):
                name = ".".join(parts[:k])
                if name not in seen and _path(name):
                    seen[name] = m
                    todo.append(name)
    return seen


def _feature(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FEATURES else None


def test_engine_io_and_cli_import_no_feature_package():
    roots = [_module(p) for p in sorted((LIB / "tokenmill" / "io").glob("*.py"))]
    roots += [_module(p) for p in sorted((LIB / "tokenmill" / "pipeline").glob("*.py")) if p.name != "job.py"]
    roots += ["tokenmill.cli", "tokenmill.catalog"]
    reached = _closure(roots)
    bad = sorted(f"{m} (imported by {by})" for m, by in reached.items() if _feature(m))
    assert not bad, "infrastructure imports feature modules: " + "; ".join(bad)


def test_the_stage_contract_is_a_leaf():
    reached = _closure(["tokenmill.pipeline.stage"])
    allowed = {"tokenmill", "tokenmill.pipeline", "tokenmill.pipeline.stage", "tokenmill.config", "tokenmill.errors",
               "tokenmill.schema"}
    # importing tokenmill.pipeline runs its __init__ (plan, run): those must not reach a stage either
    assert not [m for m in reached if _feature(m)]
    direct = imports("tokenmill.pipeline.stage")
    assert direct <= allowed, direct - allowed


def test_no_module_level_import_circle():
    modules = [_module(p) for p in sorted((LIB / "tokenmill").rglob("*.py"))]
    graph = {m: imports(m, top_level_only=True) for m in modules}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if dep == m or dep not in graph:
                continue
            if state.get(dep) == 1 and not m.startswith(dep + ".") and not _is_package_init(dep, m):
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in modules:
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def _is_package_init(dep: str, m: str) -> bool:
    """A package's __init__ importing its own submodule, which imports the package back: not a circle."""
    return _path(dep) is not None and _path(dep).name == "__init__.py" and m.startswith(dep + ".")


def test_every_catalogued_module_exists_and_registers():
    from tokenmill.catalog import JOB_MODULES, STAGE_MODULES, load_jobs, load_stages
    from tokenmill.pipeline.stage import REGISTRY

    assert all(_path(m) for m in STAGE_MODULES + JOB_MODULES)
    load_stages()
    assert {"read", "write", "langid", "language_filter", "quality_signals", "quality_filter", "url_filter",
            "word_filter", "quality_classifier", "quality_select", "exact_dedup", "minhash_dedup", "decontaminate",
            "tokens", "instruct_text", "instruct_filter", "instruct_format", "instruct_split",
            "audio_features", "filter_rows", "caption_clean", "image_text_filter", "image_check"} == set(REGISTRY)
    names = [j.name for j in load_jobs()]
    assert len(names) == len(set(names)) == 25 and {"extract_eval", "validate_dataset", "export", "gc"} <= set(names)
