"""`make lessons-full` (`python -m bench.lessons_full`): every lesson in full mode, timed.

Runs each lesson notebook top to bottom in its own kernel, in full mode (SCALING_LAB_QUICK
unset), one after the other against one run store (default: a new one, as a class's first time
through; runs one lesson trains are reused by the next, as in the app), and the IsoFLOP study
store the teacher prepared for lesson 3 (`make isoflop`: `--isoflop-store`, default
`.isoflop-store`). Prints, per lesson: wall time, runs trained, its time of training, and the
error if a cell failed (the next lessons still run); writes JSON to
bench/results/lessons-full-<time>.json and each executed notebook beside it.

    python -m bench.lessons_full [--store DIR] [--isoflop-store DIR] [--only 1,2] [--lang zh]

Not part of `make test` (about an hour and a half of a 2-core machine).
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 3 * 3600


def run_lesson(path: pathlib.Path, store: pathlib.Path, env_extra: dict, out_dir: pathlib.Path, lang: str) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from lab.i18n import translate_notebook
    from lab.store import RunStore
    nb_dict = json.loads(path.read_text(encoding="utf-8"))
    if lang != "en":
        nb_dict = translate_notebook(nb_dict, lang)
    nb = nbformat.reads(json.dumps(nb_dict), as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("SCALING_LAB_QUICK", "QUERY_STRING")}
    env |= {"SCALING_LAB_STORE": str(store), "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **env_extra}
    before = {r.run_id for r in RunStore(store).records()}
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    t0, error = time.monotonic(), ""
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        error = str(e).strip().splitlines()[-1][:500]
    except Exception as e:                      # a kernel that died, a timeout: said, the next lesson runs
        error = f"{type(e).__name__}: {e}"[:500]
    wall = time.monotonic() - t0
    new = [r for r in RunStore(store).records() if r.run_id not in before]
    trained_s = sum((r.result.wall_s if r.result and r.result.wall_s else 0.0) for r in new)
    nbformat.write(nb, out_dir / path.name)
    return {"lesson": path.stem, "wall_s": round(wall, 1), "runs_trained": len(new),
            "train_s": round(trained_s, 1), "error": error}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lessons_full", description=__doc__.split("\n")[0])
    p.add_argument("--store", default=None, help="run store shared by the lessons (default: a new one)")
    p.add_argument("--isoflop-store", default=str(ROOT / ".isoflop-store"),
                   help="the IsoFLOP study lesson 3 reads (default %(default)s; `make isoflop` makes it)")
    p.add_argument("--only", default="", help="lesson numbers, e.g. 1,6 (default: all)")
    p.add_argument("--lang", default="en", help="en or zh (the lessons as `scaling-lab lessons --lang` writes them)")
    args = p.parse_args(argv)
    every = sorted((ROOT / "notebooks").glob("lesson*.ipynb"), key=lambda q: int(q.stem[6:].split("_")[0]))
    lessons = every                     # in their numbers' order: lesson10 after lesson9
    if args.only:
        want = {f"lesson{n.strip()}_" for n in args.only.split(",") if n.strip()}
        lessons = [q for q in lessons if any(q.name.startswith(w) for w in want)]
    if not lessons:
        sys.exit(f"no lesson matches --only {args.only!r}; lessons are numbered 1 to {len(every)}")
    store = pathlib.Path(args.store or tempfile.mkdtemp(prefix="lessons-full-store-"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = ROOT / "bench" / "results" / f"lessons-full-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    env_extra = {}
    if pathlib.Path(args.isoflop_store).is_dir():
        env_extra["SCALING_LAB_ISOFLOP_STORE"] = str(pathlib.Path(args.isoflop_store).resolve())
    else:
        print(f"note: no IsoFLOP study at {args.isoflop_store}; lesson 3 trains it (about an hour; `make isoflop`)",
              file=sys.stderr)
    print(f"store {store}; notebooks and JSON in {out_dir}", file=sys.stderr)
    rows = []
    for path in lessons:
        print(f"{path.stem} ...", file=sys.stderr, flush=True)
        row = run_lesson(path, store, env_extra, out_dir, args.lang)
        rows.append(row)
        print(f"  {row['wall_s'] / 60:.1f} min, {row['runs_trained']} runs trained ({row['train_s'] / 60:.1f} min of "
              f"training){'; FAILED: ' + row['error'] if row['error'] else ''}", file=sys.stderr, flush=True)
        (out_dir / "lessons-full.json").write_text(json.dumps(
            {"when": stamp, "store": str(store), "lang": args.lang, "lessons": rows}, indent=1))
    print("\n| lesson | wall time | runs trained | training | result |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['lesson']} | {r['wall_s'] / 60:.1f} min | {r['runs_trained']} | {r['train_s'] / 60:.1f} min | "
              f"{'failed: ' + r['error'] if r['error'] else 'ok'} |")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
