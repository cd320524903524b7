"""What the training loop tells the world: events, results, and the small Tracker interface.

The loop never knows who listens. After each compiled chunk of steps it sends an `Event` to
every tracker; at the end a `RunResult`. The run store, the live curves of the app and the
command line's progress bar are all trackers.
"""

import dataclasses
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from lab.config import RunConfig
from lab.i18n import N_
from lab.jsonsafe import json_safe
from lab.schema import Name, Say

# Why a run ended before its planned tokens (`RunResult.stopped`), as message parts: each front end
# spells the setting its own way (`lab.schema.spell`): "--patience" on the command line, the
# form's label in the app, and the words in the language current when spelled (`lab.schema.Say`).
STOP_REASONS = {"target": (Say(N_("the validation loss reached {name}"), name=Name("target_loss")),),
                "patience": (Say(N_("the validation loss stopped improving for {name} evaluations"),
                                 name=Name("patience")),)}



@dataclass(frozen=True)
class Event:
    run_id: str
    seed: int
    step: int                  # steps done so far
    steps: int                 # steps planned
    tokens: int                # tokens seen so far (tokens_seen)
    flops: float               # training FLOPs so far (flops_seen)
    train_loss: float          # nats/token, mean over the chunk's steps
    eval_loss: float | None    # nats/token on the held-out split, when evaluated after this chunk
    lr: float                  # learning rate at the chunk's last step
    tokens_per_s: float        # this chunk's throughput (all seeds together)
    elapsed_s: float           # wall time since the run started

    def metrics(self) -> dict[str, float]:
        out = {"step": self.step, "tokens_seen": self.tokens, "flops_seen": self.flops, "train/loss": self.train_loss,
               "lr": self.lr, "throughput/tokens_per_s": self.tokens_per_s}
        if self.eval_loss is not None:
            out["eval/loss"] = self.eval_loss
        return out


@dataclass(frozen=True)
class RunResult:
    run_id: str
    config: RunConfig
    status: str                # done, diverged or cancelled
    train_loss: float          # nats/token, mean over the last 32 steps (lab.training.TRAIN_LOSS_STEPS)
    eval_loss: float           # nats/token on validation, at the end (diverged: the last finite weights)
    eval_bpb: float            # bits per byte (byte tokens: nats / ln 2)
    tokens: int                # training tokens seen (D)
    steps: int
    flops: float               # training compute C (see lab.counting)
    flops_per_token: int
    params_total: int          # Chinchilla's N
    params_embedding: int
    params_non_embedding: int  # Kaplan's N
    epochs: float              # tokens / training split (data repeats past 1)
    wall_s: float
    first_step_s: float        # time to the first step: trace, compile and one step
    tokens_per_s: float        # steady state: the first call excluded when there are others
    device: str
    diverged_step: int | None
    unigram_loss: float        # the data's unigram baseline (nats/token)
    entropy_rate: float | None  # the data's true entropy rate when known (synthetic)
    dataset: str
    curve: tuple = ()          # the events as metric dicts
    stopped: str | None = None  # done before its planned steps: "target" (target_loss) or "patience"; else None
    model: Any = field(default=None, repr=False, compare=False)  # final weights (not serialised)

    def to_dict(self, *, curve: bool = False) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "curve", "config")}
        d["config"] = self.config.to_dict()
        if curve:
            d["curve"] = list(self.curve)
        return json_safe(d)


def cancel_requested(cancel) -> bool:
    """Whether `cancel` (None, a threading.Event or a callable) asks a run or sweep to stop."""
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


class Tracker:
    """Listens to runs. Override what you need; every method is optional."""

    def start(self, config: RunConfig, info: dict) -> None:
        """Before the first step; `info` holds the constants (parameter counts, FLOPs, steps)."""

    def log(self, event: Event) -> None:
        """After each chunk of steps."""

    def finish(self, result: RunResult) -> None:
        """Once the run has ended (done, diverged or cancelled)."""


class EventLog(Tracker):
    """Keeps every event and result in memory (tests, notebooks)."""

    def __init__(self):
        self.events: list[Event] = []
        self.results: list[RunResult] = []
        self.infos: list[dict] = []

    def start(self, config, info):
        self.infos.append(info)

    def log(self, event):
        self.events.append(event)

    def finish(self, result):
        self.results.append(result)


class ProgressBar(Tracker):
    """A tqdm bar over training tokens (all seeds together) on stderr, with the latest losses and,
    given a `lab.forecast.Forecaster` of the run's family, the forecast final loss (first seed)."""

    def __init__(self, file=None, desc: str = "train", forecaster=None):
        self.file = file or sys.stderr
        self.desc = desc
        self.bar = None
        self.seen: dict[int, int] = {}
        self.forecaster = forecaster
        self.points: list[dict] = []
        self.size, self.first = (0, 0), 0
        self.last_forecast = None

    def start(self, config, info):
        from tqdm import tqdm
        from lab.counting import param_counts
        self.bar = tqdm(total=info["tokens"] * info["seeds"], unit="tok", unit_scale=True, desc=self.desc,
                        file=self.file, dynamic_ncols=True, leave=True)
        self.seen = {}
        self.points, self.first = [], config.seed
        self.size = (param_counts(config.model).total, config.tokens_trained)

    def log(self, event):
        if self.bar is None:
            return
        self.bar.update(event.tokens - self.seen.get(event.seed, 0))
        self.seen[event.seed] = event.tokens
        post = {"loss": f"{event.train_loss:.3f}"}
        if event.eval_loss is not None:
            post["val"] = f"{event.eval_loss:.3f}"
        if self.forecaster is not None and event.seed == self.first:
            self.points.append(event.metrics())
            fc = self.forecaster.forecast(*self.size, self.points)
            if fc is not None:
                self.last_forecast = fc
                post["final≈"] = f"{fc.loss:.3f} [{fc.low:.3f}, {fc.high:.3f}]" + (" beyond the learnt sizes"
                                                                                   if fc.beyond else "")
        self.bar.set_postfix(post, refresh=False)

    def finish(self, result):
        if self.bar is not None:
            self.bar.set_postfix({"status": result.status, "val": f"{result.eval_loss:.3f}"})
            self.bar.close()
            self.bar = None
