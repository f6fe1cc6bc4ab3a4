"""The command line: parse options, call the core, pick a renderer, map errors to exit codes.

Heavy modules (numpy, the engine, rich) are imported inside the commands that need them,
so `bpcalc --help` and `bpcalc --version` start fast.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from enum import Enum
from typing import Annotated, Any

import typer
from typer.exceptions import Abort, Exit, TyperException

from bpcalc import __version__
from bpcalc.errors import BpcalcError, ExitCode, UsageError

app = typer.Typer(
    name="bpcalc",
    help="A step-by-step backpropagation calculator: every forward, backward and update value "
    "of a small network, number by number.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"


class Stage(str, Enum):
    forward = "forward"
    loss = "loss"
    backward = "backward"
    update = "update"
    after = "after"


def _version(value: bool) -> None:
    if value:
        print(f"bpcalc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """bpcalc: see every number of one training step of a small neural network."""


STEP_EPILOG = """Examples:

  bpcalc step examples/example1.yaml

  bpcalc step examples/example2.yaml --json | jq '.steps[0].values["grad.conv.kernel"]'

  bpcalc step net.yaml --stage backward --only 'grad.*.kernel' --decimals 6
"""


@app.command(epilog=STEP_EPILOG)
def step(
    network: Annotated[
        str, typer.Argument(help="The network YAML file ('-' reads standard input).")
    ],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    decimals: Annotated[
        int, typer.Option("--decimals", "-d", min=0, max=15, help="Decimals shown in tables.")
    ] = 4,
    full: Annotated[
        bool, typer.Option("--full", help="Show every element of large tensors.")
    ] = False,
    steps: Annotated[
        int, typer.Option("--steps", "-n", min=1, help="Run this many updates and show each.")
    ] = 1,
    round_each: Annotated[
        int | None,
        typer.Option(
            "--round-each",
            min=0,
            max=15,
            help="Round every intermediate value to N decimals, as on paper.",
        ),
    ] = None,
    stage: Annotated[
        list[Stage] | None, typer.Option("--stage", help="Show only these stages (repeatable).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Show only value names matching this glob (repeatable)."),
    ] = None,
) -> None:
    """Run one forward / backward / update step and show every intermediate value."""
    from bpcalc import engine
    from bpcalc.spec.schema import load_network

    spec = load_network(network)
    trace = engine.run(spec, steps=steps, round_each=round_each)
    _warn_all(trace.warnings)
    stages = {s.value for s in stage} if stage else None

    def keep(r: Any) -> bool:
        if stages is not None and r.stage not in stages:
            return False
        return not only or any(fnmatch.fnmatchcase(r.name, pat) for pat in only)

    fmt = Format.json if json_ else format
    if fmt is Format.json:
        from bpcalc.render import json_doc

        names = {r.name for st in trace.steps for r in st if keep(r)}
        print(json_doc.dumps(json_doc.document(trace, names)))
        return
    from bpcalc.render import tables

    tables.render(trace, _console(), decimals=decimals, full=full, keep=keep)


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, highlight=False, emoji=False)


def _warn_all(warnings: list[str]) -> None:
    for w in warnings:
        print(f"bpcalc: warning: {w}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one error boundary. Returns (and exits with) the exit code."""
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    debug = os.environ.get("BPCALC_DEBUG") == "1"
    try:
        rv = app(args=argv, prog_name="bpcalc", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else ExitCode.OK
    except Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            print(f"bpcalc: error: {exc.format_message()}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except (Abort, KeyboardInterrupt):
        print("bpcalc: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BpcalcError as exc:
        if debug:
            raise
        print(f"bpcalc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `bpcalc step ... | head`: the reader left; not an error worth a message
        sys.stderr.close()
        return ExitCode.OK


__all__ = ["app", "main", "run", "UsageError"]
