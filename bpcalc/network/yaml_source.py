"""YAML -> plain Python data, remembering file:line:column for every node.

Safe loading only (no Python object tags), duplicate keys rejected (PyYAML would keep the
last silently), and limits against hostile input: file size, nesting depth and the number
of nodes after aliases are expanded ("billion laughs").
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from bpcalc.errors import Location, SpecError

MAX_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 5_000_000

PathKey = tuple[str | int, ...]

try:  # libyaml's composer is ~10x faster for files with large weight matrices
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass
class SourceDoc:
    """Parsed YAML data plus where each value (and each mapping key) stood in the file."""

    data: Any
    file: str
    locations: dict[PathKey, Location] = field(default_factory=dict)
    key_locations: dict[PathKey, Location] = field(default_factory=dict)
    # every scalar exactly as written (YAML reads 0.120 as 0.12), when asked for
    scalar_text: dict[PathKey, str] | None = None

    def root(self) -> Src:
        return Src(self, ())


@dataclass(frozen=True)
class Src:
    """A value in a SourceDoc together with its path; errors raised from here carry its location."""

    doc: SourceDoc
    path: PathKey

    @property
    def value(self) -> Any:
        v = self.doc.data
        for p in self.path:
            v = v[p]
        return v

    @property
    def loc(self) -> Location:
        path = self.path
        while path not in self.doc.locations and path:
            path = path[:-1]
        return self.doc.locations.get(path, Location(self.doc.file, 1, 1))

    @property
    def key_loc(self) -> Location:
        return self.doc.key_locations.get(self.path, self.loc)

    @property
    def dotted(self) -> str:
        out = ""
        for p in self.path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
        return out or "the document"

    def child(self, key: str | int) -> Src:
        return Src(self.doc, (*self.path, key))

    def error(self, message: str, *, at_key: bool = False) -> SpecError:
        return SpecError(message, self.key_loc if at_key else self.loc)


def _read_limited(fh: BinaryIO) -> bytes:
    """At most MAX_BYTES + 1 bytes, a chunk at a time: one read(MAX_BYTES + 1) would allocate
    32 MiB for every file, however small."""
    chunks: list[bytes] = []
    total = 0
    while total <= MAX_BYTES:
        chunk = fh.read(min(1 << 20, MAX_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_source(path: str) -> tuple[str, str]:
    """Read a file (or standard input for "-") as UTF-8 text; returns (display name, text)."""
    if path == "-":
        raw = _read_limited(sys.stdin.buffer)
        name = "<stdin>"
    else:
        p = Path(path)
        name = path if path.isprintable() else repr(path)[1:-1]  # a NUL or a newline, escaped
        where = Location(name, 1, 1)
        try:
            if not p.exists():
                raise SpecError("no such file", where)
            if p.is_dir():
                raise SpecError("this is a directory; expected a YAML file", where)
            with p.open("rb") as fh:
                raw = _read_limited(fh)
        except (OSError, ValueError) as exc:  # name too long, embedded NUL, permissions, I/O
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SpecError(f"cannot read the file: {reason}", where) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB, the limit for a YAML "
            "file; keep big arrays in .npy/.npz/.csv/IDX files and reference them with {file: ...}",
            Location(name, 1, 1),
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot be decoded); "
            "save it as UTF-8",
            Location(name, line, col),
        ) from None
    return name, text


def load_yaml_file(path: str) -> SourceDoc:
    name, text = read_source(path)
    return load_yaml_text(text, name)


def _mark(file: str, mark: Any) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def load_yaml_text(text: str, file: str = "<string>", *, keep_text: bool = False) -> SourceDoc:
    """Parse YAML text; every failure is a SpecError with the place it happened.
    keep_text: also keep each scalar as written, in doc.scalar_text (the answer checker
    counts the decimals a student wrote).

    The document is built from libyaml's event stream by an iterative builder (no recursion,
    so a file of 100,000 nested brackets is an error message, not a crashed interpreter),
    counting values as aliases expand them, so an alias bomb stops at its first alias past
    the limit without building anything.
    """
    if len(text) > MAX_BYTES:
        raise SpecError(
            f"the text is larger than {MAX_BYTES // (1024 * 1024)} MiB, the limit for a YAML file",
            Location(file, 1, 1),
        )
    doc = SourceDoc(data=None, file=file, scalar_text={} if keep_text else None)
    loader = _Loader(text)
    try:
        doc.data = _Builder(doc, loader).build()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark(file, mark) if mark is not None else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None and mark.index < len(text) and text[mark.index] == "\t":
            problem += " (a tab: YAML is indented with spaces only)"
        raise SpecError(f"this is not valid YAML: {problem}", where) from None
    except yaml.reader.ReaderError as exc:  # a control character such as NUL
        pos = min(exc.position, len(text))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise SpecError(
            f"this is not valid YAML: the control character {exc.character!r} is not allowed "
            "(is this a binary file?)",
            Location(file, line, col),
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"this is not valid YAML: {exc}", Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return doc


_TAG = "tag:yaml.org,2002:"
_SEQ_TAGS = (None, "!", _TAG + "seq")
_MAP_TAGS = (None, "!", _TAG + "map")
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
# YAML 1.2 numbers that YAML 1.1 (PyYAML) reads as text: 1e-3, 2E5, 1.0e300 (no sign, no dot).
_FLOAT_12 = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
# The common plain decimals, read without the resolver (a tenfold speed-up for big matrices).
_PLAIN_FLOAT = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _plain_number(v: str) -> int | float:
    """A plain decimal as int or float; a whole number of more than 400 digits (beyond float64,
    and beyond what Python converts from text) becomes ±inf, reported as not finite."""
    if _PLAIN_INT.fullmatch(v):
        return int(v) if len(v) <= 400 else float("-inf" if v.startswith("-") else "inf")
    return float(v)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


@dataclass
class _Frame:
    """A list or mapping being built: its value, path, and how many values it expands to."""

    value: list[Any] | dict[str, Any]
    path: PathKey
    anchor: str | None
    count: int = 1
    height: int = 1
    key: str | None = None  # a mapping's key waiting for its value


class _Builder:
    """Builds plain data from the YAML event stream, checking the limits as it goes."""

    def __init__(self, doc: SourceDoc, loader: Any) -> None:
        self.doc = doc
        self.loader = loader
        self.constructor = yaml.SafeLoader("")
        self.total = 0
        from bpcalc import budget

        # the values built (not those an alias repeats) cost ~320 bytes each while read
        self.built = 0
        self.max_built = budget.yaml_values()
        # anchor -> (value, values it expands to, nesting height); None while still open
        self.anchors: dict[str, tuple[Any, int, int] | None] = {}

    def where(self, mark: Any) -> Location:
        return _mark(self.doc.file, mark)

    def build(self) -> Any:
        loader = self.loader
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        scalar_event = yaml.ScalarEvent
        while loader.check_event():
            ev = loader.get_event()
            # Fast path, the bulk of any matrix: a plain number in a list.
            if (
                type(ev) is scalar_event
                and stack
                and type(stack[-1].value) is list
                and ev.anchor is None
                and ev.tag is None
                and ev.implicit[0]
                and (_PLAIN_FLOAT.fullmatch(ev.value) or _PLAIN_INT.fullmatch(ev.value))
            ):
                parent = stack[-1]
                if self.doc.scalar_text is not None:
                    self.doc.scalar_text[(*parent.path, len(parent.value))] = ev.value
                if len(parent.path) < 5:
                    self.doc.locations[(*parent.path, len(parent.value))] = self.where(
                        ev.start_mark
                    )
                self.total += 1
                self.built += 1
                if self.total > MAX_NODES or self.built > self.max_built:
                    self.count(0, self.where(ev.start_mark))
                v = ev.value
                parent.value.append(_plain_number(v))
                parent.count += 1
                continue
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise SpecError(
                        "this file holds more than one YAML document (a second '---'); "
                        "expected one network",
                        self.where(ev.start_mark),
                    )
                continue
            if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                frame = stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.value, frame.count, frame.height)
                value, count, height = frame.value, frame.count, frame.height
            else:
                parent = stack[-1] if stack else None
                if parent is not None and isinstance(parent.value, dict) and parent.key is None:
                    self.take_key(parent, ev)
                    continue
                path = self.child_path(parent)
                depth = len(stack) + 1
                where = self.where(ev.start_mark)
                if len(path) < 6 or not isinstance(ev, yaml.ScalarEvent):
                    self.doc.locations[path] = where
                if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                    self.count(1, where)
                    if depth > MAX_DEPTH:
                        raise SpecError(f"the YAML is nested deeper than {MAX_DEPTH} levels", where)
                    is_seq = isinstance(ev, yaml.SequenceStartEvent)
                    if ev.tag not in (_SEQ_TAGS if is_seq else _MAP_TAGS):
                        raise SpecError(
                            f"unsupported YAML tag {_short_tag(ev.tag)!r}; bpcalc reads plain "
                            "numbers, text, lists and mappings only",
                            where,
                        )
                    if ev.anchor is not None:
                        self.anchors[ev.anchor] = None
                    stack.append(_Frame([] if is_seq else {}, path, ev.anchor))
                    continue
                if isinstance(ev, yaml.AliasEvent):
                    value, count, height = self.alias(ev, where)
                    self.count(count, where, alias=True)
                    if depth - 1 + height > MAX_DEPTH:
                        raise SpecError(
                            f"the YAML is nested deeper than {MAX_DEPTH} levels (through "
                            f"the alias *{ev.anchor})",
                            where,
                        )
                else:
                    self.count(1, where)
                    value, count, height = self.scalar(ev, where), 1, 0
                    if self.doc.scalar_text is not None:
                        self.doc.scalar_text[path] = ev.value
                    if ev.anchor is not None:
                        self.anchors[ev.anchor] = (value, 1, 0)
            if not stack:
                root = value
                continue
            parent = stack[-1]
            if isinstance(parent.value, list):
                parent.value.append(value)
            else:
                assert parent.key is not None
                parent.value[parent.key] = value
                parent.key = None
            parent.count += count
            parent.height = max(parent.height, height + 1)
        if documents == 0:
            raise SpecError(
                "the file is empty; expected a YAML mapping", Location(self.doc.file, 1, 1)
            )
        return root

    def child_path(self, parent: _Frame | None) -> PathKey:
        if parent is None:
            return ()
        if isinstance(parent.value, list):
            return (*parent.path, len(parent.value))
        assert parent.key is not None
        return (*parent.path, parent.key)

    def count(self, n: int, where: Location, *, alias: bool = False) -> None:
        self.total += n
        self.built += 0 if alias else n
        if self.built > self.max_built:
            from bpcalc import budget

            raise SpecError(
                f"the YAML holds more than {self.max_built:,} values, as many as the memory "
                f"budget of {budget.size_text(budget.limits().memory)} allows (each takes "
                f"~{budget.YAML_BYTES_PER_VALUE} bytes while it is read, and reading may take "
                f"1/{budget.YAML_SHARE} of the budget); keep big arrays in "
                ".npy/.npz/.csv/IDX files and reference them with {file: ...}, or raise the "
                "budget with --max-memory",
                where,
            )
        if self.total > MAX_NODES:
            raise SpecError(
                f"the YAML expands to more than {MAX_NODES:,} values, counting each alias as "
                "the values it repeats (an alias bomb?); keep big arrays in .npy/.npz/.csv/IDX "
                "files and reference them with {file: ...}",
                where,
            )

    def take_key(self, frame: _Frame, ev: Any) -> None:
        where = self.where(ev.start_mark)
        if not isinstance(ev, yaml.ScalarEvent):
            raise SpecError("a mapping key must be a plain name", where)
        key = ev.value
        if ev.tag is None and ev.implicit[0] and key == "<<":
            raise SpecError("YAML merge keys (<<) are not supported", where)
        if key in frame.value:
            first = self.doc.key_locations[(*frame.path, key)]
            raise SpecError(
                f"duplicate key {key!r}: it was already given at line {first.line}; "
                "remove one of them",
                where,
            )
        self.doc.key_locations[(*frame.path, key)] = where
        frame.key = key
        frame.value[key] = None  # keeps the order; the value follows

    def alias(self, ev: Any, where: Location) -> tuple[Any, int, int]:
        if ev.anchor not in self.anchors:
            raise SpecError(f"the alias *{ev.anchor} has no anchor &{ev.anchor} before it", where)
        found = self.anchors[ev.anchor]
        if found is None:
            raise SpecError(f"the alias *{ev.anchor} refers to the list or mapping it is in", where)
        return found

    def scalar(self, ev: Any, where: Location) -> Any:
        value: str = ev.value
        tag = ev.tag
        if tag is None and ev.implicit[0]:
            if _PLAIN_FLOAT.fullmatch(value):
                return float(value)
            if _PLAIN_INT.fullmatch(value):
                return _plain_number(value)
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, value, ev.implicit)
            if tag == _TAG + "str" and ev.implicit[0] and _FLOAT_12.fullmatch(value):
                return float(value)
            if tag == _TAG + "timestamp":  # a plain date is text to us (a name, say)
                return value
            if tag == _TAG + "int" and _PLAIN_INT.fullmatch(value):
                return int(value)
        if tag not in _SCALAR_TAGS:
            raise SpecError(
                f"unsupported YAML tag {_short_tag(tag)!r}; bpcalc reads plain numbers, text, "
                "lists and mappings only",
                where,
            )
        if tag == _TAG + "str":
            return value
        node = yaml.ScalarNode(tag, value, ev.start_mark, ev.end_mark, ev.style)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise SpecError(
                f"cannot read this value: {getattr(exc, 'problem', exc)}", where
            ) from None
