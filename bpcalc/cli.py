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


class Mode(str, Enum):
    batch = "batch"
    sgd = "sgd"
    minibatch = "minibatch"


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

  bpcalc step examples/gd_variants.yaml --mode sgd --steps 8 --summary
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
    mode: Annotated[
        Mode | None,
        typer.Option(
            "--mode",
            help="Samples per step, instead of the file's mode: batch (all), sgd (one), "
            "minibatch (--batch-size).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", "-b", min=1, help="Samples per step (implies --mode minibatch)."
        ),
    ] = None,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary", help="Tables: only one row per step (its samples, loss before and after)."
        ),
    ] = False,
) -> None:
    """Run one forward / backward / update step and show every intermediate value."""
    from bpcalc import engine
    from bpcalc.spec.schema import load_network

    spec = load_network(network)
    if mode is not None or batch_size is not None:
        from bpcalc.spec.schema import with_batching

        spec = with_batching(spec, mode.value if mode else None, batch_size)
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

    tables.render(trace, _console(), decimals=decimals, full=full, keep=keep, summary=summary)


CHECK_EPILOG = """Examples:

  bpcalc check examples/example2.yaml --template > answers.yaml

  bpcalc check examples/example2.yaml answers.yaml

  bpcalc check examples/example2.yaml answers.yaml --json

  bpcalc check net.yaml answers.yaml --round-each 4

  bpcalc check net.yaml answers.yaml --rtol 0.01

An answer sheet maps value names to your numbers, whole values or single elements:

  conv.z: [[0.12]]

  grad.conv.kernel[0,1]: 0.268

Exit status: 0 every answer right, 1 some answer wrong or carried forward, 2 invalid input.
"""


@app.command(epilog=CHECK_EPILOG)
def check(
    network: Annotated[str, typer.Argument(help="The network YAML file.")],
    answers: Annotated[
        str | None,
        typer.Argument(help="Your answer sheet (YAML; '-' reads standard input)."),
    ] = None,
    template: Annotated[
        bool,
        typer.Option("--template", help="Print a blank answer sheet to standard output."),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Write the report as JSON.")] = False,
    rtol: Annotated[
        float | None,
        typer.Option("--rtol", min=0, help="Relative tolerance instead of the decimals rule."),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option("--atol", min=0, help="Absolute tolerance instead of the decimals rule."),
    ] = None,
    round_each: Annotated[
        int | None,
        typer.Option(
            "--round-each",
            min=0,
            max=15,
            help="Expected values follow hand rounding: every value rounded to N decimals.",
        ),
    ] = None,
    decimals: Annotated[
        int, typer.Option("--decimals", "-d", min=0, max=15, help="Decimals shown in tables.")
    ] = 4,
) -> int:
    """Grade the answers you computed by hand: the first wrong step, errors carried
    forward, and the likely mistake."""
    from bpcalc import engine
    from bpcalc.spec.schema import load_network

    if template and answers is not None:
        raise UsageError(
            "--template prints a blank sheet to standard output and takes no answer file; "
            f"run: bpcalc check {network} --template > answers.yaml"
        )
    if not template and answers is None:
        raise UsageError(
            "give the answer sheet to check (bpcalc check NETWORK ANSWERS), "
            "or --template for a blank one"
        )
    spec = load_network(network)
    trace = engine.run(spec, round_each=round_each)
    if template:
        from bpcalc.render.answer_sheet import template as blank

        print(blank(trace, network), end="")
        return ExitCode.OK
    from bpcalc.check.diagnose import diagnose
    from bpcalc.check.grade import grade
    from bpcalc.check.sheet import load_sheet
    from bpcalc.check.tolerance import Tolerance
    from bpcalc.render import check_report

    assert answers is not None
    sheet = load_sheet(answers, trace.steps[0])
    report = grade(spec, sheet, Tolerance(rtol, atol), trace.steps[0], round_each)
    diagnose(spec, report, trace.steps[0])
    _warn_all(trace.warnings + report.warnings)
    if json_:
        from bpcalc.render import json_doc

        print(json_doc.dumps(check_report.document(report)))
    else:
        check_report.render(report, _console(), decimals=decimals)
    return report.exit_code


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
