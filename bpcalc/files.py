"""Writing files the user asked for (`--save`, `-o`): atomically, never over a file by surprise."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bpcalc.errors import UsageError


def write_text_atomic(
    path: str, text: str, *, force: bool = False, protect: Iterable[str] = (), option: str = ""
) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace, so a
    reader never sees half a file and a failure leaves the old one as it was.

    An existing file is only replaced with force; the files in `protect` (the input) never are. `option` names the command-line option in messages ("--save")."""
    check_target(path, force=force, protect=protect, option=option)
    from bpcalc.fileio import atomic_write  # temporary file, fsync, os.replace

    atomic_write(path, text, force=True)  # check_target has decided about replacing


def check_target(
    path: str, *, force: bool = False, protect: Iterable[str] = (), option: str = ""
) -> None:
    """Raise UsageError unless `path` may be written: a file name in an existing folder, not an
    existing file unless force, never one of `protect`. Commands call it before long work too."""
    p = Path(path)
    what = f"{option} {path}" if option else path
    if p.is_dir():
        raise UsageError(f"{what}: this is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what}: the folder {parent} does not exist")
    if p.exists():
        for other in protect:
            try:
                same = Path(other).exists() and os.path.samefile(other, p)
            except OSError:
                same = False
            if same:  # even with --force: nothing the user wrote is overwritten
                raise UsageError(
                    f"{what} would overwrite the input file; choose another name "
                    "(bpcalc never replaces its input, even with --force)"
                )
        if not force:
            raise UsageError(f"{what} exists; choose another name, or add --force to replace it")
