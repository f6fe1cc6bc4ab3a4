"""Usage errors as one line: `bpcalc: error: --format jsn: should be one of table, json,
markdown, latex; did you mean json? (bpcalc step --help)`, where click would print a
multi-line block (Usage:, Try '... -h', a blank line, Error: ...).

Reads the click exception typer raises; never imports rich.
"""

from __future__ import annotations

import difflib
import re
from typing import Any


def usage_line(exc: Any) -> str:
    """The one-line message (without the 'bpcalc: error: ' prefix) for a click UsageError."""
    ctx = getattr(exc, "ctx", None)
    where = f" ({ctx.command_path} --help)" if ctx is not None else ""
    kind = type(exc).__name__
    if kind == "NoSuchOption":
        hint = _did_you_mean(getattr(exc, "possibilities", None) or [])
        return f"no such option {exc.option_name}{hint}{where}"
    param = getattr(exc, "param", None)
    message = _sentence(getattr(exc, "message", "") or exc.format_message())
    needs = re.match(r"^option '([^']*)' requires an argument", message)
    if needs:
        return f"{needs.group(1)} needs a value{where}"
    if kind == "MissingParameter" and param is not None:
        what = "option" if getattr(param, "param_type_name", "") == "option" else "argument"
        return f"missing {what} {_name(param)}{where}"
    if param is not None:
        bad = re.match(r"^'([^']*)' is not one of", message)
        choices = list(getattr(param.type, "choices", None) or [])
        if bad and choices:
            close = difflib.get_close_matches(bad.group(1), [str(c) for c in choices], n=1)
            listed = ", ".join(str(c) for c in choices)
            return (
                f"{_name(param)} {bad.group(1)}: should be one of {listed}"
                f"{_did_you_mean(close)}{where}"
            )
        number = re.match(r"^'(.*)' is not a valid (int|integer|float)", message)
        if number:
            kind = "a whole number" if number.group(2) != "float" else "a number"
            return f"{_name(param)} {number.group(1)}: should be {kind}{where}"
        return f"{_name(param)}: {message}{where}"
    if message.startswith("no such command"):
        found = re.match(r"no such command '([^']*)'", message)
        group = getattr(ctx, "command", None)
        names = sorted(getattr(group, "commands", {}) or {})
        if found and names:
            close = difflib.get_close_matches(found.group(1), names, n=1)
            return f"no such command {found.group(1)}{_did_you_mean(close)}{where}"
    return f"{message}{where}"


def _name(param: Any) -> str:
    """--decimals for an option (its long name), NETWORK for an argument."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return opts[0]
    return str(getattr(param, "name", "") or "value").upper()


def _did_you_mean(names: list[str]) -> str:
    names = sorted(set(names))
    return f"; did you mean {' or '.join(names)}?" if names else ""


def _sentence(text: str) -> str:
    """'No such command 'x'.\\nDid you mean ...' -> one line, lower case first, no full stop."""
    line = " ".join(str(text).split())
    line = line[:1].lower() + line[1:]
    return line.rstrip(".")


def close_names(pattern: str, names: list[str], n: int = 3) -> list[str]:
    """The value names closest to a mistyped name or a glob that matched nothing: by
    spelling, then by the pattern without its wildcards, then those sharing its first
    part ('grad.W*' -> the grad.* names)."""
    stem = pattern.rstrip("*?[]")
    close = difflib.get_close_matches(pattern, names, n=n, cutoff=0.6)
    if not close and stem:
        close = difflib.get_close_matches(stem, names, n=n, cutoff=0.5)
    if not close and stem:
        head = stem.split(".")[0]
        close = [name for name in names if name.split(".")[0] == head][:n]
    return close


def did_you_mean(names: list[str]) -> str:
    """'; did you mean a or b?' (empty when there is nothing close)."""
    return f"; did you mean {' or '.join(names)}?" if names else ""
