"""Embedding: token ids in, rows of a table E out (as torch.nn.Embedding, whose weight is E).

  a_t = E[x_t]                          x: (T,) token ids 0 … vocab − 1;  E: (vocab, dim);
                                        a: (T, dim), row t of a is row x_t of E
  ∂L/∂E[v] = Σ_{t : x_t = v} ∂L/∂a_t    a scatter-add: a token used at two positions (or in two
                                        samples) gets the sum of both rows' gradients, a token
                                        not used gets 0

Token ids are labels, not numbers to differentiate: the layer has no ∂L/∂x, so it reads the
network's input and comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bpcalc.errors import SpecError
from bpcalc.layers import Layer, LayerSlip
from bpcalc.layers.embedding.spec import EmbeddingSpec
from bpcalc.network import initializers as _init
from bpcalc.network import layer_fields as F
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

Array = np.ndarray


@dataclass(frozen=True)
class EmbeddingCache:
    ids: Array  # (N, T) integer token ids


class Embedding(Layer):
    """E: (vocab, dim), the parameter `weights`."""

    types = ("embedding",)
    parametric = True
    pre_activation = False
    param_names = ("weights",)

    def __init__(self, spec: Any = None) -> None:
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: Any) -> Embedding:
        return cls(spec)

    def forward(self, x: Array, params: dict[str, Array]) -> tuple[Array, EmbeddingCache]:
        """a[n, t] = E[x[n, t]]. x: (N, T) ids (as floats) -> a: (N, T, dim)."""
        ids = x.astype(np.intp)
        return params["weights"][ids], EmbeddingCache(ids)

    def param_grads(
        self, dz: Array, cache: EmbeddingCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        """∂L/∂E: each position's ∂L/∂a_t added into the row of its token (np.add.at adds
        every occurrence; a plain indexed assignment would keep only the last one)."""
        e = params["weights"]
        de = np.zeros_like(e)
        np.add.at(de, cache.ids.reshape(-1), dz.reshape(-1, e.shape[1]))
        return {"weights": de}

    def backward(
        self, dz: Array, cache: EmbeddingCache, params: dict[str, Array]
    ) -> tuple[None, dict[str, Array]]:
        """No ∂L/∂x (token ids are not differentiable); ∂L/∂E by scatter-add."""
        return None, self.param_grads(dz, cache, params)

    @classmethod
    def check_input(cls, spec: Any, x: Array, src: Any) -> None:
        """Every token id a whole number from 0 to vocab − 1, else an error at that id."""
        bad = (x != np.round(x)) | (x < 0) | (x >= spec.vocab)
        if not bad.any():
            return
        n, t = (int(i) for i in np.argwhere(bad.reshape(x.shape[0], -1))[0])
        value = float(x.reshape(x.shape[0], -1)[n, t])
        at = f"sample {n}, position {t}" if x.shape[0] > 1 else f"position {t}"
        whole = value == round(value)
        raise SpecError(
            f"token id {value:g} ({at}) is outside the vocabulary of embedding layer "
            f"{spec.name!r}, which has {spec.vocab} rows (ids 0 to {spec.vocab - 1})"
            if whole
            else f"token id {value!r} ({at}) is not a whole number; embedding layer "
            f"{spec.name!r} reads token ids 0 to {spec.vocab - 1}",
            _element_src(src, n, t, x.shape[0]).loc,
        )

    # -- what the user sees -----------------------------------------------------------------
    def forward_formula(self) -> str:
        return "a_t = E_{x_t} (row x_t of E, for each position t)"

    def grad_param_formula(self, param: str) -> str:
        return "∂L/∂E_v = Σ_{t: x_t = v} ∂L/∂a_t (scatter-add: a token used twice gets the sum)"

    def grad_input_formula(self) -> str:
        return "token ids are not differentiable: no ∂L/∂x"

    def convention(self) -> str:
        return (
            f"a_t = E[x_t], E is vocab x dim ({self.spec.vocab} x {self.spec.weights.shape[1]}, "
            "as torch.nn.Embedding); ∂L/∂E is a scatter-add: row v sums ∂L/∂a_t over every "
            "position (and sample) where token v appears"
        )

    # -- the checker ----------------------------------------------------------------------
    def slips(self) -> list[LayerSlip]:
        return [
            LayerSlip(
                "embedding_overwrite",
                self.spec,
                f"A token appears more than once, and you kept one position's gradient for its "
                f"row of E in layer {self.spec.name}: ∂L/∂E[v] is the sum of ∂L/∂a_t over every "
                "position t where token v appears (a scatter-add), not the last one written.",
                unit=_Overwritten(self.spec),
            )
        ]


class _Overwritten(Embedding):
    """The slip: each row of ∂L/∂E set to one occurrence's gradient (the last), not the sum."""

    def param_grads(
        self, dz: Array, cache: EmbeddingCache, params: dict[str, Array]
    ) -> dict[str, Array]:
        e = params["weights"]
        de = np.zeros_like(e)
        de[cache.ids.reshape(-1)] = dz.reshape(-1, e.shape[1])
        return {"weights": de}


def _element_src(src: Src, n: int, t: int, samples: int) -> Src:
    """The YAML node of sample n's position t, when the ids are written inline (else src)."""
    v = src.value
    if not isinstance(v, list) or not v:
        return src  # a file, or one id
    if isinstance(v[0], list):  # a list of samples, each a list of ids
        ok = n < len(v) and isinstance(v[n], list) and t < len(v[n])
        return src.child(n).child(t) if ok else src
    # a flat list: one sample's ids (input:), or one id per sample (inputs:)
    i = t if samples == 1 else n
    return src.child(i) if i < len(v) else src


# -- reading the layer from the network file ----------------------------------------------


def parse(
    lsrc: Src, name: str, ltype: str, shape: tuple[int, ...], sq: bool, prev: str
) -> EmbeddingSpec:
    F.common(lsrc, ("weights", "vocab", "dim", "init", "freeze"))
    if prev != "the input":
        raise lsrc.error(
            f"embedding layer {name!r} reads token ids, so it must be the first layer; {prev} "
            "gives numbers, not ids"
        )
    _init.check_exclusive(lsrc, name, "weights", ("vocab", "dim"))
    v = lsrc.value
    if "weights" in v:
        e = V.array(lsrc.child("weights"), f"{name}.weights", ndims=(2,))
    else:
        missing = [k for k in ("vocab", "dim") if k not in v]
        if missing:
            raise lsrc.error(
                f"embedding layer {name!r} needs weights: (the table E, vocab x dim) or vocab: "
                f"and dim: (drawn by init:, N(0, 1) as PyTorch by default); "
                f"{' and '.join(missing)} missing"
            )
        vocab = V.positive_int(lsrc.child("vocab"), "vocab")
        dim = V.positive_int(lsrc.child("dim"), "dim")
        init = _init.parse_init(lsrc)
        if "init" not in v:  # torch.nn.Embedding draws E from N(0, 1)
            init = replace(init, type="normal", std=1.0)
        e = _init.sample(init, (vocab, dim), vocab, dim)
    (t,) = shape
    return EmbeddingSpec(
        **F.frame(lsrc, name, ltype, shape, sq, (t, e.shape[1])),
        weights=e,
        freeze=F.freeze(lsrc, ("weights",)),
    )
