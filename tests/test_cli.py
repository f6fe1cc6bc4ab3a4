"""The command line: tables contain the values, JSON equals the engine's values, help and exit codes."""

from __future__ import annotations

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.cli import app
from bpcalc.network.parse import load_network
from tests.helpers import cli, strict_json

EXAMPLES = ["example1", "example2", "mlp_2_3_1", "scalar_quadratic", "scalar_linear"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_json_output_equals_the_engine_values(capsys, name):
    code, out, err = cli(capsys, "step", f"examples/{name}.yaml", "--json")
    assert code == 0, err
    doc = strict_json(out)
    assert doc["network"] and doc["conventions"]["loss"]
    trace = engine.run(load_network(f"examples/{name}.yaml"))
    values = doc["steps"][0]["values"]
    assert list(values) == [r.name for r in trace.steps[0]]
    for r in trace.steps[0]:
        np.testing.assert_array_equal(np.array(values[r.name]), r.value)


def test_format_json_is_the_same_as_json_flag(capsys):
    _, a, _ = cli(capsys, "step", "examples/example2.yaml", "--json")
    _, b, _ = cli(capsys, "step", "examples/example2.yaml", "--format", "json")
    assert a == b


def test_tables_show_every_stage_and_the_example1_numbers(capsys):
    code, out, err = cli(capsys, "step", "examples/example1.yaml")
    assert code == 0, err
    for title in ("Forward", "Loss", "Backward", "Update", "After update", "Conventions"):
        assert title in out
    # 4 significant digits: the loss 15.125 shows as 15.13; exact short decimals as they are
    for text in ("4.5", "15.13", "-5.5", "-16.5", "0.155", "1.555", "7.201", "half_sse"):
        assert text in out
    assert err == ""


def test_matrices_render_as_grids_one_row_per_line(capsys):
    _, out, _ = cli(capsys, "step", "examples/example1.yaml", "--only", "grad.conv.kernel")
    lines = [line for line in out.splitlines() if "-5.5" in line or "-16.5" in line]
    assert any("-11" in line for line in lines) and any("-22" in line for line in lines)
    assert not any("-5.5" in line and "-16.5" in line for line in lines)


def test_decimals_option_changes_the_rounding(capsys):
    _, out, _ = cli(capsys, "step", "examples/example2.yaml", "--only", "fc.a", "--decimals", "2")
    assert "0.37" in out and "0.3724" not in out
    _, out, _ = cli(capsys, "step", "examples/example2.yaml", "--only", "fc.a", "--decimals", "6")
    assert "0.372385" in out


def test_stage_and_only_filter_the_json_values(capsys):
    code, out, err = cli(capsys, "step", "examples/example2.yaml", "--json", "--stage", "update")
    assert code == 0, err
    names = list(strict_json(out)["steps"][0]["values"])
    assert names and all(n.startswith("new.") for n in names)
    _, out, _ = cli(capsys, "step", "examples/example2.yaml", "--json", "--only", "grad.conv.*")
    names = list(strict_json(out)["steps"][0]["values"])
    assert names == [
        "grad.conv.a",
        "grad.conv.z",
        "grad.conv.kernel",
        "grad.conv.bias",
        "grad.conv.input",
    ]


def test_large_tensors_are_summarised_unless_full(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 9)).round(3).tolist()
    net = tmp_path / "big.yaml"
    net.write_text(
        f"input: {[0.1] * 9}\ntarget: {[0.0] * 10}\nlayers:\n  - type: dense\n    weights: {w}\n"
        "loss: mse\nlearning_rate: 0.1\n"
    )
    _, out, _ = cli(capsys, "step", str(net), "--only", "dense1.weights")
    assert "10x9: min" in out and "corner" in out
    _, out, _ = cli(capsys, "step", str(net), "--only", "dense1.weights", "--full")
    assert "corner" not in out


def test_several_steps_show_each_step(capsys):
    code, out, err = cli(capsys, "step", "examples/scalar_quadratic.yaml", "--steps", "3", "--json")
    assert code == 0, err
    steps = strict_json(out)["steps"]
    # x: 2 → 2.4 → 2.72 → 2.976 (each step x ← x − 0.1·2(x − 4))
    assert [s["values"]["new.x.weights"] for s in steps] == pytest.approx([2.4, 2.72, 2.976])


def test_a_spec_error_exits_2_with_location_and_no_traceback(tmp_path, capsys):
    net = tmp_path / "bad.yaml"
    net.write_text(
        "input: [1, 2]\ntarget: [1]\nlayers:\n  - type: dense\n    weights: [[1, 2, 3]]\n"
        "loss: mse\nlearning_rate: 0.1\n"
    )
    code, out, err = cli(capsys, "step", str(net))
    assert code == 2
    assert out == ""
    assert f"{net}:5:14:" in err and "expects 3 inputs" in err
    assert "Traceback" not in err


def test_a_missing_file_exits_2(capsys):
    code, out, err = cli(capsys, "step", "no/such/file.yaml")
    assert code == 2 and "no such file" in err and out == ""


def test_an_unknown_option_is_a_usage_error_exit_2(capsys):
    code, _, err = cli(capsys, "step", "examples/example1.yaml", "--no-such-option")
    assert code == 2 and "no-such-option" in err


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_examples(capsys, command):
    code, out, err = cli(capsys, command, "--help")
    assert code == 0, err
    assert "Usage" in out and "Examples" in out


def test_version_and_top_level_help(capsys):
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("bpcalc ")
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "step" in out


def test_a_large_batch_shows_its_first_samples_unless_full(capsys):
    code, out, err = cli(capsys, "step", "examples/digits/mlp.yaml", "--only", "input")
    assert code == 0, err
    assert "sample 2:" in out and "sample 3:" not in out
    assert "1494 more samples (--full shows them all)" in out
    code, out, err = cli(capsys, "step", "examples/digits/mlp.yaml", "--only", "input", "--full")
    assert "sample 1496:" in out and "more samples" not in out


def test_a_long_vector_wraps_eight_numbers_a_line():
    from bpcalc.render.numbers import grid

    lines = grid(np.arange(20.0), 0).splitlines()
    assert len(lines) == 3  # 8 + 8 + 4
    assert len({len(line) for line in lines}) == 1  # every line as wide, for right alignment
    assert lines[0].strip("⎡⎤ ").split()[:2] == ["0", "1"] and lines[2].strip("⎣⎦ ").split() == [
        "16",
        "17",
        "18",
        "19",
    ]
