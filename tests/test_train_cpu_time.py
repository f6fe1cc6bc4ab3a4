"""`bpcalc train --json` gives each epoch's CPU time beside its elapsed time (the benchmark
reads it: on a shared machine CPU time is the steadier clock)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bpcalc import training
from bpcalc.cli import run

NET = """name: tiny
inputs: [[1.0, 0.5], [-1.0, -0.5], [0.5, 1.0], [-0.5, -1.0]]
targets: [1, 0, 1, 0]
layers:
  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1}, activation: softmax}
loss: cross_entropy
learning_rate: 0.5
"""


def test_each_epoch_line_has_the_cpu_seconds_spent_in_that_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a process clock that advances 0.25 s at each reading: an epoch reads it at its start
    # and at its end, so every epoch took 0.25 s of CPU
    ticks = itertools.count()
    monkeypatch.setattr(training.time, "process_time", lambda: 0.25 * next(ticks))
    net = tmp_path / "net.yaml"
    net.write_text(NET)
    assert run(["train", str(net), "--epochs", "3", "--batch-size", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["cpu_seconds"] for d in lines] == [0.25, 0.25, 0.25]
    assert all(d["seconds"] >= 0 for d in lines)
    assert list(lines[0]).index("cpu_seconds") == list(lines[0]).index("seconds") + 1
