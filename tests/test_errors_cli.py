"""The command line's errors: usage mistakes and missing files are exit 2 without a
traceback, a bug is one line and exit 70, and a closed pipe, a full disk or running out
of memory are messages, not internal errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bpcalc.cli import app, run
from tests.errors_helpers import (
    run_cli,
)


@pytest.mark.parametrize(
    "args, words",
    [
        (["step", "examples/example1.yaml", "--decimals", "99"], ("--decimals",)),
        (["step", "examples/example1.yaml", "--bogus"], ("--bogus",)),
        (["step", "examples/example1.yaml", "--steps", "0"], ("--steps",)),
        (["step"], ("NETWORK",)),
        (["train", "examples/example1.yaml", "-e", "1", "--lr", "inf"], ("--lr", "finite")),
        (["new", "mlp", "--sizes", "2,1", "--lr", "0"], ("--lr", "greater than 0")),
        (
            ["step", "examples/gd_variants.yaml", "--batch-size", "5"],
            ("--batch-size 5 is larger than the data", "4 samples"),
        ),
        (["no-such-command"], ("no-such-command",)),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    args: list[str], words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2, err
    assert "Traceback" not in out + err
    for word in words:
        assert word.lower() in err.lower(), err


def _commands() -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


@pytest.mark.parametrize("command", _commands())
def test_every_command_reports_a_missing_file_without_a_traceback(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([command, "missing.yaml"], capsys)
    assert code in (0, 2), err
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("bpcalc: error: ") or "Usage" in err, err


@pytest.mark.parametrize("command", _commands())
def test_every_command_rejects_an_unknown_option_with_exit_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli([command, "--no-such-option"], capsys)
    assert code == 2, err
    assert "Traceback" not in out + err


def test_a_bug_is_one_line_and_exit_70_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc import engine

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(engine, "run", broken)
    monkeypatch.delenv("BPCALC_DEBUG", raising=False)
    code, out, err = run_cli(["step", "examples/example1.yaml"], capsys)
    assert code == 70
    assert "Traceback" not in out + err
    assert err.startswith("bpcalc: internal error (ZeroDivisionError: division by zero)"), err
    assert "please report" in err
    monkeypatch.setenv("BPCALC_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run(["step", "examples/example1.yaml"])


def test_debug_mode_still_reports_input_errors_by_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc.errors import SpecError

    path = tmp_path / "net.yaml"
    path.write_text("")
    monkeypatch.setenv("BPCALC_DEBUG", "1")
    with pytest.raises(SpecError):
        run(["step", str(path)])


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_reader_that_leaves_early_is_not_an_error(fmt: list[str]) -> None:
    # `bpcalc step net.yaml --steps 300 | head -c 10`: exit 0, nothing on stderr
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-c", "from bpcalc.cli import main; main()", "step"]
        + ["examples/example2.yaml", "--steps", "300", *fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0
    assert err == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_full_disk_is_an_error_message_not_an_internal_error(fmt: list[str]) -> None:
    import subprocess

    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-c", "from bpcalc.cli import main; main()", "step"]
            + ["examples/example2.yaml", *fmt],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 2
    assert proc.stderr == "bpcalc: error: No space left on device\n"


def test_running_out_of_memory_is_an_error_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc import engine

    def huge(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(engine, "run", huge)
    code, out, err = run_cli(["step", "examples/example1.yaml"], capsys)
    assert code == 2
    assert err == "bpcalc: error: out of memory: the network or its data is too large\n"


def test_messages_are_one_line_of_printable_text() -> None:
    from bpcalc.cli import one_line

    assert one_line("plain: é, ∂L/∂z, 漢字") == "plain: é, ∂L/∂z, 漢字"
    assert one_line("a\nb\tc\x1b[31md\u202e") == "a\\nb\\tc\\x1b[31md\\u202e"
