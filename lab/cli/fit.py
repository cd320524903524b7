"""`scaling-lab fit`: fit a scaling law to a CSV table of runs or to the run store's finished runs.

    scaling-lab fit runs.csv --law chinchilla --json
    scaling-lab fit svg_extracted_data.csv --n-col "Model Size" --c-col "Training FLOP" --bootstrap 1000
    scaling-lab fit --store runs/ --law kaplan-n
    scaling-lab fit --store runs/ --holdout 2 --json     # a ladder's law, checked on its 2 largest sizes
    scaling-lab fit ladder.csv --law kaplan-n --holdout 2 --json    # the same on a table
    scaling-lab fit --store .isoflop-store --law isoflop --json      # the compute-optimal split

From the store, runs are fitted one family at a time (`lab.family`: equal in everything but
size and tokens); a store with several families needs `--family KEY`, and the error lists
them. `--holdout K` fits the family's L(N) on all but its K largest sizes and reports, for
each held-out size, the prediction with its interval, the measurement and the relative error,
with the reasons to doubt the law (`lab.laws`); a table does the same with `--holdout K`
(columns params and loss, optionally seed, tokens and epochs; rows of one size are its seeds).

A table gives one run per row: parameters N, training tokens D (or compute C, and then
D = C/(6N)) and the final loss. Mistakes end in one line on stderr, `error: ...`, and exit
status 2, never a traceback.
"""

import json
import math
import sys

import numpy as np

from lab import schema
from lab.cli.options import integer, number
from lab.config import ConfigError
from lab.fit import LAWS
from lab.jsonsafe import json_safe

# `--law`: the laws of `lab.fit` (the ones it fits and bootstraps), and IsoFLOP profiles
# (Hoffmann et al.'s approach 2, `lab.allocation.fit_isoflop`, beside approach 3 by variable
# projection on the same runs), which give the compute-optimal split.
CHOICES = (*LAWS, "isoflop")
ISOFLOP_DRAWS = 400


def register(subparsers) -> None:
    """Add the `fit` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "fit", help="fit a scaling law (Chinchilla, Kaplan, IsoFLOP) to a table of runs",
        description="Fit L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022), a Kaplan power law "
                    "L(x) = E + A·x^-α in N, D or C, or IsoFLOP profiles, to a CSV table or the run store.")
    p.add_argument("file", nargs="?", metavar="FILE.csv", help="one run per row (read with a plain CSV reader)")
    p.add_argument("--store", metavar="PATH", help="fit the run store's finished runs instead of a file "
                   "(diverged runs are left out)")
    p.add_argument("--law", choices=CHOICES, default=None,
                   help="chinchilla: L(N, D); kaplan-n/-d/-c: power law in N, D or C = 6ND; isoflop: approach 2 "
                        "(default chinchilla; with --holdout the family's L(N))")
    p.add_argument("--family", metavar="KEY", default=None,
                   help="with --store: the family to fit (a key or its prefix, as listed when the store holds several)")
    p.add_argument("--families", action="store_true",
                   help="with --store: list the families of finished runs (key, sizes, runs, what they are) and stop")
    p.add_argument("--holdout", type=integer, default=None, metavar="K",
                   help="fit L(N) on all but the K largest sizes (of the family, with --store; of the table, whose rows "
                        "of one params value are its seeds) and predict those")
    p.add_argument("--n-col", metavar="NAME", help="parameter column (default params; from a store params_total, "
                   "or params_non_embedding for kaplan-* laws as in Kaplan et al.)")
    p.add_argument("--d-col", metavar="NAME", default=None, help="token column (default tokens)")
    p.add_argument("--loss-col", metavar="NAME", default=None,
                   help="loss column (default loss; eval_loss from a store)")
    p.add_argument("--c-col", metavar="NAME", default=None,
                   help="compute column (FLOPs): gives D = C/(6N) when there is no token column, x for kaplan-c, "
                        "and the budgets for isoflop")
    p.add_argument("--fpt-col", metavar="NAME", default=None,
                   help="isoflop: training FLOPs per token of each run (default flops_per_token when the table or "
                        "store has it; else Chinchilla's 6N, and the result says so)")
    p.add_argument("--no-irreducible", action="store_true", help="kaplan-*: fit A·x^-α without the E term")
    p.add_argument("--delta", type=number, default=1e-3, help="Huber threshold on log-loss (default %(default)g)")
    p.add_argument("--bootstrap", type=integer, default=None, metavar="N",
                   help="resamples for percentile intervals, e.g. 1000 (isoflop: parametric draws, default "
                        f"{ISOFLOP_DRAWS})")
    p.add_argument("--seed", type=integer, default=0, help="bootstrap seed (default %(default)s)")
    p.add_argument("--confidence", type=number, default=0.95, help="interval mass (default %(default)s)")
    p.add_argument("--budgets", metavar="C,C,...", default=None,
                   help="FLOP budgets for the allocation table (default: powers of ten above the data's compute)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run `fit`; returns the exit status (2 for a usage or data error, printed as one line)."""
    import pandas as pd
    try:
        out = _fit(args)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        # ConfigError (the command line, the table, the store), lab.fit's ValueErrors (data it
        # cannot fit: too few points, a degenerate table) and a file that cannot be read
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(json_safe(out)))
    else:
        print(_summary(out))
        if out.get("left_out"):
            print(f"note: left out {out['left_out']} diverged run(s)", file=sys.stderr)
    return 0


def _families(store, df, wanted: str | None):
    """The rows of one family of the store's table, and its key; refuses to pool several.
    Families are those of runs that did not diverge; diverged runs of any family stay in the
    rows, so that the fit leaves them out and says how many."""
    if "family" not in df.columns or df.empty:
        return df, None
    diverged = df["status"].astype(str).eq("diverged") if "status" in df else df["family"].isna()
    keys = list(dict.fromkeys(df.loc[~diverged, "family"].astype(str)))
    if wanted:
        chosen = [k for k in keys if k.startswith(wanted)]
        if len(chosen) != 1:
            what = "matches no family" if not chosen else f"matches {len(chosen)} families"
            raise ConfigError(f"--family {wanted!r} {what}; the store holds: " + _family_list(store, df, keys))
        return df[(df["family"] == chosen[0]) | diverged], chosen[0]
    if len(keys) > 1:
        raise ConfigError(f"the store holds {len(keys)} families of runs and a law is fitted to one at a time (runs differ "
                     "only in size and tokens); choose one with --family KEY: " + _family_list(store, df, keys))
    return df, (keys[0] if keys else None)


def _family_list(store, df, keys) -> str:
    from lab.family import differing_fields, family_key, family_label
    configs = {}
    for rec in store.records():
        configs.setdefault(family_key(rec.config), rec.config)
    parts = []
    for k in keys:
        sub = df[df["family"] == k]
        label = family_label(configs[k]) if k in configs else ""
        parts.append(f"{k} ({sub[['width', 'depth']].drop_duplicates().shape[0] if 'width' in sub else '?'} sizes, "
                     f"{len(sub)} runs{': ' + label if label else ''})")
    text = "; ".join(parts)
    cfgs = [configs[k] for k in keys if k in configs]
    if len(cfgs) > 1:
        diff = differing_fields(cfgs)
        text += ". They differ in " + "; ".join(f"{f} ({', '.join(map(str, v[:4]))})" for f, v in diff.items())
    return text


def _table(args):
    """The table as a DataFrame, the column names to use, a label for messages, and diverged runs left out."""
    import pandas as pd
    if (args.file is None) == (args.store is None):
        raise ConfigError("give either a CSV file or --store PATH (exactly one)")
    kaplan = (args.law or "").startswith("kaplan")
    if args.store is not None:
        from lab.store import RunStore
        store = RunStore(args.store)
        df = store.finished_table()
        df, args.family_key = _families(store, df, args.family)
        n_default = "params_non_embedding" if kaplan else "params_total"
        cols = {"N": args.n_col or n_default, "D": args.d_col or "tokens", "loss": args.loss_col or "eval_loss",
                "C": args.c_col}
        if args.law == "isoflop" and not args.c_col and "budget" in df:
            # an IsoFLOP sweep records each run's planned budget: group by it, not by rounded FLOPs
            planned = "budget" in df and pd.to_numeric(df["budget"], errors="coerce").notna()
            if planned is not False and planned.any():
                df = df[planned.to_numpy()]
                cols["C"] = "budget"
                args.exact_budgets = True
        bad = pd.Series(False, index=df.index)
        if "status" in df:
            bad |= df["status"].astype(str).str.lower().eq("diverged")
        if cols["loss"] in df:
            bad |= ~np.isfinite(pd.to_numeric(df[cols["loss"]], errors="coerce").to_numpy(float))
        return df[~bad.to_numpy()], cols, f"store {args.store}", int(bad.sum())
    try:
        df = pd.read_csv(args.file)   # plain CSV: '#' is data (colour columns), not a comment
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{args.file} is empty; it needs a header row and one run per row") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{args.file} is not a text CSV file") from None
    cols = {"N": args.n_col or "params", "D": args.d_col or "tokens", "loss": args.loss_col or "loss", "C": args.c_col}
    return df, cols, args.file, 0


def _numbers(df, name: str, label: str) -> np.ndarray:
    import pandas as pd
    if name not in df.columns:
        raise ConfigError(f"column {name!r} not found in {label}; it has: {', '.join(map(str, df.columns))}. "
                     "Map yours with --n-col, --d-col, --loss-col or --c-col")
    v = pd.to_numeric(df[name], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise ConfigError(f"column {name!r} has {bad.size} missing, non-numeric or infinite value(s), first in data row "
                     f"{bad[0] + 1} ({df[name].iloc[bad[0]]!r}); fix or drop those rows")
    bad = np.flatnonzero(v <= 0)
    if bad.size:
        raise ConfigError(f"column {name!r} has {bad.size} non-positive value(s), first in data row {bad[0] + 1} "
                     f"({v[bad[0]]:g}); scaling laws take logs, so every value must be > 0")
    return v


def _check_holdout(args) -> None:
    if args.holdout < 0:
        raise ConfigError(f"--holdout must be 0 or more sizes, got {args.holdout}")
    if args.bootstrap:
        raise ConfigError("--holdout's intervals come from the fit itself (calibrated by simulation, see the "
                          "README), not from resampling: leave --bootstrap out")


def _family_law(args) -> dict:
    """--store with --holdout: the family's L(N), checked on its largest sizes (lab.laws)."""
    from lab import laws
    from lab.store import RunStore
    if args.law not in (None, "kaplan-n"):
        raise ConfigError(f"--holdout fits the family's L(N) (kaplan-n along the family), not --law {args.law}; leave "
                     "--law out")
    _check_holdout(args)
    _table(args)                              # picks the family (or refuses to pool)
    records = [r for r in RunStore(args.store).records() if r.result is not None and r.status in ("done", "diverged")]
    from lab.family import family_key
    results = [r.result for r in records if args.family_key is None or family_key(r.config) == args.family_key]
    diverged = sum(r.status == "diverged" for r in results)
    law = laws.fit_family([r for r in results if r.status == "done"], holdout=args.holdout, seed=args.seed,
                          confidence=args.confidence)
    return {"law": "family", "source": f"store {args.store}", "left_out": diverged} | law.to_dict()


def _table_law(args) -> dict:
    """FILE.csv with --holdout: L(N) of the table's rows (one run each: params and loss, and
    optionally seed, tokens and epochs columns), checked on its largest sizes as --store is."""
    from lab import laws
    if args.law not in (None, "kaplan-n"):
        raise ConfigError(f"--holdout fits L(N) (kaplan-n), not --law {args.law}; give --law kaplan-n or leave it out")
    _check_holdout(args)
    df, cols, label, _ = _table(args)
    if len(df) == 0:
        raise ConfigError(f"{label} has no rows to fit; it needs a header row and one run per row")
    import pandas as pd
    optional = {key: pd.to_numeric(df[name], errors="coerce").to_numpy(float)   # checked by sizes_from_table
                for key, name in (("seed", "seed"), ("tokens", cols["D"]), ("epochs", "epochs")) if name in df.columns}
    sizes = laws.sizes_from_table(_numbers(df, cols["N"], label), _numbers(df, cols["loss"], label), **optional)
    law = laws.fit_sizes(sizes, holdout=args.holdout, seed=args.seed, confidence=args.confidence,
                         family="table", label=label)
    return {"law": "family", "source": f"file {label}", "left_out": 0} | law.to_dict()


def _list_families(args) -> dict:
    from lab.family import differing_fields, family_key, family_label
    from lab.store import RunStore
    if args.store is None:
        raise ConfigError("--families lists the families of a run store: give --store PATH")
    groups: dict[str, list] = {}
    for rec in RunStore(args.store).records():
        if rec.status == "done" and rec.result is not None:
            groups.setdefault(family_key(rec.config), []).append(rec.config)
    rows = [{"family": k, "label": family_label(cfgs[0]), "sizes": len({(c.model.width, c.model.depth) for c in cfgs}),
             "runs": len(cfgs), "tokens_per_param": cfgs[0].tokens_per_param}
            for k, cfgs in sorted(groups.items(), key=lambda kv: -len(kv[1]))]
    diff = differing_fields([cfgs[0] for cfgs in groups.values()]) if len(groups) > 1 else {}
    return {"law": "families", "source": f"store {args.store}", "families": rows, "differ_in": diff}


def _fit(args) -> dict:
    from lab import fit as F
    if args.families:
        return _list_families(args)
    if args.holdout is not None:
        return _family_law(args) if args.store is not None else _table_law(args)
    if args.family is not None and args.store is None:
        raise ConfigError("--family works with --store")
    args.law = args.law or "chinchilla"
    df, cols, label, left_out = _table(args)
    if len(df) == 0:
        raise ConfigError(f"{label} has no runs to fit" + (f" ({left_out} diverged run(s) left out)" if left_out else ""))
    law = args.law
    N, loss = _numbers(df, cols["N"], label), _numbers(df, cols["loss"], label)
    C = _numbers(df, cols["C"], label) if cols["C"] else None
    if cols["D"] in df.columns or args.d_col is not None:
        D = _numbers(df, cols["D"], label)
    elif C is not None:
        D = C / (6 * N)                  # a table of compute: C = 6ND
        cols["D"] = f"{cols['C']}/(6·{cols['N']})"
    elif law == "kaplan-n":
        D = None
    else:
        D = _numbers(df, cols["D"], label)   # raises: names the columns and the --c-col way out
    if C is None and D is not None and law in ("chinchilla", "kaplan-c", "isoflop"):
        with np.errstate(over="ignore"):
            product = 6 * N * D
        if not np.all(np.isfinite(product)):
            i = int(np.flatnonzero(~np.isfinite(product))[0])
            raise ConfigError(f"compute C = 6·N·D overflows in data row {i + 1} (N = {N[i]:g}, D = {D[i]:g}): the values "
                         "exceed the largest float; check the columns' units (parameters and tokens, not exponents)")
    out = {"law": law, "source": label, "n_points": int(N.size), "left_out": left_out, "columns": cols}
    irreducible = not args.no_irreducible
    if law == "isoflop":
        return out | _isoflop(args, df, cols, label, N, D, loss, C)
    if law == "chinchilla":
        res = F.fit_chinchilla(N, D, loss, delta=args.delta)
        x = None
    else:
        var = law[-1].upper()
        x = {"N": N, "D": D, "C": C if C is not None else 6 * N * D}[var]
        res = F.fit_power_law(x, loss, irreducible=irreducible, delta=args.delta, variable=var)
    out["fit"] = {k: v for k, v in vars(res).items()}
    out["equation"] = res.equation()
    budgets = None
    if law == "chinchilla":
        budgets = _budgets(args.budgets, C if C is not None else 6 * N * D)
        alloc = F.compute_optimal(res, budgets)
        out["fit"] |= {"a": res.a, "b": res.b}
        out["allocation"] = [{"C": float(c), "N_opt": float(n), "D_opt": float(d), "tokens_per_param": float(t),
                              "loss": float(l)} for c, n, d, t, l in zip(alloc.C, alloc.N_opt, alloc.D_opt,
                                                                          alloc.tokens_per_param, alloc.loss)]
    if args.bootstrap:
        if args.bootstrap < 2:
            raise ConfigError(f"--bootstrap needs at least 2 resamples, got {args.bootstrap}; 1000 is typical")
        if law == "kaplan-c" and C is not None:   # the given compute column is x; bootstrap takes x via N
            b = F.bootstrap(x, None, loss, law="kaplan-n", n=args.bootstrap, seed=args.seed,
                            confidence=args.confidence, irreducible=irreducible, delta=args.delta)
        else:
            b = F.bootstrap(N, D, loss, law=law, n=args.bootstrap, seed=args.seed, confidence=args.confidence,
                            budgets=budgets, irreducible=irreducible, delta=args.delta)
        out["bootstrap"] = {"n": b.n, "seed": b.seed, "confidence": b.confidence, "n_converged": b.n_converged,
                            "intervals": {k: vars(v) for k, v in b.intervals.items()}}
    return out


def _isoflop(args, df, cols, label, N, D, loss, C) -> dict:
    """Approach 2 (per-budget parabolas) and approach 3 (variable projection) on the same runs, in
    the runs' own FLOP count when the table has one."""
    from lab import allocation as I
    draws = ISOFLOP_DRAWS if args.bootstrap is None else args.bootstrap
    if draws == 1 or draws < 0:
        raise ConfigError(f"--bootstrap needs at least 2 draws (or 0 for none), got {draws}; {ISOFLOP_DRAWS} is the default")
    fcol = args.fpt_col or ("flops_per_token" if "flops_per_token" in df.columns else None)
    fpt = _numbers(df, fcol, label) if fcol else None
    res = I.fit_isoflop(N, D, loss, C=C, flops_per_token=fpt, decimals=None if getattr(args, "exact_budgets", False) else 1,
                        draws=draws, seed=args.seed, confidence=args.confidence)
    out = {"columns": cols | {"flops_per_token": fcol}, "convention": I.CONVENTIONS[res.convention]}
    out["fit"] = {"a": res.a, "b": res.b, "N_coef": res.N_coef, "D_coef": res.D_coef, "n_used": res.n_used,
                  "C_ref": res.C_ref, "tokens_per_param": float(res.tokens_per_param(res.C_ref)), "sigma": res.sigma,
                  "dof": res.dof, "draws": res.draws, "draws_used": res.draws_used, "confidence": res.confidence,
                  "intervals": {k: vars(v) for k, v in res.intervals.items()},
                  "profiles": [p.to_dict() for p in res.profiles]}
    out["equation"] = res.equation()
    try:
        used = np.array([p.C for p in res.profiles if p.usable])
        sp = I.fit_split(N, D, loss, flops_per_token=fpt, budgets=used, C_ref=res.C_ref, draws=draws, seed=args.seed,
                         confidence=args.confidence)
    except ValueError as e:
        out["approach3"] = {"error": " ".join(str(e).split())}
    else:
        f = sp.fit
        out["approach3"] = {"equation": f.equation(), "E": f.E, "A": f.A, "B": f.B, "alpha": f.alpha, "beta": f.beta,
                            "converged": f.converged, "message": f.message, "sigma": sp.sigma, "C_ref": sp.C_ref,
                            "tokens_per_param": sp.tokens_per_param_ref,
                            "draws_used": sp.draws_used, "intervals": {k: vars(v) for k, v in sp.intervals.items()},
                            "allocation": [{"C": float(c), "N_opt": float(n), "D_opt": float(d),
                                            "tokens_per_param": float(t)}
                                           for c, n, d, t in zip(sp.C, sp.N_opt, sp.D_opt, sp.tokens_per_param)]}
    return out


def _budgets(text, C) -> np.ndarray:
    if text:
        try:
            values = np.array([schema.number(t) for t in text.split(",") if t.strip()])
        except ValueError:
            raise ConfigError(f"--budgets must be comma-separated FLOP counts like 1e21,1e22, got {text!r}") from None
        if values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise ConfigError(f"--budgets must be positive FLOP counts like 1e21,1e22, got {text!r}")
        return values
    top = math.ceil(math.log10(float(np.max(C))))
    budgets = np.array([float(f"1e{k}") for k in range(top, top + 4)])   # exact powers of ten
    budgets = budgets[np.isfinite(budgets)]
    if budgets.size == 0:
        raise ConfigError(f"the data's compute ({float(np.max(C)):.3g} FLOPs) leaves no larger finite budget for the "
                     "allocation table; give --budgets explicitly")
    return budgets


def _g(v) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _family_summary(out: dict) -> str:
    lines = [f"family {out['family']} ({out['label']}), from {out['source']}", f"  {out['equation']}"]
    iv = out["intervals"]
    lines.append("  " + ", ".join(f"{k} {v['estimate']:.4g} [{v['low']:.4g}, {v['high']:.4g}]" for k, v in iv.items())
                 + f" ({out['confidence']:.0%}, from {out['interval_from']})")
    lines.append(f"  fitted on {len(out['fitted'])} sizes: N " + ", ".join(f"{z['N']:,}" for z in out["fitted"]))
    if out["held_out"]:
        lines.append(f"  {'held out N':>12}{'predicted':>11}{'interval':>20}{'measured':>10}{'error':>9}")
        for p in out["held_out"]:
            lines.append(f"  {p['N']:>12,.0f}{p['predicted']:>11.4f}{'[' + format(p['low'], '.4f') + ', ' + format(p['high'], '.4f') + ']':>20}"
                         f"{p['measured']:>10.4f}{p['rel_error']:>+9.2%}")
    for w in out["warnings"]:
        lines.append(f"  warning: {w}")
    if not out["warnings"]:
        lines.append("  nothing found against this law")
    return "\n".join(lines)


def _isoflop_lines(out: dict) -> list[str]:
    fit, iv = out["fit"], out["fit"]["intervals"]
    span = lambda k: f" [{_g(iv[k]['low'])}, {_g(iv[k]['high'])}]" if k in iv else ""
    lines = [f"  FLOP count: {out['convention']}",
             f"  {fit['n_used']} of {len(fit['profiles'])} budgets usable (approach 2: a parabola in ln N per budget)"]
    for p in fit["profiles"]:
        what = (f"N_opt {_g(p['N_opt'])}, D_opt {_g(p['D_opt'])}, D/N {_g(p['tokens_per_param'])}, L {_g(p['L_opt'])}"
                if p["usable"] else p["reason"])
        lines.append(f"    C = {p['C']:.3g} ({p['n_points']} runs): {what}")
    conf = f"{fit['confidence']:.0%} intervals from {fit['draws_used']} of {fit['draws']} draws" if iv else "no intervals"
    lines.append(f"  a = {_g(fit['a'])}{span('a')}, b = {_g(fit['b'])}{span('b')}; tokens per parameter at "
                 f"C = {fit['C_ref']:.3g}: {_g(fit['tokens_per_param'])}{span('tokens_per_param')} ({conf})")
    a3 = out.get("approach3", {})
    if "error" in a3:
        lines.append(f"  approach 3: {a3['error']}")
    elif a3:
        iv3 = a3["intervals"]
        span3 = lambda k: f" [{_g(iv3[k]['low'])}, {_g(iv3[k]['high'])}]" if k in iv3 else ""
        lines.append(f"  approach 3 (variable projection, least squares): {a3['equation']} ({a3['message']})")
        lines.append(f"    α = {_g(a3['alpha'])}{span3('alpha')}, β = {_g(a3['beta'])}{span3('beta')}; tokens per "
                     f"parameter at C = {a3['C_ref']:.3g}: {_g(a3['tokens_per_param'])}{span3('tokens_per_param')}")
    return lines


def _summary(out: dict) -> str:
    if out["law"] == "families":
        if not out["families"]:
            return f"no finished runs in {out['source']}"
        lines = [f"{len(out['families'])} families of finished runs in {out['source']} (fit one with --family KEY):"]
        lines += [f"  {f['family']}  {f['sizes']} sizes, {f['runs']} runs: {f['label']}" for f in out["families"]]
        if out["differ_in"]:
            lines.append("  they differ in " + "; ".join(f"{k} ({', '.join(map(str, v[:4]))})"
                                                     for k, v in out["differ_in"].items()))
        return "\n".join(lines)
    if out["law"] == "family":
        return _family_summary(out)
    title = {"chinchilla": "Chinchilla L(N, D) (Hoffmann et al. 2022, approach 3)",
             "isoflop": "IsoFLOP profiles (Hoffmann et al. 2022, approach 2)"}.get(
        out["law"], f"power law in {out['law'][-1].upper()} (Kaplan et al. 2020)")
    lines = [f"{title}, {out['n_points']} runs from {out['source']}", f"  {out['equation']}"]
    fit = out["fit"]
    if out["law"] == "isoflop":
        return "\n".join(lines + _isoflop_lines(out))
    lines.append(f"  {fit['message']}")
    names = ["E", "A", "B", "alpha", "beta", "a", "b"]
    intervals = out.get("bootstrap", {}).get("intervals", {})
    conf = out.get("bootstrap", {}).get("confidence")
    head = f"  {'parameter':<20}{'estimate':>12}" + (f"   {conf:.0%} interval ({out['bootstrap']['n']} resamples)"
                                                     if intervals else "")
    lines.append(head)
    for k in [k for k in names if k in fit] + [k for k in intervals if "@" in k]:
        est = fit.get(k, intervals.get(k, {}).get("estimate"))
        iv = intervals.get(k)
        lines.append(f"  {k:<20}{_g(est):>12}" + (f"   [{_g(iv['low'])}, {_g(iv['high'])}]" if iv else ""))
    if "allocation" in out:
        lines.append("  compute-optimal allocation (C = 6ND):")
        lines.append(f"    {'C (FLOPs)':>10}{'N_opt':>12}{'D_opt':>12}{'D/N':>8}{'loss':>8}")
        for r in out["allocation"]:
            lines.append(f"    {r['C']:>10.3g}{r['N_opt']:>12.3g}{r['D_opt']:>12.3g}{r['tokens_per_param']:>8.1f}"
                         f"{r['loss']:>8.3f}")
    return "\n".join(lines)

