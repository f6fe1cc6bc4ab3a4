"""Write an exercise's files: per variant its network, handout, blank answer sheet, answer key
and worked solution (with PDFs where pdflatex is installed), and the manifest that grading
the class reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bpcalc import engine
from bpcalc.errors import UsageError
from bpcalc.fileio import write_text_atomic
from bpcalc.render import diagram
from bpcalc.teach import handout, solution
from bpcalc.teach.model import MANIFEST, Result, Template, Variant
from bpcalc.trace import StepTrace, parse_ref

FORMAT = 1  # the manifest's layout; a later bpcalc that changes it raises this


def number_text(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def flow(value: np.ndarray, decimals: int) -> str:
    """A number or nested lists of numbers, each with exactly `decimals` decimals."""
    if value.ndim == 0:
        return number_text(float(value), decimals)
    return "[" + ", ".join(flow(v, decimals) for v in value) + "]"


def values_of(st: StepTrace, ref: str) -> np.ndarray:
    name, index = parse_ref(ref)
    return np.asarray(st[name] if index is None else st[name][index])


def key_decimals(t: Template) -> int:
    return t.exercise.rounding if t.exercise.rounding is not None else 4


def key_yaml(t: Template, v: Variant, st: StepTrace) -> str:
    """The filled answer sheet: every asked value, rounded as the handout says."""
    d = key_decimals(t)
    how = (
        f"every value rounded to {d} decimals before it is used further"
        if t.exercise.rounding is not None
        else f"exact values, written to {d} decimals"
    )
    check = f"bpcalc check {v.folder}/network.yaml {v.folder}/key.yaml" + (
        f" --round-each {t.exercise.rounding}" if t.exercise.rounding is not None else ""
    )
    lines = [
        f"# Answer key: {t.title}, variant {v.number} ({how})",
        f"# Check it: {check}",
        f"variant: {v.number}",
    ]
    width = max(len(r) for r in t.asked) + 1
    for ref in t.asked:
        lines.append(f"{(ref + ':').ljust(width)} {flow(values_of(st, ref), d)}")
    return "\n".join(lines) + "\n"


def blank_sheet(t: Template, v: Variant, st: StepTrace) -> str:
    """The answer sheet a student fills in: a ~ for every number asked."""
    from bpcalc.teach import symbols

    d = key_decimals(t)
    rule = (
        f"rounded to {d} decimals at every step, as the handout says"
        if t.exercise.rounding is not None
        else f"to {d} decimals"
    )
    lines = [
        f"# Answer sheet: {t.title}, variant {v.number}",
        f"# Replace each ~ with your number ({rule}); leave ~ where you have no answer.",
        "# Lists follow the value's rows and columns; indices in [ ] count from 0.",
        "student: ~          # your name",
        f"variant: {v.number}           # keep this line as it is",
    ]
    width = max(len(r) for r in t.asked) + 1
    for ref in t.asked:
        value = values_of(st, ref)
        lines.append(f"{(ref + ':').ljust(width)} {_blank(value.shape)}  # {symbols.plain(ref)}")
    return "\n".join(lines) + "\n"


def _blank(shape: tuple[int, ...]) -> str:
    if not shape:
        return "~"
    inner = _blank(shape[1:])
    return "[" + ", ".join(inner for _ in range(shape[0])) + "]"


def manifest(t: Template, variants: list[Variant], seed: int) -> str:
    doc: dict[str, Any] = {
        "bpcalc_exercise": FORMAT,
        "title": t.title,
        "template": Path(t.file).name,
        "seed": seed,
        "rounding": t.exercise.rounding,
        "ask": t.asked,
        "variants": [
            {
                "variant": v.number,
                "folder": v.folder,
                "network": f"{v.folder}/network.yaml",
                "draws": v.draws,
                "rejected": dict(sorted(v.rejected.items())),
            }
            for v in variants
        ],
    }
    head = (
        "# An exercise made by bpcalc exercise: grade a class with\n"
        "#   bpcalc check THIS_FOLDER SHEETS...\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def write_all(t: Template, variants: list[Variant], out: Path, seed: int, pdf: bool) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    warnings: list[str] = []
    have_pdflatex = pdf and shutil.which("pdflatex") is not None
    svg_ok = True
    for v in variants:
        folder = out / v.folder
        folder.mkdir(exist_ok=True)
        st = engine.run(v.spec, round_each=t.exercise.rounding).steps[0]

        def put(name: str, text: str, folder: Path = folder) -> None:
            write_text_atomic(str(folder / name), text, force=True, protect=[t.file], option="-o")
            files.append(str(folder / name))

        put("network.yaml", v.text)
        put("key.yaml", key_yaml(t, v, st))
        put("sheet.yaml", blank_sheet(t, v, st))
        if svg_ok:
            try:
                put("diagram.svg", handout.diagram_svg(v.spec))
                for stage in ("forward", "backward"):
                    pic = diagram.build(v.spec, st, stage, key_decimals(t))
                    put(f"solution-{stage}.svg", diagram.svg(pic))
            except UsageError as exc:  # the optional drawing library is not installed
                svg_ok = False
                warnings.append(f"{exc.message}; the Markdown files have no SVG diagram")
        put("handout.md", handout.markdown(t, v, svg="diagram.svg" if svg_ok else None))
        put("handout.tex", handout.latex(t, v))
        svgs = ("solution-forward.svg", "solution-backward.svg") if svg_ok else None
        put("solution.md", solution.markdown(t, v, svgs))
        put("solution.tex", solution.latex(t, v))
        if have_pdflatex:
            from bpcalc.teach import pdf as pdf_mod

            for name in ("handout.tex", "solution.tex"):
                made = pdf_mod.compile_pdf(folder / name)
                if made.ok:
                    files.append(str(made.pdf))
                else:
                    warnings.append(f"{folder / name}: pdflatex failed: {made.log_tail}")
    if pdf and not have_pdflatex:
        warnings.append("pdflatex is not installed: no PDFs (the .tex files compile with it)")
    write_text_atomic(str(out / MANIFEST), manifest(t, variants, seed), force=True, option="-o")
    files.append(str(out / MANIFEST))
    return Result(str(out), variants, files, warnings)
