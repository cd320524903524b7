"""Scaling Lab's engine: data, models, training, sweeps, the run store and scaling-law fits.

The public API, in two parts. These names, imported on first use:
    RunConfig, ModelConfig, OptimConfig, DataConfig, ConfigError   -- lab.config
    train, train_seeds                                              -- lab.training
    Tracker, Event, RunResult, EventLog, ProgressBar                -- lab.trackers
    param_counts, flops_per_token, run_flops, memory_bytes          -- lab.counting
    load_dataset                                                    -- lab.data
    RunStore, StoreTracker, Asker                                   -- lab.store
    RunQueue                                                        -- lab.runqueue
    Service, ensure_service                                         -- lab.service
    pack, unpack                                                    -- lab.pack
    Plan, grid, ladder, isoflop                                     -- lab.plans
    run_sweep, plan_summary                                         -- lab.sweep
    fit_power_law, fit_chinchilla, compute_optimal, bootstrap, holdout_check   -- lab.fit
    fit_isoflop, fit_split                                          -- lab.allocation
and the public (not underscored) names of the modules in `PUBLIC_MODULES`, which a front end
reads to say, check and estimate before it asks (the settings table and its words, counts,
families, plans, estimates, laws, the compute-optimal split, forecasts, the queue's places).
The app (`widgets/`) uses only these (a test checks its imports); the lessons also open the model, data, training and latency modules,
to show how they work. The rest (`lab.training`'s internals, `lab.models`, `lab.storedb`,
`lab.liveness`, `lab.weights`, `lab.device`, `lab.executors`, `lab.worker`, `lab.ray_service`, `lab.cli`) is
the engine's own.

Names are imported on first use, so `import lab` and the pure-Python modules (`lab.config`,
`lab.family`, `lab.fit`, `lab.laws`, `lab.counting`) load neither JAX nor Equinox; the
training loop lives in `lab.training`, a name no function shadows.
This package never imports UI code (widgets, ipywidgets, plotly, IPython).
"""

import importlib

_WHERE = {
    "ConfigError": "config", "DataConfig": "config", "ModelConfig": "config", "OptimConfig": "config",
    "RunConfig": "config",
    "flops_per_token": "counting", "memory_bytes": "counting", "param_counts": "counting", "run_flops": "counting",
    "load_dataset": "data", "train": "training", "train_seeds": "training",
    "Event": "trackers", "EventLog": "trackers", "ProgressBar": "trackers", "RunResult": "trackers",
    "Tracker": "trackers",
    "RunStore": "store", "StoreTracker": "store", "Asker": "store", "RunQueue": "runqueue",
    "Service": "service", "ensure_service": "service", "pack": "pack", "unpack": "pack",
    "Plan": "plans", "grid": "plans", "ladder": "plans", "isoflop": "plans", "run_sweep": "sweep", "plan_summary": "sweep",
    "fit_power_law": "fit", "fit_chinchilla": "fit", "compute_optimal": "fit",
    "fit_isoflop": "allocation", "fit_split": "allocation",
    "bootstrap": "fit", "holdout_check": "fit",
}
__all__ = sorted(_WHERE)
PUBLIC_MODULES = ("allocation", "asker", "config", "counting", "data", "estimate", "family", "fit", "forecast", "i18n",
                  "laws",
                  "optim", "plans", "runqueue", "sample", "schema", "service", "store", "sweep", "trackers", "when")


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"lab.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lab' has no attribute {name!r}")


def __dir__():
    return __all__
