"""The ladder's law in other forms, refitted on a store's runs: which N it counts and whether it
has a floor (issue 20, part 3).

    python -m bench.law_forms --store .ladder-store [--fit 40,48,56,64,80,96] [--seeds 0]

Fits, on the fitted widths of the store's largest family, L = E + A·N^-α with N all parameters
(the lab's law, `lab.laws.fit_sizes`) and with N the non-embedding parameters, and the same two
without a floor (Kaplan's L = A·N^-α, least squares in log L against log N); prints each form's
error, (predicted − measured) / measured, at every other width. Refits only: nothing trains.
"""

import argparse

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.law_forms", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--fit", default="40,48,56,64,80,96", help="widths the laws are fitted to (default 40-96)")
    p.add_argument("--seeds", default=None, help="only these seeds' runs, e.g. 0 (default: every seed)")
    args = p.parse_args(argv)
    from bench import family_results
    from lab.counting import param_counts
    from lab.laws import Size, fit_sizes, sizes
    from lab.store import RunStore

    results = family_results(RunStore(args.store), args.seeds)
    models = {r.config.model.width: r.config.model for r in results}
    fit_widths = {int(w) for w in args.fit.split(",")}
    report = {}
    print("| N in the law | E | law | " + " | ".join(f"width {w}" for w in sorted(models) if w not in fit_widths) + " |")
    for label, count in (("all parameters", lambda z: z.N),
                         ("non-embedding", lambda z: param_counts(models[z.width]).non_embedding)):
        every = [Size(width=z.width, depth=z.depth, N=count(z), D=z.D, losses=z.losses, epochs=z.epochs)
                 for z in sizes(results)]
        fitted, held = [z for z in every if z.width in fit_widths], [z for z in every if z.width not in fit_widths]
        law = fit_sizes(fitted)
        slope, icept = np.polyfit(np.log([z.N for z in fitted]), np.log([z.mean for z in fitted]), 1)
        for floor, name, predict in (("fitted", law.equation(), lambda n: float(law.fit.predict(np.array([n]))[0])),
                                     ("0", f"L = {np.exp(icept):.4g}·N^{slope:.4f}",
                                      lambda n: float(np.exp(icept + slope * np.log(n))))):
            errors = {z.width: predict(z.N) / z.mean - 1 for z in held}
            report[f"{label}, E {floor}"] = {"law": name, "errors": errors}
            print(f"| {label} | {floor} | {name} | " + " | ".join(f"{e:+.2%}" for e in errors.values()) + " |")
    return report


if __name__ == "__main__":
    main()
