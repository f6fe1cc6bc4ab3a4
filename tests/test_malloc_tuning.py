"""`bpcalc train` keeps the C heap from step to step (glibc): arrays of a few MB made and
freed every step stop costing page faults. Counted with getrusage in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bpcalc import malloc_tuning
from bpcalc.cli import run

on_glibc = pytest.mark.skipif(not malloc_tuning.glibc(), reason="mallopt is glibc's")

# six 1.6 MB arrays written and freed, as a training step does with its temporaries
_STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from bpcalc.malloc_tuning import keep_freed_memory
    assert keep_freed_memory()
def step():
    arrays = [np.ones(200_000) for _ in range(6)]
    return sum(float(a[0]) for a in arrays)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def _faults_per_step(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@on_glibc
def test_with_the_heap_kept_a_repeated_step_no_longer_faults_in_fresh_pages() -> None:
    # glibc's defaults: each step's 9.6 MB is fetched from the kernel again, 4 KiB a fault
    assert _faults_per_step("plain") > 1000
    assert _faults_per_step("tuned") < 10


def test_without_glibc_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(name: str) -> str:
        raise ValueError(name)

    monkeypatch.setattr(malloc_tuning.os, "confstr", no_such_name)
    assert malloc_tuning.glibc() is False
    assert malloc_tuning.keep_freed_memory() is False


def test_bpcalc_train_keeps_the_heap_and_bpcalc_step_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(malloc_tuning, "keep_freed_memory", lambda: calls.append("set") or True)
    net = tmp_path / "net.yaml"
    net.write_text(
        "inputs: [[1.0, 0.5], [-1.0, -0.5]]\ntargets: [1, 0]\nlayers:\n"
        "  - {name: out, type: dense, units: 2, init: {type: normal, std: 0.5, seed: 1},"
        " activation: softmax}\nloss: cross_entropy\nlearning_rate: 0.5\n"
    )
    assert run(["step", str(net), "--json"]) == 0
    assert calls == []
    assert run(["train", str(net), "--epochs", "2", "--json"]) == 0
    assert calls == ["set"]
    capsys.readouterr()
