"""Scaling Lab's engine: data, models, training, sweeps, the run store and scaling-law fits.

The public API (the app and notebooks use only this):
    RunConfig, ModelConfig, OptimConfig, DataConfig, ConfigError   -- lab.config
    train, train_seeds                                              -- lab.train
    Tracker, Event, RunResult, EventLog, ProgressBar                -- lab.trackers
    param_counts, flops_per_token, run_flops, memory_bytes          -- lab.counting
    load_dataset                                                    -- lab.data
This package never imports UI code (widgets, ipywidgets, plotly, IPython).
"""

from lab.config import ConfigError, DataConfig, ModelConfig, OptimConfig, RunConfig
from lab.counting import flops_per_token, memory_bytes, param_counts, run_flops
from lab.data import load_dataset
from lab.trackers import Event, EventLog, ProgressBar, RunResult, Tracker
from lab.train import train, train_seeds

__all__ = ["ConfigError", "DataConfig", "ModelConfig", "OptimConfig", "RunConfig", "flops_per_token",
           "memory_bytes", "param_counts", "run_flops", "load_dataset", "Event", "EventLog", "ProgressBar",
           "RunResult", "Tracker", "train", "train_seeds"]
