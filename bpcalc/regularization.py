"""Weight penalties added to the loss: the convention, the penalty and its gradient.

  L = L_data + Σ_layers [ (λ₂/2) · Σ θ²  +  λ₁ · Σ |θ| ]
  ∂L/∂θ = ∂L_data/∂θ + λ₂ · θ + λ₁ · sign(θ)         (sign(0) = 0, a subgradient)

over each layer's weights (dense) or kernel (conv2d), and its bias too with include_bias.
The ½ makes λ₂ the same number as PyTorch's weight_decay for plain SGD (its gradient is
λ₂·θ); books that write λ·Σθ² (gradient 2λθ) use half this λ. The penalty is added once
per step, whatever the batch size and the batch reduction (it is not divided by N).
Batchnorm's γ and β are not penalised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bpcalc.network.types import RegSpec
from bpcalc.substeps import Radius, term

Array = np.ndarray
WEIGHTS = ("weights", "kernel")

CONVENTION = (
    "L = L_data + (λ₂/2)·Σθ² + λ₁·Σ|θ|, so ∂L/∂θ gets + λ₂·θ + λ₁·sign(θ) (sign(0) = 0); "
    "λ₂ equals PyTorch's weight_decay; added once per step, not divided by the batch size"
)


def applies(reg: RegSpec | None, param: str) -> bool:
    """Whether the penalty covers this parameter: weights and kernels, biases when asked."""
    if reg is None or not reg.active:
        return False
    return param in WEIGHTS or (reg.include_bias and param == "bias")


def penalty(regs: Mapping[str, RegSpec], params: Mapping[str, Mapping[str, Array]]) -> float:
    """Σ over the penalised parameters of (λ₂/2)·Σθ² + λ₁·Σ|θ|."""
    total = 0.0
    for layer, reg in regs.items():
        for pname, theta in params.get(layer, {}).items():
            if applies(reg, pname):
                total += 0.5 * reg.l2 * float(np.sum(theta * theta))
                total += reg.l1 * float(np.sum(np.abs(theta)))
    return total


def grad(reg: RegSpec, theta: Array) -> Array:
    """∂penalty/∂θ = λ₂·θ + λ₁·sign(θ)."""
    return reg.l2 * theta + reg.l1 * np.sign(theta)


def grad_formula(reg: RegSpec, symbol: str) -> str:
    terms = []
    if reg.l2:
        terms.append(f"{reg.l2:g}·{symbol}")
    if reg.l1:
        terms.append(f"{reg.l1:g}·sign({symbol})")
    return " + ".join(terms)


def penalty_formula(regs: Mapping[str, RegSpec]) -> str:
    parts = []
    for layer, reg in regs.items():
        scope = f"{layer}'s weights" + (" and bias" if reg.include_bias else "")
        if reg.l2:
            parts.append(f"({reg.l2:g}/2)·Σθ² over {scope}")
        if reg.l1:
            parts.append(f"{reg.l1:g}·Σ|θ| over {scope}")
    return " + ".join(parts)


def describe(regs: Mapping[str, RegSpec]) -> str:
    """The conventions line: the rule and which layers it covers."""
    per = "; ".join(
        f"{layer}: λ₂ = {reg.l2:g}, λ₁ = {reg.l1:g}"
        + (", biases included" if reg.include_bias else ", biases not penalised")
        for layer, reg in regs.items()
    )
    return f"{CONVENTION}. {per}"


def penalty_substeps(
    regs: Mapping[str, RegSpec], params: Mapping[str, Mapping[str, Array]], radius: Radius
) -> float:
    """Σ_s |∂penalty/∂s|·radius(s) (bpcalc/substeps.py): each θ² (∂ = λ₂/2) when there are
    several, and each part (λ₂/2)·Σθ², λ₁·Σ|θ| when added to another."""
    total = 0.0
    parts = []
    for layer, reg in regs.items():
        for pname, theta in params.get(layer, {}).items():
            if applies(reg, pname):
                squares = theta * theta
                if reg.l2 and theta.size > 1:
                    total += 0.5 * reg.l2 * float(np.sum(radius(squares)))
                if reg.l2:
                    parts.append(0.5 * reg.l2 * float(np.sum(squares)))
                if reg.l1:
                    parts.append(reg.l1 * float(np.sum(np.abs(theta))))
    if len(parts) > 1:
        total += float(np.sum(radius(np.asarray(parts))))
    return total


def grad_substeps(reg: RegSpec, theta: Array, radius: Radius) -> Array:
    """λ₂·θ + λ₁·sign(θ): the product λ₂·θ is a sub-step when both are there."""
    if not (reg.l2 and reg.l1):
        return np.zeros(theta.shape)
    return term(1.0, reg.l2 * theta, radius)
