"""Arrays from files: a YAML data reference such as `inputs: {file: digits.npz, key: x}`.

Formats (by the file's name, or `format:`): `.npy`, `.npz` (`key:` names the array; optional
when the file holds one), `.csv` (numbers separated by commas; a first line of column names is
skipped), and MNIST's IDX (`.idx`, `*-idx3-ubyte`, `*.idx1-ubyte`, gzipped or not: gzip is
recognised by its magic bytes, not by the name). Paths are relative to the YAML file.

Options, applied in this order:
  key / columns / limit      which array, which columns of a 2-D array, the first `limit` samples
  scale: s                   x / s               (e.g. 255 for 8-bit pixels)
  normalize: {mean, std}     (x − mean) / std
  flatten: true | shape: […] each sample flattened to a vector, or reshaped
  one_hot: K                 integer labels 0..K−1 become one-hot rows of K (targets)
The arithmetic is float64; the values are stored as float64 (`bpcalc step`) or in the
training dtype (`bpcalc train`, float32 by default: one array, no float64 copy). Every
failure is a SpecError at the reference's place in the YAML.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from bpcalc.errors import SpecError
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

DATA_KEYS = (
    "file",
    "key",
    "format",
    "columns",
    "limit",
    "scale",
    "normalize",
    "flatten",
    "shape",
    "one_hot",
)
FORMATS = ("npy", "npz", "csv", "idx")

# IDX: magic = 0x00 0x00 <type> <number of dims>, then one big-endian uint32 per dim, then data.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataFileError(Exception):
    """A data file that cannot be read as what it claims to be (message without location)."""


@dataclass(frozen=True)
class Loaded:
    """values: (N, ...) with the batch axis first, in the dtype asked for (float64 unless told);
    classes: (N,) ints when one_hot made them."""

    values: np.ndarray
    classes: np.ndarray | None = None


def is_reference(value: Any) -> bool:
    """`{file: ...}` in place of inline numbers."""
    return isinstance(value, dict) and "file" in value


def base_dir(src: Src) -> Path:
    """The folder that relative data paths start from: the YAML file's own."""
    file = src.doc.file
    if file.startswith("<"):  # <stdin>, <string>
        return Path.cwd()
    return Path(file).parent


def resolve(src: Src) -> Path:
    fsrc = src.child("file")
    name = V.text(fsrc, "file")
    if not name:
        raise fsrc.error("file should name a data file (.npy, .npz, .csv or IDX)")
    p = Path(name).expanduser()
    return p if p.is_absolute() else base_dir(src) / p


def detect_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for fmt in ("npy", "npz", "csv"):
        if name.endswith("." + fmt):
            return fmt
    if name.endswith(".idx") or "-ubyte" in name or ".idx1" in name or ".idx3" in name:
        return "idx"
    return None


def load(src: Src, what: str, *, batched: bool = True, dtype: Any = np.float64) -> Loaded:
    """Read the data reference at `src`. batched=False: the file is one sample (`input:`).

    dtype: what the values are stored as (scaling and normalizing are float64 either way, see
    _as_values). float64 for `bpcalc step` (exact homework numbers); `bpcalc train` asks for its
    training dtype, so a 60000 x 784 MNIST file makes one 188 MB float32 array, not a 376 MB
    float64 one and then a float32 copy."""
    V.check_keys(src, DATA_KEYS, ("file",), f"the data reference of {what}")
    opts = src.value
    path = resolve(src)
    fsrc = src.child("file")
    if "format" in opts:
        fmt = V.choice(src.child("format"), "format", FORMATS)
    else:
        found = detect_format(path)
        if found is None:
            raise fsrc.error(
                f"cannot tell the format of {path.name!r} from its name; expected .npy, .npz, "
                ".csv or an IDX file (.idx, -idx3-ubyte, gzipped or not), or add format: "
                f"({', '.join(FORMATS)})"
            )
        fmt = found
    if not _exists(path, fsrc):
        # MNIST's files are often unzipped after download (or not): take the other one
        other = path.with_name(path.name[:-3] if path.name.endswith(".gz") else path.name + ".gz")
        if not _exists(other, fsrc):
            hint = (
                " (MNIST's files are not shipped with bpcalc: README.md, section Training, says "
                "where to download them)"
                if fmt == "idx"
                else ""
            )
            raise fsrc.error(f"no such data file: {path}{hint}")
        path = other
    if "key" in opts and fmt != "npz":
        raise src.child("key").error("key: only applies to .npz files", at_key=True)
    try:
        content = sniff(path)
        if content in ("npy", "npz", "idx") and content != fmt:
            said = f"format: {fmt}" if "format" in opts else f"its name says {fmt}"
            where = src.child("format") if "format" in opts else fsrc
            raise where.error(
                f"{path.name}: {said}, but the file holds {CONTENT[content]}; "
                + (f"write format: {content}" if "format" in opts else f"add format: {content}")
            )
        if content is None and fmt in ("npy", "npz") and "format" in opts:
            raise src.child("format").error(
                f"{path.name}: format: {fmt}, but the file does not start as {CONTENT[fmt]} "
                "does (text? then format: csv)"
            )
        if fmt == "npy":
            arr = read_npy(path)
        elif fmt == "npz":
            key = V.text(src.child("key"), "key") if "key" in opts else None
            arr = read_npz(path, key)
        elif fmt == "csv":
            arr = read_csv(path)
        else:
            arr = read_idx(path)
    except DataFileError as exc:
        raise fsrc.error(f"{path.name}: {exc}") from None
    except EOFError:
        raise fsrc.error(f"{path.name}: the file ends too early") from None
    except OSError as exc:
        raise fsrc.error(f"cannot read {path}: {exc.strerror or exc}") from None

    if not batched:
        arr = arr[None, ...]
    elif arr.ndim == 0:
        raise fsrc.error(
            f"{path.name} holds a single number; {what} needs an array with one sample per row"
        )
    if "columns" in opts:
        arr = _columns(src.child("columns"), arr)
    if "limit" in opts:
        if not batched:
            raise src.child("limit").error("limit: applies to a list of samples", at_key=True)
        arr = arr[: V.positive_int(src.child("limit"), "limit")]
    if arr.dtype.kind not in "biuf":
        raise fsrc.error(f"{path.name}: expected numbers, found an array of {arr.dtype}")
    if arr.size == 0:  # (0, ...) samples, a (N, 0) table, columns: []
        raise fsrc.error(
            f"{path.name}: no values to use (the array has shape {V._fmt(arr.shape)}"
            + (" after columns:" if "columns" in opts else "")
            + ")"
        )
    classes = None
    if "one_hot" in opts:
        arr, classes = _one_hot(src.child("one_hot"), arr)
    scale = V.positive_number(src.child("scale"), "scale") if "scale" in opts else None
    mean = std = None
    if "normalize" in opts:
        nsrc = src.child("normalize")
        V.check_keys(nsrc, ("mean", "std"), ("mean", "std"), "normalize")
        mean = V.number(nsrc.child("mean"), "the mean")
        std = V.positive_number(nsrc.child("std"), "the standard deviation (std)")
    from bpcalc import budget

    need = arr.nbytes + arr.size * np.dtype(dtype).itemsize  # the file's array and the values
    if need > budget.limits().memory:
        raise fsrc.error(
            f"{path.name}: {' x '.join(map(str, arr.shape))} values, read and then stored as "
            f"{np.dtype(dtype).name}: {_over(need)}"
        )
    values, bad = _as_values(arr, dtype, scale, mean, std)
    if bad is not None:
        found = arr[bad]
        if not np.isfinite(found):
            raise fsrc.error(
                f"{path.name}: element {list(bad)} is {found}; expected finite numbers"
            )
        narrow = np.dtype(dtype).itemsize < 8
        raise fsrc.error(
            f"{path.name}: element {list(bad)} is {found}, which does not fit "
            f"{np.dtype(dtype).name}{' once scaled' if scale or std else ''} (largest "
            f"{np.finfo(dtype).max:.3g}); scale the data"
            + (", or train with --dtype float64" if narrow else "")
        )
    values = _reshape(src, values, path.name)
    return Loaded(values, classes)


def _exists(path: Path, fsrc: Src) -> bool:
    """Path.exists, with a name the system cannot take (too long, a NUL) as a located error."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        reason = getattr(exc, "strerror", None) or str(exc)
        raise fsrc.error(f"cannot read {str(path)!r}: {reason}") from None
    return True


def _as_values(
    arr: np.ndarray, dtype: Any, scale: float | None, mean: float | None, std: float | None
) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """(arr / scale, then (· − mean) / std, in float64 arithmetic stored as `dtype`; the index
    of the first value that is not finite there, or None).

    A block of rows at a time: the numbers are those of float64 throughout, rounded once to
    dtype, so `bpcalc step` (float64) and `bpcalc train` (float32) read the same file alike,
    without a float64 copy of all of it (a 60000 x 784 MNIST file would make 376 MB)."""
    out = np.empty(arr.shape, dtype)
    rows = max(1, (1 << 16) // max(1, math.prod(arr.shape[1:])))  # ~64k numbers a block
    with np.errstate(over="ignore", invalid="ignore"):  # reported by the caller
        for i in range(0, arr.shape[0], rows):
            block = arr[i : i + rows].astype(np.float64)
            if scale is not None:
                block /= scale
            if mean is not None and std is not None:
                block -= mean
                block /= std
            stored = out[i : i + rows]
            stored[...] = block
            if not np.isfinite(stored).all():
                first = np.argwhere(~np.isfinite(stored))[0]
                return out, (i + int(first[0]), *(int(j) for j in first[1:]))
    return out, None


def _columns(src: Src, arr: np.ndarray) -> np.ndarray:
    """`columns: 3`, `columns: [0, 2, 5]` or `columns: "0:64"` (start:stop, 0-based, stop excluded)."""
    if arr.ndim != 2:
        raise src.error(
            f"columns: selects columns of a 2-D table; this array has shape {V._fmt(arr.shape)}"
        )
    ncol = arr.shape[1]
    v = src.value
    if isinstance(v, str):
        parts = v.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            start = int(parts[0]) if parts[0].strip() else 0
            stop = int(parts[1]) if parts[1].strip() else ncol
        except ValueError:
            raise src.error(
                f'columns should be a number, a list of numbers or a range such as "0:64"; found {v!r}'
            ) from None
        if not (0 <= start < stop <= ncol):
            raise src.error(f"columns {v!r} do not fit a table of {ncol} columns (0 to {ncol - 1})")
        return arr[:, start:stop]
    items = [src.child(i) for i in range(len(v))] if isinstance(v, list) else [src]
    cols = []
    for s in items:
        c = int(V.number(s, "a column number", integer=True))
        if not 0 <= c < ncol:
            hint = (
                ' (a range such as 1:10 must be quoted, "1:10": YAML reads 1:10 as the number 70)'
            )
            raise s.error(
                f"column {c} does not exist: the table has {ncol} columns (0 to {ncol - 1})"
                + (hint if c >= ncol and isinstance(src.value, int) else "")
            )
        cols.append(c)
    return arr[:, cols[0]] if not isinstance(v, list) else arr[:, cols]


def _one_hot(src: Src, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = V.positive_int(src, "one_hot (the number of classes)", minimum=2)
    labels = arr.reshape(arr.shape[0], -1)
    if labels.shape[1] != 1:
        raise src.error(
            f"one_hot: needs one integer label per sample; found {labels.shape[1]} values per sample"
        )
    labels = labels[:, 0]
    with np.errstate(invalid="ignore"):  # NaN or a huge label: found out below
        as_int = labels.astype(np.int64)
    wrong = (as_int != labels) | (as_int < 0) | (as_int >= k)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise src.error(f"label {labels[i]:g} of sample {i} is not a class index 0 to {k - 1}")
    return one_hot_rows(src, as_int, k), as_int


def one_hot_rows(src: Src, classes: np.ndarray, k: int, dtype: Any = np.float64) -> np.ndarray:
    """(N, k) rows with a 1 at each class (np.eye(k)[classes] would build k x k first);
    sized against the memory budget before it is allocated, the error at `src`."""
    from bpcalc import budget

    n = len(classes)
    need = n * k * np.dtype(dtype).itemsize
    if need > budget.limits().memory:
        raise src.error(f"{n} one-hot targets of {k} classes: {_over(need)}")
    out = np.zeros((n, k), dtype=dtype)
    out[np.arange(n), classes] = 1
    return out


def _reshape(src: Src, values: np.ndarray, fname: str) -> np.ndarray:
    opts = src.value
    n = values.shape[0]
    if "flatten" in opts and "shape" in opts:
        raise src.child("shape").error("give flatten: or shape:, not both", at_key=True)
    if "flatten" in opts:
        if V.boolean(src.child("flatten"), "flatten"):
            return values.reshape(n, -1)
        return values
    if "shape" not in opts:
        return values
    ssrc = src.child("shape")
    if not isinstance(ssrc.value, list) or not ssrc.value:
        raise ssrc.error(
            f"shape should be a list such as [1, 28, 28], found {V.type_name(ssrc.value)}"
        )
    shape = tuple(V.positive_int(ssrc.child(i), "a size in shape") for i in range(len(ssrc.value)))
    per = math.prod(values.shape[1:])
    if math.prod(shape) != per:
        raise ssrc.error(
            f"each sample of {fname} has {per} values (shape {V._fmt(values.shape[1:])}), "
            f"which cannot be reshaped to {V._fmt(shape)} ({math.prod(shape)} values)"
        )
    return values.reshape(n, *shape)


# --- readers: a path in, an array out, DataFileError for what is wrong with the file ---------
#
# Every reader opens the file with _open_data (regular files only: a FIFO, a device or a
# directory is refused before it is opened, and the open itself cannot block), reads it as a
# stream (gzip inflated as it is read) and checks a size before it reads it: a .npy header's
# shape, an IDX header's dims, a CSV's text (budget.CSV_BYTES_PER_CHAR times its size). Nothing
# is reserved up front: a header that lies is found out when the data ends early.

CHUNK = 1 << 20
CSV_BYTES_PER_CHAR = 6  # text, its str copy, the parsed numbers: a CSV takes ~6x its size
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    for test, what in _KINDS:
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) else "not a regular file"


def _open_data(path: Path) -> BinaryIO:
    """The file opened for reading, if it is a regular, non-empty file. os.stat first (a named
    pipe is never opened: opening one blocks until a writer comes), then O_NONBLOCK and fstat,
    in case the name changed in between."""
    what = _not_regular(os.stat(path).st_mode)
    if what is not None:
        raise DataFileError(f"this is {what}; expected a regular data file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        what = _not_regular(st.st_mode)
        if what is not None:
            raise DataFileError(f"this is {what}; expected a regular data file")
        if st.st_size == 0:
            raise DataFileError("the file is empty (0 bytes)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_size(fh: BinaryIO) -> int:
    return os.fstat(fh.fileno()).st_size


def _is_gzip(fh: BinaryIO) -> bool:
    head = fh.read(2)
    fh.seek(0)
    return head == b"\x1f\x8b"


@contextmanager
def _stream(path: Path) -> Iterator[tuple[BinaryIO, int | None]]:
    """(the file's content as a stream, its size in bytes or None when gzipped); gzip is
    inflated as it is read, and damaged gzip data is a DataFileError."""
    import gzip
    import zlib

    with _open_data(path) as fh:
        if not _is_gzip(fh):
            yield fh, _file_size(fh)
            return
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield cast(BinaryIO, gz), None
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno:
                raise  # the system's error (I/O), not the data's
            raise DataFileError(f"the gzip data is damaged ({exc})") from None


def _read_exact(stream: BinaryIO, n: int) -> bytearray:
    """n bytes (fewer if the stream ends first), a chunk at a time: the buffer grows with what
    arrives, so a header that claims more than the file holds costs nothing."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_all(stream: BinaryIO, limit: int, what: str) -> bytes:
    """Everything up to `limit` bytes; DataFileError (`what` says why) past it."""
    buf = _read_exact(stream, limit)
    if len(buf) == limit and stream.read(1):
        raise DataFileError(what)
    return bytes(buf)


def _over(need: int) -> str:
    from bpcalc import budget

    return budget.size_text(need) + budget.over_memory(need)


MAX_DIMS = 32  # numpy holds at most 64 axes; no data bpcalc reads has more than a few


def _check_shape(shape: tuple[int, ...], what: str) -> None:
    """Axes numpy can make: at most MAX_DIMS of them, each 0 to 2**62."""
    if len(shape) > MAX_DIMS:
        raise DataFileError(f"{what} announces {len(shape)} axes; at most {MAX_DIMS} are read")
    nonzero = math.prod(d for d in shape if d)  # numpy sizes axes even when one of them is 0
    if any(d < 0 for d in shape) or nonzero > 1 << 58:
        raise DataFileError(f"{what} announces the shape {shape}, which no array can have")


def _check_size(count: int, dtype: np.dtype, shape: tuple[int, ...], available: int | None) -> int:
    """The bytes a header announces, checked against what the file holds (when known) and the
    memory budget, before any of it is read."""
    from bpcalc import budget

    need = count * dtype.itemsize
    described = f"{' x '.join(map(str, shape)) or 'a single'} values of {dtype.name}"
    if available is not None and need > available:
        raise DataFileError(
            f"the header says {described} ({need} bytes of data) but the file has {available} "
            "(is it truncated?)"
        )
    if need > budget.limits().memory:
        raise DataFileError(f"the header says {described}: {_over(need)}")
    return need


def sniff(path: Path) -> str | None:
    """What the content is, by its first bytes: npy, npz, idx, gzip, or None (text or unknown)."""
    with _open_data(path) as fh:
        head = fh.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if len(head) >= 4 and head[:2] == b"\x00\x00" and head[2] in IDX_TYPES and head[3] > 0:
        return "idx"
    return None


CONTENT = {
    "npy": "a .npy array",
    "npz": "a .npz archive (zip)",
    "idx": "an IDX file",
    "csv": "text",
    "gzip": "gzip data",
}


def read_idx(path: Path) -> np.ndarray:
    """MNIST's IDX format: bytes 0–1 zero, byte 2 the type (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), byte 3 the number of dims d; then d big-endian
    uint32 sizes; then the values, big-endian, row-major. Gzipped files are inflated as read."""
    with _stream(path) as (stream, size):
        raw = _read_exact(stream, 4)
        if len(raw) < 4:
            raise DataFileError(f"only {len(raw)} bytes: too short for an IDX header")
        if raw[0] != 0 or raw[1] != 0:
            raise DataFileError(
                f"not an IDX file: its magic number should start with two zero bytes, found "
                f"{raw[0]:02x} {raw[1]:02x}"
            )
        code, ndim = raw[2], raw[3]
        if code not in IDX_TYPES:
            known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
            raise DataFileError(f"unknown IDX data type 0x{code:02X}; expected one of {known}")
        if ndim == 0:
            raise DataFileError("the IDX header says 0 dimensions")
        header = 4 + 4 * ndim
        raw += _read_exact(stream, 4 * ndim)
        if len(raw) < header:
            raise DataFileError(
                f"the IDX header announces {ndim} dimensions but the file ends first"
            )
        dims = struct.unpack(f">{ndim}I", bytes(raw[4:header]))
        _check_shape(dims, "the IDX header")
        dtype = np.dtype(IDX_TYPES[code])
        count = math.prod(dims)
        expected = count * dtype.itemsize
        described = (
            f"{' x '.join(map(str, dims))} values of {dtype.name} ({expected} bytes of data)"
        )
        if size is not None and size - header != expected:
            raise DataFileError(f"the IDX header says {described} but the file has {size - header}")
        _check_size(count, dtype, dims, None)
        data = _read_exact(stream, expected)
        if len(data) != expected or stream.read(1):
            got = len(data) if len(data) != expected else "more"
            raise DataFileError(f"the IDX header says {described} but the file has {got}")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: Path, arr: np.ndarray, *, compress: bool = False) -> None:
    """Write `arr` in IDX format (big-endian), gzipped when `compress` (for tests and tools)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    native = np.dtype(arr.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot hold {arr.dtype}")
    raw = (
        bytes([0, 0, codes[native], arr.ndim])
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.astype(native.newbyteorder(">")).tobytes()
    )
    if compress:
        import gzip

        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _npy(stream: BinaryIO, available: int | None) -> np.ndarray:
    """An array in .npy format from a stream: the header first, its shape and dtype checked
    against `available` bytes and the memory budget, then exactly the bytes it announces.
    Pickled (object) arrays are refused, as np.load(allow_pickle=False) does."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
        else:
            shape, fortran, dtype = fmt._read_array_header(stream, version)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # numpy's header parser raises whatever the bytes make it raise
        raise DataFileError(f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
    _check_shape(shape, "its header")
    if dtype.hasobject:
        raise DataFileError(
            "the array holds Python objects (pickled data), which bpcalc never loads; save "
            "numbers (np.save of a numeric array)"
        )
    if dtype.shape:  # a sub-array dtype such as (2,)f8: its axes go last
        shape, dtype = (*shape, *dtype.shape), dtype.base
    if dtype.kind not in "biuf" or dtype.itemsize == 0:
        raise DataFileError(f"expected numbers, found an array of {dtype}")
    count = math.prod(shape)
    header = stream.tell() if available is not None else 0
    need = _check_size(count, dtype, shape, None if available is None else available - header)
    data = _read_exact(stream, need)
    if len(data) < need:
        raise DataFileError(
            f"the header says {' x '.join(map(str, shape))} values of {dtype.name} ({need} "
            f"bytes of data) but only {len(data)} follow (is the file truncated?)"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def read_npy(path: Path) -> np.ndarray:
    with _stream(path) as (stream, size):
        return _npy(stream, size)


def npz_keys(path: Path) -> list[str]:
    """The names of an .npz's arrays (its members without .npy); DataFileError if it is none."""
    import zipfile

    with _open_data(path) as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                return [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
        except (zipfile.BadZipFile, ValueError, struct.error, OverflowError) as exc:
            raise DataFileError(f"not a zip archive ({exc})") from None


def read_npz(path: Path, key: str | None) -> np.ndarray:
    """An .npz (a zip of .npy files, np.savez or np.savez_compressed): `key` names the member
    (without .npy); each member is read as a stream and its header checked before its data."""
    import zipfile
    import zlib

    with _open_data(path) as fh:
        if _is_gzip(fh):
            raise DataFileError("a gzipped .npz cannot be read; unzip it with gunzip first")
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = {i.filename: i for i in zf.infolist()}
                keys = [n[:-4] if n.endswith(".npy") else n for n in infos]
                if key is None:
                    if len(keys) != 1:
                        raise DataFileError(
                            f"holds {len(keys)} arrays ({', '.join(keys)}); add key: to choose one"
                        )
                    key = keys[0]
                if key not in keys:
                    raise DataFileError(
                        f"has no array {key!r}{V.suggest(key, keys)}; it holds "
                        f"{', '.join(keys) or 'none'}"
                    )
                info = infos.get(key + ".npy")
                if info is None:
                    raise DataFileError(
                        f"{key!r} in the archive is not an .npy array (its name has no .npy)"
                    )
                with zf.open(info) as member:
                    return _npy(cast(BinaryIO, member), info.file_size)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,  # a compression method zipfile does not know
            RuntimeError,  # an encrypted member
            ValueError,
            struct.error,
            OverflowError,
        ) as exc:
            raise DataFileError(f"not a readable .npz file ({exc})") from None


def read_csv(path: Path) -> np.ndarray:
    """Numbers separated by commas, one sample per line; a first line of column names is skipped.
    The text may take CSV_BYTES_PER_CHAR times its size while it is parsed: a file (or what a
    gzipped one inflates to) larger than the budget allows is refused as it is read."""
    from bpcalc import budget

    limit = budget.limits().memory // CSV_BYTES_PER_CHAR
    with _stream(path) as (stream, size):
        if size is not None and size > limit:
            raise DataFileError(
                f"{budget.size_text(size)} of text takes about {CSV_BYTES_PER_CHAR} times that "
                f"to read: {_over(size * CSV_BYTES_PER_CHAR)}; or store the numbers as .npy"
            )
        raw = _read_all(
            stream,
            limit,
            f"the gzipped text inflates to more than {budget.size_text(limit)}, the most a CSV "
            f"file may hold within the memory budget of {budget.size_text(limit * CSV_BYTES_PER_CHAR)} "
            f"(reading takes about {CSV_BYTES_PER_CHAR} times the text); raise it with "
            "--max-memory, or store the numbers as .npy",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFileError("not UTF-8 text") from None
    del raw
    lines = text.splitlines()
    first = _first_content_line(lines)
    if first == 0:
        raise DataFileError("no rows of numbers")
    header = not all(_is_float(f) for f in lines[first - 1].split(","))
    if header and _first_content_line(lines[first:]) == 0:
        raise DataFileError("no rows of numbers: only a line of column names")
    import io

    try:  # the fast reader; the slow loop below only runs to say what is wrong
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what numpy would warn about is reported below
            arr = np.loadtxt(
                io.StringIO(text),
                delimiter=",",
                comments="#",
                skiprows=first if header else 0,
                ndmin=2,
            )
    except ValueError:
        _diagnose_csv(lines, first if header else 0)
        raise DataFileError("cannot read the numbers") from None
    if arr.size == 0:
        raise DataFileError("no rows of numbers")
    return arr[:, 0] if arr.shape[1] == 1 else arr


def _diagnose_csv(lines: list[str], skip: int) -> None:
    width = None
    for i, line in enumerate(lines, start=1):
        if i <= skip or not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(",")
        bad = [f for f in fields if not _is_float(f)]
        if bad:
            raise DataFileError(f"line {i}: {bad[0].strip()!r} is not a number")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise DataFileError(f"line {i} has {len(fields)} values but the first row has {width}")


def _first_content_line(lines: list[str]) -> int:
    for i, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            return i
    return 0


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- targets from a file ---------------------------------------------------------------------


def targets_from_file(
    src: Src,
    key: str,
    loss_kind: str,
    out_shape: tuple[int, ...],
    out_name: str,
    n: int,
    batched: bool,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Targets (N, *out_shape) of `dtype` and the class indices (N,) when they are labels.

    A 1-D file of whole numbers for a cross_entropy network with K > 1 outputs is read as class
    indices (as `target: 3` inline); `one_hot: K` says so explicitly."""
    # float64 (N x K is small), so that the checks below see the numbers as `bpcalc step` does
    loaded = load(src, key, batched=batched)
    y, classes = loaded.values, loaded.classes
    k = math.prod(out_shape)
    if y.shape[0] != n:
        raise src.error(f"there are {n} inputs but {y.shape[0]} targets in the file")
    flat = y.reshape(n, -1)
    sequence = len(out_shape) == 2  # (T, K): one class per position
    if (
        sequence
        and loss_kind == "cross_entropy"
        and flat.shape[1] == out_shape[0]
        and np.array_equal(flat, np.round(flat))
    ):
        labels = flat.astype(np.int64)
        wrong = (labels < 0) | (labels >= out_shape[1])
        if wrong.any():
            i, t = (int(v) for v in np.argwhere(wrong)[0])
            raise src.error(
                f"class index {labels[i, t]} of sample {i}, position {t} does not fit the output, "
                f"which has {out_shape[1]} classes (0 to {out_shape[1] - 1})"
            )
        return np.eye(out_shape[1], dtype=dtype)[labels], labels
    if (
        classes is None
        and loss_kind == "cross_entropy"
        and k > 1
        and flat.shape[1] == 1
        and np.array_equal(flat, np.round(flat))
    ):
        labels = flat[:, 0].astype(np.int64)
        wrong = (labels < 0) | (labels >= k)
        if wrong.any():
            i = int(np.argmax(wrong))
            raise src.error(
                f"class index {labels[i]} of sample {i} does not fit the output, which has {k} "
                f"classes (0 to {k - 1})"
            )
        return one_hot_rows(src, labels, k, dtype).reshape(n, *out_shape), labels
    if flat.shape[1] != k:
        raise src.error(
            f"each target in the file has {flat.shape[1]} value{'s' if flat.shape[1] != 1 else ''} "
            f"but the output of {out_name!r} has {k}"
            + (
                "; for labels 0..K−1 add one_hot: K"
                if flat.shape[1] == 1 and loss_kind != "cross_entropy"
                else ""
            )
        )
    if loss_kind in ("cross_entropy", "binary_cross_entropy"):
        wrong = ((flat < 0) | (flat > 1)).any(axis=1)
        if wrong.any():
            i = int(np.argmax(wrong))
            raise src.error(
                f"{loss_kind} needs targets between 0 and 1; sample {i}'s target has values "
                f"{flat[i].min():g} to {flat[i].max():g}"
            )
    if loss_kind == "cross_entropy":
        sums = flat.sum(axis=1) / (out_shape[0] if sequence else 1)  # one-hot at each position
        wrong = ~np.isclose(sums, 1.0)
        if wrong.any():
            i = int(np.argmax(wrong))
            raise src.error(
                f"a cross_entropy target should be one-hot (or sum to 1) or a class index; "
                f"sample {i}'s sums to {sums[i]:g}"
            )
    return y.reshape(n, *out_shape).astype(dtype, copy=False), classes


__all__ = [
    "DATA_KEYS",
    "DataFileError",
    "Loaded",
    "SpecError",
    "is_reference",
    "one_hot_rows",
    "load",
    "read_csv",
    "read_idx",
    "read_npy",
    "read_npz",
    "targets_from_file",
    "write_idx",
]
