"""The command line: `scaling-lab train | sweep | runs | sample | fit | app | ...` (also `python -m lab`).

A front end like the app: it builds configs from flags (`options`, one flag per setting of
`lab.schema`) and calls the engine. The subcommands live by what they drive: `runs` (train,
sweep, runs, sample), `fit`, `app` (app, service, worker, pack, unpack, lessons). A user's
mistake ends with one line on stderr, `error: ...`, and exit status 2; never a traceback.
"""

import argparse
import sys

from lab.cli import app, fit, runs
from lab.config import ConfigError
from lab.schema import cli_fix, cli_name


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: <what>; see <prog> --help`, exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="scaling-lab", description="Train language models and fit scaling laws.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for part in (runs, app, fit):
        part.register(sub)
    return parser


def entry() -> int:
    """The `scaling-lab` and `python -m lab` entry: restart under the fast allocator, then run."""
    from lab import runtime
    if sys.argv[1:2] not in (["app"], ["service"]):   # their workers and kernels get it through their environment
        runtime.reexec_with_fast_allocator(["-m", "lab", *sys.argv[1:]])
    return main()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:       # settings spelled as this command's flags: "try --width 64"
        if getattr(args, "command", None) == "sweep":    # a sweep's rules name its flags: "leave out --tokens"
            text = e.spelled(lambda path: cli_name(path, sweep=True),
                             lambda path, value: cli_fix(path, value, sweep=True))
        else:
            text = e.spelled(fix=cli_fix)
        print(f"error: {text}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scaling-lab runs --csv | head`
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        # The store is consistent already (held runs are marked interrupted). Exit at once:
        # tearing JAX down in the middle of a compiled call can crash the interpreter.
        import os
        print("error: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
