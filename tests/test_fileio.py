"""atomic_write: a new file appears whole or not at all, and nothing is lost on the way."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bpcalc import fileio
from bpcalc.errors import ExitCode, UsageError
from bpcalc.fileio import atomic_write


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_new_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    atomic_write(target, "a: 1\nb: é\n", force=False)
    assert target.read_text(encoding="utf-8") == "a: 1\nb: é\n"
    assert _leftovers(tmp_path) == []


def test_bytes_are_written_as_they_are(tmp_path: Path) -> None:
    target = tmp_path / "out.npz"
    atomic_write(target, b"\x00\x01\xff", force=False)
    assert target.read_bytes() == b"\x00\x01\xff"


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old")
    with pytest.raises(UsageError, match="already exists; add --force") as info:
        atomic_write(target, "new", force=False)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_an_existing_file_is_replaced_with_force_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write(target, "new", force=True)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_new_file_gets_the_usual_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.yaml", "x", force=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.yaml").stat().st_mode) == 0o644  # 0o666 & ~0o022


def test_the_input_file_is_never_overwritten_even_with_force(tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text("input")
    with pytest.raises(UsageError, match="refusing to write over the input file"):
        atomic_write(net, "output", force=True, protect=[str(net)])
    # the same file under another name (a relative path, a symlink) is still the input
    link = tmp_path / "link.yaml"
    link.symlink_to(net)
    with pytest.raises(UsageError, match="input file"):
        atomic_write(link, "output", force=True, protect=[net])
    assert net.read_text() == "input"


def test_a_directory_is_not_a_file_to_write(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        atomic_write(tmp_path, "x", force=True)


def test_a_missing_directory_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write .*No such file or directory"):
        atomic_write(tmp_path / "nope" / "out.yaml", "x", force=False)


class _DiskFull(OSError):
    pass


def test_a_write_that_fails_halfway_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old content\n")
    real_fdopen = os.fdopen

    class HalfWriter:
        """A file that takes half of what it is given, then fails like a full disk."""

        def __init__(self, fh):  # type: ignore[no-untyped-def]
            self.fh = fh

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            self.fh.close()
            return False

        def write(self, data: bytes) -> int:
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise _DiskFull(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(UsageError, match="cannot write .*No space left on device"):
        atomic_write(target, "new content, much longer than the old one\n", force=True)
    assert target.read_text() == "old content\n"
    assert _leftovers(tmp_path) == []


def test_an_interrupt_before_the_rename_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.yaml"
    target.write_text("old content\n")

    def interrupted(src: str, dst: str) -> None:
        assert Path(src).read_text() == "new content\n"  # the new file was complete
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new content\n", force=True)
    assert target.read_text() == "old content\n"
    assert _leftovers(tmp_path) == []


def test_the_data_is_flushed_to_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        fileio.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))
    )
    atomic_write(tmp_path / "out.yaml", "x", force=False)
    assert events[:2] == ["fsync", "replace"]
