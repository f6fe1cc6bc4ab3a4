"""The training loop's forward, loss and backward: the engine's maths with nothing recorded.

`bpcalc train` runs thousands of steps and shows none of their values, so this pass leaves out
what `engine.forward` / `engine.backward` do for the trace: value names, formulas, shown shapes
and the emitter calls. Each layer's op, activation, parameter names and regularization are
looked up once, when the pass is built, and a step only calls the ops. The numbers come from
the same ops and loss functions in the same order as `engine.run`'s, so a step gives the same
bits (tests/test_trainpass.py checks that on random networks). Two things are spared:

- with softmax and cross-entropy, the output's softmax and the loss's log-softmax come from one
  shifted exponential (`activations.softmax_and_log`, the same operations as the two apart);
- no backward pass below the first layer with parameters: nobody reads ∂L/∂x there.

    tp = TrainPass(spec, layers)
    loss, fwd, grads = tp.run(params, xb, yb)   # L (as loss.reduction says), caches, ∂L/∂θ
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc import activations, losses
from bpcalc import regularization as reg_mod
from bpcalc.engine import ForwardResult, Layer, Params
from bpcalc.network.types import NetworkSpec, RegSpec

Array = np.ndarray
_NONE: dict[str, Array] = {}


@dataclass(frozen=True)
class _Planned:
    """One layer as the pass runs it (everything the engine looks up per step, looked up once)."""

    name: str
    forward: Any  # op.forward, or None for an activation layer
    backward: Any  # op.backward, or None
    param_grads: Any  # op.param_grads (skips ∂L/∂x) or None
    act: activations.Activation | None
    parametric: bool
    params: tuple[tuple[str, RegSpec | None], ...]  # (name, its penalty if one applies)


class TrainPass:
    """forward / loss / backward of one training step, for a network and its built layers."""

    def __init__(self, spec: NetworkSpec, layers: list[Layer]) -> None:
        self.kind = spec.loss.kind
        self.reduction = spec.loss.reduction
        self.fused = losses.FUSED.get(self.kind) == spec.output_activation
        # softmax output and cross-entropy: the softmax and the log-softmax from one exponential
        self.shared_log = self.fused and self.kind == "cross_entropy"
        self.plan: list[_Planned] = []
        for layer in layers:
            op, act = layer.op, layer.act
            reg = spec.regularization.get(layer.name)
            self.plan.append(
                _Planned(
                    layer.name,
                    op.forward if op is not None else None,
                    op.backward if op is not None else None,
                    getattr(op, "param_grads", None),
                    act,
                    layer.parametric,
                    tuple((p, reg if reg_mod.applies(reg, p) else None) for p in layer.param_names),
                )
            )
        parametric = [i for i, lp in enumerate(self.plan) if lp.parametric]
        self.first = parametric[0] if parametric else len(self.plan)

    def forward(self, params: Params, x: Array) -> tuple[ForwardResult, Array | None]:
        """engine.forward(layers, params, x) without emitting; also the output's log-softmax
        when it is shared with the loss (else None)."""
        caches: list[Any] = []
        z_out = logp = None
        last = len(self.plan) - 1
        for i, lp in enumerate(self.plan):
            if lp.forward is not None:
                z, cache = lp.forward(x, params.get(lp.name, _NONE))
            else:
                z, cache = x, None
            if lp.act is None:
                a = z
            elif i == last and self.shared_log:
                flat = z.reshape(z.shape[0], -1)
                p, logp = activations.softmax_and_log(flat)
                a = p.reshape(z.shape)
            else:
                a = lp.act.forward(z)
            caches.append((cache, z, a))
            z_out = z if lp.act is not None else None
            x = a
        return ForwardResult(x, z_out, caches), logp

    def loss(self, fwd: ForwardResult, logp: Array | None, y: Array) -> float:
        """engine.loss_value's L: from the shared log-softmax, or through losses.per_sample."""
        if logp is not None:
            per = losses.cross_entropy_from_log(logp, y.reshape(y.shape[0], -1))
        else:
            per = losses.per_sample(self.kind, fwd.out, y, fwd.z_out if self.fused else None)
        return losses.reduce(self.reduction, per)

    def backward(self, params: Params, fwd: ForwardResult, y: Array) -> dict[str, dict[str, Array]]:
        """engine.backward(..., input_grad=False) without emitting: ∂L/∂θ of every parameter
        (layers without parameters have no entry)."""
        scale = losses.batch_scale(self.reduction, y.shape[0])
        last = len(self.plan) - 1
        da = None
        if not self.fused:
            da = losses.grad_a(self.kind, fwd.out, y)
            if scale != 1.0:
                da *= scale  # the engine's `grad_a(...) * scale`, without a new array
        grads: dict[str, dict[str, Array]] = {}
        for i in range(last, self.first - 1, -1):
            lp = self.plan[i]
            cache, z, a = fwd.caches[i]
            if lp.act is None:
                dz = da
            elif i == last and self.fused:
                dz = losses.fused_grad_z(self.kind, a, y)
                if scale != 1.0:
                    dz *= scale
            else:
                dz = lp.act.backward(da, z, a)
            if lp.forward is None:  # an activation layer: ∂L/∂x is its ∂L/∂z
                da = dz
                continue
            p = params.get(lp.name, _NONE)
            if i == self.first and lp.param_grads is not None:
                dx, pgrads = None, lp.param_grads(dz, cache, p)
            else:
                dx, pgrads = lp.backward(dz, cache, p)
            if lp.params:
                mine = grads[lp.name] = {}
                for pname, reg in lp.params:
                    g = pgrads[pname]
                    if reg is not None:  # ∂L/∂θ = ∂L_data/∂θ + ∂penalty/∂θ
                        g = g + reg_mod.grad(reg, p[pname])
                    mine[pname] = g
            da = dx
        return grads

    def run(
        self, params: Params, x: Array, y: Array
    ) -> tuple[float, ForwardResult, dict[str, dict[str, Array]]]:
        """(L, the forward pass, ∂L/∂θ) of one step on the batch x, y."""
        fwd, logp = self.forward(params, x)
        loss = self.loss(fwd, logp, y)
        return loss, fwd, self.backward(params, fwd, y)
