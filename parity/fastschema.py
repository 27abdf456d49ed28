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
    """False if any is False, else None if any is None, else True."""
    unknown = False
    for a in answers:
        if a is False:
            return False
        if a is None:
            unknown = True
    return None if unknown else True


def valid(schema, value, types: dict = JSON_TYPES) -> bool | None:
    """Whether ``value`` satisfies ``schema`` (True / False), or None where this function does
    not implement what the schema asks (a keyword, a boolean schema, a container in enum)."""
    if schema is True:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict) or not _known(schema):
        return None
    t = schema.get("type")
    if t is not None:
        names = [t] if isinstance(t, str) else t
        if any(n not in types for n in names):
            return None
        if not any(types[n](value) for n in names):
            return False
    unknown = False
    if "const" in schema:
        same = _same(value, schema["const"])
        if same is False:
            return False
        unknown |= same is None
    if "enum" in schema:
        if not (isinstance(value, str) and value in _strings(schema)):
            found = [_same(value, c) for c in schema["enum"]]
            if not any(f is True for f in found):
                if None in found:
                    unknown = True
                else:
                    return False
    if "anyOf" in schema:
        answers = [valid(branch, value, types) for branch in schema["anyOf"]]
        if True not in answers:
            if None in answers:
                unknown = True
            else:
                return False
    if ("minimum" in schema or "maximum" in schema or "exclusiveMinimum" in schema
            or "exclusiveMaximum" in schema) and types["number"](value):
        if "minimum" in schema and not value >= schema["minimum"]:
            return False
        if "maximum" in schema and not value <= schema["maximum"]:
            return False
        if "exclusiveMinimum" in schema and not value > schema["exclusiveMinimum"]:
            return False
        if "exclusiveMaximum" in schema and not value < schema["exclusiveMaximum"]:
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            return False
        pattern = schema.get("pattern")
        if pattern is not None:
            compiled = _PATTERNS.get(pattern) or _PATTERNS.setdefault(pattern, re.compile(pattern))
            if not compiled.search(value):
                return False
    elif isinstance(value, dict):
        if any(k not in value for k in schema.get("required", ())):
            return False
        if len(value) < schema.get("minProperties", 0):
            return False
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        answers = []
        for k, v in value.items():
            sub = props.get(k, extra) if isinstance(k, str) else extra
            if sub is False:
                return False
            if sub is not True:
                checks = _type_only(sub, types)
                if checks is None:
                    answers.append(valid(sub, v, types))
                elif not any(check(v) for check in checks):
                    return False
        if "propertyNames" in schema:
            answers += [valid(schema["propertyNames"], k, types) for k in value]
        answer = _all(answers)
        if answer is False:
            return False
        unknown |= answer is None
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return False
        if schema.get("uniqueItems"):
            if not all(isinstance(v, str) for v in value):
                unknown = True
            elif len(set(value)) != len(value):
                return False
        if "items" in schema:
            answer = _all(valid(schema["items"], v, types) for v in value)
            if answer is False:
                return False
            unknown |= answer is None
    return None if unknown else True
