"""Project-level guarantees: the engine knows no UI, and the two dependency lists agree."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
UI = ("widgets", "ipywidgets", "plotly", "IPython", "voila", "traitlets", "anywidget")


def test_lab_source_imports_no_ui():
    pattern = re.compile(r"^\s*(?:import|from)\s+(" + "|".join(UI) + r")\b", re.M)
    for path in (ROOT / "lab").rglob("*.py"):
        assert not pattern.search(path.read_text()), f"{path.relative_to(ROOT)} imports UI code"


def test_importing_the_engine_loads_no_ui_module():
    mods = ["lab", "lab.cli", "lab.training", "lab.data", "lab.models"]
    mods += [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
             for p in (ROOT / "lab").rglob("*.py") if p.stem != "__main__"]
    code = ("import importlib, sys\n"
            f"for m in {sorted(set(mods))!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {UI!r}]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def _import_graph(pkg: str) -> dict[str, set[str]]:
    """Which of the package's own modules each module imports, at the top or inside a function
    (`if TYPE_CHECKING:` blocks, never run, left out); a module loaded by name fails the test."""
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                    "__import__", "import_module") and name != pkg:   # the package's lazy public names
                raise AssertionError(f"{path.relative_to(ROOT)} loads a module by name (line {node.lineno}); "
                                     "import it by its name instead")
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in paths:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):   # a module's own package: always loaded
                    graph[name].add(t)
    return graph


KNOWN_CIRCLES: list[set[str]] = []      # none: lab.service and lab.ray_service both build on lab.worker


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circles():
    for pkg in ("lab", "widgets"):
        graph = _import_graph(pkg)
        for name in graph:
            circle = {m for m in _reach(graph, name) if name in _reach(graph, m)} | {name}
            if len(circle) > 1:
                assert circle in KNOWN_CIRCLES, f"import circle through {sorted(circle)}"


def test_no_module_shadows_a_standard_library_module():
    """`lab/queue.py` would shadow `queue` for any script run from inside `lab/` (and did break
    imports once): module names stay clear of the standard library's."""
    for pkg in ("lab", "widgets", "bench"):
        clash = sorted(p.stem for p in (ROOT / pkg).glob("*.py") if p.stem in sys.stdlib_module_names)
        assert not clash, f"{pkg}/ has modules named like the standard library's: {clash}; rename them"


def test_the_app_uses_only_the_engines_public_api():
    """widgets/ imports names `lab` lists, or public names of `lab.PUBLIC_MODULES`, nothing else."""
    import lab
    public = {f"lab.{m}" for m in lab.PUBLIC_MODULES}
    for path in (ROOT / "widgets").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lab":
                for a in node.names:
                    where = f"{path.name}:{node.lineno}: from {node.module} import {a.name}"
                    if node.module == "lab":
                        assert a.name in lab.__all__ or f"lab.{a.name}" in public, where
                    else:
                        assert node.module in public, where
                        assert not a.name.startswith("_") or a.name == "_", where   # _: gettext (lab.i18n)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] != "lab" or a.name in public | {"lab"}, f"{path.name}: import {a.name}"


def test_the_public_api_resolves():
    import importlib

    import lab
    for name in lab.__all__:
        assert getattr(lab, name) is not None, name
    for module in lab.PUBLIC_MODULES:
        importlib.import_module(f"lab.{module}")


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


# conda-forge names that differ from PyPI's
CONDA_NAMES = {"ray": "ray-default"}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("app", "notebook", "test", "ray"):
        wanted |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    have = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(r) for r in dep.get("pip", []) if not r.startswith("-")}
        else:
            have.add(_name(dep))
    have.discard("python")
    have.discard("pip")
    assert {CONDA_NAMES.get(n, n) for n in wanted} == have, (wanted ^ have)


def test_fast_allocator_env(monkeypatch):
    from lab import runtime
    monkeypatch.setattr(runtime, "JEMALLOC_PATHS", (__file__,))      # any existing file stands in
    monkeypatch.setenv("SCALING_LAB_JEMALLOC", "1")
    env = runtime.fast_allocator_env({"LD_PRELOAD": "/other.so"})
    assert env["LD_PRELOAD"] == f"{__file__}:/other.so"
    assert "dirty_decay_ms:-1" in env["MALLOC_CONF"]
    assert runtime.fast_allocator_env(env) == env                      # idempotent
    monkeypatch.setenv("SCALING_LAB_JEMALLOC", "0")
    assert "LD_PRELOAD" not in runtime.fast_allocator_env({})


def test_config_fits_and_the_form_import_without_jax():
    """`import lab` and the pure-Python engine modules, and the app's form, cost no JAX import."""
    code = ("import sys\n"
            "import lab, lab.config, lab.counting, lab.family, lab.fit, lab.laws, widgets.fields\n"
            "print(','.join(m for m in ('jax', 'equinox', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    # the public names still resolve, lazily
    code = "import lab; print(lab.train.__module__, lab.train_seeds.__name__, lab.RunConfig.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["lab.training", "train_seeds", "RunConfig"], out.stderr
