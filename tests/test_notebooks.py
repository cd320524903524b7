"""Every notebook under notebooks/ runs headless, top to bottom, in quick mode (SCALING_LAB_QUICK=1):
the app in English, the lessons in Chinese as `scaling-lab lessons DIR --lang zh` writes them (the
same code with its markdown translated and one line that switches the language: every text their
code prints goes through the catalog, and a translation that broke a format would fail here);
every lesson's full-mode plans are built (and checked) without training them, in English.

Each runs in its own kernel with a temporary run store, in its own folder (as Jupyter and Voila
run it), with the repository on PYTHONPATH so that `lab` and `widgets` import without an install.
The selected notebooks run two at a time (a kernel keeps about one core busy, mostly compiling),
and each test waits for its own.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CELL_TIMEOUT_S = 300
AT_ONCE = 2


def test_there_is_an_app_notebook():
    assert ROOT / "notebooks" / "lab.ipynb" in NOTEBOOKS


def lang_of(path: Path) -> str:
    return "zh" if path.name.startswith("lesson") else "en"


def execute(path: Path, store: Path):
    """The notebook executed in its own kernel (a lesson in Chinese); raises CellExecutionError with
    the cell and traceback."""
    import json

    import nbformat
    from nbclient import NotebookClient

    from lab.i18n import translate_notebook
    nb = nbformat.reads(json.dumps(translate_notebook(json.loads(path.read_text(encoding="utf-8")), lang_of(path))),
                        as_version=4)
    env = dict(os.environ, SCALING_LAB_QUICK="1", SCALING_LAB_STORE=str(store),
               SCALING_LAB_JAX_CACHE=os.environ["SCALING_LAB_JAX_CACHE"],   # conftest: <repo>/.pytest_cache/jax
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("QUERY_STRING", None)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


@pytest.fixture(scope="module")
def executions(request, tmp_path_factory):
    """path -> Future of the executed notebook, for the notebooks this session selected."""
    chosen = [item.callspec.params["path"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_notebook_runs_headless"]
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        yield {path: pool.submit(execute, path, tmp_path_factory.mktemp(path.stem) / "store") for path in chosen}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "notebooks")) for p in NOTEBOOKS])
def test_notebook_runs_headless(path, executions):
    nb = executions[path].result()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if path.name == "lab.ipynb":       # the app displayed itself as a widget
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    else:                              # what the lesson's code printed came out in Chinese
        printed = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
        assert printed.startswith("快速模式 | 运行库："), printed[:200]
        assert len(re.findall(r"[\u4e00-\u9fff]", printed)) > 10, printed[:500]


# --- every lesson's full-mode plans, built without training them ----------------------------------

PLAN_ONLY = '''
import lab, lab.store, lab.sweep, lab.training
class PlannedOnly(Exception):
    """A run or sweep the lesson asks for in full mode: built and checked, not trained (tests)."""
PLANNED = []
def _sweep(plan, *args, **kwargs):
    PLANNED.extend(plan.configs)
    raise PlannedOnly(f"{len(plan.configs)} runs planned")
def _train(config, *args, **kwargs):
    PLANNED.append(config)
    raise PlannedOnly("1 run planned")
lab.run_sweep = lab.sweep.run_sweep = _sweep
lab.train = lab.training.train = _train
lab.store.RunStore.train = lambda self, config, *args, **kwargs: _train(config)
'''


def plan_full(path: Path, store: Path):
    """The lesson in full mode with training replaced by recording what it asks for: every cell
    runs; a cell whose training was skipped raises PlannedOnly, and cells that read its results
    then raise NameError. Returns the executed notebook and the number of runs planned."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PLAN_ONLY))
    nb.cells.append(nbformat.v4.new_code_cell("print('planned', len(PLANNED))"))
    env = dict(os.environ, SCALING_LAB_STORE=str(store), SCALING_LAB_JAX_CACHE=os.environ["SCALING_LAB_JAX_CACHE"],
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    for k in ("SCALING_LAB_QUICK", "QUERY_STRING", "SCALING_LAB_ISOFLOP_STORE"):
        env.pop(k, None)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


LESSONS = [p for p in NOTEBOOKS if p.name.startswith("lesson")]


@pytest.fixture(scope="module")
def full_plans(request, tmp_path_factory):
    chosen = [item.callspec.params["path"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_every_lesson_builds_its_full_mode_plans"]
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        yield {path: pool.submit(plan_full, path, tmp_path_factory.mktemp(path.stem + "-full") / "store")
               for path in chosen}


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_lesson_builds_its_full_mode_plans(path, full_plans):
    """A full-mode setting that cannot run fails here in seconds, not after minutes of training:
    only skipped training (PlannedOnly) and what reads its results (NameError) may fail. A setting
    built in a cell that first reads a result is not reached (lesson 1's old width 170 with 4 heads
    sat behind its fit); `make lessons-full` runs everything."""
    nb = full_plans[path].result()
    errors = [(c.source.splitlines()[0][:80] if c.source else "", o["ename"], o["evalue"][:300])
              for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error" and o["ename"] not in ("PlannedOnly", "NameError")]
    assert not errors, errors
    last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    assert last.startswith("planned ") and int(last.split()[1]) > 0, last
