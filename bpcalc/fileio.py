"""Writing files safely: every file bpcalc writes (train --save, new -o, ...) goes through here.

atomic_write puts the new content in a temporary file in the same directory, flushes it to
disk (fsync) and renames it over the target with os.replace, which is atomic on POSIX and
Windows: a reader sees the old file or the new one, never half of one, and a write that is
interrupted (an error, Ctrl-C, a full disk) leaves the old file exactly as it was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bpcalc.errors import UsageError


def atomic_write(
    path: str | os.PathLike[str],
    text: str | bytes,
    *,
    force: bool,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Write `text` (str as UTF-8, or bytes) to `path` atomically.

    force: an existing file is replaced only when True (the CLI's --force).
    protect: files that must never be overwritten, whatever `force` says: pass the input
    file(s) of the command, so `bpcalc train net.yaml --save net.yaml` cannot destroy its input.
    Raises UsageError (exit code 2, no traceback) when the file exists without force, when it
    is a protected file or a directory, or when the system refuses the write.
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory; expected the name of a file to write")
    if target.exists():
        for p in protect:
            if str(p) != "-" and Path(p).exists() and os.path.samefile(target, p):
                raise UsageError(
                    f"refusing to write over the input file {target}; choose another name"
                )
        if not force:
            raise UsageError(f"{target} already exists; add --force to overwrite it")
    data = text.encode("utf-8") if isinstance(text, str) else text
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    _fsync_directory(directory)


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 minus the umask
    (mkstemp would leave it readable by its owner only)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(
    path: str, text: str, *, force: bool = False, protect: Iterable[str] = (), option: str = ""
) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace, so a
    reader never sees half a file and a failure leaves the old one as it was.

    An existing file is only replaced with force; the files in `protect` (the input) never are. `option` names the command-line option in messages ("--save")."""
    check_target(path, force=force, protect=protect, option=option)
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
