"""Command-line conventions: `python -m bpcalc`, shell completion, one-line usage errors with
a did-you-mean hint (exit 2), patterns that match nothing, --help examples never wrapped
inside a command, and --digits / --decimals."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bpcalc.cli import STEP_EPILOG, run


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_python_dash_m_bpcalc_runs_the_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bpcalc", "step", "examples/example1.yaml", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"network": "Seed example 1' in proc.stdout
    version = subprocess.run(
        [sys.executable, "-m", "bpcalc", "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.startswith("bpcalc ")


def test_shell_completion_can_be_shown_and_completes_commands_options_and_choices() -> None:
    env = {**os.environ, "_BPCALC_COMPLETE": "complete_bash"}

    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
        proc = subprocess.run(
            [sys.executable, "-m", "bpcalc"],
            env={**env, "COMP_WORDS": words, "COMP_CWORD": cword},
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.split()

    assert complete("bpcalc st") == ["step"]
    assert complete("bpcalc step --dig") == ["--digits"]
    assert complete("bpcalc step x --format ") == ["table", "json", "markdown", "latex", "svg"]
    script = subprocess.run(
        [sys.executable, "-m", "bpcalc", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "complete -o default -F _bpcalc_completion bpcalc" in script.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["stpe", "x"], "no such command stpe; did you mean step?"),
        (["step", "x", "--decimal", "3"], "no such option --decimal; did you mean --decimals?"),
        (
            ["step", "x", "--format", "jsn"],
            "--format jsn: should be one of table, json, markdown, latex, svg; did you mean json?",
        ),
        (["step", "x", "--stage", "fwd"], "did you mean forward?"),
        (["new", "mpl"], "KIND mpl: should be one of mlp, cnn, rnn, attention; did you mean mlp?"),
        (["step"], "missing argument NETWORK"),
        (["step", "x", "--steps", "abc"], "--steps abc: should be a whole number"),
        (["step", "x", "--decimals", "-1"], "--decimals: -1 is not in the range"),
        (["new", "mlp", "--sizes"], "--sizes needs a value"),
        (
            ["step", "examples/example1.yaml", "--digits", "3", "--decimals", "2"],
            "--decimals and --digits both set how numbers are shown",
        ),
    ],
)
def test_every_usage_error_is_one_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("bpcalc: error: ") and message in err, err
    assert "Usage:" not in err and "Try '" not in err


@pytest.mark.parametrize("option", ["--only", "--explain"])
def test_a_pattern_that_matches_nothing_is_an_error_naming_close_values(
    capsys: pytest.CaptureFixture[str], option: str
) -> None:
    code, out, err = _run(capsys, "step", "examples/mlp_2_3_1.yaml", option, "grad.W*")
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1
    assert f"bpcalc: error: {option} grad.W*: no value" in err
    # the close names are grad.* values of the network
    hint = re.search(r"did you mean (.*)\?", err)
    assert hint, err
    assert all(n.startswith("grad.") for n in hint.group(1).split(" or "))


def test_a_pattern_that_matches_is_still_fine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "step", "examples/mlp_2_3_1.yaml", "--only", "grad.*.weights")
    assert code == 0, err
    assert "grad.hidden.weights" in out and "hidden.z" not in out


def _example_lines() -> list[str]:
    return [line.strip() for line in STEP_EPILOG.splitlines() if line.startswith("  bpcalc ")]


@pytest.mark.parametrize("command", ["step", "check", "train", "new"])
def test_help_examples_are_never_wrapped_inside_a_command_at_60_columns(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    proc = subprocess.run(
        [sys.executable, "-m", "bpcalc", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "60"},
    )
    assert proc.returncode == 0, proc.stderr
    from bpcalc import cli

    epilog = getattr(cli, f"{command.upper()}_EPILOG")
    examples = [line.strip() for line in epilog.splitlines() if line.startswith("  bpcalc ")]
    assert examples
    shown = [line.strip() for line in proc.stdout.splitlines()]
    for example in examples:
        assert example in shown, f"{example!r} is not one line of:\n{proc.stdout}"


def test_digits_and_decimals_choose_how_numbers_are_shown(capsys: pytest.CaptureFixture[str]):
    # example 2's ∂L/∂z of the softmax output is p − y = ±0.3723847...
    code, out, _ = _run(capsys, "step", "examples/example2.yaml", "--only", "grad.fc.z")
    assert "[0.3724  -0.3724]" in out
    code, out, _ = _run(
        capsys, "step", "examples/example2.yaml", "--only", "grad.fc.z", "--digits", "7"
    )
    assert "[0.3723847  -0.3723847]" in out
    code, out, _ = _run(
        capsys, "step", "examples/example2.yaml", "--only", "grad.fc.z", "--decimals", "2"
    )
    assert "[0.37  -0.37]" in out


def test_the_step_help_names_digits_and_decimals(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["step", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--digits" in out and "--decimals" in out
    assert _example_lines()
