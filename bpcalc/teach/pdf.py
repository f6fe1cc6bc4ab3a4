"""PDFs from the LaTeX files, where pdflatex is installed: run in a temporary folder (its
auxiliary files stay there), twice when longtable asks for it, with a time limit."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 120  # seconds for one run of pdflatex


@dataclass(frozen=True)
class Made:
    ok: bool
    pdf: Path | None
    log_tail: str  # the end of the log when it failed


def available() -> bool:
    return shutil.which("pdflatex") is not None


def compile_pdf(tex: Path) -> Made:
    """tex -> the PDF beside it (same name, .pdf)."""
    with tempfile.TemporaryDirectory(prefix="bpcalc-tex-") as tmp:
        src = Path(tmp) / tex.name
        shutil.copyfile(tex, src)
        log = ""
        for _ in range(2):  # longtable needs a second run to settle its column widths
            try:
                proc = subprocess.run(
                    ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", src.name],
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return Made(False, None, str(exc))
            log = proc.stdout
            if proc.returncode != 0:
                errors = [ln for ln in log.splitlines() if ln.startswith("!")]
                return Made(False, None, " | ".join(errors[:3]) or log[-300:])
            if "Rerun" not in log:
                break
        out = tex.with_suffix(".pdf")
        shutil.copyfile(src.with_suffix(".pdf"), out)
        return Made(True, out, "")
