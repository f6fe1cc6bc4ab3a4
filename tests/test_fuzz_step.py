"""Fuzz bpcalc step and train with mutated copies of the shipped examples: whatever the
YAML, bpcalc exits 0 or 2, never with a traceback, every error names a place in the file,
and JSON is strict. An internal error (exit 70) is a failure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import EXAMPLE_FILES, mutate_data, mutate_text, run_cli
from tests.helpers import strict_json

DATA_NETS = [
    """\
name: data references
inputs: {file: data.npz, key: x, scale: 4, flatten: true, limit: 5}
targets: {file: data.npz, key: y, one_hot: 3, limit: 5}
layers:
  - name: fc
    type: dense
    weights: [[0.1, 0.2, 0.3, 0.4], [0.0, -0.1, 0.2, 0.1], [0.3, 0.1, -0.2, 0.0]]
    activation: softmax
loss: cross_entropy
learning_rate: 0.5
""",
    """\
name: csv references
inputs: {file: data.csv, columns: [0, 1, 2, 3], normalize: {mean: 2, std: 1.5}}
targets: {file: data.csv, columns: [4], scale: 4}
layers:
  - name: fc
    type: dense
    weights: [[0.1, 0.2, 0.3, 0.4]]
    activation: sigmoid
loss: mse
learning_rate: 0.5
""",
]


EXAMPLES = [p.read_text(encoding="utf-8") for p in EXAMPLE_FILES] + DATA_NETS


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    text = draw(st.sampled_from(EXAMPLES))
    structural = draw(st.booleans())
    if structural:  # mutations of the data, written back as YAML
        data = yaml.safe_load(text)
        for _ in range(draw(st.integers(1, 3))):
            data = draw(mutate_data(data))
        text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([None, True, False])))
    for _ in range(draw(st.integers(0 if structural else 1, 2))):  # mutations of the text
        text = draw(mutate_text(text))
    # the file: a network file in `workdir`, or standard input (1 case in 4) like a file
    net = "-" if draw(st.integers(0, 3)) == 0 else "{net}"
    if draw(st.integers(0, 4)) == 0:  # 1 case in 5 trains instead
        args = ["train", net, "--epochs", str(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            args.append("--json")
        if draw(st.booleans()):
            args += ["--batch-size", str(draw(st.integers(1, 5)))]
        if draw(st.booleans()):
            args += ["--dtype", draw(st.sampled_from(["float32", "float64"]))]
        if draw(st.integers(0, 3)) == 0:
            args += ["--lr", str(draw(st.sampled_from([1e-3, 0.5, 10.0, 1e30])))]
        return text.encode("utf-8", errors="surrogatepass"), args
    args = ["step", net]
    # tables and write-ups take 5 times as long as JSON: 4 cases in 10
    fmt = draw(st.sampled_from(["json"] * 6 + ["table", "table", "markdown", "latex"]))
    args += ["--json"] if fmt == "json" else ["--format", fmt]
    if draw(st.integers(0, 7)) == 0:
        args += ["--explain", draw(st.sampled_from(["all", "none", "grad.*", "loss", "*.z[0]"]))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--steps", str(draw(st.integers(2, 4)))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--round-each", str(draw(st.integers(0, 6)))]
    if draw(st.integers(0, 5)) == 0:
        args += ["--mode", draw(st.sampled_from(["batch", "sgd", "minibatch"]))]
    if draw(st.integers(0, 5)) == 0:
        args += ["--batch-size", str(draw(st.integers(1, 5)))]
    if draw(st.integers(0, 7)) == 0:
        args.append("--summary")
    return text.encode("utf-8", errors="surrogatepass"), args


# an input error names its place; an option that does not fit (the data) names the option
LOCATED = re.compile(r"bpcalc: error: ((<stdin>|\S+\.yaml):\d+:\d+: \S|--[a-z-]+\b)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the fuzzed network file, with the data files DATA_NETS read."""
    import numpy as np

    d = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x=rng.integers(0, 5, (6, 2, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    rows = rng.integers(0, 5, (6, 5))
    (d / "data.csv").write_text("a,b,c,d,t\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return d


@pytest.mark.slow
@settings(
    # 2,000 in CI; BPCALC_FUZZ_EXAMPLES=20000 for a longer hunt
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_mutated_examples_exit_0_or_2_with_a_located_message_and_no_traceback(
    workdir: Path, case: tuple[bytes, list[str]]
) -> None:
    raw, args = case
    code, out, err = run_cli(raw, args, workdir)
    event(f"exit {code}")  # shown by pytest --hypothesis-show-statistics
    assert code in (0, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if args[0] == "train" and "--json" in args:  # one JSON line per epoch, even before an error
        for line in out.splitlines():
            strict_json(line)
    if code == 2:
        assert out == "" or args[0] == "train"  # train has shown the epochs before the error
        *warnings, error = err.strip().splitlines()  # warnings may come before the error
        assert LOCATED.match(error), err
        assert all(line.startswith("bpcalc: warning: ") for line in warnings), err
    else:
        assert all(line.startswith("bpcalc: warning: ") for line in err.splitlines()), err
        if "--json" in args and args[0] == "step":
            strict_json(out)
