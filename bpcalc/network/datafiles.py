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

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
MAX_DATA_BYTES = 4 * 1024**3  # a gzipped file may not inflate past this ("zip bomb")

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
    if not path.exists():
        # MNIST's files are often unzipped after download (or not): take the other one
        other = path.with_name(path.name[:-3] if path.name.endswith(".gz") else path.name + ".gz")
        if not other.exists():
            hint = (
                " (MNIST's files are not shipped with bpcalc: README.md, section Training, says "
                "where to download them)"
                if fmt == "idx"
                else ""
            )
            raise fsrc.error(f"no such data file: {path}{hint}")
        path = other
    if path.is_dir():
        raise fsrc.error(f"{path} is a directory; expected a data file")
    if "key" in opts and fmt != "npz":
        raise src.child("key").error("key: only applies to .npz files", at_key=True)
    try:
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
    as_int = labels.astype(np.int64)
    wrong = (as_int != labels) | (as_int < 0) | (as_int >= k)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise src.error(f"label {labels[i]:g} of sample {i} is not a class index 0 to {k - 1}")
    return np.eye(k)[as_int], as_int


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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, inflated when it starts with gzip's magic 1f 8b."""
    with path.open("rb") as fh:
        head = fh.read(2)
    if head != b"\x1f\x8b":
        with path.open("rb") as fh:
            return fh.read()
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as gz:
            raw = gz.read(MAX_DATA_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"the gzip data is damaged ({exc})") from None
    if len(raw) > MAX_DATA_BYTES:
        raise DataFileError(f"inflates to more than {MAX_DATA_BYTES // 1024**3} GiB")
    return raw


def read_idx(path: Path) -> np.ndarray:
    """MNIST's IDX format: bytes 0–1 zero, byte 2 the type (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), byte 3 the number of dims d; then d big-endian
    uint32 sizes; then the values, big-endian, row-major. Gzipped files are inflated first."""
    raw = _read_bytes(path)
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
    if len(raw) < header:
        raise DataFileError(f"the IDX header announces {ndim} dimensions but the file ends first")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFileError(
            f"the IDX header says {' x '.join(map(str, dims))} values of {dtype.name} "
            f"({expected} bytes of data) but the file has {len(raw) - header}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header)
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


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFileError(f"not a readable .npy file ({exc})") from None


def read_npz(path: Path, key: str | None) -> np.ndarray:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if key is None:
                if len(keys) != 1:
                    raise DataFileError(
                        f"holds {len(keys)} arrays ({', '.join(keys)}); add key: to choose one"
                    )
                key = keys[0]
            if key not in keys:
                raise DataFileError(
                    f"has no array {key!r}{V.suggest(key, keys)}; it holds {', '.join(keys) or 'none'}"
                )
            return npz[key]
    except (ValueError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"not a readable .npz file ({exc})") from None


def read_csv(path: Path) -> np.ndarray:
    """Numbers separated by commas, one sample per line; a first line of column names is skipped."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFileError("not UTF-8 text") from None
    lines = text.splitlines()
    first = _first_content_line(lines)
    if first == 0:
        raise DataFileError("no rows of numbers")
    header = not all(_is_float(f) for f in lines[first - 1].split(","))
    import io

    try:  # the fast reader; the slow loop below only runs to say what is wrong
        arr = np.loadtxt(
            io.StringIO(text), delimiter=",", comments="#", skiprows=first if header else 0, ndmin=2
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
        return np.eye(k, dtype=dtype)[labels].reshape(n, *out_shape), labels
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
    "load",
    "read_csv",
    "read_idx",
    "read_npy",
    "read_npz",
    "targets_from_file",
    "write_idx",
]
