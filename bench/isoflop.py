"""The compute-optimal split of this lab's own setup, measured: an IsoFLOP study (issue 23).

`make isoflop` (or `python -m bench.isoflop [--seeds 0,1] [--budgets 3e11,...] [--dry-run]`): the
default ladder's family and rules (`lab.plans.ladder_base`: μP, its learning rate, depth 2, the
built-in corpus) at several compute budgets, at each budget models of several sizes trained on
D = C / flops_per_token tokens (`lab.plans.isoflop`, centred on a guess of tokens per parameter,
spread `--span` either side in N). Then, on the same runs (`lab.allocation`):

- approach 2: a parabola in ln N per budget, its minimum N_opt and D_opt = C / flops_per_token(N_opt);
  N_opt ∝ C^a, D_opt ∝ C^b, and the compute-optimal tokens per parameter at the budgets' centre,
  with parametric-bootstrap intervals;
- approach 3: L(N, D) = E + A·N^-α + B·D^-β by variable projection, and its split at the same budgets.

Prints a table, writes bench/results/isoflop.json and a valley plot (bench/results/isoflop.html).
Resumes: runs already in the store are kept, so a second call only fits.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from lab import allocation, plans, sweep
from lab.jsonsafe import json_safe
from lab.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
LADDER_BUDGETS = (4.5e11, 3.27e13)              # the default ladder's smallest and largest run (FLOPs)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.isoflop", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=str(ROOT / ".isoflop-store"), help="run store (default .isoflop-store)")
    p.add_argument("--budgets", default=None, help="FLOP budgets, comma-separated (default 5 evenly in log from "
                   "3e11 to 3e12)")
    p.add_argument("--sizes", type=int, default=7, help="model sizes per budget (default 7)")
    p.add_argument("--span", type=float, default=3.0, help="sizes from N_guess/span to N_guess·span (default 3)")
    p.add_argument("--centre", type=float, default=plans.STUDY_TOKENS_PER_PARAM,
                   help="tokens per parameter the sizes centre on (default %(default)g: a first look put the optimum "
                        "at 66-149, not Chinchilla's 20)")
    p.add_argument("--seeds", default="0,1", help="seeds, comma-separated (default 0,1)")
    p.add_argument("--draws", type=int, default=1000, help="bootstrap draws (default 1000)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "isoflop.json"))
    p.add_argument("--html", default=str(ROOT / "bench" / "results" / "isoflop.html"))
    args = p.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()] if args.budgets else plans.STUDY_BUDGETS
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    plan = plans.isoflop_study(budgets=budgets, n_sizes=args.sizes, span=args.span, tokens_per_param=args.centre,
                               seeds=seeds)
    store = RunStore(args.store)
    print(sweep.plan_summary(plan, store))
    if args.dry_run:
        return {}
    t0 = time.monotonic()
    sweep.run_sweep(plan, store)
    wall = time.monotonic() - t0
    out = study(plan, store, draws=args.draws)
    out["command_wall_s"] = wall
    print(report(out))
    for path in (args.json, args.html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(json_safe(out), indent=1))
    fig = figure(out)
    fig.write_html(args.html, include_plotlyjs="cdn")
    print(f"wrote {args.json} and {args.html}")
    try:                                   # a picture for the README, where kaleido (`.[bench]`) and Chromium are
        fig.write_image(Path(args.html).with_suffix(".png"))
        print(f"wrote {Path(args.html).with_suffix('.png')}")
    except Exception as e:                 # noqa: BLE001 -- optional: the HTML above is the plot
        print(f"no PNG ({type(e).__name__}: {str(e)[:120]}); the HTML has the plot")
    return out


def study(plan, store: RunStore, *, draws: int) -> dict:
    """Both approaches on the plan's finished runs; a dict of every figure the report quotes."""
    ids = {c.run_id: b for c, b in zip(plan.configs, plan.budgets)}
    df = store.table()
    df = df[df["run_id"].isin(ids)]
    done = df[df["status"] == "done"]
    left = df[df["status"] != "done"]
    col = lambda k: done[k].to_numpy(float)
    N, D, y, F = col("params_total"), col("tokens"), col("eval_loss"), col("flops_per_token")
    C = np.array([ids[r] for r in done["run_id"]])
    iso = allocation.fit_isoflop(N, D, y, C=C, flops_per_token=F, decimals=None, draws=draws, seed=0)
    split = allocation.fit_split(N, D, y, flops_per_token=F, budgets=sorted(set(C)), C_ref=iso.C_ref, draws=draws,
                                 seed=0)
    curve = allocation.flops_curve(N, F)
    ladder = np.array(LADDER_BUDGETS)
    a3 = allocation.compute_optimal(split.fit, ladder, flops_per_token=curve)
    # seconds: seeds of one size train together (vmap) and share one wall time
    groups = done.groupby(["width", "tokens"])["wall_s"].max()
    seeds_sd = done.groupby(["width", "tokens"])["eval_loss"].std().dropna()
    return {
        "plan": {"budgets": sorted(set(plan.budgets)), "runs": len(plan), "seeds": sorted(set(c.seed for c in plan)),
                 "description": plan.description, "total_flops": plan.total_flops},
        "runs_done": int(len(done)), "runs_not_done": {s: int(n) for s, n in left["status"].value_counts().items()},
        "train_s": float(groups.sum()), "max_epochs": float(done["epochs"].max()),
        "seed_sd_median": float(seeds_sd.median()) if len(seeds_sd) else math.nan,
        "convention": allocation.CONVENTIONS[iso.convention],
        "approach2": {"a": iso.a, "b": iso.b, "N_coef": iso.N_coef, "D_coef": iso.D_coef, "C_ref": iso.C_ref,
                      "tokens_per_param": float(iso.tokens_per_param(iso.C_ref)), "sigma": iso.sigma,
                      "draws": iso.draws, "draws_used": iso.draws_used,
                      "intervals": {k: vars(v) for k, v in iso.intervals.items()},
                      "at_ladder": dict(zip(("smallest", "largest"), iso.tokens_per_param(ladder).tolist())),
                      "profiles": [p.to_dict() for p in iso.profiles]},
        "approach3": {"equation": split.fit.equation(), "E": split.fit.E, "A": split.fit.A, "B": split.fit.B,
                      "alpha": split.fit.alpha, "beta": split.fit.beta, "message": split.fit.message,
                      "sigma": split.sigma, "C_ref": split.C_ref, "tokens_per_param": split.tokens_per_param_ref,
                      "draws_used": split.draws_used, "intervals": {k: vars(v) for k, v in split.intervals.items()},
                      "at_budgets": [{"C": float(c), "N_opt": float(n), "D_opt": float(d), "tokens_per_param": float(t)}
                                     for c, n, d, t in zip(split.C, split.N_opt, split.D_opt, split.tokens_per_param)],
                      "at_ladder": dict(zip(("smallest", "largest"), a3.tokens_per_param.tolist()))},
        "runs": [{"width": int(r.width), "N": int(r.params_total), "D": int(r.tokens), "C": float(ids[r.run_id]),
                  "seed": int(r.seed), "loss": float(r.eval_loss), "epochs": float(r.epochs)}
                 for r in done.itertuples()],
    }


def _iv(d: dict, k: str) -> str:
    iv = d["intervals"].get(k)
    return f" [{iv['low']:.3g}, {iv['high']:.3g}]" if iv else ""


def report(out: dict) -> str:
    a2, a3 = out["approach2"], out["approach3"]
    lines = [f"IsoFLOP study: {out['runs_done']} runs done ({out['runs_not_done'] or 'none left out'}), "
             f"{out['train_s'] / 60:.1f} min of training on this machine; data read at most {out['max_epochs']:.2f} "
             f"times; seed spread (median sd per size) {out['seed_sd_median']:.4f} nats",
             f"FLOP count: {out['convention']}",
             f"{'C (FLOPs)':>11}{'runs':>6}{'N_opt':>10}{'D_opt':>12}{'D/N':>8}{'L_opt':>8}   approach 3: N_opt, D/N"]
    for p in a2["profiles"]:
        three = next((r for r in a3["at_budgets"] if math.isclose(r["C"], p["C"], rel_tol=1e-6)), None)
        tail = f"   {three['N_opt']:,.0f}, {three['tokens_per_param']:.1f}" if three else ""
        if p["usable"]:
            lines.append(f"{p['C']:>11.3g}{p['n_points']:>6}{p['N_opt']:>10,.0f}{p['D_opt']:>12,.0f}"
                         f"{p['tokens_per_param']:>8.1f}{p['L_opt']:>8.4f}{tail}")
        else:
            lines.append(f"{p['C']:>11.3g}{p['n_points']:>6}  not used: {p['reason']}{tail}")
    conf = "95 % intervals"
    lines += [f"approach 2: N_opt ∝ C^{a2['a']:.3f}{_iv(a2, 'a')}, D_opt ∝ C^{a2['b']:.3f}{_iv(a2, 'b')}; "
              f"tokens per parameter at C = {a2['C_ref']:.3g}: {a2['tokens_per_param']:.1f}{_iv(a2, 'tokens_per_param')} "
              f"({conf}, {a2['draws_used']} of {a2['draws']} draws)",
              f"approach 3: {a3['equation']} ({a3['message']}); α = {a3['alpha']:.3f}{_iv(a3, 'alpha')}, "
              f"β = {a3['beta']:.3f}{_iv(a3, 'beta')}; tokens per parameter at C = {a3['C_ref']:.3g}: "
              f"{a3['tokens_per_param']:.1f}{_iv(a3, 'tokens_per_param')}",
              f"at the default ladder's budgets ({LADDER_BUDGETS[0]:.3g} to {LADDER_BUDGETS[1]:.3g} FLOPs), "
              f"extrapolated: approach 2 {a2['at_ladder']['smallest']:.1f} to {a2['at_ladder']['largest']:.1f}, "
              f"approach 3 {a3['at_ladder']['smallest']:.1f} to {a3['at_ladder']['largest']:.1f} tokens per parameter "
              "(the ladder uses 20)"]
    return "\n".join(lines)


def figure(out: dict):
    """Valleys (loss against N per budget, the parabolas and their minima) and N_opt against C."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    a2 = out["approach2"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("IsoFLOP valleys: final loss against N at each budget",
                                                        "compute-optimal N against C"))
    colours = ("#636efa", "#00cc96", "#ef553b", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")
    for k, p in enumerate(a2["profiles"]):
        colour = colours[k % len(colours)]
        pts = [r for r in out["runs"] if math.isclose(r["C"], p["C"], rel_tol=1e-6)]
        name = f"C = {p['C']:.3g}"
        fig.add_trace(go.Scatter(x=[r["N"] for r in pts], y=[r["loss"] for r in pts], mode="markers", name=name,
                                 legendgroup=name, marker=dict(color=colour)), row=1, col=1)
        if p["coef"]:
            grid = np.geomspace(min(p["sizes"]), max(p["sizes"]), 40)
            fig.add_trace(go.Scatter(x=grid, y=np.polyval(p["coef"][::-1], np.log(grid)), mode="lines",
                                     line=dict(dash="dot", color=colour), legendgroup=name, showlegend=False),
                          row=1, col=1)
    used = [p for p in a2["profiles"] if p["usable"]]
    iv = a2["intervals"]
    fig.add_trace(go.Scatter(x=[p["N_opt"] for p in used], y=[p["L_opt"] for p in used], mode="markers",
                             marker=dict(symbol="diamond", size=12, color="black"), name="minima (approach 2)",
                             error_x=dict(type="data", symmetric=False,
                                          array=[iv[f"N_opt@{p['C']:.3g}"]["high"] - p["N_opt"] for p in used],
                                          arrayminus=[p["N_opt"] - iv[f"N_opt@{p['C']:.3g}"]["low"] for p in used])),
                  row=1, col=1)
    C = np.array([p["C"] for p in used])
    grid = np.geomspace(C.min() / 1.5, max(C.max(), LADDER_BUDGETS[1]) * 1.2, 50)
    fig.add_trace(go.Scatter(x=C, y=[p["N_opt"] for p in used], mode="markers", marker=dict(symbol="diamond", size=10,
                             color="black"), showlegend=False), row=1, col=2)
    fig.add_trace(go.Scatter(x=grid, y=a2["N_coef"] * grid ** a2["a"], mode="lines", name=f"N_opt ∝ C^{a2['a']:.2f} (approach 2; beyond 3e12 extrapolated)"),
                  row=1, col=2)
    a3 = out["approach3"]
    fig.add_trace(go.Scatter(x=[r["C"] for r in a3["at_budgets"]], y=[r["N_opt"] for r in a3["at_budgets"]],
                             mode="lines+markers", line=dict(dash="dash"), name="approach 3"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="parameters N", row=1, col=1)
    fig.update_xaxes(type="log", title_text="compute C (FLOPs, the lab's count)", row=1, col=2)
    fig.update_yaxes(type="log", title_text="final validation loss (nats/token)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="N_opt", row=1, col=2)
    fig.update_layout(template="plotly_white", height=460, width=1100)
    return fig


if __name__ == "__main__":
    main()
