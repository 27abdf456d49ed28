"""Safe YAML loading that remembers where every value came from.

Case files are read with PyYAML's SafeLoader only (no tags that construct Python
objects). On top of it this module adds:

* YAML 1.2 floats: ``1e-4`` is a number, not the string PyYAML 1.1 makes of it;
* duplicate keys are an error (PyYAML silently keeps the last one);
* a map from each value's path, e.g. ``("params", "size")``, to its line, so that
  validation errors can name the line;
* a bound on alias expansion ("billion laughs");
* numbers YAML reads but Python cannot keep: an integer of more digits than Python
  converts (4300) is read as a ``LongInt`` of as many digits (``10**(n-1)``, signed), so
  validation reports it at its field as "a N-digit integer" (no field takes one); a float
  literal beyond float64's range (``1e400``), which reads as inf, is remembered
  (``Document.overflow``) so that validation can say so instead of "got inf".
"""

from __future__ import annotations

import math
import os
import re
import typing
from pathlib import Path

import yaml

from parity.errors import CaseError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000

Path_ = tuple  # a path into the document: keys and list indices


# libyaml's parser (C) where PyYAML has it, ten times faster; nodes keep their line marks
# either way, and the constructors and resolvers below are the same Python code
_SAFE = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None


class _Loader(_SAFE or yaml.SafeLoader):
    """The safe loader with its implicit tags remembered: a suite's files repeat their keys and
    values (``dtype``, ``float32``, ``2.0``), and the resolver tries its regular expressions on
    every scalar of every file. The tag depends only on (kind, value, implicit) while no path
    resolver is added (none is)."""

    _resolved: typing.ClassVar[dict] = {}

    def resolve(self, kind, value, implicit):
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        key = (kind, value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if value is None or len(value) <= 64:  # keys and short values; not every long string
                if len(self._resolved) >= 16384:
                    self._resolved.clear()
                self._resolved[key] = tag
        return tag


class LongInt(int):
    """An integer of more digits than Python converts from text (4300): its value is
    ``10**(digits-1)`` with the literal's sign, and it shows as "a N-digit integer" (``repr``
    and ``str`` of the real value would raise)."""

    digits: int

    def __new__(cls, digits: int, negative: bool):
        self = super().__new__(cls, (-1 if negative else 1) * 10 ** max(digits - 1, 0))
        self.digits = digits
        return self

    def __repr__(self) -> str:
        return f"a {self.digits}-digit integer"

    __str__ = __repr__


def _construct_int(loader, node):
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return LongInt(sum(c.isdigit() for c in node.value), node.value.lstrip().startswith("-"))


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)

#: a lone surrogate: not a character (cases._surrogate_errors refuses it)
_SURROGATE = re.compile("[\ud800-\udfff]")

_FLOAT_TAG = "tag:yaml.org,2002:float"
_INF_OR_NAN = re.compile(r"^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$")

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
            |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$""",
        re.X,
    ),
    list("-+0123456789."),
)


class Document:
    """A loaded YAML document: the data and the line of every value."""

    def __init__(self, file: Path, data, lines: dict, key_lines: dict, overflow: dict | None = None):
        self.file = file
        self.data = data
        self._lines = lines
        self._key_lines = key_lines
        #: path -> the text of a float literal beyond float64's range (1e400), which reads as inf
        self.overflow = overflow or {}
        #: these bytes passed the case schema already in this process (cases.CaseRef.open): the
        #: schema checks are not made again
        self.checked = False
        #: the text it was read from has no escape sequence and no lone surrogate, so none of its
        #: strings holds one (only a double-quoted "\\ud800" makes one): cases._surrogate_errors
        #: need not look. False for a document built in code.
        self.no_surrogates = False

    @classmethod
    def of(cls, data, where: Path) -> "Document":
        """A document built in code (parity.case): the same validation, and no lines to name."""
        return cls(Path(where), data, None, None)

    def line(self, path: Path_, key: bool = False) -> int | None:
        """Line of the value at ``path`` (or of its key); falls back to the parent. None for a
        document built in code."""
        if self._lines is None:
            return None
        path = tuple(path)
        table = self._key_lines if key else self._lines
        while path:
            if path in table:
                return table[path]
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get((), 1)

    def error(self, path: Path_, message: str, key: bool = False) -> CaseError:
        return CaseError(self.file, self.line(path, key), field_name(path), message)


def field_name(path: Path_) -> str:
    """("inputs", "x", "shape", 1) -> 'inputs.x.shape[1]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def read(file: Path) -> bytes:
    """The bytes of one YAML file (at most MAX_FILE_BYTES). Raises CaseError."""
    try:
        with open(file, "rb") as f:  # one open and read: no stat first (a large suite reads thousands)
            raw = f.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                size = os.fstat(f.fileno()).st_size
                raise CaseError(file, None, None, f"file is {size} bytes; case files are limited to {MAX_FILE_BYTES}")
        return raw
    except OSError as exc:
        raise CaseError(file, None, None, f"cannot read file: {exc.strerror or exc}") from None


def load(file: Path, text: str | None = None, raw: bytes | None = None) -> Document:
    """Read (or take its ``raw`` bytes, or its ``text``) and parse one YAML file. Raises
    CaseError with the line on any problem."""
    file = Path(file)
    if text is None:
        raw = read(file) if raw is None else raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise CaseError(file, line, None, f"not UTF-8 text (byte {exc.start})") from None
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        lines: dict = {}
        key_lines: dict = {}
        overflow: dict = {}
        if node is not None:
            lines[()] = node.start_mark.line + 1
            count = [0, True]
            _walk(file, node, (), lines, key_lines, count, overflow)
            data = _construct(loader, node, {}) if count[1] else loader.construct_document(node)
        else:
            data = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        if isinstance(exc, yaml.constructor.ConstructorError) and "for the tag" in problem:
            tag = problem.split("for the tag", 1)[1].strip()
            raise CaseError(file, line, None, f"YAML tag {tag} is not allowed: case files are read with "
                            "a safe loader that never constructs objects") from None
        raise CaseError(file, line, None, f"not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text[: max(exc.position, 0)].count("\n") + 1
        raise CaseError(file, line, None, f"not valid YAML: character #x{exc.character:04x} is not allowed") from None
    except yaml.YAMLError as exc:
        raise CaseError(file, None, None, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise CaseError(file, None, None, "not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    doc = Document(file, data, lines, key_lines, overflow)
    doc.no_surrogates = "\\" not in text and not _SURROGATE.search(text)
    return doc


def _walk(file, node, path, lines, key_lines, count, overflow):
    """Fills ``lines`` and ``key_lines`` (path -> line), ``overflow``; counts the nodes in
    ``count[0]`` and clears ``count[1]`` when the document is not plain (_construct)."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise CaseError(file, node.start_mark.line + 1, None,
                        f"document too large: more than {MAX_NODES} values after alias expansion")
    if node.tag not in _PLAIN_TAGS:
        count[1] = False
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise CaseError(file, key_node.start_mark.line + 1, _fname(path),
                                "mapping keys must be plain scalars")
            if key_node.tag not in _PLAIN_TAGS:
                count[1] = False
            key = key_node.value
            if key == "<<":  # merge key: the merged mapping's own lines are kept
                count[1] = False
                _walk(file, value_node, path, lines, key_lines, count, overflow)
                continue
            if key in seen:
                raise CaseError(file, key_node.start_mark.line + 1, _fname(path + (key,)),
                                f"duplicate key (first defined on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            sub = path + (key,)
            lines[sub] = value_node.start_mark.line + 1
            key_lines[sub] = key_node.start_mark.line + 1
            _walk(file, value_node, sub, lines, key_lines, count, overflow)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = path + (i,)
            lines[sub] = item.start_mark.line + 1
            _walk(file, item, sub, lines, key_lines, count, overflow)
    elif node.tag == _FLOAT_TAG and not _INF_OR_NAN.match(node.value):
        try:
            if math.isinf(float(node.value.replace("_", ""))):
                overflow[path] = node.value
        except ValueError:  # a YAML 1.1 sexagesimal float (190:20:30.15): never that large
            pass


#: the tags of a plain document: maps, lists, strings, numbers, booleans and nulls (no merge
#: key, timestamp, binary, set, ordered map or explicit other tag)
_PLAIN_TAGS = frozenset("tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null"))
_STR_TAG = "tag:yaml.org,2002:str"


def _construct(loader, node, memo: dict):
    """The value of a plain document's ``node``: what ``loader.construct_document`` makes (each
    scalar by the loader's own constructor for its tag, an aliased map or list one object), in
    one recursive pass instead of PyYAML's generators (half a small case file's loading time).
    _walk has checked the document first: its keys are scalars, none repeats, it is not
    recursive and it has at most MAX_NODES values."""
    cls = node.__class__
    if cls is yaml.ScalarNode:
        if node.tag == _STR_TAG:
            return node.value
        return loader.yaml_constructors[node.tag](loader, node)
    out = memo.get(id(node))
    if out is not None:
        return out
    if cls is yaml.MappingNode:
        out = memo[id(node)] = {}
        for key_node, value_node in node.value:
            out[_construct(loader, key_node, memo)] = _construct(loader, value_node, memo)
    else:
        out = memo[id(node)] = []
        for item in node.value:
            out.append(_construct(loader, item, memo))
    return out


def _fname(path):
    return field_name(path)
