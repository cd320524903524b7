import os
from pathlib import Path

import pytest

# Tests use their own JAX compilation cache and run store, never the user's.
_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SCALING_LAB_JAX_CACHE", str(_ROOT / ".pytest_cache" / "jax"))
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite's models are tiny, so its time is mostly XLA compiling them: the CPU backend's LLVM
# optimisation is off in tests (and in the kernels, servers and workers they start, which inherit
# it). Measured on 2 cores: compiling ~30 % faster, three test files 185 s -> 134 s; the programs
# run ~2.5x slower and losses agree to ~1e-4. Real runs, benchmarks and `make gpu-check` keep it on.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)


def as_users_run() -> dict:
    """The environment without the tests' compile flag, for subprocesses that measure or profile the
    programs users run (an unoptimised program has other operations, named otherwise)."""
    env = dict(os.environ)
    if env.get("XLA_FLAGS") == TEST_XLA_FLAGS:
        env.pop("XLA_FLAGS")
    return env

from lab import runtime

runtime.setup()



@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """No test touches the user's run store, and every test starts and ends in English (lab.i18n)."""
    monkeypatch.setenv("SCALING_LAB_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("SCALING_LAB_LANG", raising=False)
    from lab import i18n
    i18n.use("en")
    yield
    i18n.use("en")


@pytest.fixture
def app_env(monkeypatch):
    """What the app's tests run in: quick mode, training in this process, no link, no teacher token;
    the training services they started stopped afterwards."""
    monkeypatch.setenv("SCALING_LAB_QUICK", "1")
    monkeypatch.setenv("SCALING_LAB_SERVICE", "thread")
    monkeypatch.delenv("QUERY_STRING", raising=False)
    monkeypatch.delenv("SCALING_LAB_TEACHER_SHA256", raising=False)
    yield
    from widgets.session import stop_own_services
    stop_own_services()


@pytest.fixture
def zh():
    """The lab in Simplified Chinese for one test."""
    from lab import i18n
    i18n.use("zh")
    yield


def tiny(**over):
    """The shrunken default config the tests train: seconds, not minutes."""
    from lab.config import DataConfig, ModelConfig, OptimConfig, RunConfig
    base = RunConfig(model=ModelConfig(width=32, depth=1, heads=2, context=32),
                     optim=OptimConfig(name="adamw", lr=1e-2), data=DataConfig(source="builtin"),
                     tokens=8 * 32 * 24, batch=8, eval_tokens=2048, evals=3)
    return base.replace(**over)
