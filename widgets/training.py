"""Train, Train again, Stop, and the Sweep tab: what they ask of the queue (the job itself is
`widgets.jobs`)."""

import asyncio

from lab import plans
from lab.config import ConfigError, RunConfig
from lab.i18n import _
from lab.sweep import plan_summary
from widgets import fields
from widgets.form import FormActions
from widgets.jobs import Jobs
from widgets.session import Session
from widgets.text import in_words, reported

QUICK_LADDER_WIDTHS = (8, 12, 16, 20, 24, 32)   # quick mode: a ladder of tiny models, seconds each


class TrainActions:
    """Train the form's config (all its seeds), train it again beside its stored runs, stop."""

    def __init__(self, session: Session, form: FormActions, jobs: Jobs):
        self.session, self.form, self.jobs = session, form, jobs
        self.state, self.report = session.state, session.report

    @reported
    def start(self, config: RunConfig | None = None, *, again: bool = False) -> asyncio.Task | None:
        """Ask for the form's config (all its seeds) and follow it in the background; returns the job's task.

        Runs the store holds finished are shown from the store instead (no training); runs another
        page asked for are joined (trained once, followed here). `again`: a new attempt of every
        seed beside the stored runs (Train again), whatever the store holds."""
        if self.state.job:
            return self.report(_("a job is running; press Stop or wait for it to finish"))
        try:
            cfg = config or self.form.checked_config()
        except (ConfigError, ValueError) as e:
            return self.report(e, _("cannot train"))
        n = int(self.state.form["seeds"]) if config is None else 1
        return self.jobs.launch("train", [cfg.replace(seed=s) for s in range(cfg.seed, cfg.seed + n)], again=again)

    @reported
    def again(self) -> asyncio.Task | None:
        """Train the form's config anew, as a new attempt beside its finished runs (never over them)."""
        return self.start(again=True)

    @reported
    def stop(self) -> None:
        """This page stops waiting: its queued runs leave the queue, a running run nobody else waits
        for stops after its current chunk (kept, marked cancelled); a run other pages wait for goes on."""
        self.jobs.stop()

    async def run(self, config: RunConfig | None = None, *, again: bool = False):
        """Train and wait (for notebooks and tests): `await controller.train.run()`."""
        task = self.start(config, again=again)
        return await task if task is not None else None


class SweepActions:
    """The Sweep tab: a ladder, a grid or an IsoFLOP plan, its cost stated first, then asked of the
    queue (fed within the page's queue limit) and followed."""

    def __init__(self, session: Session, form: FormActions, jobs: Jobs):
        self.session, self.form, self.jobs = session, form, jobs
        self.state, self.report = session.state, session.report
        ladder_widths = QUICK_LADDER_WIDTHS if fields.quick() else plans.LADDER_WIDTHS
        self.values = {"mode": "ladder", "widths": "16,32,64", "depths": "1", "tokens": "", "budgets": "3e11,1e12",
                       "sizes": "16,32,64", "ladder_widths": ",".join(map(str, ladder_widths)),
                       "ladder_depths": "1" if fields.quick() else "",
                       "tokens_per_param": f"{plans.CHINCHILLA_TOKENS_PER_PARAM:g}", "ladder_seeds": 1,
                       "ladder_tuned": True}
        form.on_change.append(self.restate)
        form.on_preset.append(lambda values: self.set(**values))

    def restate(self) -> None:
        self.set()

    @reported
    def set(self, **values) -> None:
        """Sweep inputs (mode ladder, grid or isoflop; comma lists) -> the plan's cost, stated before it starts."""
        self.values.update(values)
        try:
            plan = self.build_plan()
            text = plan_summary(plan, self.session.store_or_none(), self.session.speed())
            self.state.sweep_plan = {"text": text, "runs": len(plan), "error": ""}
        except (ConfigError, ValueError) as e:
            self.state.sweep_plan = {"text": "", "runs": 0, "error": in_words(e)}

    def build_plan(self) -> plans.Plan:
        """The tab's inputs as `lab.plans.sweep` takes them (it holds the rules of which go together)."""
        s = self.values

        def ints(name):
            return [int(fields.number(t)) for t in str(s[name]).split(",") if t.strip()] or None

        kind, base = s["mode"], self.form.build_config()
        if kind == "ladder":
            text = str(s["tokens_per_param"]).strip()
            if not text:
                raise ConfigError(_("tokens per parameter is empty; 20 is Chinchilla's compute-optimal ratio"))
            n = int(s["ladder_seeds"])
            if n < 1:
                raise ConfigError(_("seeds per size must be 1 or more, got {n}").format(n=n))
            return plans.sweep(kind, base, widths=ints("ladder_widths"), depths=ints("ladder_depths"),
                               tokens_per_param=fields.number(text), seeds=list(range(base.seed, base.seed + n)),
                               tuned=bool(s.get("ladder_tuned", True)))
        if kind == "grid":
            return plans.sweep(kind, base, widths=ints("widths"), depths=ints("depths"), tokens=ints("tokens"))
        budgets = [fields.number(t) for t in str(s["budgets"]).split(",") if t.strip()]
        return plans.sweep(kind, base, widths=ints("sizes"), budgets=budgets)

    @reported
    def start(self) -> asyncio.Task | None:
        """Ask for the sweep's runs (the store's finished ones are reused) and follow them."""
        if self.state.job:
            return self.report(_("a job is running; press Stop or wait for it to finish"))
        try:
            plan = self.build_plan()
        except (ConfigError, ValueError) as e:
            return self.report(e, _("cannot start the sweep"))
        return self.jobs.launch("sweep", plan.configs, budgets=plan.budgets)

    async def run(self):
        task = self.start()
        return await task if task is not None else None
