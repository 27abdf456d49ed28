"""`parity list --ops [OP ...]`: what each operator takes, how each framework spells it, and
the default traps, computed from the op's own tables (parity/ops), not written by hand.

A *default trap* is a difference between torch's defaults (the case's ``params:``) and a
framework's own defaults for a call given nothing else: both calls are mapped to the
canonical form on a representative input (the simplest example of the op's fuzz strategy,
with every optional input given), and the fields of the two forms that differ are listed.
"""

from __future__ import annotations

import json

from parity import frameworks as fw_names
from parity.ops.base import Op


def _value(v) -> str:
    return json.dumps(v) if isinstance(v, (bool, type(None))) else str(v)


def _params(schema: dict) -> list[tuple[str, str, str]]:
    """(name, default or "(required)", what it is) of a JSON schema's properties."""
    required = set(schema.get("required", ()))
    out = []
    for name, spec in schema.get("properties", {}).items():
        default = "(required)" if name in required else (_value(spec["default"]) if "default" in spec else "-")
        kind = spec.get("x-expected") or spec.get("description") or (
            "one of " + ", ".join(map(str, spec["enum"])) if "enum" in spec else spec.get("type", ""))
        out.append((name, default, str(kind)))
    return out


def example(op: Op) -> tuple[dict, dict] | None:
    """(input shapes, torch params) of the op's simplest fuzz example that gives every optional
    weight input (so that affine switches matter), or None without a strategy."""
    if op.fuzz is None:
        return None
    from hypothesis import HealthCheck, find, settings

    from parity import fuzz

    wanted = {"weight", "bias"} & set(op.optional_inputs)
    try:
        ex = find(fuzz.examples(op.name, ("float32",), False), lambda e: wanted <= set(e.weights),
                  settings=settings(database=None, max_examples=500, suppress_health_check=list(HealthCheck)))
    except Exception:  # noqa: BLE001 - no such example: no traps computed
        return None
    shapes = {"x": tuple(ex.shape), **{w: tuple(fuzz._weight_shape(ex, w)) for w in ex.weights}}
    return shapes, dict(ex.params)


def default_traps(op: Op) -> dict[str, list[str]]:
    """{framework: ["spellings: field its value (torch: value)", ...]} for each framework whose
    call with its own defaults computes something else than torch's call with its defaults.
    torch's required parameters (LRN's size) are the ones that compute the framework's
    default where torch can (size 11 for depth_radius 5), else the example's."""
    found = example(op)
    if found is None or "torch" not in op.frameworks():
        return {}
    shapes, ex_params = found
    required = op.native_schemas["torch"].get("required", ())
    out: dict[str, list[str]] = {}
    for fw in op.frameworks():
        if fw == "torch":
            continue
        schema = op.native_schemas[fw]
        native = op.with_defaults(schema, {})
        if any(k not in native for k in schema.get("required", ())):  # no default: the case's, mapped
            try:
                torch_form = op.form({k: ex_params[k] for k in required if k in ex_params}, shapes, "float32")
                mapped = op.native_from_form(fw, torch_form, shapes)
            except Exception:  # noqa: BLE001
                continue
            native.update({k: v for k, v in mapped.items() if k not in native})
        by_diff: dict[str, list[str]] = {}
        for spelling in op.spellings[fw]:
            try:
                form = op.form_from_native(fw, native, shapes, spelling.name, "float32")
                torch_params = {k: ex_params[k] for k in required if k in ex_params}
                try:
                    as_torch = op.native_from_form("torch", form, shapes)
                    torch_params.update({k: as_torch[k] for k in required if k in as_torch})
                except Exception:  # noqa: BLE001 - torch cannot compute it: the example's value
                    pass
                diff = op.form(torch_params, shapes, "float32").diff(form)
            except Exception:  # noqa: BLE001 - defaults that do not fit the example: nothing to say
                continue
            if diff:
                text = "; ".join(f"{label} {b} (torch: {a})" for label, a, b in diff)
                by_diff.setdefault(text, []).append(spelling.name)
        if by_diff:
            out[fw] = [f"{', '.join(names)}: {text}" for text, names in by_diff.items()]
    return out


def describe(op: Op, installed=fw_names.installed) -> str:
    """The text `parity list --ops OP` prints for one op."""
    lines = [f"{op.name}: {op.summary}",
             f"  inputs: {', '.join(op.inputs)}" + (f"; optional: {', '.join(op.optional_inputs)}"
                                                  if op.optional_inputs else "") + f"; outputs: {', '.join(op.outputs)}",
             f"  params (a case's params:, in {op.params_framework}'s spelling):"]
    for name, default, kind in _params(op.params_schema):
        lines.append(f"    {name:<20} {default:<12} {kind}")
    traps = default_traps(op)
    for fw in op.frameworks():
        mark = "" if installed(fw) else "  (not installed)"
        lines.append(f"  {fw:<11} {', '.join(s.name for s in op.spellings[fw])}{mark}")
        native = ", ".join(f"{n}={d}" for n, d, _ in _params(op.native_schemas[fw]))
        lines.append(f"  {'':<11} native: {native}")
        for trap in traps.get(fw, ()):
            lines.append(f"  {'':<11} default trap: {trap}")
    for name, text in op.conventions.items():
        lines.append(f"  convention {name}: {text}")
    return "\n".join(lines)
