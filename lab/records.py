"""A stored run as the store hands it out: its record (a row in any state, with its result once it
has one), the record as a flat dict and its columns, and a result read back from its JSON.

Data only: `lab.store` reads and writes them; the runs table, the command line's `runs` and the
app's Runs tab show their columns.
"""

import dataclasses
import math
from dataclasses import dataclass

from lab.config import RunConfig
from lab.counting import flops_per_token, param_counts
from lab.family import family_key
from lab.jsonsafe import json_safe
from lab.schema import PARTS_LINE
from lab.trackers import RunResult


def _float(value) -> float:
    return math.nan if value is None else float(value)


def result_from_dict(d: dict, config: RunConfig, curve=()) -> RunResult:
    """Inverse of `RunResult.to_dict` (without the model): nulls back to NaN where a float belongs."""
    fields = {f.name for f in dataclasses.fields(RunResult)} - {"config", "curve", "model"}
    kw = {k: d.get(k) for k in fields}
    for k in ("train_loss", "eval_loss", "eval_bpb", "flops", "epochs", "wall_s", "first_step_s", "tokens_per_s",
              "unigram_loss"):
        kw[k] = _float(kw[k])
    return RunResult(config=config, curve=tuple(curve), **kw)


@dataclass(frozen=True)
class RunRecord:
    """One row of the store: a run in any state, with its result once it has one."""
    run_id: str
    config: RunConfig
    status: str                # running, done, diverged, cancelled, failed or interrupted
    attempts: int              # times training started
    error: str | None          # failed / interrupted: why
    budget: float | None       # IsoFLOP budget the run was planned for
    created: float
    started: float | None
    finished: float | None
    owner: str | None          # the process training it (status running)
    has_weights: bool
    result: RunResult | None   # done, diverged, cancelled
    asked_by: str | None = None      # the asking page's browser id (None: the command line or a script)
    asked_name: str | None = None    # their display name
    asked_role: str | None = None    # student or teacher

    def to_dict(self) -> dict:
        """Flat: status fields, the config's main knobs, and the result's numbers (null until trained)."""
        m, o = self.config.model, self.config.optim
        counts = param_counts(m)
        d = {"run_id": self.run_id, "status": self.status, "attempts": self.attempts, "attempt": self.config.attempt,
             "error": self.error.partition(PARTS_LINE)[0] if self.error else self.error,   # English, one line
             "budget": self.budget, "shape_id": self.config.shape_id, "arch": m.arch, "width": m.width,
             "depth": m.depth, "heads": m.heads, "context": m.context, "optimizer": o.name, "lr": o.lr,
             "schedule": o.schedule, "cooldown_of": self.config.cooldown_of, "batch": self.config.batch,
             "seed": self.config.seed,
             "param": m.param, "tokens_per_param": self.config.tokens_per_param,
             "family": family_key(self.config),
             "data": self.config.data.source, "tokenizer": self.config.data.tokenizer, "vocab": m.vocab,
             "planned_tokens": self.config.tokens_trained,
             "params_total": counts.total, "params_embedding": counts.embedding,
             "params_non_embedding": counts.non_embedding, "flops_per_token": flops_per_token(m),
             "tokens": None, "flops": None, "train_loss": None, "eval_loss": None, "eval_bpb": None,
             "steps": None, "epochs": None, "wall_s": None, "first_step_s": None, "tokens_per_s": None,
             "device": None, "diverged_step": None, "stopped": None, "unigram_loss": None, "entropy_rate": None,
             "dataset": None, "created": self.created, "started": self.started, "finished": self.finished,
             "asked_by": self.asked_by, "asked_name": self.asked_name, "asked_role": self.asked_role}
        if self.result is not None:
            r = self.result.to_dict()
            d.update({k: r[k] for k in d if k in r and k not in ("run_id", "status")})
        return json_safe(d)


COLUMNS = tuple(RunRecord(run_id="0" * 16, config=RunConfig(), status="done", attempts=0, error=None, budget=None,
                          created=0.0, started=None, finished=None, owner=None, has_weights=False,
                          result=None).to_dict())
