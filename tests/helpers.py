"""Shared test helpers: build networks from Python data, finite differences, the CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bpcalc import engine
from bpcalc.network import NetworkSpec, parse_network
from bpcalc.network.yaml_source import load_yaml_text


def spec_from(data: dict[str, Any] | str, file: str = "test.yaml") -> NetworkSpec:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    return parse_network(load_yaml_text(text, file))


def values(data: dict[str, Any] | str, **kwargs: Any) -> dict[str, np.ndarray]:
    trace = engine.run(spec_from(data), **kwargs)
    return {r.name: r.value for r in trace.steps[0]}


def loss_of(spec: NetworkSpec, params: engine.Params, x: np.ndarray) -> float:
    layers = [engine.build_layer(s) for s in spec.layers]
    fwd = engine.forward(layers, params, x)
    loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, spec.targets)
    return loss


def analytic_grads(spec: NetworkSpec) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """(∂L/∂θ per layer and parameter, ∂L/∂x) from the engine's backward pass."""
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec)
    captured: dict[str, np.ndarray] = {}

    def emit(name: str, arr: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        captured[name] = arr
        return arr

    fwd = engine.forward(layers, params, spec.inputs)
    grads = engine.backward(spec, layers, params, fwd, spec.targets, emit)
    return grads, captured[f"grad.{layers[0].name}.input"]


def numeric_grad(f: Any, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences, five-point stencil (error O(h⁴)) for every element of x:
    f′ ≈ (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h. x is changed in place and restored."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        fs = []
        for step in (2, 1, -1, -2):
            x[idx] = old + step * h
            fs.append(f())
        x[idx] = old
        g[idx] = (-fs[0] + 8 * fs[1] - 8 * fs[2] + fs[3]) / (12 * h)
    return g


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / (|a| + |b|), with a floor of 1e-3·max(1, max|a|) under the denominator so
    that a gradient of exactly 0 against finite-difference noise of 1e-10 does not count."""
    floor = 1e-3 * max(1.0, float(np.max(np.abs(a), initial=0.0)))
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b)), initial=0.0))


def check_gradients(spec: NetworkSpec, tol: float = 1e-6) -> None:
    """Every parameter's and the input's gradient against central finite differences."""
    grads, dx = analytic_grads(spec)
    params = engine.initial_params(spec)
    x = spec.inputs.copy()
    for layer, pg in grads.items():
        for pname, g in pg.items():
            num = numeric_grad(lambda: loss_of(spec, params, x), params[layer][pname])
            err = rel_error(g, num)
            assert err < tol, f"∂L/∂{layer}.{pname}: relative error {err:.2e}\n{g}\n{num}"
    num = numeric_grad(lambda: loss_of(spec, params, x), x)
    err = rel_error(dx, num)
    assert err < tol, f"∂L/∂input: relative error {err:.2e}\n{dx}\n{num}"


def write_net(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    """Write a network (or data) file into tmp_path; returns its path."""
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    from bpcalc.cli import run

    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def strict_json(text: str) -> Any:
    def reject(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)
