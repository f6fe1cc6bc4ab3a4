"""Running an exported script in this process, and comparing two JSON documents."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

RTOL = 1e-10
_count = itertools.count()


def need_torch() -> Any:
    """torch, or a skip of the calling test module (an error under BPCALC_TORCH_TESTS=require)."""
    if os.environ.get("BPCALC_TORCH_TESTS") == "require":
        import torch

        return torch
    return pytest.importorskip(
        "torch", reason="PyTorch is not installed; docs/export.md says how to run this group"
    )


def load_script(path: Path) -> Any:
    """The exported script as a module (torch is imported once for all of them)."""
    name = f"exported_{next(_count)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def run_script(path: Path, *argv: str) -> str:
    """What `python path argv...` prints, run in this process."""
    module = load_script(path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert module.main([*argv, "--device", "cpu"]) == 0
    return out.getvalue()


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two documents differ: keys (and their order), types, shapes, and numbers beyond
    RTOL relative. An element is close when |a − b| ≤ RTOL·max(|a|, |b|) + 1e-12·max(1, m), m
    the largest magnitude in that value: an element that cancels to about 0 (a shared bias's
    gradient Σ(p − y), a new weight θ − η·g) has rounding errors of the size of its terms, not
    of itself. The networks' numbers are of order 1."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {type(got).__name__} where bpcalc has a mapping"]
        if list(got) != list(want):
            extra, missing = set(got) - set(want), set(want) - set(got)
            return [
                f"{path}: keys differ: extra {sorted(extra)}, missing {sorted(missing)}"
                + ("" if extra or missing else " (order)")
            ]
        return [d for k in want for d in differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and want and isinstance(want[0], dict):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {len(got)} entries where bpcalc has {len(want)}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in differences(g, w, f"{path}[{i}]")
        ]
    if isinstance(want, str) or isinstance(want, bool) or want is None:
        return [] if got == want else [f"{path}: {got!r} != {want!r}"]
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if g.shape != w.shape:
        return [f"{path}: shape {g.shape} where bpcalc has {w.shape}"]
    if isinstance(got, list) != isinstance(want, list):
        return [f"{path}: {got!r} where bpcalc has {want!r}"]
    scale = max(float(np.abs(w).max(initial=0)), float(np.abs(g).max(initial=0)))
    bad = np.abs(g - w) > RTOL * np.maximum(np.abs(g), np.abs(w)) + 1e-12 * max(1.0, scale)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        return [f"{path}{list(i) if i else ''}: {g[i]!r} where bpcalc has {w[i]!r}"]
    return []


def bpcalc_step(spec: Any, steps: int) -> dict[str, Any]:
    """bpcalc step --json's document for this spec."""
    from bpcalc import engine
    from bpcalc.render import json_doc

    return json.loads(json_doc.dumps(json_doc.document(engine.run(spec, steps=steps))))
