"""Output people can read at any width: every example and every test network rendered as
tables, `check` reports and `--explain` at 60, 80, 100 and 160 columns and in a pipe.

The output is parsed back (tables by their box lines, stacked blocks by their indentation)
and checked: no '…' inside a number, every number of every value readable and equal to the
JSON value at the shown precision, no empty column, every formula whole, no line wider than
the terminal."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.cells import cell_len, get_character_cell_size
from rich.console import Console

from bpcalc import engine, explain
from bpcalc.cli import run
from bpcalc.explain.text import work_lines
from bpcalc.network.parse import load_network
from bpcalc.render import json_doc, tables
from bpcalc.render.numbers import SUMMARY_THRESHOLD, Precision, decimals_shown, fmt
from bpcalc.render.writeup import loss_change, samples_shown, update_rows
from tests.explain_helpers import CONV_NET, NETWORKS, run_text
from tests.test_render_formats import EVERYTHING_NET, UNDERSCORE_NET

WIDTHS = [60, 80, 100, 160, None]  # None: a pipe (80 columns, prose not wrapped)
EXAMPLE_FILES = sorted(
    str(p)
    for p in [*Path("examples").glob("*.yaml"), *Path("examples").glob("*/*.yaml")]
    if p.name != "mnist_784_128_10.yaml"
)
TRACES = {
    # two steps (the step rules, the optimizer state), one for the digits' 1497-sample batches
    **{
        f"example:{f}": (lambda f=f: engine.run(load_network(f), steps=1 if "digits" in f else 2))
        for f in EXAMPLE_FILES
    },
    **NETWORKS,
    "everything": lambda: run_text(EVERYTHING_NET, steps=2),
    "underscore": lambda: run_text(UNDERSCORE_NET, steps=2),
}
_CACHE: dict[Any, Any] = {}


def trace_of(net: str) -> Any:
    if net not in _CACHE:
        _CACHE[net] = TRACES[net]()
    return _CACHE[net]


def json_values(trace: Any) -> list[dict[str, np.ndarray]]:
    """Each step's values as `bpcalc step --json` writes them, read back as arrays (once a
    trace: the digits' batches hold half a million numbers)."""
    key = id(trace)
    if key not in _CACHE:
        # the JSON of a value is its record's array .tolist(): read back for every value but
        # the digits' largest (a million numbers through json.dumps takes seconds)
        small = {r.name for st in trace.steps for r in st if r.value.size <= 20_000}
        doc = json.loads(json_doc.dumps(json_doc.document(trace, small)))
        _CACHE[key] = [
            {
                r.name: (
                    np.asarray(jst["values"][r.name], dtype=np.float64)
                    if r.name in jst["values"]
                    else r.value
                )
                for r in st
            }
            for st, jst in zip(trace.steps, doc["steps"], strict=True)
        ]
    return _CACHE[key]


def console(width: int | None) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    c = Console(
        file=buf,
        width=width or 80,
        color_system=None,
        soft_wrap=False,
        highlight=False,
        emoji=False,
        markup=False,
    )
    return c, buf


def norm(text: str) -> str:
    return " ".join(text.split())


NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")


# --- parsing the output back ----------------------------------------------------------------


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[list[str]]]  # row -> column -> lines
    after: list[str] = field(default_factory=list)  # lines printed right under it


@dataclass
class Block:
    """A stacked entry: its header line and the indented lines under it."""

    header: str
    lines: list[str]


def parse(lines: list[str]) -> tuple[list[Table], list[Block]]:
    found_tables: list[Table] = []
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("┏"):
            cuts = [j for j, ch in enumerate(line) if ch in "┏┳┓"]
            for a, b in zip(cuts, cuts[1:], strict=False):
                assert b - a > 1, f"a column of width 0: {line}"
            title = lines[i - 1].strip() if i > 0 else ""
            head_lines = []
            j = i + 1
            while not lines[j].startswith("┡"):  # a header of one line or more
                head_lines.append(line_cut(lines[j], cuts))
                j += 1
            header = [[" ".join(x for x in col if x) for col in zip(*head_lines, strict=True)]]
            body: list[str] = []
            j += 1
            while not lines[j].startswith("└"):
                body.append(lines[j])
                j += 1
            if any(b.startswith("├") for b in body):  # rows between separator lines
                groups: list[list[str]] = [[]]
                for b in body:
                    if b.startswith("├"):
                        groups.append([])
                    else:
                        groups[-1].append(b)
            else:  # a table without lines: a row a line
                groups = [[b] for b in body]
            rows = []
            for g in groups:
                cells = [line_cut(b, cuts) for b in g]
                rows.append([[c[k] for c in cells if c[k]] for k in range(len(cuts) - 1)])
            found_tables.append(Table(title, header[0], rows))
            i = j + 1
            continue
        m = re.match(r"^(\S+) \((.+)\)$", line) or re.match(r"^([✓✗↪]) (\S+)$", line)
        if m:
            body = []
            j = i + 1
            while j < len(lines) and lines[j].startswith("  "):
                body.append(lines[j])
                j += 1
            blocks.append(Block(line, body))
            i = j
            continue
        i += 1
    return found_tables, blocks


def line_cut(line: str, cuts: list[int]) -> list[str]:
    """The cells of a table line between the columns at `cuts` (terminal columns, not
    characters: a combining accent, as in x̂, takes none)."""
    cols: list[str] = []
    for ch in line:
        if get_character_cell_size(ch) == 0 and cols:
            cols[-1] += ch
        else:
            cols.append(ch)
    return ["".join(cols[a + 1 : b]).strip() for a, b in zip(cuts, cuts[1:], strict=False)]


def shown_numbers(lines: list[str]) -> list[str]:
    """The numbers of a value's grid, in display order, labels left out; a summary becomes
    ['summary', min, max, mean, corner...]."""
    text = [x.strip() for x in lines if x.strip()]
    out: list[str] = []
    if text and re.match(r"^\d+(x\d+)*: min ", text[0]):
        corner = text.index("corner:")
        m = re.search(r"min (\S+), max (\S+), mean (\S+)$", " ".join(text[:corner]))
        assert m, text
        out += ["summary", *m.groups()]
        text = text[corner + 1 :]
    for t in text:
        if re.fullmatch(r"columns? \d+(-\d+)?:|\[[\d,]+,:,:\]", t):
            out.append(t)
            continue
        if t.startswith("… ") and "more samples" in t:
            continue
        out += NUM.findall(t)
    return out


def expected_numbers(value: np.ndarray, tokens: list[str], p: Precision) -> list[str]:
    """The value's numbers formatted as they should be shown, in the order the tokens
    (with their column-block labels) say."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return [fmt(float(value), p)]
    if value.size > SUMMARY_THRESHOLD:
        corner = value[tuple(slice(0, 3) for _ in range(value.ndim))]
        while corner.ndim > 2:
            corner = corner[0]
        head = ["summary", *(fmt(f(value), p) for f in (np.min, np.max, np.mean))]
        return head + expected_numbers(corner, tokens[4:], p)
    if value.ndim == 1:
        return [fmt(float(v), p) for v in value]
    if value.ndim == 2:
        labels = [t for t in tokens if t.startswith("column")]
        if not labels:
            return [fmt(float(v), p) for v in value.ravel()]
        out = []
        for label in labels:
            a, _, b = label.split()[1].rstrip(":").partition("-")
            out.append(label)
            out += [fmt(float(v), p) for v in value[:, int(a) : int(b or a) + 1].ravel()]
        return out
    out = []
    for idx in np.ndindex(*value.shape[:-2]):
        out.append("[" + ",".join(map(str, idx)) + ",:,:]")
        rest = tokens[len(out) :]
        out += expected_numbers(value[idx], rest, p)
    return out


def check_value(name: str, value: Any, lines: list[str], per_sample: bool, p: Precision) -> None:
    value = np.asarray(value, dtype=np.float64)
    joined = "\n".join(lines)
    assert not re.search(r"\d…|…\d", joined), f"{name}: a number cut: {joined}"
    if per_sample:
        n = value.shape[0]
        parts = re.split(r"^\s*sample \d+:\s?", joined, flags=re.M)[1:]
        assert len(parts) == samples_shown(n, False), (name, joined)
        for i, part in enumerate(parts):
            check_value(f"{name}[{i}]", value[i], part.split("\n"), False, p)
        return
    tokens = shown_numbers(lines)
    assert tokens == expected_numbers(value, tokens, p), f"{name}:\n{joined}"


def plain_numbers(lines: list[str]) -> list[str]:
    """The numbers of a grid, its slice and column labels left out."""
    return [t for t in shown_numbers(lines) if not t.startswith(("[", "column"))]


def formula_in(formula: str, lines: list[str]) -> bool:
    return norm(formula) in norm(" ".join(lines))


# --- tables ------------------------------------------------------------------------------


def render_tables(trace: Any, width: int | None, work: Any = None) -> str:
    c, buf = console(width)
    tables.render(trace, c, decimals=Precision(), work=work, wrap=width is not None)
    return buf.getvalue()


def check_tables(trace: Any, out: str, width: int | None) -> None:
    lines = out.split("\n")
    limit = width or 80
    for line in lines:
        if line.startswith(("┏", "┃", "┡", "│", "├", "└")) or width is not None:
            assert cell_len(line.rstrip()) <= limit, f"wider than {limit}: {line!r}"
    assert not re.search(r"\d…|…\d", out)
    p = Precision()
    sections = re.split(r"^─+ Step \d+.*$", out, flags=re.M)
    steps = trace.steps
    if len(steps) > 1:
        sections = sections[1:]
    assert len(sections) == len(steps)
    for st, section, values in zip(steps, sections, json_values(trace), strict=True):
        parts = stage_parts(section)
        for part, (found, _) in parts.items():
            for t in found:
                for k, h in enumerate(t.headers):
                    assert h or any(r[k] for r in t.rows), f"an empty column in {part}"
        for rec in st:
            if rec.name.startswith("new.") or rec.stage == "after" or rec.name == "loss_after":
                continue
            title = "Optimizer state" if rec.name.startswith("state.") else STAGES[rec.stage]
            found, blocks = parts[title]
            rows = {r[0][0]: (t, r) for t in found for r in t.rows}
            stacked = {b.header.split(" (")[0]: b for b in blocks}
            if rec.name in rows:
                t, r = rows[rec.name]
                cols = {h: k for k, h in enumerate(t.headers)}
                value_lines = r[cols["value"]]
                assert formula_in(rec.formula, r[cols["formula"]]), (rec.name, rec.formula, r)
            else:
                assert rec.name in stacked, f"{rec.name} is not shown at width {width}"
                body = stacked[rec.name].lines
                k = next(
                    (k for k in range(1, len(body) + 1) if formula_in(rec.formula, body[-k:])),
                    None,
                )
                assert k is not None and norm(" ".join(body[-k:])) == norm(rec.formula), (
                    rec.name,
                    rec.formula,
                    body,
                )
                value_lines = body[:-k]
            check_value(rec.name, values[rec.name], value_lines, rec.per_sample, p)
        if "Update" in parts:
            check_updates(st, *parts["Update"], values, p)
        if "loss_after" in st:
            before, after, change, _ = loss_change(st)
            want = [fmt(before, p), fmt(after, p), fmt(change, p)]
            found, _ = parts["After update"]
            if found:
                got = [found[0].rows[0][k][0].split(" (")[0].lstrip("+") for k in range(3)]
            else:
                text = section[section.index("After update") :]
                got = [
                    re.search(rf"{h}: (\S+)", text).group(1).lstrip("+")  # type: ignore[union-attr]
                    for h in ("loss before", "loss after", "change")
                ]
            assert got == want


STAGES = {"forward": "Forward", "loss": "Loss", "backward": "Backward", "update": "Update"}
TITLES = ["Forward", "Loss", "Backward", "Update", "Optimizer state", "After update", "Steps"]


def stage_parts(section: str) -> dict[str, tuple[list[Table], list[Block]]]:
    """The section's output cut at each stage title, each part parsed."""
    parts: dict[str, list[str]] = {}
    current: list[str] = []
    for line in section.split("\n"):
        if line.strip() in TITLES:
            current = parts.setdefault(line.strip(), [])
        current.append(line)
    return {k: parse(v) for k, v in parts.items()}


def check_updates(st: Any, found: list[Table], blocks: list[Block], values: Any, p: Any) -> None:
    ups = update_rows(st, lambda r: True)
    if not ups:
        return
    table = [t for t in found if t.headers[:1] == ["parameter"]]
    for u in ups:
        if table:
            t = table[0]
            row = next(r for r in t.rows if r[0][0] == u.param)
            cols = {h: k for k, h in enumerate(t.headers)}
            parts = {h: row[cols[h]] for h in ("old", "gradient", "new")}
            if "rule" in cols:
                assert formula_in(u.rule, row[cols["rule"]])
        else:
            block = next(b for b in blocks if b.header.split(" (")[0] == u.param)
            parts, label = {}, None
            for line in block.lines:
                m = re.match(r"^  (old|gradient|new):\s?(.*)$", line)
                if m:
                    label = m.group(1)
                    parts[label] = [m.group(2)] if m.group(2) else []
                elif line.startswith("  rule:"):
                    label = "rule"
                    parts["rule"] = [line[len("  rule:") :]]
                elif label is not None:
                    parts[label].append(line)
            assert formula_in(u.rule, parts["rule"]), (u.param, parts)
        check_value(f"new.{u.param}", values[f"new.{u.param}"], parts["new"], False, p)
        if u.grad is not None:
            check_value(f"grad.{u.param}", values[f"grad.{u.param}"], parts["gradient"], False, p)


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w or 'pipe'}")
@pytest.mark.parametrize("net", sorted(TRACES))
def test_tables_fit_and_show_every_number_and_formula_whole(net: str, width: int | None) -> None:
    trace = trace_of(net)
    check_tables(trace, render_tables(trace, width), width)


# --- explanations ----------------------------------------------------------------------------

SMALL = sorted(n for n in TRACES if "digits" not in n)  # the digits' 1497-sample sums are huge


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w or 'pipe'}")
@pytest.mark.parametrize("net", SMALL)
def test_explanations_wrap_at_spaces_and_stay_whole(net: str, width: int | None) -> None:
    trace = trace_of(net)
    request = explain.parse_requests(["all"], trace)
    work = explain.explain_trace(trace, request, Precision(), False)
    out = render_tables(trace, width, work)  # the tables in it are checked above
    text = norm(out)
    for exps in work.values():
        for e in exps:
            for w in e.works:
                for line in work_lines(w, 10_000):
                    assert norm(line) in text, line
    if width is not None:
        for line in out.split("\n"):
            words = line.split()
            assert cell_len(line.rstrip()) <= width or len(words) == 1, line


# --- check reports ---------------------------------------------------------------------------

CHECK_NETS = [
    *(f for f in EXAMPLE_FILES if "digits" not in f),
    "EVERYTHING",
    "UNDERSCORE",
    "CONV",
]


def answer_sheet(trace: Any) -> tuple[dict[str, Any], dict[str, bool]]:
    """Every small value answered to 4 decimals; every third one wrong by a little."""
    sheet, wrong = {}, {}
    for k, rec in enumerate(trace.steps[0]):
        if rec.value.size > 16 or rec.name == "loss_after" or rec.name.startswith("state."):
            continue
        v = np.round(np.asarray(rec.value, dtype=np.float64), 4)
        bad = k % 3 == 2
        if bad:
            v = v + 0.0123 * (1 + np.abs(v))
        sheet[rec.name] = np.round(v, 4).tolist()
        wrong[rec.name] = bad
    return sheet, wrong


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w or 'pipe'}")
@pytest.mark.parametrize("net", CHECK_NETS)
def test_check_reports_fit_and_show_the_expected_values(
    net: str, width: int | None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    texts = {"EVERYTHING": EVERYTHING_NET, "UNDERSCORE": UNDERSCORE_NET, "CONV": CONV_NET}
    if net in texts:
        path = tmp_path / "net.yaml"
        path.write_text(texts[net])
        net = str(path)
    trace = engine.run(load_network(net))
    sheet, _ = answer_sheet(trace)
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(sheet, sort_keys=False))
    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    code = run(["check", net, str(answers)])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    code = run(["check", net, str(answers), "--json"])
    report = json.loads(capsys.readouterr().out)
    limit = width or 80
    lines = out.split("\n")
    for line in lines:
        if line.startswith(("┏", "┃", "┡", "│", "├", "└")) or width is not None:
            assert cell_len(line.rstrip()) <= limit or len(line.split()) == 1, line
    assert not re.search(r"\d…|…\d", out)
    found, blocks = parse(lines)
    shown: dict[str, tuple[list[str], list[str], str]] = {}
    if found:
        (t,) = found
        assert t.headers == ["value", "", "your answer", "expected"]
        for r in t.rows:
            shown[r[0][0]] = (r[2], r[3], r[1][0])
    else:
        for b in blocks:
            symbol, ref = b.header.split(" ", 1)
            parts: dict[str, list[str]] = {}
            label = None
            for line in b.lines:
                m = re.match(r"^  (your answer|expected):\s?(.*)$", line)
                if m:
                    label = m.group(1)
                    parts[label] = [m.group(2)] if m.group(2) else []
                elif label is not None and line.startswith("    "):
                    parts[label].append(line)
            shown[ref] = (parts["your answer"], parts["expected"], symbol)
    assert set(shown) == {a["ref"] for a in report["answers"]}
    for a in report["answers"]:
        mine, expected, symbol = shown[a["ref"]]
        assert symbol == a["symbol"]
        got_mine = [float(x) for x in plain_numbers(mine)]
        assert got_mine == pytest.approx(np.ravel(a["answer"]).tolist(), abs=1e-12), a["ref"]
        want = np.ravel(a["expected"])
        exp_tokens = plain_numbers(expected)
        assert len(exp_tokens) == len(want), (a["ref"], expected)
        decimals = np.ravel(a["decimals"])
        for tok, v, d, s in zip(exp_tokens, want, decimals, np.ravel(a["answer"]), strict=True):
            shown_d = decimals_shown(tok)
            assert abs(float(tok) - v) <= 0.5 * 10.0**-shown_d * (1 + 1e-9), (a["ref"], tok, v)
            # as many digits as the student wrote, unless the value is exactly what is shown
            # (an exact 1 is shown as 1 even to a student who wrote 1.0)
            assert shown_d >= d or float(tok) == v, f"{a['ref']}: {tok} has fewer digits than {s}"
            if a["verdict"] == "wrong" and s != v:
                assert float(tok) != s, f"{a['ref']}: expected {tok} reads as the answer {s}"


def test_a_wrong_small_answer_never_reads_as_the_expected_value(tmp_path: Path, capsys) -> None:
    # ∂E/∂w1 of Mazur's network is 0.000438568; a student's 0.00049 is wrong, and the
    # report must not say "expected 0.0005" (or 0.00049)
    net = tmp_path / "mazur.yaml"
    net.write_text(
        "input: [0.05, 0.10]\ntarget: [0.01, 0.99]\nlayers:\n"
        "  - {name: h, type: dense, weights: [[0.15, 0.20], [0.25, 0.30]], bias: [0.35, 0.35],"
        " activation: sigmoid}\n"
        "  - {name: o, type: dense, weights: [[0.40, 0.45], [0.50, 0.55]], bias: [0.60, 0.60],"
        " activation: sigmoid}\nloss: half_sse\nlearning_rate: 0.5\n"
    )
    answers = tmp_path / "answers.yaml"
    answers.write_text("grad.h.weights[0,0]: 0.00049\n")
    assert run(["check", str(net), str(answers)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "0.00049" in line)
    assert "0.0004386" in row and "0.0005 " not in row


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w or 'pipe'}")
def test_the_command_line_prints_what_the_renderer_checked_above(
    width: int | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # COLUMNS set: a terminal of that width (prose wraps); unset and not a terminal: a pipe
    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    assert run(["step", "examples/mlp_2_3_1.yaml", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    trace = trace_of("example:examples/mlp_2_3_1.yaml")
    assert out == render_tables(trace, width)
    lines = out.split("\n")
    for key, text in trace.conventions.items():
        if width is None:  # a pipe: every convention on one line, however long
            assert f"  {key}: {text}" in lines
        else:  # a terminal: wrapped at spaces, continued 4 spaces in
            assert all(len(line) <= width for line in lines)
            assert norm(f"{key}: {text}") in norm(out)
