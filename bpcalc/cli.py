"""The command line: parse options, call the core, pick a renderer, map errors to exit codes.

Heavy modules (numpy, the engine, rich) are imported inside the commands that need them,
so `bpcalc --help` and `bpcalc --version` start fast. No `from __future__ import annotations`
here: typer would then eval() every option's annotation string on every run (~7 ms a start).
"""

import contextlib
import fnmatch
import gc
import math
import os
import sys
import warnings
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
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    latex = "latex"
    svg = "svg"


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


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _learning_rate(value: float | None) -> float | None:
    """--lr: a finite number greater than 0 (0 or inf would write or train a network whose
    learning rate its own YAML rejects)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"should be a finite number greater than 0, found {value:g}")
    return value


def _max_memory(value: str | None) -> str | None:
    """--max-memory SIZE: the memory budget of this run (bpcalc.budget)."""
    if value is not None:
        from bpcalc import budget

        budget.set_limits(memory=budget.parse_memory(value, "--max-memory"))
    return value


def _max_output(value: str | None) -> str | None:
    """--max-output SIZE: how much text tables and --explain may print (bpcalc.budget)."""
    if value is not None:
        from bpcalc import budget

        budget.set_limits(output=budget.parse_size(value, "--max-output"))
    return value


def _tolerance(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
    """--rtol/--atol: a finite number, 0 or more (NaN would grade every answer wrong, and
    JSON cannot hold it)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{param.opts[0]} should be a finite number, 0 or more, found {value:g}")
    return value


MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        callback=_max_memory,
        metavar="SIZE",
        help="Memory for arrays this run may use (default 1GiB), e.g. 4GiB; bpcalc refuses, "
        "before it allocates anything, what would need more.",
    ),
]
MaxOutput = Annotated[
    str | None,
    typer.Option(
        "--max-output",
        callback=_max_output,
        metavar="SIZE",
        help="Text that tables, write-ups and --explain may print (default 8MiB), e.g. 64MiB.",
    ),
]


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

\b
  bpcalc step examples/example1.yaml
  bpcalc step examples/example2.yaml --json | jq '.steps[0].values["grad.conv.kernel"]'
  bpcalc step net.yaml --stage backward --only 'grad.*.kernel' --digits 6
  bpcalc step examples/gd_variants.yaml --mode sgd --steps 8 --summary

Show the work (formula, numbers, result) for every small value, or only what you name:

\b
  bpcalc step examples/example2.yaml --explain
  bpcalc step examples/example2.yaml --explain 'grad.conv.kernel[0,1]' --explain fc.z
  bpcalc step examples/example2.yaml --explain 'grad.*' --stage backward

Round every intermediate value to 4 decimals, as on paper:

\b
  bpcalc step examples/example2.yaml --round-each 4 --explain

Write-ups (these show the work by default; --explain none leaves it out):

\b
  bpcalc step examples/example2.yaml --format markdown > step.md
  bpcalc step examples/example1.yaml --format latex > step.tex && pdflatex step.tex

Numbers show 4 significant digits (--digits N for more, --decimals N for fixed decimals);
the tables fit the terminal's width, and are stacked when they would not.

A diagram of the network with the step's values (SVG; needs pip install 'bpcalc[diagram]'):

\b
  bpcalc step examples/mlp_2_3_1.yaml --format svg > net.svg
  bpcalc step examples/mlp_2_3_1.yaml --format svg --stage backward > gradients.svg
"""


@app.command(epilog=STEP_EPILOG)
def step(
    network: Annotated[
        str, typer.Argument(help="The network YAML file ('-' reads standard input).")
    ],
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    decimals: Annotated[
        int | None,
        typer.Option(
            "--decimals",
            "-d",
            min=0,
            max=15,
            help="Show N fixed decimals instead of 4 significant digits.",
        ),
    ] = None,
    digits: Annotated[
        int | None,
        typer.Option("--digits", min=1, max=17, help="Significant digits shown (default 4)."),
    ] = None,
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
    explain: Annotated[
        list[str] | None,
        typer.Option(
            "--explain",
            help="Show the work: formula, numbers substituted, result. --explain alone (or "
            "'all'): every value of at most 16 elements (--full: all); a value name (conv.z), "
            "one element (conv.z[0,0]) or a glob ('grad.*'); 'none': no work. Repeatable. "
            "Markdown and LaTeX show all by default.",
        ),
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
    max_memory: MaxMemory = None,
    max_output: MaxOutput = None,
) -> None:
    """Run one forward / backward / update step and show every intermediate value."""
    from bpcalc import engine
    from bpcalc.network.parse import load_network

    spec = load_network(network)
    if mode is not None or batch_size is not None:
        from bpcalc.network.sections import with_batching

        spec = with_batching(spec, mode.value if mode else None, batch_size)
    fmt = Format.json if json_ else format
    from bpcalc import budget

    asked = [f"--steps {steps}"] if steps > 1 else []
    asked += [f"--batch-size {batch_size}"] if batch_size is not None else []
    asked += [f"--mode {mode.value}"] if mode is not None else []
    asked += ["--json"] if fmt is Format.json else []
    budget.check_run(spec, steps, fmt is Format.json, " ".join(asked))
    trace = engine.run(spec, steps=steps, round_each=round_each)
    _warn_all(trace.warnings)
    stages = {s.value for s in stage} if stage else None

    def keep(r: Any) -> bool:
        if stages is not None and r.stage not in stages:
            return False
        return not only or any(fnmatch.fnmatchcase(r.name, pat) for pat in only)

    _no_match(only, trace)
    shown = _precision(decimals, digits, round_each)
    if fmt is not Format.json and not summary:
        from bpcalc.render import printed

        chars, largest = printed.table_chars(trace, keep, shown.shown_decimals(), full)
        budget.check_printed(
            chars,
            f"{'--full: ' if full else ''}the values of {len(trace.steps)} step"
            + ("s" if len(trace.steps) > 1 else ""),
            f"the largest is {largest}; choose values with --only or --stage"
            + ("" if full else ", or fewer --steps"),
        )
    if fmt is Format.svg:
        from bpcalc.render import diagram

        pic = diagram.build(spec, trace.steps[0], _drawn_stage(stages), shown)
        sys.stdout.write(diagram.svg(pic))
        return
    work = _explain(trace, explain, fmt, shown, full, keep)
    if fmt is Format.json:
        from bpcalc.render import json_doc

        names = {r.name for st in trace.steps for r in st if keep(r)}
        json_doc.write(json_doc.document(trace, names, work))
        return
    if fmt in (Format.markdown, Format.latex):
        from bpcalc.render import latex, markdown

        if fmt is Format.latex:
            from bpcalc.render import diagram

            pic = diagram.build(spec, trace.steps[0], _drawn_stage(stages), shown)
            text = latex.render(
                trace,
                decimals=shown,
                full=full,
                keep=keep,
                work=work,
                figure=diagram.latex_figure(pic),
            )
        else:
            text = markdown.render(trace, decimals=shown, full=full, keep=keep, work=work)
        print(text, end="")
        return
    from bpcalc.render import tables

    console = _console()
    tables.render(
        trace,
        console,
        decimals=shown,
        full=full,
        keep=keep,
        summary=summary,
        work=work,
        wrap=_wrap(console),
    )


def _precision(decimals: int | None, digits: int | None, round_each: int | None) -> Any:
    """How numbers are shown: --decimals N fixed decimals, --digits N significant digits,
    by default 4 significant digits (with --round-each N, at least its N decimals, so the
    hand-rounded values show whole)."""
    from bpcalc.render.numbers import DIGITS, Precision

    if decimals is not None and digits is not None:
        raise UsageError("--decimals and --digits both set how numbers are shown; give one of them")
    if decimals is not None:
        return Precision(decimals=decimals)
    return Precision(digits=digits or DIGITS, min_decimals=round_each or 0)


def _no_match(patterns: list[str] | None, trace: Any) -> None:
    """--only with a pattern that matches no value: an error naming the closest values (an
    empty table would look like a run that computed nothing)."""
    names = [r.name for r in trace.steps[0]]
    for pat in patterns or []:
        if any(fnmatch.fnmatchcase(n, pat) for n in names):
            continue
        from bpcalc.usage import close_names, did_you_mean

        raise UsageError(f"--only {pat}: no value matches{did_you_mean(close_names(pat, names))}")


def _drawn_stage(stages: set[str] | None) -> str:
    """The diagram shows gradients when only the backward (or update) stage is asked for."""
    return "backward" if stages and stages <= {"backward", "update"} else "forward"


def _explain(
    trace: Any, requests: list[str] | None, fmt: Format, decimals: int, full: bool, keep: Any
) -> Any:
    """The explanations asked for (write-ups explain everything small unless told 'none')."""
    if requests is None:
        if fmt not in (Format.markdown, Format.latex):
            return None
        requests = ["all"]
    from bpcalc import explain

    request = explain.parse_requests(requests, trace)
    if request.empty:
        return None
    from bpcalc import budget
    from bpcalc.render import printed

    chars, largest = printed.work_chars(
        trace, request, decimals, full, keep, writeup=fmt in (Format.markdown, Format.latex)
    )
    budget.check_printed(
        chars,
        f"--explain {' '.join(requests)}{' --full' if full else ''}",
        f"{largest} prints most; name fewer values or single elements such as {largest}[0]"
        + (", or leave out --full" if full else ""),
    )
    hidden = sorted(n for n in request.named() if not keep(trace.steps[0].records[n]))
    if hidden:
        _warn_all([f"{', '.join(hidden)} hidden by --stage/--only: not explained"])
    return explain.explain_trace(trace, request, decimals, full, keep)


CHECK_EPILOG = """Examples:

\b
  bpcalc check examples/example2.yaml --template > answers.yaml
  bpcalc check examples/example2.yaml answers.yaml
  bpcalc check examples/example2.yaml answers.yaml --json
  bpcalc check net.yaml answers.yaml --round-each 4
  bpcalc check net.yaml answers.yaml --delta t_minus_o
  bpcalc check net.yaml answers.yaml --steps 2
  bpcalc check net.yaml answers.yaml --rtol 0.01

An answer sheet maps value names to your numbers, whole values or single elements:

\b
  conv.z: [[0.12]]
  grad.conv.kernel[0,1]: 0.268
  step 2: {new.conv.bias: 1.49}
  conventions: {delta: t_minus_o}

Exit status: 0 every answer right, 1 some answer wrong or carried forward, 2 invalid input.
"""


@app.command(epilog=CHECK_EPILOG)
def check(
    network: Annotated[str, typer.Argument(help="The network YAML file.")],
    answers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Your answer sheet (YAML; '-' reads standard input); several sheets or folders "
            "of sheets grade a class."
        ),
    ] = None,
    template: Annotated[
        bool,
        typer.Option(
            "--template",
            help="Print a blank answer sheet to standard output (with --json: as JSON).",
        ),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Write the report as JSON.")] = False,
    format_: Annotated[
        CheckFormat | None,
        typer.Option("--format", "-f", help="table, json, or csv (a class: one row a student)."),
    ] = None,
    rtol: Annotated[
        float | None,
        typer.Option(
            "--rtol",
            min=0,
            callback=_tolerance,
            help="Relative tolerance instead of the rounding rule.",
        ),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option(
            "--atol",
            min=0,
            callback=_tolerance,
            help="Absolute tolerance instead of the rounding rule.",
        ),
    ] = None,
    round_each: Annotated[
        int | None,
        typer.Option(
            "--round-each",
            min=0,
            max=15,
            help="Expected values follow hand rounding: every value rounded to N decimals "
            "(half away from zero), the forward pass after the update too.",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            "-n",
            min=1,
            help="Run this many steps (a sheet's 'step N:' sections ask for them too).",
        ),
    ] = None,
    delta: Annotated[
        str | None,
        typer.Option(
            "--delta", help="o_minus_t (bpcalc's) or t_minus_o: δ = t − o, w ← w + η·δ·x."
        ),
    ] = None,
    velocity: Annotated[
        str | None,
        typer.Option(
            "--velocity",
            help="Momentum velocity as written: pytorch (v ← μ·v + g), lr_inside "
            "(v ← μ·v + η·g) or textbook (v ← μ·v − η·g).",
        ),
    ] = None,
    log: Annotated[
        str | None,
        typer.Option("--log", help="The cross-entropy's logarithm: ln, log10 or log2."),
    ] = None,
    decimals: Annotated[
        int | None,
        typer.Option(
            "--decimals",
            "-d",
            min=0,
            max=15,
            help="Show N fixed decimals instead of 4 significant digits.",
        ),
    ] = None,
    digits: Annotated[
        int | None,
        typer.Option("--digits", min=1, max=17, help="Significant digits shown (default 4)."),
    ] = None,
    max_memory: MaxMemory = None,
) -> int:
    """Grade the answers you computed by hand: the first wrong step, errors carried
    forward, and the likely mistake."""
    if answers is not None:
        _long_running()  # grading reruns the step many times (a class: for every sheet)
    from bpcalc import engine
    from bpcalc.check.tolerance import Tolerance
    from bpcalc.network.parse import load_network

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
    fmt = CheckFormat.json if json_ else (format_ or CheckFormat.table)
    if answers is not None and (
        len(answers) > 1
        or fmt is CheckFormat.csv
        or os.path.isdir(network)
        or any(os.path.isdir(a) for a in answers)
    ):
        return _check_class(network, answers, fmt, Tolerance(rtol, atol), round_each)
    spec = load_network(network)
    from bpcalc import budget

    if template:
        from bpcalc.render import answer_sheet

        budget.check_run(spec, steps or 1, False, "--steps" if steps else "")
        trace = engine.run(spec, steps=steps or 1, round_each=round_each)
        if json_:  # the same blanks as JSON: value name -> nulls (check reads it back)
            from bpcalc.render import json_doc

            print(json_doc.dumps(answer_sheet.template_json(trace)))
        else:
            print(answer_sheet.template(trace, network), end="")
        return ExitCode.OK
    from bpcalc.check import conventions as conventions_mod
    from bpcalc.check.diagnose import diagnose
    from bpcalc.check.grade import grade
    from bpcalc.check.runner import Runner
    from bpcalc.check.sheet import parse_sheet, steps_asked
    from bpcalc.network.yaml_source import read_source
    from bpcalc.render import check_report

    assert answers is not None
    sheet_name, text = read_source(answers[0])
    asked = steps_asked(text, sheet_name)
    if steps is not None and asked > steps:
        raise UsageError(
            f"--steps {steps}: the sheet {sheet_name} answers step {asked}; "
            f"use --steps {asked} or more"
        )
    n = max(asked, steps or 1)
    budget.check_run(spec, n, False, "--steps" if steps else "")
    trace = engine.run(spec, steps=n, round_each=round_each)
    sheet = parse_sheet(text, sheet_name, trace.steps)
    conventions = conventions_mod.parse(
        sheet.conventions, {"delta": delta, "velocity": velocity, "log": log}
    )
    runner = Runner(spec, n, round_each, conventions)
    exact = runner.run() if conventions.declared() else trace.steps
    if exact is None:
        raise UsageError(
            "the step overflows in the conventions this sheet declares: "
            + "; ".join(conventions.describe())
        )
    report = grade(spec, sheet, Tolerance(rtol, atol), exact, round_each, runner)
    report = diagnose(spec, report, exact, runner, sheet)
    _warn_all(trace.warnings + report.warnings)
    for note in sheet.notes:
        print(f"bpcalc: note: {one_line(note)}", file=sys.stderr)
    if fmt is CheckFormat.json:
        from bpcalc.render import json_doc

        json_doc.write(check_report.document(report))
    else:
        console = _console()
        check_report.render(
            report,
            console,
            decimals=_precision(decimals, digits, round_each),
            wrap=_wrap(console),
        )
    return report.exit_code


def _check_class(
    against: str, answers: list[str], fmt: CheckFormat, tol: Any, round_each: int | None
) -> int:
    """Many sheets: one row per student and a class summary (bpcalc/check/klass.py)."""
    from bpcalc.check import klass
    from bpcalc.render import class_report

    assignment = klass.load_assignment(against, round_each)
    report = klass.grade_class(assignment, klass.sheet_files(answers), tol)
    if fmt is CheckFormat.json:
        from bpcalc.render import json_doc

        print(json_doc.dumps(class_report.document(report)))
    elif fmt is CheckFormat.csv:
        sys.stdout.write(class_report.csv_text(report))
    else:
        class_report.render(report, _console())
    return report.exit_code


TRAIN_EPILOG = """Examples:

\b
  bpcalc train examples/digits/mlp.yaml
  bpcalc train examples/digits/mlp.yaml -e 30 -b 64 --lr 0.05 --save trained.yaml
  bpcalc train net.yaml -e 5 --test test.yaml --json | jq .test_accuracy
  bpcalc train examples/mnist_784_128_10.yaml --dtype float64 --no-shuffle

Defaults come from the network's train: section (epochs, batch_size, shuffle, seed, test),
then the top-level batch_size:/seed: that bpcalc step uses, then: batch size 32, shuffled,
seed 0, float32. --test takes a YAML file with inputs: and targets: (as in a network; file
references allowed) or an .npz with arrays inputs and targets (or x and y), used as they are.
"""


class Dtype(str, Enum):
    float32 = "float32"
    float64 = "float64"


@app.command(epilog=TRAIN_EPILOG)
def train(
    network: Annotated[
        str, typer.Argument(help="The network YAML file ('-' reads standard input).")
    ],
    epochs: Annotated[
        int | None, typer.Option("--epochs", "-e", min=1, help="Passes over the training data.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "-b", min=1, help="Samples per update.")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", min=0.0, callback=_learning_rate, help="Learning rate, instead of the YAML's."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed for shuffling the samples.")
    ] = None,
    shuffle: Annotated[
        bool | None,
        typer.Option("--shuffle/--no-shuffle", help="Reshuffle the samples every epoch."),
    ] = None,
    dtype: Annotated[
        Dtype, typer.Option("--dtype", help="Floating-point type of the computation.")
    ] = Dtype.float32,
    test: Annotated[
        str | None,
        typer.Option("--test", help="Test data: a YAML file (inputs:, targets:) or an .npz."),
    ] = None,
    save: Annotated[
        str | None,
        typer.Option("--save", help="Write the trained network to this YAML file."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Let --save replace an existing file (never the input network)."
        ),
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON line per epoch on stdout instead of tables.")
    ] = False,
    max_memory: MaxMemory = None,
) -> None:
    """Train the network for some epochs in mini-batches; show loss and accuracy per epoch."""
    _long_running()
    from bpcalc.train_cmd import run_train

    run_train(
        network,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        shuffle=shuffle,
        dtype=dtype.value,
        test=test,
        save=save,
        force=force,
        json_out=json_,
    )


NEW_EPILOG = """Examples:

\b
  bpcalc new mlp --sizes 2,3,1
  bpcalc new mlp --sizes 64,32,10 -o digits.yaml
  bpcalc new mlp --sizes 4,8,2 --loss mse --activation tanh
  bpcalc new mlp --sizes 4,16,3 --blocks 2     (two residual blocks with layer norm)
  bpcalc new cnn --input 1,8,8 --channels 4 --kernel 3 --classes 10 -o cnn.yaml
  bpcalc new rnn --vocab 5 --hidden 8 --length 6
  bpcalc new attention --vocab 5 --dim 4 --heads 2

The file runs at once (made-up example data): bpcalc step FILE, bpcalc train FILE.
"""


class Kind(str, Enum):
    mlp = "mlp"
    cnn = "cnn"
    rnn = "rnn"
    attention = "attention"


def _ints(text: str, option: str, count: int | None = None) -> list[int]:
    parts = text.replace(" ", "").split(",")
    if "" in parts and parts != [""]:  # "2,,3" or "2,3,": a number left out, not a zero
        raise UsageError(
            f"{option} should be whole numbers separated by commas, found {text!r}, "
            "with a number missing"
        )
    try:
        values = [int(p) for p in parts if p]  # nothing given: the count or the caller objects
    except ValueError:
        raise UsageError(
            f"{option} should be whole numbers separated by commas, found {text!r}"
        ) from None
    if count is not None and len(values) != count:
        raise UsageError(f"{option} should be {count} numbers separated by commas, found {text!r}")
    return values


@app.command(epilog=NEW_EPILOG)
def new(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="mlp (dense layers), cnn (conv, pool, dense), rnn or attention (over token "
            "sequences: embedding, the layer, a softmax at every position)."
        ),
    ],
    sizes: Annotated[
        str | None,
        typer.Option("--sizes", help="mlp: layer sizes, input first, e.g. 784,128,10."),
    ] = None,
    activation: Annotated[
        str, typer.Option("--activation", help="mlp: hidden activation (relu, tanh, ...).")
    ] = "relu",
    blocks: Annotated[
        int,
        typer.Option(
            "--blocks",
            help="mlp: residual blocks (layernorm, dense, dense) after the hidden layers.",
        ),
    ] = 0,
    loss: Annotated[
        str | None,
        typer.Option(
            "--loss", help="Loss; default cross_entropy (K>1 outputs) or binary_cross_entropy."
        ),
    ] = None,
    input_shape: Annotated[str, typer.Option("--input", help="cnn: input image C,H,W.")] = "1,8,8",
    channels: Annotated[int, typer.Option("--channels", help="cnn: convolution filters.")] = 4,
    kernel: Annotated[int, typer.Option("--kernel", help="cnn: kernel size.")] = 3,
    pool: Annotated[int, typer.Option("--pool", help="cnn: max-pool size (1: none).")] = 2,
    classes: Annotated[int, typer.Option("--classes", help="cnn: output classes.")] = 10,
    vocab: Annotated[int, typer.Option("--vocab", help="rnn, attention: token ids.")] = 5,
    length: Annotated[int, typer.Option("--length", help="rnn, attention: tokens per sample.")] = 6,
    hidden: Annotated[int, typer.Option("--hidden", help="rnn: hidden size.")] = 8,
    dim: Annotated[int, typer.Option("--dim", help="attention: the tokens' vectors.")] = 4,
    heads: Annotated[int, typer.Option("--heads", help="attention: heads.")] = 1,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            min=0.0,
            callback=_learning_rate,
            help="Learning rate (mlp, cnn 0.1; rnn, attention 0.5).",
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing -o file.")] = False,
    max_memory: MaxMemory = None,
) -> None:
    """Write a commented starter network YAML (a multi-layer perceptron or a small CNN)."""
    from bpcalc import starter

    if kind in (Kind.rnn, Kind.attention):
        size = f"--hidden {hidden}" if kind is Kind.rnn else f"--dim {dim} --heads {heads}"
        command = f"bpcalc new {kind.value} --vocab {vocab} --length {length} {size}"
        text = (
            starter.rnn_yaml(
                vocab=vocab, hidden=hidden, length=length, lr=lr or 0.5, command=command
            )
            if kind is Kind.rnn
            else starter.attention_yaml(
                vocab=vocab, dim=dim, length=length, heads=heads, lr=lr or 0.5, command=command
            )
        )
    elif kind is Kind.mlp:
        if sizes is None:
            raise UsageError("bpcalc new mlp needs --sizes, e.g. --sizes 2,3,1 (input first)")
        command = f"bpcalc new mlp --sizes {sizes}" + (f" --loss {loss}" if loss else "")
        command += f" --blocks {blocks}" if blocks else ""
        text = starter.mlp_yaml(
            _ints(sizes, "--sizes"),
            activation=activation,
            loss=loss,
            lr=0.1 if lr is None else lr,
            command=command,
            blocks=blocks,
        )
    else:
        c, h, w = _ints(input_shape, "--input", 3)
        command = (
            f"bpcalc new cnn --input {c},{h},{w} --channels {channels} --kernel {kernel} "
            f"--pool {pool} --classes {classes}"
        )
        text = starter.cnn_yaml(
            (c, h, w),
            channels=channels,
            kernel=kernel,
            pool=pool,
            classes=classes,
            lr=0.1 if lr is None else lr,
            command=command,
        )
    _runs_as_a_step(text, command)
    if output is None:
        sys.stdout.write(text)
        return
    from bpcalc.fileio import write_text_atomic

    write_text_atomic(output, text, force=force, option="-o")
    print(f"bpcalc: wrote {output}", file=sys.stderr)


def _runs_as_a_step(text: str, command: str) -> None:
    """`bpcalc new` writes only what `bpcalc step` would run: the file is parsed as step would
    parse it and sized against the same budget (--max-memory applies to both)."""
    from bpcalc import budget
    from bpcalc.errors import SpecError
    from bpcalc.network.parse import parse_network
    from bpcalc.network.yaml_source import load_yaml_text

    try:
        spec = parse_network(load_yaml_text(text, "new.yaml"))
        budget.check_run(spec, 1, False, "")
    except SpecError as exc:
        raise UsageError(
            f"{command}: makes a network bpcalc step would refuse: {exc.message}"
        ) from None


EXPORT_EPILOG = """Examples:

\b
  bpcalc export examples/example2.yaml --to pytorch -o ex2.py
  python ex2.py --json                 # the numbers of: bpcalc step examples/example2.yaml --json
  python ex2.py --json --steps 3 --mode sgd
  bpcalc export examples/digits/mlp.yaml --to pytorch -o examples/digits/mlp_torch.py
  python examples/digits/mlp_torch.py --train --json
  torchrun --standalone --nproc-per-node 2 examples/digits/mlp_torch.py --train

The script needs PyTorch and NumPy, not bpcalc. Data files the network names are read from
paths relative to the script's folder. See docs/export.md.
"""


class ExportTarget(str, Enum):
    pytorch = "pytorch"


@app.command(epilog=EXPORT_EPILOG)
def export(
    network: Annotated[
        str, typer.Argument(help="The network YAML file ('-' reads standard input).")
    ],
    to: Annotated[ExportTarget, typer.Option("--to", help="What to write: a PyTorch script.")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing -o file.")] = False,
) -> None:
    """Write the network as a standalone PyTorch script that reproduces `bpcalc step` and trains."""
    from bpcalc.export import load_network
    from bpcalc.export.pytorch import export_pytorch

    if output is not None:  # refuse before reading the data, as train --save does
        from bpcalc.fileio import check_target

        check_target(output, force=force, protect=[network], option="-o")
    text = export_pytorch(load_network(network), script=output, source=network)
    if output is None:
        sys.stdout.write(text)
        return
    from bpcalc.fileio import write_text_atomic

    write_text_atomic(output, text, force=force, protect=[network], option="-o")
    print(f"bpcalc: wrote {output}", file=sys.stderr)


EXERCISE_EPILOG = """Examples:

\b
  bpcalc exercise examples/exercises/mlp.yaml --variants 30 --seed 2024 -o mlp-class
  bpcalc exercise examples/exercises/cnn.yaml -n 3 --seed 7 -o cnn --no-pdf

The network gives its parameters by shape (units:, out_channels:/kernel_size:); its exercise:
section says how to draw them, what to ask and how to round (docs/teaching.md). Each variant
gets a folder with its network, handout, answer sheet, key and worked solution; grade the class
with: bpcalc check DIR SHEETS...
"""


@app.command(epilog=EXERCISE_EPILOG)
def exercise(
    network: Annotated[str, typer.Argument(help="The network YAML with an exercise: section.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="The folder to write the variants to.")
    ],
    variants: Annotated[
        int, typer.Option("--variants", "-n", min=1, help="How many variants (one per student).")
    ] = 1,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Variant k is drawn from this seed and k alone.")
    ] = 0,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Compile the LaTeX files where pdflatex is.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
) -> None:
    """Make an exercise with numbers a person can compute: variants, handouts, answer keys."""
    _long_running()
    from bpcalc.teach.generate import generate

    result = generate(network, variants=variants, seed=seed, out_dir=output, force=force, pdf=pdf)
    for v in result.variants:
        why = ", ".join(f"{rule} {n}" for rule, n in sorted(v.rejected.items()))
        print(
            f"{v.folder}: drawn in {v.draws} {'try' if v.draws == 1 else 'tries'}"
            + (f" (rejected: {why})" if why else "")
        )
    print(f"wrote {len(result.files)} files to {result.out_dir}")
    _warn_all(result.warnings)


def _long_running() -> None:
    """A command that may run for long (training, grading a class, drawing exercises) turns
    the cyclic collector back on, which main() pauses for the short ones; what start-up made
    is frozen first, so the collections see only what the command makes."""
    gc.freeze()
    gc.enable()


def _console() -> Any:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich would exit 1; the boundary decides instead
            raise BrokenPipeError

    return _Console(soft_wrap=False, highlight=False, emoji=False, markup=False)


def _wrap(console: Any) -> bool:
    """Prose wraps at the console's width in a terminal, or when COLUMNS asks for a width;
    in a pipe it is left whole, for the pager, the editor or grep."""
    return bool(console.is_terminal or os.environ.get("COLUMNS"))


def _warn_all(warnings: list[str]) -> None:
    for w in warnings:
        print(f"bpcalc: warning: {one_line(w)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one error boundary. Returns (and exits with) the exit code.

    The process is short and makes next to no reference cycles (a step, a check or a training
    run leaves under a thousand unreachable objects), while its start-up creates tens of
    thousands of long-lived ones (modules, classes, functions): so the cyclic collector, which
    would walk them again and again as they are made, is paused for the command (`train`, a
    loop that may run for long, turns it back on), and what is left at the end is frozen out
    of its sight, which spares the interpreter's last full collection on the way out. Together
    about 19 ms of a `bpcalc step` (docs/benchmarks.md). run() alone, as tests call it, leaves
    the collector as it is; a caller that catches the SystemExit gets it back on."""
    gc.disable()
    try:
        code = run(argv)
    finally:
        gc.freeze()
        gc.enable()
    sys.exit(code)


def _bare_explain(argv: list[str]) -> list[str]:
    """`--explain` with no value (last, or before another option or the network file) means
    `--explain all`: typer options cannot take an optional value."""
    out: list[str] = []
    for i, tok in enumerate(argv):
        out.append(tok)
        if tok == "--explain":
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is None or nxt.startswith("-") or nxt.endswith((".yaml", ".yml")):
                out.append("all")
    return out


def run(argv: list[str] | None = None) -> int:
    """Run one command; every outcome is an exit code, never a traceback.

    BpcalcError (bad input, usage, NaN) -> "bpcalc: error: file:line:col: message", exit 2.
    Anything else is a bug in bpcalc -> a one-line "internal error" message, exit 70
    (BPCALC_DEBUG=1 lets it raise, with its traceback). numpy's floating-point warnings are
    silenced: a value that overflows is reported by name by the engine instead.
    """
    debug = os.environ.get("BPCALC_DEBUG") == "1"
    argv = _bare_explain(sys.argv[1:] if argv is None else list(argv))
    from bpcalc import budget

    with budget.using():  # --max-memory/--max-output set the limits of this run only
        return _run(argv, debug)


def _run(argv: list[str], debug: bool) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.showwarning = _library_warning  # inside catch_warnings: restored after
            rv = _click_command(argv)(args=argv, prog_name="bpcalc", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else ExitCode.OK
    except Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        if type(exc).__name__ == "NoArgsIsHelpError":  # `bpcalc step` alone: its help
            exc.show(file=sys.stderr)
            return ExitCode.INVALID_INPUT
        from bpcalc.usage import usage_line

        print(f"bpcalc: error: {one_line(usage_line(exc))}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except (Abort, KeyboardInterrupt):
        print("bpcalc: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BpcalcError as exc:
        if debug:
            raise
        print(f"bpcalc: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return _broken_pipe()
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):  # typer turns EPIPE into exit 1
            return _broken_pipe()
        code = exc.code
        if code is None or isinstance(code, int):
            return code or ExitCode.OK
        print(f"bpcalc: error: {code}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except MemoryError:
        print("bpcalc: error: out of memory: the network or its data is too large", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except OSError as exc:  # the system refused: disk full, I/O error (not a bug in bpcalc)
        if debug:
            raise
        what = f" ({exc.filename})" if exc.filename else ""
        print(f"bpcalc: error: {one_line(f'{exc.strerror or exc}{what}')}", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    except Exception as exc:  # a bug: one line for the user, the traceback only when debugging
        if debug:
            raise
        detail = one_line(f"{type(exc).__name__}: {exc}")[:200]
        print(
            f"bpcalc: internal error ({detail}); this is a bug in bpcalc, please report it "
            "with the input file (BPCALC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


def _library_warning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    """A warning from a library (numpy, PyYAML) as one bpcalc line on stderr, never the
    library's two lines naming its source file."""
    print(f"bpcalc: warning: {one_line(f'{category.__name__}: {message}')}", file=sys.stderr)


def one_line(text: str) -> str:
    """A message as one line of plain text: newlines, tabs and other control or invisible
    characters (a file name with a newline, an escape sequence in a YAML value) are written
    as escapes, so an error stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_COMMANDS: dict[tuple[str | None, int, int], Any] = {}


def _click_command(argv: list[str]) -> Any:
    """The command line parser typer builds from `app`, built once per process: typer
    rebuilds it on every app() call (~20 ms with typer 0.29), which tests and the fuzz test,
    calling run() thousands of times, would pay each time. Rebuilt if commands are added.

    When the first argument names a command (`bpcalc step ...`), the parser holds that command
    alone, under the app's own settings and callback, so its options, help and errors read as
    with the whole app: typer builds every command's options from its signature (~2.7 ms of a
    start for the six, ~0.7 ms for step). Anything else (no command, a top-level option, a
    misspelt command, whose message suggests the others) gets the whole app."""
    import copy

    from typer.main import get_command, get_command_name

    named = {
        info.name or get_command_name(info.callback.__name__): info  # type: ignore[union-attr]
        for info in app.registered_commands
    }
    first = argv[0] if argv and argv[0] in named else None
    key = (first, len(app.registered_commands), len(app.registered_groups))
    if key not in _COMMANDS:
        if first is None:
            _COMMANDS[key] = get_command(app)
        else:
            one = copy.copy(app)  # the same settings and callback (a group), one command
            one.registered_commands = [named[first]]
            _COMMANDS[key] = get_command(one)
    return _COMMANDS[key]


def _broken_pipe() -> int:
    """`bpcalc step ... | head`: the reader left; not an error worth a message. Point stdout
    at /dev/null so the interpreter's last flush does not fail again."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    with contextlib.suppress(Exception):
        sys.stderr.close()
    return ExitCode.OK


__all__ = ["app", "main", "run", "UsageError"]
