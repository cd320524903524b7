"""The app's scaling actions: families, fitting laws, the budget calculator and predictions.

A law is fitted to one family at a time (lab.family): runs that differ only in size, tokens and
seed. The families are listed from the finished runs; the Scaling tab fits the chosen one: a
ladder's L(N) with its largest sizes held out (lab.laws.fit_family), else a power law in N, D or
C with a bootstrap band and the Chinchilla law L(N, D). A prediction extrapolates the law to a
model not trained yet; training it checks the law.

`ScalingActions` takes the page's `Session` (state, store records, errors) and the Train actions
(to train a prediction); it refits when the runs change (`runs_changed`) and after a job
(`job_ended`).
"""

import asyncio
import math

import numpy as np

from lab import allocation, counting, family as lfamily, fit as lawfit, laws
from lab.config import ConfigError, RunConfig
from lab.i18n import _
from widgets import fields
from widgets.plots import SCALING          # the scaling variables: N, D, C -> (column, axis title)
from widgets.text import fmt_count, in_words, reported, status_words

BOOTSTRAP_N = 200               # resamples for the fit's band: enough for a picture, fast
ISOFLOP_DRAWS = (200, 50)       # bootstrap draws for approach 2 (parabolas, ~0.1 s) and 3 (variable projection, ~0.4 s)
FIT_MIN_E = 5                   # fit the irreducible loss E only with this many distinct x (else A·x^-α)


def _num(v):
    """A float for the state: None where the engine says nan (not measured, one seed)."""
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _size(row: dict) -> tuple:
    """A run's size within its family: width, depth and planned tokens (the seed aside)."""
    return (row["width"], row["depth"], row["planned_tokens"])


class ScalingActions:
    """The Scaling tab's actions. Public: set_family, set_holdout, set_variable, fit, budget,
    predict, train_prediction."""

    def __init__(self, session, train):
        self.session, self.train = session, train
        self.state, self.report = session.state, session.report
        self._fit_objects: dict = {}                # the last fits (objects stay here, not in the state)
        self._holdout_chosen = False                # the student set "Hold out": keep it while the family stays
        session.on_runs.append(self.runs_changed)
        session.on_job_end.append(self.job_ended)

    def runs_changed(self) -> None:
        self._update_families()

    def job_ended(self, job, out) -> None:
        """After a job: a sweep's family is chosen, a prediction checked, the law fitted again."""
        family = self.train.jobs.family_of(out)
        if family:
            self._update_families(prefer=family)
        self._check_prediction()
        self._auto_fit()

    def selected(self, run_ids) -> None:
        """Runs chosen in the table, all of one family: that family is the one to fit."""
        key = self._selected_family()
        if key and key != self.state.family and key in self._family_keys():
            self.set_family(key)

    def _family_keys(self) -> list[str]:
        return [f["key"] for f in self.state.families]

    def _selected_family(self) -> str:
        """The family of the selected runs when they are all of one, else ''."""
        sel = set(self.state.selected)
        keys = {r["family"] for r in self.state.runs if r["run_id"] in sel}
        return keys.pop() if len(keys) == 1 else ""

    def _update_families(self, prefer: str | None = None) -> None:
        """List the finished runs' families (most sizes first) and keep one chosen: `prefer` (the
        family a sweep just trained), else the current one, else the selected runs', else the one
        with most sizes."""
        groups: dict[str, dict] = {}
        for r in self.state.runs:
            if r["status"] != "done" or not (r.get("eval_loss") or 0) > 0:
                continue
            g = groups.setdefault(r["family"], {"key": r["family"], "label": r["family_label"], "sizes": set(),
                                                "runs": 0, "tokens_per_param": r["config"]["tokens_per_param"]})
            g["sizes"].add((r["width"], r["depth"]))
            g["runs"] += 1
        fams = sorted(({**g, "sizes": len(g["sizes"])} for g in groups.values()),
                      key=lambda g: (-g["sizes"], -g["runs"]))
        self.state.families = fams
        keys = [f["key"] for f in fams]
        chosen = next((k for k in (prefer, self.state.family, self._selected_family()) if k and k in keys),
                      keys[0] if keys else "")
        self._choose_family(chosen)

    def _default_holdout(self) -> int:
        """2 when the family has 6 sizes or more (fit 4, check 2), else 0. The size an extrapolation
        checks does not count: it stays out of the fit."""
        st = self.state
        pred = st.prediction
        skip = tuple(pred["size"]) if pred and pred.get("family") == st.family and pred.get("size") else None
        sizes = {(r["width"], r["depth"]) for r in st.runs if r["family"] == st.family and r["status"] == "done"
                 and (r.get("eval_loss") or 0) > 0 and _size(r) != skip}
        return 2 if len(sizes) >= 6 else 0

    def _choose_family(self, key: str) -> bool:
        """Make `key` the chosen family; another family clears the fit and its prediction. Returns
        whether the family changed."""
        st = self.state
        changed = key != st.family
        if changed:
            st.family = key
            self._holdout_chosen = False
            self._fit_objects = {}
            st.fit = {"variable": st.fit.get("variable", "N"), "notes": []}
            if st.prediction and st.prediction.get("family") != key:
                st.prediction = {}
        if not self._holdout_chosen:
            st.holdout = self._default_holdout()
        return changed

    @reported
    def set_family(self, key: str) -> None:
        """Fit this family (a key from `state.families`); its law is fitted at once when it can be."""
        if key not in self._family_keys():
            raise ValueError(_("no family {key} among the finished runs; choose one from the Family list").format(
                key=repr(key)))
        if self._choose_family(key):
            self._auto_fit()

    @reported
    def set_holdout(self, k: int) -> None:
        """How many of the family's largest sizes the law leaves out and predicts (a ladder's law in N)."""
        if isinstance(k, bool) or int(k) != k or k < 0:
            raise ValueError(_("hold out a whole number of sizes, 0 or more, not {value}").format(value=repr(k)))
        self._holdout_chosen = True
        self.state.holdout = int(k)
        fam = next((f for f in self.state.families if f["key"] == self.state.family), None)
        if fam and fam["tokens_per_param"] > 0 and self.state.fit.get("variable", "N") == "N":
            self.fit()

    def _config(self, row: dict) -> RunConfig:
        rec = self.session.records.get(row["run_id"])
        return rec.config if rec is not None else RunConfig.from_dict(row["config"])

    def _fit_pool(self) -> dict:
        """The runs a fit may use: the selected runs when 3 or more are (they must be of one family),
        else the chosen family's. The model an extrapolation checks is left out: a law is never
        judged on a run it was fitted to.

        Raises:
            ConfigError: the selected runs are of several families (naming the fields that differ).
        """
        rows = self.state.runs
        sel = set(self.state.selected)
        chosen = [r for r in rows if r["run_id"] in sel]
        if len(chosen) >= 3:
            try:
                lfamily.check_one_family([self._config(r) for r in chosen])
            except ConfigError as e:
                raise ConfigError(_("{error}, in the Family list or by selecting runs of one family only").format(
                    error=e)) from None
            pool, scope, key = chosen, "selected", chosen[0]["family"]      # scope: which notes say where
        else:
            key = self.state.family
            pool, scope = [r for r in rows if key and r["family"] == key], "family"
        checked = []
        pred = self.state.prediction
        if pred and pred.get("family") == key and pred.get("size"):
            checked = [r for r in pool if _size(r) == tuple(pred["size"])]
            pool = [r for r in pool if _size(r) != tuple(pred["size"])]
        left: dict = {}
        for r in pool:
            if r["status"] != "done" or not (r.get("eval_loss") or 0) > 0:
                left[r["status"]] = left.get(r["status"], 0) + 1
        done = self._one_attempt([r for r in pool if r["status"] == "done" and (r.get("eval_loss") or 0) > 0])
        first = (pool or checked or [None])[0]
        return {"rows": done, "left": left, "scope": scope, "family": key,
                "label": first["family_label"] if first else "",
                "tokens_per_param": first["config"]["tokens_per_param"] if first else 0.0,
                "checked": [r for r in checked if r["status"] == "done"]}

    @staticmethod
    def _one_attempt(rows: list) -> list:
        """One run per config and seed: a retrain (Train again) measures the same run again, so a
        fit keeps only its newest finished attempt (two attempts are not two seeds)."""
        best: dict = {}
        for r in rows:
            key = (r["family"], _size(r), r["seed"])
            if key not in best or (r.get("attempt") or 0) > (best[key].get("attempt") or 0):
                best[key] = r
        keep = {id(r) for r in best.values()}
        return [r for r in rows if id(r) in keep]

    def _auto_fit(self) -> None:
        """Fit again after the runs changed, quietly, when there is something to fit (a refusal to
        pool families still shows in the fit's notes)."""
        try:
            if len(self._fit_pool()["rows"]) < 3:
                return
        except ConfigError:
            pass
        self.fit(quiet=True)

    @reported
    def set_variable(self, variable: str) -> None:
        """Plot and fit final loss against N, D or C."""
        if variable not in SCALING:
            raise ValueError(_("plot loss against N, D or C, not {value}").format(value=repr(variable)))
        self.state.fit = {"variable": variable, "notes": []}
        self._fit_objects = {}
        self._auto_fit()

    def _scope_notes(self, pool: dict, n_runs: int) -> list[str]:
        selected = pool["scope"] == "selected"
        if pool["label"]:
            first = (_("fitted on {n} finished run(s) of the selected runs: {label}") if selected
                     else _("fitted on {n} finished run(s) of the family: {label}"))
        else:
            first = (_("fitted on {n} finished run(s) of the selected runs") if selected
                     else _("fitted on {n} finished run(s) of the family"))
        notes = [first.format(n=n_runs, label=pool["label"])]
        if pool["left"]:
            counts = ", ".join(_("{n} {status}").format(n=n, status=status_words(s))
                               for s, n in sorted(pool["left"].items()))
            notes.append(_("left out: {counts}").format(counts=counts))
        if pool["checked"]:
            r = pool["checked"][0]
            notes.append(_("left out of the fit: {n} run(s) of the model it predicted (width {width}, depth {depth}); "
                           "they check this law").format(n=len(pool["checked"]), width=r["width"], depth=r["depth"]))
        return notes

    @reported
    def fit(self, variable: str | None = None, *, quiet: bool = False) -> dict | None:
        """Fit the chosen family's law. Against N with a ladder (tokens per parameter > 0): the
        family's L(N) = E + A·N^-α with its largest sizes held out and predicted, and the reasons to
        doubt it (lab.laws.fit_family). Otherwise L(x) = E + A·x^-α to the final validation losses
        (x = N, D or C) with a bootstrap band, and the Chinchilla law L(N, D) with its
        compute-optimal frontier when the runs vary both N and D. Diverged and cancelled runs are
        left out and counted; runs of several families are refused."""
        variable = variable or self.state.fit.get("variable", "N")
        if variable not in SCALING:
            raise ValueError(_("plot loss against N, D or C, not {value}").format(value=repr(variable)))
        out = {"variable": variable, "equation": "", "curve": None, "band": None, "frontier": None, "chinchilla": "",
               "valley": None, "minima": [],
               "notes": [], "law": "", "family": self.state.family, "held_out": [], "warnings": [], "sizes": []}
        try:
            pool = self._fit_pool()
        except ConfigError as e:
            out["notes"] = [in_words(e)]
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, _("fit"))
            return None
        out["family"] = pool["family"]
        if variable == "N" and pool["tokens_per_param"] > 0 and pool["rows"]:
            return self._fit_family_law(pool, out, quiet)
        rows = pool["rows"]
        col, name = SCALING[variable]
        x = np.array([float(r[col]) for r in rows])
        y = np.array([float(r["eval_loss"]) for r in rows])
        notes = out["notes"] = self._scope_notes(pool, len(rows))
        try:
            if len(np.unique(x)) < 3:
                raise ValueError(_("a power law in {variable} needs finished runs at 3 or more distinct values of "
                                   "{name}; have {n}. Train more sizes or run a sweep").format(
                                       variable=variable, name=_(name), n=len(np.unique(x))))
            irreducible = len(np.unique(x)) >= FIT_MIN_E
            law = lawfit.fit_power_law(x, y, irreducible=irreducible, variable=variable)
        except ValueError as e:
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, _("fit"))
            return None
        grid = self._grid(x, variable)
        out["equation"] = law.equation()
        out["law"] = "power"
        out["curve"] = {"x": grid.tolist(), "y": law.predict(grid).tolist()}
        if not irreducible:
            notes.append(_("without the irreducible loss E (that needs {n} distinct values of {variable})").format(
                n=FIT_MIN_E, variable=variable))
        if not law.converged:
            notes.append(_("the fit did not fully converge: {message}").format(message=law.message))
        self._fit_objects = {"law": law, "variable": variable, **self._template(pool)}
        try:
            boot = lawfit.bootstrap(x, None, y, law="kaplan-n", n=BOOTSTRAP_N, irreducible=irreducible, recheck=1)
            s = boot.samples
            curves = (s["E"][:, None] if irreducible else 0.0) + s["A"][:, None] * grid[None, :] ** -s["alpha"][:, None]
            lo, hi = np.percentile(curves, [2.5, 97.5], axis=0)
            out["band"] = {"x": grid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
            self._fit_objects["band"] = (grid, lo, hi)
            a = boot.intervals["alpha"]
            notes.append(_("α = {estimate} (95% interval {low} to {high}, {n} bootstrap refits)").format(
                estimate=f"{a.estimate:.3g}", low=f"{a.low:.3g}", high=f"{a.high:.3g}", n=boot.n_converged))
        except Exception as e:  # a band is a bonus; the fit stands without it
            notes.append(_("no interval band ({error})").format(error=e))
        if pool["tokens_per_param"] > 0:
            notes.append(_("no Chinchilla L(N, D): this family ties D to N (D = {tpp} x N), so the two cannot be told "
                           "apart; an IsoFLOP sweep varies them apart").format(tpp=f"{pool['tokens_per_param']:g}"))
        else:
            self._fit_chinchilla(rows, out, notes)
            self._fit_isoflop(rows, out, notes)
        self.state.fit = out
        if not quiet:
            self.state.notice = _("fitted {equation}").format(equation=out["equation"])
        return out

    def _grid(self, x, variable: str) -> np.ndarray:
        """Where to draw a law: from below the smallest point to 10x the largest (and the prediction)."""
        grid = np.geomspace(float(np.min(x)) / 1.5, float(np.max(x)) * 10, 60)
        pred = self.state.prediction
        if pred and pred.get("variable") == variable and pred.get("x"):
            grid = np.geomspace(min(grid[0], pred["x"] / 1.5), max(grid[-1], pred["x"] * 1.5), 60)
        return grid

    def _template(self, pool: dict) -> dict:
        """What an extrapolation needs to build a member of the fitted family: its largest run's
        config and the family's tokens when all its runs share one number."""
        rows = pool["rows"] or pool["checked"]
        if not rows:
            return {}
        big = max(rows, key=lambda r: (r["params_total"], -r["seed"]))
        tokens = {r["planned_tokens"] for r in rows}
        return {"family": pool["family"], "template": self._config(big),
                "tokens": tokens.pop() if len(tokens) == 1 else None}

    def _fit_family_law(self, pool: dict, out: dict, quiet: bool) -> dict | None:
        """A ladder family's L(N) (lab.laws.fit_family): fitted on the smaller sizes, checked on the
        `state.holdout` largest, with the reasons to doubt it in words."""
        rows = pool["rows"]
        results = [self.session.records[r["run_id"]].result for r in rows
                   if r["run_id"] in self.session.records and self.session.records[r["run_id"]].result is not None]
        notes = out["notes"] = self._scope_notes(pool, len(results))
        k = int(self.state.holdout)
        try:
            law = laws.fit_family(results, holdout=k)
        except (ConfigError, ValueError) as e:
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, _("fit"))
            return None
        Ns = [z.N for z in law.fitted] + [p.N for p in law.held_out]
        grid = self._grid(Ns, "N")
        out.update(equation=law.equation(), law="family", label=law.label, holdout=k, trusted=law.trusted,
                   warnings=list(law.warnings), confidence=law.confidence,
                   curve={"x": grid.tolist(), "y": law.fit.predict(grid).tolist()},
                   held_out=[{key: (_num(v) if isinstance(v, float) else v) for key, v in p.to_dict().items()}
                             for p in law.held_out],
                   sizes=[{"width": z.width, "depth": z.depth, "N": z.N, "D": z.D, "mean": z.mean, "sd": _num(z.sd),
                           "seeds": len(z.losses), "role": "fitted"} for z in law.fitted]
                   + [{"width": p.width, "depth": p.depth, "N": p.N, "D": p.D, "mean": _num(p.measured),
                       "sd": _num(p.sd), "seeds": p.seeds, "role": "held out"} for p in law.held_out])
        lo, hi = law.band(grid)
        out["band"] = {"x": grid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
        first = (_("fitted on {runs} run(s) at the {sizes} smallest size(s) of the selected runs: {label}")
                 if pool["scope"] == "selected" else
                 _("fitted on {runs} run(s) at the {sizes} smallest size(s) of the family: {label}"))
        notes[0] = first.format(runs=sum(len(z.losses) for z in law.fitted), sizes=len(law.fitted), label=law.label)
        if law.held_out:
            notes.insert(1, _("the {n} largest size(s) held out and predicted (table below); the largest error "
                              "{error}").format(n=len(law.held_out), error=f"{law.max_abs_rel_error:.1%}"))
        a = law.intervals["alpha"]
        notes.append(_("α = {estimate} ({confidence} interval {low} to {high}, from {source})").format(
            estimate=f"{a.estimate:.3g}", confidence=f"{law.confidence:.0%}", low=f"{a.low:.3g}", high=f"{a.high:.3g}",
            source=law.interval_from))
        notes.append(_("no Chinchilla L(N, D): this family ties D to N (D = {tpp} x N), so the two cannot be told "
                       "apart; an IsoFLOP sweep varies them apart").format(tpp=f"{law.tokens_per_param:g}"))
        self._fit_objects = {"law": law.fit, "family_law": law, "variable": "N", **self._template(pool)}
        self.state.fit = out
        if not quiet:
            self.state.notice = (_("fitted {equation}; the held-out sizes were predicted within {error}") if law.held_out
                                 else _("fitted {equation}")).format(equation=out["equation"],
                                                                      error=f"{law.max_abs_rel_error:.1%}")
        return out

    def _fit_isoflop(self, rows: list, out: dict, notes: list) -> None:
        """IsoFLOP valleys (approach 2) when the runs were planned at 2 or more budgets: a parabola in
        ln N per budget and its minimum, drawn on the N axis; the compute-optimal tokens per parameter
        with its interval, and approach 3 on the same runs beside it (lab.allocation)."""
        planned = [r for r in rows if (r.get("budget") or 0) > 0]
        if len({r["budget"] for r in planned}) < 2:
            return
        col = lambda k: np.array([float(r[k]) for r in planned])
        N, D, y, C, F = col("params_total"), col("tokens"), col("eval_loss"), col("budget"), col("flops_per_token")
        try:
            iso = allocation.fit_isoflop(N, D, y, C=C, flops_per_token=F, decimals=None, draws=ISOFLOP_DRAWS[0])
        except ValueError as e:
            notes.append(_("no IsoFLOP optimum: {error}").format(error=in_words(e)))
            return
        xs, ys, minima = [], [], []
        for p in iso.profiles:
            if p.coef:
                grid = np.geomspace(min(p.sizes), max(p.sizes), 30)
                xs += grid.tolist() + [None]
                ys += np.polyval(p.coef[::-1], np.log(grid)).tolist() + [None]
            if p.usable:
                iv = iso.intervals.get(f"N_opt@{p.C:.3g}")
                minima.append({"C": p.C, "N_opt": p.N_opt, "D_opt": p.D_opt, "L_opt": p.L_opt,
                               "tokens_per_param": p.tokens_per_param,
                               "low": iv.low if iv else None, "high": iv.high if iv else None})
            else:
                notes.append(_("budget C = {C} left out: {reason}").format(C=f"{p.C:.3g}", reason=p.reason))
        out["valley"] = {"x": xs, "y": ys}
        out["minima"] = minima
        t = iso.intervals.get("tokens_per_param")
        words = (_("IsoFLOP valleys (approach 2, {used} of {total} budgets bracketed; dotted curves, minima as "
                   "diamonds): compute-optimal {tpp} tokens per parameter ({confidence} interval {low} to {high}) at "
                   "C = {C} FLOPs, N_opt ∝ C^{a}, in the lab's FLOP count (C = FLOPs per token x D)") if t else
                 _("IsoFLOP valleys (approach 2, {used} of {total} budgets bracketed; dotted curves, minima as "
                   "diamonds): compute-optimal {tpp} tokens per parameter at C = {C} FLOPs, N_opt ∝ C^{a}, in the "
                   "lab's FLOP count (C = FLOPs per token x D)"))
        notes.append(words.format(used=iso.n_used, total=len(iso.profiles),
                                  tpp=f"{float(iso.tokens_per_param(iso.C_ref)):.3g}",
                                  confidence=f"{iso.confidence:.0%}", low=f"{t.low:.3g}" if t else "",
                                  high=f"{t.high:.3g}" if t else "", C=f"{iso.C_ref:.3g}", a=f"{iso.a:.2f}"))
        try:
            sp = allocation.fit_split(N, D, y, flops_per_token=F, C_ref=iso.C_ref, draws=ISOFLOP_DRAWS[1])
            t3 = sp.intervals.get("tokens_per_param")
            words = (_("approach 3 on the same runs (least squares by variable projection): {tpp} tokens per "
                       "parameter ({confidence} interval {low} to {high})") if t3 else
                     _("approach 3 on the same runs (least squares by variable projection): {tpp} tokens per "
                       "parameter"))
            notes.append(words.format(tpp=f"{sp.tokens_per_param_ref:.3g}", confidence=f"{sp.confidence:.0%}",
                                      low=f"{t3.low:.3g}" if t3 else "", high=f"{t3.high:.3g}" if t3 else ""))
        except ValueError as e:
            notes.append(_("no approach-3 split: {error}").format(error=in_words(e)))

    def _fit_chinchilla(self, rows: list, out: dict, notes: list) -> None:
        N = np.array([float(r["params_total"]) for r in rows])
        D = np.array([float(r["tokens"]) for r in rows])
        y = np.array([float(r["eval_loss"]) for r in rows])
        flops = allocation.flops_curve(N, [float(r["flops_per_token"]) for r in rows])
        pairs = len({(n, d) for n, d in zip(N, D)})
        if pairs < 6 or len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
            notes.append(_("Chinchilla L(N, D) needs 6 runs with distinct (N, D) varying both (have {n}); an IsoFLOP "
                           "sweep gives them").format(n=pairs))
            return
        try:
            ch = lawfit.fit_chinchilla(N, D, y)
            C = np.geomspace(float((flops(N) * D).min()), float((flops(N) * D).max() * 100), 40)
            alloc = lawfit.compute_optimal(ch, C, flops_per_token=flops)
        except (ValueError, TypeError) as e:
            notes.append(_("no Chinchilla fit: {error}").format(error=e))
            return
        self._fit_objects["chinchilla"] = ch
        self._fit_objects["flops"] = flops
        out["chinchilla"] = ch.equation()
        L = ch.predict(alloc.N_opt, alloc.D_opt)
        x = {"N": alloc.N_opt, "D": alloc.D_opt, "C": C}[out["variable"]]
        out["frontier"] = {"x": np.asarray(x).tolist(), "y": np.asarray(L).tolist()}
        notes.append(_("compute-optimal (dashed, C = FLOPs per token x D in the lab's count): N ∝ C^{a}, D ∝ C^{b} "
                       "(the exponents of C = 6ND; the lab's count bends them slightly)").format(
                           a=f"{ch.a:.2f}", b=f"{ch.b:.2f}"))

    @reported
    def budget(self, flops: float) -> None:
        """The budget calculator: with C FLOPs, train N parameters on D tokens, predicted loss L."""
        try:
            C = fields.number(flops) if isinstance(flops, str) else float(flops)
            if not (math.isfinite(C) and C > 0):
                raise ValueError(_("a compute budget must be a positive number of FLOPs, got {value}").format(
                    value=repr(flops)))
            ch = self._fit_objects.get("chinchilla")
            law = self._fit_objects.get("law")
            if ch is not None:
                a = lawfit.compute_optimal(ch, C, flops_per_token=self._fit_objects.get("flops"))
                N, D = float(a.N_opt), float(a.D_opt)
                L = float(ch.predict(N, D))
                text = _("With C = {C} FLOPs train N ≈ {N} parameters on D ≈ {D} tokens ({tpp} tokens per parameter; "
                         "C = FLOPs per token x D, the lab's count): predicted loss L ≈ {L} nats/token.").format(
                             C=f"{C:.3g}", N=fmt_count(N), D=fmt_count(D), tpp=f"{D / N:.3g}", L=f"{L:.3f}")
            elif law is not None and self._fit_objects.get("variable") == "C":
                text = _("With C = {C} FLOPs the power law predicts L ≈ {L} nats/token. How to split C into N and D "
                         "needs a Chinchilla fit (6 runs varying N and D).").format(
                             C=f"{C:.3g}", L=f"{float(law.predict(C)):.3f}")
            else:
                raise ValueError(_("the budget calculator needs a fit: a Chinchilla fit (run an IsoFLOP sweep) or a "
                                   "power law in C (Scaling: x = C, then Fit)"))
        except ValueError as e:
            self.state.budget_text = ""
            return self.report(e, _("budget"))
        self.state.budget_text = text

    @reported
    def predict(self, width: int, depth: int) -> dict | None:
        """Extrapolate: the loss the current fit predicts for a model not trained yet, built as a
        member of the fitted family (its runs' config with this width and depth; tokens follow the
        family's tokens per parameter, else the form's Data (tokens)). `train_prediction` then
        trains it to check; the check's runs stay out of the law they check."""
        law = self._fit_objects.get("law")
        if law is None or "template" not in self._fit_objects:
            return self.report(_("fit a law first (Scaling: Fit), then predict a bigger model"))
        variable, family = self._fit_objects["variable"], self._fit_objects["family"]
        try:
            from lab.estimate import check_memory
            cfg = self._fit_objects["template"].replace(model__width=int(width), model__depth=int(depth))
            if not cfg.tokens_per_param:
                tokens = self._fit_objects["tokens"] if variable != "D" else None
                cfg = cfg.replace(tokens=int(tokens or round(self.state.form["tokens"])))
            check_memory(cfg, 1, self.session.speed())
        except (ConfigError, ValueError) as e:
            return self.report(e, _("predict"))
        size = (cfg.model.width, cfg.model.depth, cfg.tokens_trained)
        pred = {"run_id": cfg.run_id, "config": cfg.to_dict(), "family": family, "size": list(size),
                "variable": "", "actual": None}
        if any(r["family"] == family and _size(r) == size and r["status"] == "done" for r in self.state.runs):
            self.state.prediction = pred             # this size was trained: fit again without it, then predict
            self.fit(variable, quiet=True)
            law = self._fit_objects.get("law")
            if law is None:
                self.state.prediction = {}
                return self.report(_("predict: without the runs of this size the family has too few sizes left to "
                                     "fit; predict a model not trained yet"))
        counts = counting.param_counts(cfg.model)
        x = float({"N": counts.total, "D": cfg.tokens_trained, "C": counting.run_flops(cfg)}[variable])
        tokens = fmt_count(cfg.tokens_trained)
        data = (_("D = {tpp} x N = {tokens} tokens").format(tpp=f"{cfg.tokens_per_param:g}", tokens=tokens)
                if cfg.tokens_per_param else _("D = {tokens} tokens").format(tokens=tokens))
        size = (_("N = {N} parameters, {data}, C = {C} FLOPs") if variable == "C"
                else _("N = {N} parameters, {data}")).format(N=fmt_count(counts.total), data=data, C=f"{x:.3g}")
        family_law = self._fit_objects.get("family_law")
        low = high = None
        head = {"width": width, "depth": depth, "size": size}
        if family_law is not None:
            p = family_law.predict(counts.total)
            loss, low, high = p.predicted, _num(p.low), _num(p.high)
            if low is not None:
                text = _("predicted loss for width {width}, depth {depth} ({size}): {loss} nats/token ({confidence} "
                         "interval {low} to {high})").format(**head, loss=f"{loss:.3f}", low=f"{low:.3f}",
                                                             high=f"{high:.3f}",
                                                             confidence=f"{family_law.confidence:.0%}")
            else:
                text = _("predicted loss for width {width}, depth {depth} ({size}): {loss} nats/token").format(
                    **head, loss=f"{loss:.3f}")
            if family_law.warnings:
                text += _("; mind the {n} reason(s) to doubt the law, above").format(n=len(family_law.warnings))
            text += _(". It rests on: {footing}; {cost}").format(
                footing="; ".join(family_law.footing(counts.total, cfg.tokens_trained)), cost=self._cost_words(cfg))
        else:
            loss = float(law.predict(x))
            band = self._fit_objects.get("band")
            if band is not None and band[0][0] <= x <= band[0][-1]:
                low, high = float(np.interp(x, band[0], band[1])), float(np.interp(x, band[0], band[2]))
                text = _("predicted loss for width {width}, depth {depth} ({size}): {loss} nats/token (95% band {low} "
                         "to {high})").format(**head, loss=f"{loss:.3f}", low=f"{low:.3f}", high=f"{high:.3f}")
            else:
                text = _("predicted loss for width {width}, depth {depth} ({size}): {loss} nats/token").format(
                    **head, loss=f"{loss:.3f}")
        self.state.prediction = {**pred, "x": x, "loss": float(loss), "low": low, "high": high, "variable": variable,
                                 "base": text, "text": text, "rel_error": None}
        self._check_prediction()
        return self.state.prediction

    def _cost_words(self, cfg: RunConfig) -> str:
        """'training it: 1.3e15 FLOPs, about 3 h on cpu (…)': what Train it would cost here."""
        from lab.estimate import estimate, format_seconds
        flops = counting.run_flops(cfg)
        try:
            est = estimate([cfg], list(self.session.records.values()), self.session.speed())
        except Exception:                    # an estimate must never break the prediction
            return _("training it: {flops} FLOPs").format(flops=f"{flops:.3g}")
        return _("training it: {flops} FLOPs, about {time} ({source})").format(
            flops=f"{flops:.3g}", time=format_seconds(est.seconds), source=est.source)

    @reported
    def train_prediction(self) -> asyncio.Task | None:
        pred = self.state.prediction
        if not pred or pred.get("loss") is None:
            return self.report(_("make a prediction first (width and depth, then Predict)"))
        return self.train.start(RunConfig.from_dict(pred["config"]))

    def _check_prediction(self) -> None:
        """Once the predicted model is trained: measured against predicted (the prediction was made
        before it trained, by a law fitted without it)."""
        pred = self.state.prediction
        if not pred or pred.get("loss") is None:
            return
        row = next((r for r in self.state.runs if r["run_id"] == pred["run_id"] and r["status"] == "done"), None)
        if row is None or not row.get("eval_loss"):
            return
        actual = float(row["eval_loss"])
        err = (pred["loss"] - actual) / actual
        words = _("{prediction} — measured {actual}: the prediction was off by {error}")
        if pred.get("low") is not None and pred.get("high") is not None:
            words = (_("{prediction} — measured {actual}: the prediction was off by {error} (inside its interval)")
                     if pred["low"] <= actual <= pred["high"] else
                     _("{prediction} — measured {actual}: the prediction was off by {error} (outside its interval)"))
        self.state.prediction = {**pred, "actual": actual, "rel_error": err,
                                 "text": words.format(prediction=pred.get("base", pred["text"]), actual=f"{actual:.3f}",
                                                      error=f"{err:+.1%}")}