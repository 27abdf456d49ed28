"""A fast yes for JSON Schema validation, before jsonschema explains a no.

Large suites and stores validate thousands of small documents (case files, a store's
manifest) against a few schemas, and jsonschema's validators cost tens of microseconds
per keyword. :func:`valid` answers the question for the keywords parity's schemas use,
with jsonschema's meaning (Draft 2020-12): ``True`` when the instance is valid, ``False``
when it is not, and ``None`` when it meets something it does not implement (then the
caller asks jsonschema). Callers take the fast path only on ``True``; any other answer
goes to jsonschema, which also says why, so the fast path can only save time, never
accept what jsonschema refuses.

``types`` maps each JSON type name to its check, as jsonschema's type checker does
(parity's case files count only finite float64 values as numbers: cases.py passes its own).
"""

from __future__ import annotations

import operator
import re

__all__ = ["JSON_TYPES", "valid"]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: jsonschema's default type checker, for the types parity's schemas name
JSON_TYPES = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
    "number": _is_number, "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}
#: keywords that do not validate (annotations): ignored, as jsonschema ignores them
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})
_HANDLED = frozenset({
    "type", "const", "enum", "required", "properties", "additionalProperties", "items", "minLength", "maxLength",
    "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
    "minProperties", "propertyNames", "uniqueItems", "anyOf",
})
_PATTERNS: dict[str, re.Pattern] = {}
#: per schema object: whether every keyword in it is one valid() implements
_KNOWN: dict[int, tuple[dict, bool]] = {}


def _known(schema: dict) -> bool:
    hit = _KNOWN.get(id(schema))
    if hit is None or hit[0] is not schema:
        ok = all(k in _HANDLED or k in _ANNOTATIONS or k.startswith("x-") for k in schema)
        hit = _KNOWN[id(schema)] = (schema, ok)
    return hit[1]


_STRINGS: dict[int, tuple[dict, frozenset]] = {}


def _strings(schema: dict) -> frozenset:
    """The strings of a schema's enum (a str is equal to those only)."""
    hit = _STRINGS.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _STRINGS[id(schema)] = (schema, frozenset(c for c in schema["enum"] if isinstance(c, str)))
    return hit[1]


_TYPE_ONLY: dict[tuple[int, int], tuple[dict, dict, tuple | None]] = {}


def _type_only(schema, types: dict):
    """The type checks of a schema that says nothing but its type ({"type": ["string",
    "null"]}, most of a manifest's fields), else None: checked inline, without a call."""
    key = (id(schema), id(types))
    hit = _TYPE_ONLY.get(key)
    if hit is None or hit[0] is not schema or hit[1] is not types:
        checks = None
        if isinstance(schema, dict) and set(schema) == {"type"}:
            names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            if all(n in types for n in names):
                checks = tuple(types[n] for n in names)
        hit = _TYPE_ONLY[key] = (schema, types, checks)
    return hit[2]


def _same(a, b):
    """jsonschema's equality for scalars (True is not 1; 1 is 1.0); None for containers."""
    if isinstance(a, (list, dict, tuple)) or isinstance(b, (list, dict, tuple)):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _all(answers) -> bool | None:
    """False if any is False (the rest not asked), else None if any is None, else True."""
    unknown = False
    for a in answers:
        if a is False:
            return False
        unknown |= a is None
    return None if unknown else True


#: the bound keywords, each with what the value must satisfy against it
_BOUNDS = (("minimum", operator.ge), ("maximum", operator.le), ("exclusiveMinimum", operator.gt),
           ("exclusiveMaximum", operator.lt))


def valid(schema, value, types: dict = JSON_TYPES) -> bool | None:
    """Whether ``value`` satisfies ``schema`` (True / False), or None where this function does
    not implement what the schema asks (a keyword, a boolean schema, a container in enum).
    Each schema is compiled once (per ``types``) into a check that asks only for the keywords
    it has."""
    return _compiled(schema, types)(value)


#: (schema, types) -> (schema, types, its check): parity's schemas are made once, so this
#: stays small; a caller making schemas as it goes gets it emptied now and then
_COMPILED: dict[tuple[int, int], tuple] = {}


def _compiled(schema, types: dict):
    key = (id(schema), id(types))
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not schema or hit[1] is not types:
        if len(_COMPILED) >= 4096:
            _COMPILED.clear()
        made: list = []  # a schema that holds itself meets its own check, through this, while it is made
        _COMPILED[key] = (schema, types, lambda v: made[0](v))
        made.append(_compile(schema, types))
        hit = _COMPILED[key] = (schema, types, made[0])
    return hit[2]


def _compile(schema, types: dict):
    """The check of one schema: value -> True / False / None, with valid()'s meaning."""
    if schema is True or schema is False:
        return (lambda v: True) if schema else (lambda v: False)
    if not isinstance(schema, dict) or not _known(schema):
        return lambda v: None
    t = schema.get("type")
    type_checks = None
    if t is not None:
        names = [t] if isinstance(t, str) else t
        if any(n not in types for n in names):
            return lambda v: None
        type_checks = tuple(types[n] for n in names)
    has_const, const = "const" in schema, schema.get("const")
    enum = schema.get("enum") if "enum" in schema else None
    strings = _strings(schema) if enum is not None else frozenset()
    any_of = [_compiled(b, types) for b in schema["anyOf"]] if "anyOf" in schema else None
    number = types["number"]
    bounds = [(holds, schema[k]) for k, holds in _BOUNDS if k in schema]
    min_len, max_len = schema.get("minLength", 0), schema.get("maxLength")
    pattern = schema.get("pattern")
    search = (_PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern))).search \
        if pattern is not None else None
    required, min_props = tuple(schema.get("required", ())), schema.get("minProperties", 0)

    def sub(s):  # True / False as themselves; a schema of types only as its type checks; else its check
        if s is True or s is False:
            return s
        checks = _type_only(s, types)
        return ("types", checks) if checks is not None else _compiled(s, types)

    props = {k: sub(v) for k, v in schema.get("properties", {}).items()}
    extra = sub(schema.get("additionalProperties", True))
    names = _compiled(schema["propertyNames"], types) if "propertyNames" in schema else None
    min_items, max_items = schema.get("minItems", 0), schema.get("maxItems")
    unique = bool(schema.get("uniqueItems"))
    items = _compiled(schema["items"], types) if "items" in schema else None

    def check(value):
        if type_checks is not None and not any(c(value) for c in type_checks):
            return False
        unknown = False
        if has_const:
            same = _same(value, const)
            if same is False:
                return False
            unknown |= same is None
        if enum is not None and not (isinstance(value, str) and value in strings):
            found = [_same(value, c) for c in enum]
            if not any(f is True for f in found):
                if None in found:
                    unknown = True
                else:
                    return False
        if any_of is not None:
            answers = [a(value) for a in any_of]
            if True not in answers:
                if None in answers:
                    unknown = True
                else:
                    return False
        if bounds and number(value):
            for holds, b in bounds:
                if not holds(value, b):
                    return False
        if isinstance(value, str):
            if len(value) < min_len or (max_len is not None and len(value) > max_len):
                return False
            if search is not None and not search(value):
                return False
        elif isinstance(value, dict):
            for k in required:
                if k not in value:
                    return False
            if len(value) < min_props:
                return False
            for k, v in value.items():
                s = props.get(k, extra) if isinstance(k, str) else extra
                if s is True:
                    continue
                if s is False:
                    return False
                if type(s) is tuple:
                    if not any(c(v) for c in s[1]):
                        return False
                    continue
                a = s(v)
                if a is False:
                    return False
                unknown |= a is None
            if names is not None:
                a = _all(names(k) for k in value)
                if a is False:
                    return False
                unknown |= a is None
        elif isinstance(value, list):
            if len(value) < min_items or (max_items is not None and len(value) > max_items):
                return False
            if unique:
                if not all(isinstance(v, str) for v in value):
                    unknown = True
                elif len(set(value)) != len(value):
                    return False
            if items is not None:
                a = _all(items(v) for v in value)
                if a is False:
                    return False
                unknown |= a is None
        return None if unknown else True

    return check
