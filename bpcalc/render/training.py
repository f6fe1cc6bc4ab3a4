"""Output of `bpcalc train`: the epoch table, a loss curve in text, and JSON lines."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from bpcalc.training import EpochResult

BLOCKS = " ▁▂▃▄▅▆▇█"


def epoch_json(r: EpochResult, epochs: int, extra: dict[str, Any]) -> str:
    """One strict JSON line (no NaN) for an epoch."""
    doc = {
        "epoch": r.epoch,
        "epochs": epochs,
        "train_loss": r.train_loss,
        "train_accuracy": r.train_accuracy,
        "test_loss": r.test_loss,
        "test_accuracy": r.test_accuracy,
        "seconds": round(r.seconds, 4),
        "cpu_seconds": round(r.cpu_seconds, 6),
        **extra,
    }
    return json.dumps(doc, allow_nan=False, ensure_ascii=False)


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """One character per value (averaged into `width` columns when there are more): ▁ lowest, █ highest."""
    vals = _resample(list(values), width)
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return BLOCKS[4] * len(vals)
    return "".join(BLOCKS[1 + round((v - lo) / (hi - lo) * 7)] for v in vals)


def curve(values: Sequence[float], height: int = 6, width: int = 60) -> list[str]:
    """A small plot of `values` (one column each), `height` rows of eighth blocks, labelled with
    the top and bottom values."""
    vals = _resample(list(values), width)
    if not vals:
        return []
    lo, hi = min(vals), max(vals)
    span = hi - lo if hi - lo > 1e-12 * max(1.0, abs(hi)) else 1.0
    levels = [round((v - lo) / span * (height * 8 - 1)) + 1 for v in vals]  # 1 .. 8·height
    top, bottom = _num(hi), _num(lo)
    pad = max(len(top), len(bottom))
    rows = []
    for r in range(height - 1, -1, -1):
        cells = "".join(BLOCKS[min(8, max(0, lv - r * 8))] for lv in levels)
        label = top if r == height - 1 else bottom if r == 0 else ""
        rows.append(f"{label:>{pad}} ┤{cells}")
    return rows


def _resample(vals: list[float], width: int) -> list[float]:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if len(vals) <= width:
        return vals
    out = []
    for c in range(width):
        a, b = c * len(vals) // width, (c + 1) * len(vals) // width
        chunk = vals[a : max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def _num(v: float) -> str:
    return f"{v:.4g}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def render(results: list[EpochResult], console: Any, *, title: str, notes: list[str]) -> None:
    """The table of epochs and the loss curve(s), on `console` (a rich Console)."""
    from rich.table import Table

    has_acc = any(r.train_accuracy is not None for r in results)
    has_test = any(r.test_loss is not None for r in results)
    table = Table(title=title, title_justify="left", caption_justify="left")
    table.add_column("epoch", justify="right")
    table.add_column("train loss", justify="right")
    if has_acc:
        table.add_column("train acc.", justify="right")
    if has_test:
        table.add_column("test loss", justify="right")
        if has_acc:
            table.add_column("test acc.", justify="right")
    table.add_column("time", justify="right")
    for r in results:
        row = [str(r.epoch), f"{r.train_loss:.4f}"]
        if has_acc:
            row.append(_pct(r.train_accuracy))
        if has_test:
            row.append("—" if r.test_loss is None else f"{r.test_loss:.4f}")
            if has_acc:
                row.append(_pct(r.test_accuracy))
        row.append(f"{r.seconds:.2f} s")
        table.add_row(*row)
    for note in notes:
        console.print(note, markup=False, highlight=False)
    console.print(table)
    if len(results) >= 2:
        console.print("Loss per epoch (mean over samples):", markup=False)
        for line in curve([r.train_loss for r in results]):
            console.print(line, markup=False, highlight=False)
        spark = f"  train {sparkline([r.train_loss for r in results])}  {results[0].train_loss:.4g} → {results[-1].train_loss:.4g}"
        console.print(spark, markup=False, highlight=False)
        if has_test:
            tl = [r.test_loss for r in results if r.test_loss is not None]
            console.print(
                f"  test  {sparkline(tl)}  {tl[0]:.4g} → {tl[-1]:.4g}",
                markup=False,
                highlight=False,
            )


def render_to_stdout(results: list[Any], *, title: str, notes: list[str]) -> None:
    """The epoch table on standard output."""
    from rich.console import Console

    render(results, Console(soft_wrap=False, highlight=False), title=title, notes=notes)


def progress_bar(epochs: int, steps: int) -> tuple[Any, Any, Any]:
    """A rich progress bar on stderr, with a line per finished epoch above it: (the bar, the
    per-batch callback, the per-epoch callback)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        # stdout stays where the user sent it: --json lines into their file or pipe, never
        # into the bar's console on stderr (rich's default while a bar is live)
        redirect_stdout=False,
    )
    task = progress.add_task("train", total=epochs * steps, epoch=1, epochs=epochs, loss="—")
    progress.start()

    def on_batch(epoch: int, b: int, loss: float) -> None:
        progress.update(task, advance=1, epoch=epoch, loss=f"{loss:.4f}")

    def on_epoch(r: Any) -> None:  # a line per finished epoch above the bar (stderr)
        acc = "" if r.train_accuracy is None else f", accuracy {100 * r.train_accuracy:.2f} %"
        test = "" if r.test_loss is None else f"; test loss {r.test_loss:.4f}"
        if r.test_accuracy is not None:
            test += f", accuracy {100 * r.test_accuracy:.2f} %"
        progress.console.print(
            f"epoch {r.epoch}/{epochs}: loss {r.train_loss:.4f}{acc}{test} ({r.seconds:.2f} s)",
            markup=False,
            highlight=False,
        )

    return progress, on_batch, on_epoch
