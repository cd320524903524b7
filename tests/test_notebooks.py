"""Every notebook under notebooks/ runs headless, top to bottom, in quick mode (SCALING_LAB_QUICK=1).

Each runs in its own kernel with a temporary run store, in its own folder (as Jupyter and Voila
run it), with the repository on PYTHONPATH so that `lab` and `widgets` import without an install.
The selected notebooks run two at a time (a kernel keeps about one core busy, mostly compiling),
and each test waits for its own.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CELL_TIMEOUT_S = 300
AT_ONCE = 2


def test_there_is_an_app_notebook():
    assert ROOT / "notebooks" / "lab.ipynb" in NOTEBOOKS


def execute(path: Path, store: Path):
    """The notebook executed in its own kernel; raises CellExecutionError with the cell and traceback."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
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
