"""The command line: parse options, call the core, pick a renderer, map errors to exit codes.

Heavy modules (numpy, the engine, rich) are imported inside the commands that need them,
so `bpcalc --help` and `bpcalc --version` start fast. No `from __future__ import annotations`
here: typer would then eval() every option's annotation string on every run (~7 ms a start).
"""

import contextlib
import fnmatch
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
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    latex = "latex"


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


def _learning_rate(value: float | None) -> float | None:
    """--lr: a finite number greater than 0 (0 or inf would write or train a network whose
    learning rate its own YAML rejects)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"should be a finite number greater than 0, found {value:g}")
    return value


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

Show the work (formula, numbers, result) for every small value, or only what you name:

  bpcalc step examples/example2.yaml --explain

  bpcalc step examples/example2.yaml --explain 'grad.conv.kernel[0,1]' --explain fc.z

  bpcalc step examples/example2.yaml --explain 'grad.*' --stage backward

Round every intermediate value to 4 decimals, as on paper:

  bpcalc step examples/example2.yaml --round-each 4 --explain

Write-ups (these show the work by default; --explain none leaves it out):

  bpcalc step examples/example2.yaml --format markdown > step.md

  bpcalc step examples/example1.yaml --format latex > step.tex && pdflatex step.tex
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
) -> None:
    """Run one forward / backward / update step and show every intermediate value."""
    from bpcalc import engine
    from bpcalc.network.parse import load_network

    spec = load_network(network)
    if mode is not None or batch_size is not None:
        from bpcalc.network.sections import with_batching

        spec = with_batching(spec, mode.value if mode else None, batch_size)
    trace = engine.run(spec, steps=steps, round_each=round_each)
    _warn_all(trace.warnings)
    stages = {s.value for s in stage} if stage else None

    def keep(r: Any) -> bool:
        if stages is not None and r.stage not in stages:
            return False
        return not only or any(fnmatch.fnmatchcase(r.name, pat) for pat in only)

    fmt = Format.json if json_ else format
    work = _explain(trace, explain, fmt, decimals, full, keep)
    if fmt is Format.json:
        from bpcalc.render import json_doc

        names = {r.name for st in trace.steps for r in st if keep(r)}
        print(json_doc.dumps(json_doc.document(trace, names, work)))
        return
    if fmt in (Format.markdown, Format.latex):
        from bpcalc.render import latex, markdown

        renderer = markdown if fmt is Format.markdown else latex
        print(renderer.render(trace, decimals=decimals, full=full, keep=keep, work=work), end="")
        return
    from bpcalc.render import tables

    tables.render(
        trace, _console(), decimals=decimals, full=full, keep=keep, summary=summary, work=work
    )


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
    hidden = sorted(n for n in request.named() if not keep(trace.steps[0].records[n]))
    if hidden:
        _warn_all([f"{', '.join(hidden)} hidden by --stage/--only: not explained"])
    return explain.explain_trace(trace, request, decimals, full, keep)


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
    report = diagnose(spec, report, trace.steps[0])
    _warn_all(trace.warnings + report.warnings)
    if json_:
        from bpcalc.render import json_doc

        print(json_doc.dumps(check_report.document(report)))
    else:
        check_report.render(report, _console(), decimals=decimals)
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
) -> None:
    """Train the network for some epochs in mini-batches; show loss and accuracy per epoch."""
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
        text = starter.mlp_yaml(
            _ints(sizes, "--sizes"),
            activation=activation,
            loss=loss,
            lr=0.1 if lr is None else lr,
            command=command,
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
    if output is None:
        sys.stdout.write(text)
        return
    from bpcalc.fileio import write_text_atomic

    write_text_atomic(output, text, force=force, option="-o")
    print(f"bpcalc: wrote {output}", file=sys.stderr)


def _console() -> Any:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich would exit 1; the boundary decides instead
            raise BrokenPipeError

    return _Console(soft_wrap=False, highlight=False, emoji=False)


def _warn_all(warnings: list[str]) -> None:
    for w in warnings:
        print(f"bpcalc: warning: {one_line(w)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point: the one error boundary. Returns (and exits with) the exit code."""
    code = run(argv)
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rv = _click_command()(args=argv, prog_name="bpcalc", standalone_mode=False)
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


def one_line(text: str) -> str:
    """A message as one line of plain text: newlines, tabs and other control or invisible
    characters (a file name with a newline, an escape sequence in a YAML value) are written
    as escapes, so an error stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_COMMAND: tuple[tuple[int, int], Any] | None = None


def _click_command() -> Any:
    """The command line parser typer builds from `app`, built once per process: typer
    rebuilds it on every app() call (~20 ms with typer 0.29), which tests and the fuzz test,
    calling run() thousands of times, would pay each time. Rebuilt if commands are added."""
    global _COMMAND
    key = (len(app.registered_commands), len(app.registered_groups))
    if _COMMAND is None or _COMMAND[0] != key:
        from typer.main import get_command

        _COMMAND = (key, get_command(app))
    return _COMMAND[1]


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
