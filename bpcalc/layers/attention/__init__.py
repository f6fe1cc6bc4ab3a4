"""Scaled dot-product self-attention over a sequence X (T, d), one head or several, as
torch.nn.functional.scaled_dot_product_attention and torch.nn.MultiheadAttention:

  q = X·W_qᵀ + b_q,  k = X·W_kᵀ + b_k,  v = X·W_vᵀ + b_v      (one row per position)
  scores = q·kᵀ · scale, scale = 1/√d_k                        (T x T: query t, key s)
  weights = softmax of each row of scores                     (over the keys s; causal: the
            keys s > t masked, their weights exactly 0; a mask: its 0s likewise)
  context = weights · v                                        (T x d_v)
  a = context·W_oᵀ + b_o    (or a = context without weights_o)
With heads h, q, k and v are split into h column blocks of d_k = D_k/h (d_v = D_v/h): each
head attends on its own, and the heads' contexts are put side by side (as nn.MultiheadAttention,
whose scale is 1/√(head dim)). W_q, W_k: (D_k, d); W_v: (D_v, d); W_o: (D_out, D_v).

Backward, with g = ∂L/∂a:
  ∂L/∂context = g·W_o (or g);   ∂L/∂weights = ∂L/∂context·vᵀ;   ∂L/∂v = weightsᵀ·∂L/∂context
  ∂L/∂scores_ts = w_ts (∂L/∂w_ts − Σ_s′ w_ts′ ∂L/∂w_ts′)   (each row's softmax; 0 where masked)
  ∂L/∂q = ∂L/∂scores·k·scale;   ∂L/∂k = ∂L/∂scoresᵀ·q·scale
  ∂L/∂W_q = Σ ∂L/∂qᵀ·X (over positions and samples), likewise W_k, W_v, W_o; biases: Σ rows
  ∂L/∂X = ∂L/∂q·W_q + ∂L/∂k·W_k + ∂L/∂v·W_v     (X feeds all three)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpcalc.errors import SpecError
from bpcalc.layers import UNRECORDED, Layer, LayerSlip, Scope
from bpcalc.layers.attention.spec import AttentionSpec
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

Array = np.ndarray


@dataclass(frozen=True)
class AttentionCache:
    x: Array  # (N, T, d)
    q: Array  # (N, h, T, d_k), each head's block
    k: Array  # (N, h, T, d_k)
    v: Array  # (N, h, T, d_v)
    scores: Array  # (N, h, T, T)
    weights: Array  # (N, h, T, T), 0 where masked
    context: Array  # (N, T, D_v), the heads side by side


def _split(m: Array, heads: int) -> Array:
    """(N, T, D) -> (N, h, T, D/h): column block j of D is head j."""
    n, t, d = m.shape
    return m.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)


def _merge(m: Array) -> Array:
    """(N, h, T, D/h) -> (N, T, D), the inverse of _split."""
    n, h, t, d = m.shape
    return m.transpose(0, 2, 1, 3).reshape(n, t, h * d)


class Attention(Layer):
    """Self-attention; its parameters are named as the YAML keys (weights_q, …)."""

    types = ("attention",)
    parametric = True
    pre_activation = False

    def __init__(self, spec: Any, columns: bool = False) -> None:
        self.spec = spec
        self.param_names = tuple(spec.params)
        self.heads = spec.heads
        self.d_k = spec.weights_q.shape[0] // spec.heads
        self.scale = spec.scale if spec.scale is not None else 1.0 / math.sqrt(self.d_k)
        t_count = spec.in_shape[0]
        allowed = np.ones((t_count, t_count), dtype=bool)
        if spec.causal:
            allowed &= np.tril(allowed)
        if spec.mask is not None:
            allowed &= spec.mask.astype(bool)
        self.allowed = allowed  # (T, T): key s visible to query t
        self.columns = columns  # the slip: softmax over each column (the queries) instead

    @classmethod
    def from_spec(cls, spec: Any) -> Attention:
        return cls(spec)

    def _proj(self, x: Array, params: dict[str, Array], which: str) -> Array:
        out = x @ params[f"weights_{which}"].T
        b = params.get(f"bias_{which}")
        return out + b if b is not None else out

    def _softmax(self, scores: Array) -> Array:
        """Each row's softmax over its allowed keys (each column's, for the slip); masked
        entries exactly 0."""
        axis = -2 if self.columns else -1
        s = np.where(self.allowed, scores, -np.inf)
        e = np.exp(s - s.max(axis=axis, keepdims=True))
        e = np.where(self.allowed, e, 0.0)
        return e / e.sum(axis=axis, keepdims=True)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, AttentionCache]:
        """X: (N, T, d) -> a: (N, T, D_out)."""
        return self.forward_with(x, params, UNRECORDED)

    def forward_with(
        self, x: Array, params: dict[str, Array], scope: Scope
    ) -> tuple[Array, AttentionCache]:
        """The forward pass, each named value recorded as it is made; the next goes on with
        the recorded one (a student's, where the checker gives one)."""
        h, (n, t_count, _) = self.heads, x.shape
        sq = self._score_shape(t_count)

        def proj(which: str) -> Array:
            m = self._proj(x, params, which)
            return _split(scope.record(which, m, self._proj_formula(which), shape=m.shape[1:]), h)

        q, k, v = proj("q"), proj("k"), proj("v")
        scores = (q @ k.transpose(0, 1, 3, 2)) * self.scale
        scores = scope.record(
            "scores",
            scores.reshape(n, *sq),
            f"scores = q·kᵀ · {self._scale_text()} (query t, key s)" + self._per_head(),
            shape=sq,
        ).reshape(scores.shape)
        weights = self._softmax(scores)
        weights = scope.record(
            "weights", weights.reshape(n, *sq), self._weights_formula(), shape=sq
        ).reshape(weights.shape)
        context = _merge(weights @ v)
        context = scope.record(
            "context",
            context,
            "context = weights · v"
            + (" (the heads' contexts side by side)" if self.heads > 1 else ""),
            shape=context.shape[1:],
        )
        a = self._proj(context, params, "o") if "weights_o" in params else context
        return a, AttentionCache(x, q, k, v, scores, weights, context)

    def backward_with(
        self, da: Array, c: AttentionCache, params: dict[str, Array], scope: Scope
    ) -> tuple[Array | None, dict[str, Array]]:
        """Back through the output projection, the mix of the values, each row's softmax and
        the three projections; each gradient recorded as it is made (see the module
        docstring)."""
        h, (n, t_count, _) = self.heads, c.x.shape
        sq = self._score_shape(t_count)
        grads: dict[str, Array] = {}
        x2 = c.x.reshape(-1, c.x.shape[-1])
        if "weights_o" in params:
            da2 = da.reshape(-1, da.shape[-1])
            grads["weights_o"] = da2.T @ c.context.reshape(-1, c.context.shape[-1])
            if "bias_o" in params:
                grads["bias_o"] = np.add.reduce(da2, axis=0)
            dcontext = da @ params["weights_o"]
            dcontext = scope.record(
                "context", dcontext, "∂L/∂context = ∂L/∂a · W_o", shape=dcontext.shape[1:]
            )
        else:
            dcontext = da
        dctx = _split(dcontext, h)
        dweights = dctx @ c.v.transpose(0, 1, 3, 2)
        dweights = scope.record(
            "weights",
            dweights.reshape(n, *sq),
            "∂L/∂weights = ∂L/∂context · vᵀ" + self._per_head(),
            shape=sq,
        ).reshape(dweights.shape)
        axis = -2 if self.columns else -1
        dscores = c.weights * (dweights - (dweights * c.weights).sum(axis=axis, keepdims=True))
        rows = "each column's" if self.columns else "each row's"
        dscores = scope.record(
            "scores",
            dscores.reshape(n, *sq),
            f"∂L/∂scores_ts = w_ts·(∂L/∂w_ts − Σ_s′ w_ts′·∂L/∂w_ts′) ({rows} softmax; 0 where "
            "masked)",
            shape=sq,
        ).reshape(dscores.shape)
        scale = self._scale_text()
        formulas = {
            "q": f"∂L/∂q = ∂L/∂scores · k · {scale}",
            "k": f"∂L/∂k = ∂L/∂scoresᵀ · q · {scale}",
            "v": "∂L/∂v = weightsᵀ · ∂L/∂context",
        }
        parts = {
            "q": (dscores @ c.k) * self.scale,
            "k": (dscores.transpose(0, 1, 3, 2) @ c.q) * self.scale,
            "v": c.weights.transpose(0, 1, 3, 2) @ dctx,
        }
        dx = np.zeros_like(c.x) if scope.need_input else None
        for which, d in parts.items():
            d = _merge(d)
            d = scope.record(which, d, formulas[which], shape=d.shape[1:])
            d2 = d.reshape(-1, d.shape[-1])
            grads[f"weights_{which}"] = d2.T @ x2
            if f"bias_{which}" in params:
                grads[f"bias_{which}"] = np.add.reduce(d2, axis=0)
            if dx is not None:
                dx += d @ params[f"weights_{which}"]
        return dx, {p: grads[p] for p in self.param_names}

    def backward(
        self, dz: Array, cache: AttentionCache, params: dict[str, Array]
    ) -> tuple[Array, dict[str, Array]]:
        dx, grads = self.backward_with(dz, cache, params, UNRECORDED)
        assert dx is not None
        return dx, grads

    # -- what the user sees -----------------------------------------------------------------
    def _score_shape(self, t_count: int) -> tuple[int, ...]:
        return (t_count, t_count) if self.heads == 1 else (self.heads, t_count, t_count)

    def _per_head(self) -> str:
        return ", each head" if self.heads > 1 else ""

    def _scale_text(self) -> str:
        if self.spec.scale is not None:
            return f"{self.scale:g}"
        return f"1/√d_k (d_k = {self.d_k})"

    def _proj_formula(self, which: str) -> str:
        b = f" + b_{which}" if f"bias_{which}" in self.param_names else ""
        return f"{which} = X·W_{which}ᵀ{b} (one row per position)"

    def _weights_formula(self) -> str:
        text = (
            "weights = softmax of each column of scores (over the queries t)"
            if self.columns
            else "weights = softmax of each row of scores (over the keys s)"
        )
        if self.spec.causal:
            text += "; causal: keys s > t masked, weight exactly 0"
        if self.spec.mask is not None:
            text += "; where the mask is 0, weight exactly 0"
        return text

    def forward_formula(self) -> str:
        if "weights_o" in self.param_names:
            b = " + b_o" if "bias_o" in self.param_names else ""
            return f"a = context·W_oᵀ{b}"
        return "a = context (no output projection)"

    def grad_param_formula(self, param: str) -> str:
        which = param[-1]
        sym = f"W_{which}" if param.startswith("weights") else f"b_{which}"
        src = "context" if which == "o" else "X"
        grad_of = "a" if which == "o" else which
        if param.startswith("weights"):
            return f"∂L/∂{sym} = Σ_t (∂L/∂{grad_of}_t)ᵀ · {src}_t (a sum over positions)"
        return f"∂L/∂{sym} = Σ_t ∂L/∂{grad_of}_t"

    def grad_input_formula(self) -> str:
        return "∂L/∂X = ∂L/∂q·W_q + ∂L/∂k·W_k + ∂L/∂v·W_v (X feeds q, k and v)"

    def convention(self) -> str:
        s = self.spec
        heads = (
            f"{self.heads} heads of d_k = {self.d_k}, split into column blocks and concatenated "
            "as PyTorch's nn.MultiheadAttention"
            if self.heads > 1
            else "one head, as PyTorch's scaled dot-product attention"
        )
        scale = (
            f"scale {self.scale:g} as given"
            if s.scale is not None
            else f"scores = q·kᵀ/√d_k, d_k = {self.d_k}"
        )
        mask = ""
        if s.causal:
            mask += "; causal: position t attends to positions s ≤ t only"
        if s.mask is not None:
            mask += "; the mask's 0s are not attended to"
        return (
            f"scaled dot-product self-attention, {heads}; {scale}; softmax over each row (the "
            f"keys); W_q, W_k, W_v are out x in (q = X·W_qᵀ, as nn.Linear){mask}; masked "
            "weights are exactly 0"
        )

    def param_shown(self, param: str) -> tuple[int, ...]:
        return tuple(self.spec.params[param].shape)

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        name = self.spec.name
        out = []
        if self.spec.scale is None and self.d_k != 1:
            out.append(
                LayerSlip(
                    "attention_no_scale",
                    dataclasses.replace(self.spec, scale=1.0),
                    f"You left out the 1/√d_k in layer {name}: scores = q·kᵀ/√d_k with "
                    f"d_k = {self.d_k}, so every score is divided by √{self.d_k} = "
                    f"{math.sqrt(self.d_k):.4g}.",
                )
            )
        if self.spec.in_shape[0] > 1:
            out.append(
                LayerSlip(
                    "attention_softmax_columns",
                    self.spec,
                    f"You took the softmax over each column of the scores in layer {name} (over "
                    "the queries); attention normalizes each row: query t's weights over the "
                    "keys s sum to 1.",
                    unit=Attention(self.spec, columns=True),
                )
            )
        if self.spec.causal and self.spec.in_shape[0] > 1:
            out.append(
                LayerSlip(
                    "attention_no_mask",
                    dataclasses.replace(self.spec, causal=False),
                    f"You left out the causal mask in layer {name}: position t attends only to "
                    "s ≤ t, so the weights of later positions are 0 (the softmax runs over "
                    "s ≤ t only).",
                )
            )
        return out


# -- reading the layer from the network file ----------------------------------------------

PROJ = ("q", "k", "v", "o")


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> AttentionSpec:
    keys = tuple(f"weights_{w}" for w in PROJ) + tuple(f"bias_{w}" for w in PROJ)
    F.common(lsrc, (*keys, "causal", "heads", "mask", "scale", "freeze"))
    if len(shape) != 2:
        raise lsrc.error(
            f"attention layer {name!r} needs a sequence (T x d: T positions of d features), but "
            f"{prev} gives shape {V._fmt(shape)}"
        )
    t_count, d = shape
    v = lsrc.value
    missing = [f"weights_{w}" for w in "qkv" if f"weights_{w}" not in v]
    if missing:
        raise lsrc.error(
            f"attention layer {name!r} needs weights_q, weights_k and weights_v (each out x "
            f"{d}: one row per output, as nn.Linear); {', '.join(missing)} missing"
        )
    w: dict[str, np.ndarray] = {}
    for p in "qkv":
        src = lsrc.child(f"weights_{p}")
        m = V.array(src, f"{name}.weights_{p}", ndims=(2,))
        if m.shape[1] != d:
            hint = " (transposed? rows are outputs)" if m.shape[0] == d else ""
            raise src.error(
                f"attention layer {name!r}: weights_{p} should have {d} columns, one per input "
                f"feature ({prev} gives {d} per position), found {m.shape[0]} x {m.shape[1]}{hint}"
            )
        w[p] = m
    if w["k"].shape != w["q"].shape:
        raise lsrc.child("weights_k").error(
            f"attention layer {name!r}: weights_k should be {w['q'].shape[0]} x {d} as weights_q "
            f"(q·kᵀ needs rows of the same length), found {w['k'].shape[0]} x {w['k'].shape[1]}"
        )
    heads = V.positive_int(lsrc.child("heads"), "heads") if "heads" in v else 1
    for p in "qv":
        if w[p].shape[0] % heads:
            raise lsrc.child("heads").error(
                f"attention layer {name!r}: {heads} heads split weights_{p}'s {w[p].shape[0]} "
                "rows into equal blocks; they do not divide"
            )
    d_v = w["v"].shape[0]
    out_dim = d_v
    if "weights_o" in v:
        src = lsrc.child("weights_o")
        w["o"] = V.array(src, f"{name}.weights_o", ndims=(2,))
        if w["o"].shape[1] != d_v:
            raise src.error(
                f"attention layer {name!r}: weights_o should have {d_v} columns, one per context "
                f"feature (weights_v has {d_v} rows), found {w['o'].shape[0]} x {w['o'].shape[1]}"
            )
        out_dim = w["o"].shape[0]
    biases: dict[str, np.ndarray] = {}
    for p in PROJ:
        key = f"bias_{p}"
        if key not in v:
            continue
        src = lsrc.child(key)
        if p not in w:
            raise src.error("bias_o needs weights_o (an output projection)", at_key=True)
        b = V.array(src, f"{name}.{key}", ndims=(1,))
        if b.size != w[p].shape[0]:
            raise src.error(
                f"attention layer {name!r}: {key} needs {w[p].shape[0]} values (weights_{p} has "
                f"{w[p].shape[0]} rows), found {b.size}"
            )
        biases[key] = b
    causal = V.boolean(lsrc.child("causal"), "causal") if "causal" in v else False
    mask = _mask(lsrc.child("mask"), name, t_count) if "mask" in v else None
    scale = V.positive_number(lsrc.child("scale"), "scale") if "scale" in v else None
    spec = AttentionSpec(
        **F.frame(lsrc, name, ltype, shape, sq, (t_count, out_dim)),
        weights_q=w["q"],
        weights_k=w["k"],
        weights_v=w["v"],
        weights_o=w.get("o"),
        causal=causal,
        heads=heads,
        mask=mask,
        scale=scale,
        **biases,
    )
    allowed = np.ones((t_count, t_count), dtype=bool)
    if causal:
        allowed = np.tril(allowed)
    if mask is not None:
        allowed &= mask.astype(bool)
        empty = np.flatnonzero(~allowed.any(axis=1))
        if empty.size:
            raise SpecError(
                f"attention layer {name!r}: with this mask{' and causal: true' if causal else ''}, "
                f"query position {int(empty[0])} attends to no key (its softmax would divide by "
                "0); every row needs a 1",
                lsrc.child("mask").loc,
            )
    return dataclasses.replace(spec, freeze=F.freeze(lsrc, tuple(spec.params)))


def _mask(src: Src, name: str, t_count: int) -> np.ndarray:
    """A T x T matrix of 0 and 1: 1 where query t (row) may attend to key s (column)."""
    m = V.array(src, f"{name}.mask", ndims=(2,))
    if m.shape != (t_count, t_count):
        raise src.error(
            f"attention layer {name!r}: the scores are {t_count} x {t_count} (a query and a key "
            f"per position), so the mask must be {t_count} x {t_count}, found {m.shape[0]} x "
            f"{m.shape[1]}"
        )
    if not np.isin(m, (0.0, 1.0)).all():
        raise src.error("a mask holds 0 (masked) and 1 (attended) only")
    return m
