"""Writing files the user asked for (`--save`, `-o`): atomically, never over a file by surprise."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bpcalc.errors import UsageError


def write_text_atomic(
    path: str, text: str, *, force: bool = False, protect: Iterable[str] = (), option: str = ""
) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace, so a
    reader never sees half a file and a failure leaves the old one as it was.

    An existing file is only replaced with force; the files in `protect` (the input) likewise,
    with their own message. `option` names the command-line option in messages ("--save")."""
    check_target(path, force=force, protect=protect, option=option)
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    mode = p.stat().st_mode & 0o777 if p.exists() else _default_mode()
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def check_target(
    path: str, *, force: bool = False, protect: Iterable[str] = (), option: str = ""
) -> None:
    """Raise UsageError unless `path` may be written: a file name in an existing folder, not an
    existing file (nor one of `protect`) unless force. Commands call it before long work too."""
    p = Path(path)
    what = f"{option} {path}" if option else path
    if p.is_dir():
        raise UsageError(f"{what}: this is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what}: the folder {parent} does not exist")
    if p.exists() and not force:
        for other in protect:
            try:
                same = Path(other).exists() and os.path.samefile(other, p)
            except OSError:
                same = False
            if same:
                raise UsageError(
                    f"{what} would overwrite the input file; choose another name, or add --force"
                )
        raise UsageError(f"{what} exists; choose another name, or add --force to replace it")


def _default_mode() -> int:
    """0o666 less the process's umask, as open() would create the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
