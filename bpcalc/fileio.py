"""Writing files safely: every file bpcalc writes (train --save, new -o, ...) goes through here.

atomic_write puts the new content in a temporary file in the same directory, flushes it to
disk (fsync) and renames it over the target with os.replace, which is atomic on POSIX and
Windows: a reader sees the old file or the new one, never half of one, and a write that is
interrupted (an error, Ctrl-C, a full disk) leaves the old file exactly as it was.

Only regular files are replaced: a device (/dev/null), a named pipe or a socket never is,
even with --force, and a symbolic link only when it points to a regular file in its own
folder (that file is written; the link stays). The temporary file's name carries the
writer's process id (`.NAME.PID.RANDOM.tmp`): one left by a killed run (kill -9 gives no
chance to clean up) is removed by the next write to the same target, once its process is
gone. Between creating the temporary file and arming its cleanup, Ctrl-C and SIGTERM are
held back, so an interrupt cannot land in between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    target = replaceable(target, str(target))
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
    remove_stale_temporaries(target)
    held = _hold_interrupts()  # Ctrl-C waits until the try below can remove the temporary
    try:
        fd, tmp = _create_temporary(directory, target.name)
    except OSError as exc:
        _release_interrupts(held)
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    owned: int | None = fd  # closed here until fdopen owns it
    try:
        _release_interrupts(held)  # a Ctrl-C held back is raised here, inside the try
        with os.fdopen(fd, "wb") as fh:
            owned = None
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            if owned is not None:
                os.close(owned)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    _fsync_directory(directory)


_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp$")
_OLD_TMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")  # mkstemp's, before PIDs
STALE_AFTER = 24 * 3600  # seconds: an old-style temporary (no PID) older than this is stale


def _create_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new file `.NAME.PID.RANDOM.tmp` in `directory`, opened for writing (mode 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(directory))


def remove_stale_temporaries(target: Path) -> list[str]:
    """Remove the temporary files a killed write to `target` left: those whose process is
    gone (or, from a bpcalc that did not name its process, older than a day). Returns them."""
    directory = target.parent if str(target.parent) else Path(".")
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for entry in names:
        m = _TMP.match(entry) or _OLD_TMP.match(entry)
        if m is None or m.group("name") != target.name:
            continue
        p = directory / entry
        try:
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            pid = int(m["pid"]) if "pid" in m.groupdict() else None
            if pid is not None:
                if pid == os.getpid() or _alive(pid):
                    continue  # being written now, by this process or another one
            elif time.time() - st.st_mtime < STALE_AFTER:
                continue
            os.unlink(p)
            removed.append(entry)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or cannot tell): leave its file alone
    return True


@dataclass
class _Held:
    """Signals caught while held, and the handlers to put back."""

    handlers: dict[int, Any]
    caught: list[int]


def _hold_interrupts() -> _Held | None:
    """Hold SIGINT, SIGTERM and SIGHUP: each one that arrives is noted, not acted on, until
    _release_interrupts. Python runs signal handlers in the main thread whichever thread the
    signal reaches (a process has BLAS threads too), so the handlers are swapped, not the
    thread's signal mask. None outside the main thread (where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    held = _Held({}, [])

    def note(signum: int, frame: Any) -> None:
        held.caught.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            held.handlers[sig] = signal.signal(sig, note)
    return held


def _release_interrupts(held: _Held | None) -> None:
    """Put the handlers back; a signal that came meanwhile is raised again now, where the
    caller is ready for it."""
    if held is None:
        return
    for sig, handler in held.handlers.items():
        signal.signal(sig, handler)
    for sig in dict.fromkeys(held.caught):
        signal.raise_signal(sig)


def replaceable(p: Path, what: str) -> Path:
    """The path to replace for `p`: `p` itself when it is missing or a regular file; the file
    a symbolic link points to when that is a regular file in the link's own folder. Anything
    else (a device, a FIFO, a socket, a link out of the folder or to nothing) is a UsageError,
    whatever --force says: bpcalc replaces files, nothing else."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise UsageError(f"{what}: cannot write there: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        folder = os.path.realpath(p.parent if str(p.parent) else ".")
        real = Path(os.path.realpath(p))
        if not real.exists():
            raise UsageError(
                f"{what} is a symbolic link to {real}, which does not exist; bpcalc does not "
                "write through links: remove the link or choose another name"
            )
        if str(real.parent) != folder:
            raise UsageError(
                f"{what} is a symbolic link to {real}, outside its folder; bpcalc does not "
                "write through such links: remove the link or choose another name"
            )
        target = real
        st = os.stat(real)
    else:
        target = p
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a named pipe (FIFO)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file"
        )
        raise UsageError(f"{what} is {kind}; bpcalc writes only regular files (even with --force)")
    return target


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
    what = f"{option} {path}" if option else path
    atomic_write(replaceable(Path(path), what), text, force=True)  # check_target decided


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
    replaceable(p, what)
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
