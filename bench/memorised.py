"""What a model could have memorised: the validation loss split by whether the training text holds
the same bytes, and the law fitted to each part (issue 20, part 3; bench/ladder-preregistration.md).

    python -m bench.memorised --store .ladder-store [--seeds 0]       # fit widths 40-96, predict the rest
    python -m bench.memorised --store .ladder-store --fit 40,48,56,64,80,96 --k 64

A validation position is *seen* when the k bytes ending at its target (k = 64, the ladder's context,
by default) occur verbatim in the training split (a 64-bit rolling hash of every k-byte window of
both splits), *unseen* otherwise. Each finished run of the store's largest family is evaluated
again on its own validation windows (`lab.data.eval_windows`: the same positions as its validation
loss: the script stops if it does not reproduce it), and its loss is split into the two parts. The same
law as the ladder's (`lab.laws.fit_sizes`) is fitted to the full, the seen and the unseen losses
of the fitted widths, and each part's error is reported at the other widths.
Prints a table and writes bench/results/memorised-<time>.json.
"""

import argparse
import sys

import numpy as np

from bench import family_results, save_report


def window_hashes(tokens: np.ndarray, k: int) -> np.ndarray:
    """A 64-bit polynomial hash of every k-token window of `tokens` (index i: tokens[i:i + k])."""
    a = np.asarray(tokens).astype(np.uint64)
    n = len(a) - k + 1
    h = np.zeros(max(n, 0), np.uint64)
    base = np.uint64(1099511628211)
    for j in range(k):
        h = h * base + a[j:j + n]
    return h


def seen_targets(train: np.ndarray, val: np.ndarray, k: int) -> np.ndarray:
    """Per position t of `val`: whether val[t - k + 1 : t + 1] occurs in `train` (False for t < k - 1)."""
    known = np.unique(window_hashes(train, k))
    out = np.zeros(len(val), bool)
    hv = window_hashes(val, k)
    out[k - 1:] = np.isin(hv, known)
    return out


def split_loss(model, windows: np.ndarray, seen: np.ndarray, batch: int = 128) -> dict:
    """Mean next-token loss (nats) of `model` on `windows` (n, context + 1) over every target, the
    seen targets and the unseen ones (`seen`: (n, context), one flag a target)."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def nll(x, y):
        logp = jax.nn.log_softmax(model(x).astype(jnp.float32), axis=-1)
        return -jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]

    losses = np.concatenate([np.asarray(nll(jnp.asarray(windows[i:i + batch, :-1]), jnp.asarray(windows[i:i + batch, 1:])))
                             for i in range(0, len(windows), batch)])
    return {"all": float(losses.mean()), "seen": float(losses[seen].mean()), "unseen": float(losses[~seen].mean()),
            "seen_share": float(seen.mean())}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.memorised", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="a run store holding one ladder family (e.g. .ladder-store)")
    p.add_argument("--fit", default="40,48,56,64,80,96", help="widths the laws are fitted to (default 40-96)")
    p.add_argument("--seeds", default=None, help="only these seeds' runs, e.g. 0 (default: every seed)")
    p.add_argument("--k", type=int, default=64, help="bytes that must match, ending at the target (default 64)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from lab import runtime
    runtime.setup()
    from lab.data import eval_windows, load_dataset
    from lab.laws import Size, fit_sizes, sizes
    from lab.store import RunStore

    store = RunStore(args.store)
    results = family_results(store, args.seeds)
    fit_widths = {int(w) for w in args.fit.split(",")}
    cfg = results[0].config
    data = load_dataset(cfg.data)
    seen_pos = seen_targets(np.asarray(data.train), np.asarray(data.val), args.k)
    rows = []
    for r in sorted(results, key=lambda r: (r.params_total, r.config.seed)):
        c = r.config
        idx = eval_windows(np.arange(len(data.val)), c.eval_tokens, c.model.context)
        windows = np.asarray(data.val)[idx].astype(np.int32)
        part = split_loss(store.load_model(r.run_id), windows, seen_pos[idx[:, 1:]])
        if abs(part["all"] - r.eval_loss) > 1e-3 * r.eval_loss:
            sys.exit(f"width {c.model.width} seed {c.seed}: the stored model gives {part['all']:.4f} on its validation "
                     f"windows where its run recorded {r.eval_loss:.4f}; the split would not be of that loss")
        rows.append({"width": c.model.width, "seed": c.seed, "N": r.params_total, "epochs": r.epochs,
                     "eval_loss": r.eval_loss, **part})
        print(f"width {c.model.width:>4} seed {c.seed}: stored {r.eval_loss:.4f}, recomputed {part['all']:.4f}; seen "
              f"{part['seen']:.4f} ({part['seen_share']:.1%} of targets), unseen {part['unseen']:.4f}, "
              f"{r.epochs:.2f} epochs", file=sys.stderr, flush=True)
    report = {"store": str(args.store), "k": args.k, "fit_widths": sorted(fit_widths), "rows": rows, "laws": {}}
    by_width = {z.width: z for z in sizes(results)}
    print(f"\nlaws fitted on widths {sorted(fit_widths)} (k = {args.k}), error = (predicted - measured) / measured:")
    print("| loss | law | " + " | ".join(f"width {w}" for w in sorted(by_width) if w not in fit_widths) + " |")
    print("| --- " * (2 + sum(w not in fit_widths for w in by_width)) + "|")
    for part in ("all", "seen", "unseen"):
        def size_of(z: Size) -> Size:
            losses = tuple(row[part] for row in rows if row["width"] == z.width)
            return Size(width=z.width, depth=z.depth, N=z.N, D=z.D, losses=losses, epochs=z.epochs)
        fitted = [size_of(z) for w, z in sorted(by_width.items()) if w in fit_widths]
        law = fit_sizes(fitted)
        errors = {}
        for w, z in sorted(by_width.items()):
            if w in fit_widths:
                continue
            measured = size_of(z).mean
            predicted = float(law.fit.predict(np.array([z.N]))[0])
            errors[w] = {"predicted": predicted, "measured": measured, "error": (predicted - measured) / measured}
        report["laws"][part] = {"equation": law.equation(), "held_out": errors, "warnings": list(law.warnings)}
        print(f"| {part} | {law.equation()} | " + " | ".join(
            f"{e['predicted']:.4f} vs {e['measured']:.4f}: {e['error']:+.2%}" for e in errors.values()) + " |")
    print(f"wrote {save_report(report, 'memorised', args.json)}")
    return report


if __name__ == "__main__":
    main()
