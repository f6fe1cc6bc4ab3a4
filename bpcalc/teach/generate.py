"""`bpcalc exercise NET --variants N --seed S -o DIR`: N variants of an exercise, each drawn
until it breaks no rule, with its files:

  DIR/exercise.yaml            the manifest `bpcalc check DIR SHEETS...` reads: the rounding,
                               the values asked, each variant's folder and how it was drawn
  DIR/variant-01/network.yaml  the variant's network (`bpcalc step`, `bpcalc check`)
                 handout.md, handout.tex (+ .pdf), diagram.svg       for the student
                 sheet.yaml    a blank answer sheet of the values asked
                 key.yaml, solution.md, solution.tex (+ .pdf)        for the teacher

Variant k is drawn from numpy.random.default_rng([S, k]): the seed and k alone decide it,
so variant 7 is the same whether 10 or 30 variants are made.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bpcalc.errors import SpecError, UsageError
from bpcalc.network.parse import parse_network
from bpcalc.network.types import NetworkSpec
from bpcalc.network.yaml_source import SourceDoc, load_yaml_file, load_yaml_text
from bpcalc.teach import draw, rules
from bpcalc.teach.model import Result, Template, Variant
from bpcalc.teach.section import Exercise, parse_exercise
from bpcalc.trace import StepTrace, element_name, parse_ref

MAX_VARIANTS = 1000


def load_template(path: str) -> Template:
    doc = load_yaml_file(path)
    spec = parse_network(doc)
    ex = parse_exercise(doc.root())
    _check_layers(spec, ex, doc.root())
    _check_inline(doc.data, doc.root())
    # the values asked, named as the variants show them (a drawn single kernel is 2-D)
    probe = draw.draw_data(doc.data, spec, ex, np.random.default_rng(0))
    shaped = parse_network(load_yaml_text(draw.dump(probe, []), doc.file))
    asked = resolve_ask(shaped, ex)
    return Template(doc.file, doc.data, spec, ex, asked)


def _check_layers(spec: NetworkSpec, ex: Exercise, root: Any) -> None:
    names = [layer.name for layer in spec.layers]
    for name in ex.layers:
        if name not in names:
            src = root.child("exercise").child("layers").child(name)
            hint = difflib.get_close_matches(name, names, n=1)
            raise src.error(
                f"the network has no layer named {name!r}"
                + (
                    f"; did you mean {hint[0]!r}?" if hint else f" (its layers: {', '.join(names)})"
                ),
                at_key=True,
            )


def _check_inline(data: dict[str, Any], root: Any) -> None:
    for key in ("input", "inputs", "target", "targets"):
        if isinstance(data.get(key), dict):
            raise root.child(key).error(
                f"an exercise writes its numbers in the file: give {key}: as numbers (its "
                "values are drawn anyway unless the exercise keeps them)"
            )


def default_ask(spec: NetworkSpec, st: StepTrace) -> list[str]:
    """What a student computes in one step: each layer's z and a, the loss, ∂L/∂a of each
    hidden layer, ∂L/∂z and the parameter gradients, and the updated parameters. Left out:
    what is given, flatten's reshapes, ∂L/∂x (the same numbers as the previous layer's ∂L/∂a)
    and the output's ∂L/∂a where the loss and the output activation are taken together."""
    given = rules._given(spec)
    flat = {layer.name for layer in spec.layers if layer.type == "flatten"}
    last = spec.layers[-1].name
    out = []
    for r in st:
        parts = r.name.split(".")
        layer = parts[1] if parts[0] in ("grad", "new", "state") else parts[0]
        if r.name in given or layer in flat or r.stage == "after":
            continue
        if r.name.startswith("grad.") and r.name.endswith(".input"):
            continue
        if r.name == f"grad.{last}.a" and "output" in _fused(spec):
            continue
        out.append(r.name)
    return out


def _fused(spec: NetworkSpec) -> dict[str, str]:
    from bpcalc import losses

    loss = losses.get(spec.loss.kind)
    return {"output": "fused"} if loss.fused_with == spec.output_activation else {}


def resolve_ask(spec: NetworkSpec, ex: Exercise) -> list[str]:
    """The exercise's `ask:` as value names and elements, in computation order."""
    from bpcalc import engine

    st = engine.run(spec).steps[0]
    if not ex.ask:
        return default_ask(spec, st)
    names = list(st.records)
    order = {n: i for i, n in enumerate(names)}
    out: list[str] = []
    for item in ex.ask:
        text = item.pattern.strip()
        try:
            name, index = parse_ref(text)
        except ValueError:
            name, index = None, None
        if name is not None and name in st:
            if index is not None:
                shape = st.records[name].shape
                if len(index) != len(shape) or any(
                    not 0 <= i < s for i, s in zip(index, shape, strict=False)
                ):
                    raise SpecError(
                        f"ask: {text} is outside {name}, whose shape is "
                        f"{' x '.join(map(str, shape)) or 'a single number'} (indices from 0)",
                        item.where,
                    )
                out.append(element_name(name, index))
            else:
                out.append(name)
            continue
        matches = [n for n in names if fnmatch.fnmatchcase(n, text)]
        if any(ch in text for ch in "*?[") and matches:
            out += matches
            continue
        close = difflib.get_close_matches(name or text, names, n=3)
        raise SpecError(
            f"ask: there is no value named {text!r} in this network"
            + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "")
            + " (bpcalc check NETWORK --template lists every name)",
            item.where,
        )
    unique = list(dict.fromkeys(out))
    return sorted(unique, key=lambda r: (order[parse_ref(r)[0]], r))


def draw_variant(t: Template, seed: int, k: int, folder: str) -> Variant:
    """Variant k: draws from default_rng([seed, k]) until one breaks no rule."""
    rng = np.random.default_rng([seed, k])
    ex = t.exercise
    rejected: Counter[str] = Counter()
    file = f"{folder}/network.yaml"
    for attempt in range(1, ex.attempts + 1):
        data = draw.draw_data(t.data, t.spec, ex, rng)
        data.pop("train", None)
        data = {
            "name": f"{t.title} (variant {k})",
            **{a: b for a, b in data.items() if a != "name"},
        }
        # drawn numbers are plain data, so the network is read from them directly; the
        # file written from them is read back and checked again before it is kept
        found = rules.check(parse_network(SourceDoc(data, file)), ex, t.asked, first=True)
        if not found:
            text = draw.dump(data, _header(t, seed, k))
            spec = parse_network(load_yaml_text(text, file))
            found = rules.check(spec, ex, t.asked)
            if not found:
                return Variant(k, folder, text, spec, attempt, rejected)
        rejected.update({v.rule for v in found})
    common = ", ".join(f"{r} {n}" for r, n in rejected.most_common())
    raise SpecError(
        f"variant {k}: none of {ex.attempts} draws keeps every rule (rejections: {common}); "
        "widen the ranges, allow zero, or raise attempts:",
        ex.where,
    )


def _header(t: Template, seed: int, k: int) -> list[str]:
    return [
        f"Variant {k} of the exercise {t.title!r}, drawn by bpcalc exercise from",
        f"{Path(t.file).name} with --seed {seed}; the same seed and variant number give the same numbers.",
        "",
    ]


def folder_name(k: int, n: int) -> str:
    return f"variant-{k:0{max(2, len(str(n)))}d}"


def generate(
    network: str,
    *,
    variants: int,
    seed: int,
    out_dir: str,
    force: bool = False,
    pdf: bool = True,
) -> Result:
    """Make the variants and write every file; returns what was written."""
    from bpcalc.teach import write

    if not 1 <= variants <= MAX_VARIANTS:
        raise UsageError(f"--variants should be from 1 to {MAX_VARIANTS}, found {variants}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out_dir}: this is a file; give a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise UsageError(
            f"-o {out_dir}: the folder is not empty; give --force to write into it "
            "(files of the same names are replaced)"
        )
    t = load_template(network)
    made = [draw_variant(t, seed, k, folder_name(k, variants)) for k in range(1, variants + 1)]
    return write.write_all(t, made, out, seed, pdf)
