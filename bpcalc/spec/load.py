"""YAML -> plain Python data, remembering file:line:column for every node.

Safe loading only (no Python object tags), duplicate keys rejected (PyYAML would keep the
last silently), and limits against hostile input: file size, nesting depth and the number
of nodes after aliases are expanded ("billion laughs").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def read_source(path: str) -> tuple[str, str]:
    """Read a file (or standard input for "-") as UTF-8 text; returns (display name, text)."""
    if path == "-":
        raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        name = "<stdin>"
    else:
        p = Path(path)
        name = path
        where = Location(name, 1, 1)
        if not p.exists():
            raise SpecError("no such file", where)
        if p.is_dir():
            raise SpecError("this is a directory; expected a YAML file", where)
        try:
            with p.open("rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise SpecError(f"cannot read the file: {exc.strerror}", where) from None
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
    counts the decimals a student wrote)."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark(file, mark) if mark is not None else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"this is not valid YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"this is not valid YAML: {exc}", Location(file, 1, 1)) from None
    except RecursionError:
        raise SpecError(
            f"the YAML is nested too deeply (limit {MAX_DEPTH} levels)", Location(file, 1, 1)
        ) from None
    if node is None:
        raise SpecError("the file is empty; expected a YAML mapping", Location(file, 1, 1))
    doc = SourceDoc(data=None, file=file, scalar_text={} if keep_text else None)
    builder = _Builder(doc)
    doc.data = builder.build(node, (), 0)
    return doc


class _Builder:
    """Turns a composed YAML node graph into Python data, checking the limits as it goes."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        file = self.doc.file
        where = _mark(file, node.start_mark)
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(
                f"the YAML expands to more than {MAX_NODES:,} values (an alias bomb?)", where
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"the YAML is nested deeper than {MAX_DEPTH} levels", where)
        # Matrices have one location per row at most: element locations cost memory for
        # nothing, since the row's location already names the line.
        if len(path) < 6 or not isinstance(node, yaml.ScalarNode):
            self.doc.locations[path] = where
        if isinstance(node, yaml.ScalarNode):
            if self.doc.scalar_text is not None:
                self.doc.scalar_text[path] = node.value
            try:
                return self.constructor.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                raise SpecError(
                    f"cannot read this value: {getattr(exc, 'problem', exc)}", where
                ) from None
        if isinstance(node, yaml.SequenceNode):
            if node.tag not in ("tag:yaml.org,2002:seq",):
                raise SpecError(f"unsupported YAML tag {node.tag!r}; only plain lists", where)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag not in ("tag:yaml.org,2002:map",):
                raise SpecError(f"unsupported YAML tag {node.tag!r}; only plain mappings", where)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_where = _mark(file, key_node.start_mark)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise SpecError("YAML merge keys (<<) are not supported", key_where)
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError("a mapping key must be a plain name", key_where)
                key = key_node.value
                if key in out:
                    first = self.doc.key_locations[(*path, key)]
                    raise SpecError(
                        f"duplicate key {key!r}: it was already given at line {first.line}; "
                        "remove one of them",
                        key_where,
                    )
                self.doc.key_locations[(*path, key)] = key_where
                out[key] = self.build(value_node, (*path, key), depth + 1)
            return out
        raise SpecError("unsupported YAML node", where)  # pragma: no cover
