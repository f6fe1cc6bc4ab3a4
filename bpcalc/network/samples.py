"""A network's samples: `input:`/`inputs:` and `target:`/`targets:`, written inline or as a
data file reference, checked against the network. The network (bpcalc.network.parse) and the
train section's data sets (bpcalc.network.sections) both read them here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcalc.network import values as V
from bpcalc.network.types import LayerSpec, LossSpec
from bpcalc.network.yaml_source import Src


def is_data_reference(value: Any) -> bool:
    """datafiles.is_reference, without importing bpcalc.network.datafiles (its readers and dataclass
    cost start-up time) for the networks that write their numbers inline (issue 7)."""
    return isinstance(value, dict) and "file" in value


def parse_inputs(root: Src, data_dtype: Any = np.float64) -> tuple[np.ndarray, bool, Src]:
    data = root.value
    if "input" in data and "inputs" in data:
        raise root.child("inputs").error(
            "give either input: (one sample) or inputs: (a list of samples), not both", at_key=True
        )
    if "input" in data:
        src = root.child("input")
        if is_data_reference(src.value):
            from bpcalc.network import datafiles as _data

            return _data.load(src, "input", batched=False, dtype=data_dtype).values, False, src
        x = V.array(src, "input")
        return x[None, ...], False, src
    if "inputs" in data:
        src = root.child("inputs")
        if is_data_reference(src.value):
            from bpcalc.network import datafiles as _data

            return _data.load(src, "inputs", dtype=data_dtype).values, True, src
        if not isinstance(src.value, list):
            raise src.error(f"inputs should be a list of samples, found {V.type_name(src.value)}")
        x = V.array(src, "inputs")
        return x, True, src
    raise root.error(
        "the network is missing its input: add input: (one sample) or inputs: (a list of samples)"
    )


SEQUENCE_FIRST = ("rnn", "attention")  # layers that read a sequence (T, d) and nothing else


def shape_input(
    x: np.ndarray, first_type: str, src: Src, batched: bool, sequence: bool = False
) -> tuple[np.ndarray, tuple[int, ...], bool]:
    """Batch-first input of the right rank for the first layer; returns (x, per-sample shape, squeezed).

    A sample of rank 2 is a sequence (T positions of d features, kept as (T, d)) when the
    first layer reads one (rnn, attention) or the network says `sequence: true`; otherwise
    a one-channel image (1, H, W), shown without its channel axis."""
    sample = x.shape[1:]
    per = "each sample" if batched else "input"
    if sequence and first_type not in ("embedding", *SEQUENCE_FIRST) and len(sample) != 2:
        raise src.error(
            f"sequence: true says {per} is a sequence, T rows of d numbers, shape (T, d); "
            f"found shape {V._fmt(sample)}"
        )
    if first_type in ("conv2d", "maxpool2d", "avgpool2d"):
        if len(sample) == 2:
            return x[:, None, :, :], (1, *sample), True
        if len(sample) == 3:
            return x, sample, False
        per = "each sample" if batched else "input"
        raise src.error(
            f"{per} of a network that starts with {first_type} should be an image (H, W) or (C, H, W); found shape {V._fmt(sample)}"
        )
    if len(sample) == 0:
        return x[:, None], (1,), False
    if first_type == "embedding" and len(sample) != 1:
        raise src.error(
            f"{per} of a network that starts with embedding should be token ids: a list of T "
            f"integers; found shape {V._fmt(sample)}"
        )
    if first_type in SEQUENCE_FIRST and len(sample) != 2:
        raise src.error(
            f"{per} of a network that starts with {first_type} should be a sequence: T rows of d "
            f"numbers, shape (T, d); found shape {V._fmt(sample)}"
            + ("" if len(sample) != 1 else " (one row [[...]] is a sequence of one position)")
        )
    if len(sample) == 2 and (sequence or first_type in SEQUENCE_FIRST):
        return x, sample, False
    if first_type == "dense" and len(sample) != 1:
        raise src.error(
            f"{per} of a network that starts with dense should be a vector (a flat list); found shape {V._fmt(sample)}: add a flatten layer first"
            + (" (or flatten: true in the data reference)" if is_data_reference(src.value) else "")
            + (
                "; or, if each row is one position of a sequence, write sequence: true"
                if len(sample) == 2
                else ""
            )
        )
    if len(sample) == 2:  # a matrix that is no sequence: an image of one channel
        return x[:, None, :, :], (1, *sample), True
    return x, sample, False


def parse_targets(
    root: Src, loss: LossSpec, last: LayerSpec, n: int, batched: bool, data_dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray | None]:
    data = root.value
    key = "targets" if batched else "target"
    other = "target" if batched else "targets"
    if other in data:
        raise root.child(other).error(
            f"{other}: does not go with {'inputs' if batched else 'input'}:; use {key}:",
            at_key=True,
        )
    if key not in data:
        raise root.error(f"the network is missing its {key}:")
    src = root.child(key)
    if is_data_reference(src.value):
        from bpcalc.network import datafiles as _data

        return _data.targets_from_file(
            src, key, loss.kind, last.out_shape, last.name, n, batched, data_dtype
        )
    out_shape = last.out_shape
    if loss.positions is not None and loss.kind == "cross_entropy":
        classes = _position_classes(src, key, out_shape, n, batched)
        if classes is not None:
            return np.eye(out_shape[1])[classes].reshape((n, *out_shape)), classes
    k = V.vector_len(out_shape)
    if batched:
        if not isinstance(src.value, list):
            raise src.error(
                f"targets should be a list with one target per sample, found {V.type_name(src.value)}"
            )
        if len(src.value) != n:
            raise src.error(f"there are {n} inputs but {len(src.value)} targets")
        items = [src.child(i) for i in range(n)]
    else:
        items = [src]
    if loss.kind == "cross_entropy" and all(_is_class_index(s.value) for s in items):
        classes = np.array([int(s.value) for s in items])
        for s, c in zip(items, classes, strict=True):
            if not 0 <= c < k:
                raise s.error(
                    f"class index {c} does not fit the output, which has {k} classes (0 to {k - 1})"
                )
        from bpcalc.network.datafiles import one_hot_rows

        return one_hot_rows(src, classes, k).reshape((n, *out_shape)), classes
    rows = []
    for s in items:
        t = V.array(s, key)
        if t.size != k:
            raise s.error(
                f"the target has {t.size} value{'s' if t.size != 1 else ''} (shape {V._fmt(t.shape)}) but the output of {last.name!r} has {k} (shape {V._fmt(_shown(last))})"
            )
        if loss.kind in ("cross_entropy", "binary_cross_entropy") and (
            (t < 0).any() or (t > 1).any()
        ):
            raise s.error(
                f"{loss.kind} needs targets between 0 and 1 (probabilities or one-hot), found {t.min():g} to {t.max():g}"
            )
        # over a sequence, each position's row is one target
        sums = (
            t.reshape(-1, out_shape[-1]).sum(axis=1)
            if loss.positions
            else t.reshape(1, -1).sum(axis=1)
        )
        if loss.kind == "cross_entropy" and not np.allclose(sums, 1.0):
            raise s.error(
                f"a cross_entropy target should be one-hot (or sum to 1), or a class index; this one sums to {sums[~np.isclose(sums, 1.0)][0]:g}"
                + (" at a position" if loss.positions else "")
            )
        rows.append(t.reshape(out_shape))
    return np.stack(rows), None


def _position_classes(
    src: Src, key: str, out_shape: tuple[int, ...], n: int, batched: bool
) -> np.ndarray | None:
    """Class indices, one per position of a sequence output (T, K): `target: [2, 0, 1]`, or
    one such list per sample. None when the targets are not written that way (one-hot rows)."""
    t, k = out_shape
    rows = src.value if batched else [src.value]
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and all(_is_class_index(c) for c in r) for r in rows
    ):
        return None
    if batched and len(rows) != n:
        raise src.error(f"there are {n} inputs but {len(rows)} targets")
    out = np.zeros((n, t), dtype=int)
    for i, row in enumerate(rows):
        rsrc = src.child(i) if batched else src
        if len(row) != t:
            raise rsrc.error(
                f"the output is a sequence of {t} positions, so {key} needs {t} class indices "
                f"(one per position), found {len(row)}"
            )
        for j, c in enumerate(row):
            if not 0 <= c < k:
                raise rsrc.child(j).error(
                    f"class index {c} does not fit the output, which has {k} classes (0 to {k - 1})"
                )
            out[i, j] = c
    return out


def _is_class_index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shown(layer: LayerSpec) -> tuple[int, ...]:
    return layer.out_shape[1:] if layer.squeezed_out else layer.out_shape
