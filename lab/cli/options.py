"""The command line's options: a flag per run setting of `lab.schema`, and how flags read numbers.

`scaling-lab train` and `scaling-lab sweep` take a flag per setting that has one (name, type,
default and help from the table); a sweep takes lists for the settings with a `sweep_flag`
(`--widths 32,64`). Numbers read as everywhere else (`lab.schema.number`: 2e5, 1_000, 200k).
"""

import argparse

from lab.config import RunConfig, default
from lab.schema import SETTINGS, shown
from lab.schema import number as schema_number

STORE_HELP = "run store folder (default: $SCALING_LAB_STORE or ~/.local/share/scaling-lab)"
GROUPS = {"model": "model", "optim": "optimizer"}     # the rest: "data and run"


def number(text: str) -> float:
    """A flag's number: `lab.schema.number` (2e5, 1_000, 3k/2M/1G/1T), as argparse wants its errors."""
    try:
        return schema_number(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def integer(text: str) -> int:
    """A whole number that also reads `2e5` or `200k`."""
    value = number(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def integer_list(text: str) -> list[int]:
    return [integer(t) for t in str(text).split(",") if t.strip()]


def number_list(text: str) -> list[float]:
    return [number(t) for t in str(text).split(",") if t.strip()]


def names(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def data_settings(spec: str) -> dict:
    """`--data stdlib | builtin | markov | hf:NAME | PATH` as the settings `data.source` and `data.path`."""
    if spec in ("stdlib", "builtin", "markov"):
        return {"data.source": spec}
    if spec.startswith("hf:"):
        return {"data.source": "hf", "data.path": spec[3:]}
    return {"data.source": "file", "data.path": spec}



def add_run_options(p: argparse.ArgumentParser, *, sweep: bool = False):
    """A flag per setting of `lab.schema` that has one (name, type, default and help from there).

    A sweep takes a list of values for the settings with a `sweep_flag` (`--widths 32,64`); it
    returns the "sweep" argument group that holds those, for the sweep's own options."""
    groups, seen, listed = {}, set(), []
    for s in SETTINGS:
        flag = s.cli_flag
        if flag is None or flag in seen or (sweep and not s.sweep):
            continue
        seen.add(flag)                       # data.path shares --data with data.source
        if sweep and s.sweep_flag:
            listed.append(s)
            continue
        title = GROUPS.get(s.path.partition(".")[0] if "." in s.path else "", "data and run")
        if title not in groups:
            groups[title] = p.add_argument_group(title)
        words = s.sweep_help if sweep and s.sweep_help else s.help
        kw = {"dest": s.key, "default": default(s.path), "metavar": s.metavar,
              "help": f"{words} (default {shown(default(s.path))})"}
        if s.key == "data":
            pass                             # a source name, hf:NAME or a file path: see data_settings
        elif s.kind == "choice":
            kw["choices"] = s.choices
        else:
            kw["type"] = {"int": integer, "float": number}.get(s.kind, str)
        groups[title].add_argument(flag, **kw)
    if not sweep:
        return None
    g = p.add_argument_group("sweep")
    for s in listed:
        g.add_argument(s.sweep_flag, type={"int": integer_list, "float": number_list}.get(s.kind, names),
                       default=None, metavar=f"{s.metavar or s.key.upper()},...",
                       help=f"{s.sweep_help or s.help} (default {shown(default(s.path))})")
    return g


def run_config(args, **over) -> RunConfig:
    """A RunConfig from parsed options; `over` supplies the swept fields (by setting name: width=64)."""
    v = vars(args) | over
    values = {s.path: v[s.key] for s in SETTINGS      # None: not given (a sweep's --param), the default
              if s.config and s.cli_flag not in (None, "--data") and v.get(s.key) is not None}
    return RunConfig.from_settings(values | data_settings(v["data"]))

