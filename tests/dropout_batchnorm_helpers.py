"""Shared by the dropout and batchnorm tests: finite-difference checks of a network's
parameters and of one layer's backward pass."""

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text
from tests.helpers import numeric_grad


def near(v, **kw):
    return pytest.approx(np.array(v, dtype=float), **kw)


def spec_of(text: str):
    return parse_network(load_yaml_text(text, "net.yaml"))


def total_loss(spec, params, samples=None) -> float:
    layers = [engine.build_layer(s) for s in spec.layers]
    idx = np.arange(spec.inputs.shape[0]) if samples is None else np.asarray(samples)
    engine.begin_step(layers, idx)
    fwd = engine.forward(layers, params, spec.inputs[idx])
    loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, spec.targets[idx])
    return loss


def fd_check(spec, step) -> int:
    """Every parameter's gradient against central differences (float64); returns how many."""
    params = engine.initial_params(spec)
    h, checked = 1e-6, 0
    for layer, ps in params.items():
        for pname, theta in ps.items():
            if f"grad.{layer}.{pname}" not in step:
                continue
            got = np.asarray(step[f"grad.{layer}.{pname}"]).reshape(theta.shape)
            num = np.zeros_like(theta)
            for i in np.ndindex(theta.shape):
                old = theta[i]
                theta[i] = old + h
                up = total_loss(spec, params)
                theta[i] = old - h
                down = total_loss(spec, params)
                theta[i] = old
                num[i] = (up - down) / (2 * h)
            err = np.abs(got - num).max() / max(np.abs(num).max(), 1e-8)
            assert err < 1e-6, (layer, pname, got, num)
            checked += 1
    return checked


def op_fd(forward, x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """∂(Σ r ⊙ forward(x))/∂x by central differences (five-point stencil, tests.helpers)."""
    return numeric_grad(lambda: float((r * forward(x)).sum()), x)


def rel_err(got: np.ndarray, num: np.ndarray) -> float:
    return float(np.abs(got - num).max() / max(np.abs(num).max(), 1e-8))
