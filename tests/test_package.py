"""The package works where it is installed, not only in a checkout: the wheel carries the app
notebook and the lessons (as `lab._notebooks`), and the installed `scaling-lab` finds them."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, and its files installed into a folder of their own."""
    tmp = tmp_path_factory.mktemp("wheel")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp.glob("scaling_lab-*.whl")
    site = tmp / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return wheel, site


def _env(site: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(site))   # the installed copy comes first, not the checkout
    env.pop("SCALING_LAB_QUICK", None)
    return env


@pytest.mark.slow
def test_the_wheel_carries_the_notebooks(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "lab/_notebooks/lab.ipynb" in names
    assert "widgets/app.py" in names
    assert "lab/schema.py" in names
    lessons = {p.name for p in (ROOT / "notebooks").glob("lesson*.ipynb")}
    assert {f"lab/_notebooks/{n}" for n in lessons} <= names
    assert len(lessons) >= 5


@pytest.mark.slow
def test_installed_lessons_and_app_work_outside_a_checkout(installed, tmp_path):
    _, site = installed
    where = subprocess.run([sys.executable, "-c", "import lab.cli.app; print(lab.cli.app.__file__, lab.cli.app.notebooks_folder())"],
                           capture_output=True, text=True, cwd=tmp_path, env=_env(site), timeout=120)
    assert where.returncode == 0, where.stderr
    module, folder = where.stdout.split()
    assert module.startswith(str(site))
    assert folder.startswith(str(site))
    copied = subprocess.run([sys.executable, "-m", "lab", "lessons", str(tmp_path / "mine")], capture_output=True,
                            text=True, cwd=tmp_path, env=_env(site), timeout=120)
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (tmp_path / "mine").glob("lesson*.ipynb")) == \
        sorted(p.name for p in (ROOT / "notebooks").glob("lesson*.ipynb"))
    # the app: served by Voila from the installed notebook, the page comes back
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(site) | {"SCALING_LAB_STORE": str(tmp_path / "store")}
    proc = subprocess.Popen([sys.executable, "-m", "lab", "app", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline, page = time.monotonic() + 240, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert "voila" in page.lower()
        assert "Scaling Lab" in page
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
