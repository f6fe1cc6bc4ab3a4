"""The JSON writer: strict JSON, every float64 read back bit for bit, the document's keys in
the trace's order, objects a member a line and each value on the line of its key."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.network.parse import load_network
from bpcalc.render import json_doc
from tests.helpers import cli, strict_json


def _bits(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.int64)


def test_every_finite_float64_reads_back_to_the_same_bits() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64).view(np.float64)
    edges = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1]
    a = np.concatenate([edges, a[np.isfinite(a)]])
    a = a[: a.size // 2 * 2].reshape(-1, 2)[:, ::-1]  # not C-contiguous either
    text = json_doc.dumps({"a": a, "scalar": np.float64(edges[3]), "zero_d": np.array(-0.0)})
    doc = json.loads(text)
    assert (_bits(doc["a"]) == _bits(a)).all()
    assert _bits(doc["scalar"]) == _bits(edges[3])
    assert _bits(doc["zero_d"]) == _bits(-0.0)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1.0, np.nan]),
        np.array([[np.inf]]),
        np.array(-np.inf),
        float("nan"),
        [1.0, [2.0, float("inf")]],
        np.float32("nan"),
    ],
)
def test_nan_and_infinity_are_refused_rather_than_written_as_null(bad: object) -> None:
    with pytest.raises(ValueError, match="strict JSON"):
        json_doc.dumps({"values": {"x": bad}})


def test_float32_values_are_written_as_the_float64_of_the_same_number() -> None:
    third = np.float32(1) / np.float32(3)
    doc = json.loads(json_doc.dumps({"a": np.array([third]), "b": [third], "c": third}))
    # float32's own shortest text, 0.33333334, would read back as another float64
    assert doc["a"] == doc["b"] == [float(third)] and doc["c"] == float(third)


def test_objects_are_a_member_a_line_and_each_value_stays_on_its_key_line() -> None:
    doc = {"n": 1, "m": {"x": np.array([[1.0, 2.0], [3.0, 4.0]]), "e": {}}, "l": [{"k": "é"}]}
    assert json_doc.dumps(doc) == (
        "{\n"
        '  "n": 1,\n'
        '  "m": {\n'
        '    "x": [[1.0,2.0],[3.0,4.0]],\n'
        '    "e": {}\n'
        "  },\n"
        '  "l": [\n'
        "    {\n"
        '      "k": "é"\n'
        "    }\n"
        "  ]\n"
        "}"
    )
    out = io.StringIO()
    json_doc.write(doc, out)
    assert out.getvalue() == json_doc.dumps(doc) + "\n"


def test_keys_that_are_not_text_are_refused() -> None:
    with pytest.raises(TypeError, match="text"):
        json_doc.dumps({1: 2})


BATCH_CNN = """\
name: batch cnn
inputs: {file: data.npz, key: x}
targets: {file: data.npz, key: y}
layers:
  - name: conv
    type: conv2d
    out_channels: 3
    kernel_size: 3
    init: {type: he, seed: 0}
    activation: relu
  - name: pool
    type: maxpool2d
    size: 2
  - type: flatten
  - name: fc
    type: dense
    units: 4
    init: {type: xavier, seed: 1}
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


def test_a_batch_cnn_step_in_json_is_every_trace_value_bit_for_bit_in_trace_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "data.npz", x=rng.random((5, 1, 8, 8)), y=rng.integers(0, 4, 5))
    (tmp_path / "net.yaml").write_text(BATCH_CNN)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "step", "net.yaml", "--json", "--steps", "2")
    assert code == 0, err
    doc = strict_json(out)
    trace = engine.run(load_network("net.yaml"), steps=2)
    assert [s["step"] for s in doc["steps"]] == [1, 2]
    for st, entry in zip(trace.steps, doc["steps"], strict=True):
        assert list(entry["values"]) == [r.name for r in st]
        for r in st:
            got = np.asarray(entry["values"][r.name], dtype=np.float64)
            assert got.shape == r.value.shape, r.name
            assert (_bits(got) == _bits(r.value)).all(), r.name
    # one line per value: the biggest array, the conv's z of 5 × 3 × 6 × 6, is one line
    assert any(line.startswith('        "conv.z": [[[[') for line in out.splitlines())
