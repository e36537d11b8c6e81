"""Check an OCSF record against the OCSF schema itself, as the pydantic-ocsf package (PyPI,
a test dependency) ships it: the compiled-from-source schema of every 1.x version
(``ocsf/schemas/v1_<minor>_0.json``: events, objects, dictionary, types).

For a class or object the attributes are merged along its ``extends`` chain, each with its
dictionary entry (type, enum). A record is checked for: every ``required`` attribute,
the ``at_least_one`` / ``just_one`` constraints, no attribute the class or object does not
define, the value's type (objects recursively, arrays, integer/long/timestamp/string/
boolean/float base types), integer enums, and the ``_name`` / caption siblings of the
enums we fill (activity, status, severity).

(pydantic-ocsf's own models are not used: in 3.0.0 they type ``http_request.http_method``,
a string_t with suggested values, as an integer.)

Versions 1.0-1.3 keep the base event's classification and occurrence attributes in
``$include`` files the package does not ship; their requirements are restated below from
the OCSF schema repository, events/includes/classification.json and occurrence.json
(activity_id, category_uid, class_uid, type_uid and time required; folded into
base_event.json from 1.4.0 on, where the bundled schema lists them itself).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

_INCLUDED = {  # attribute -> requirement, for a base_event that still has the $include
    "activity_id": "required", "activity_name": "optional", "category_uid": "required",
    "category_name": "optional", "class_uid": "required", "class_name": "optional",
    "type_uid": "required", "type_name": "optional", "time": "required",
    "count": "optional", "duration": "optional", "start_time": "optional",
    "end_time": "optional", "timezone_offset": "recommended",
}
_INCLUDED_ENUMS = {"activity_id": {"0": {"caption": "Unknown"}, "99": {"caption": "Other"}}}
_BASE_TYPES = {"string_t": (str,), "integer_t": (int,), "long_t": (int,), "boolean_t": (bool,),
               "float_t": (float, int), "json_t": (object,)}
_UIDS = {"class_uid", "category_uid", "type_uid"}  # checked against the class itself
_SIBLINGS = {"activity_id": "activity_name", "status_id": "status", "severity_id": "severity"}


def versions() -> list[str]:
    names = [p.name for p in files("ocsf").joinpath("schemas").iterdir()]
    return sorted(n[1:-5].replace("_", ".") for n in names if n.startswith("v1_") and n.endswith(".json"))


@cache
def schema(version: str) -> dict[str, Any]:
    path = files("ocsf").joinpath("schemas", f"v{version.replace('.', '_')}.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@cache
def _merged(version: str, kind: str, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(attributes with their dictionary entries, constraints) of a class or an object."""
    s = schema(version)
    table = s[kind]
    chain = []
    at: str | None = name
    while at and at in table:
        chain.append(table[at])
        at = table[at].get("extends")
    attributes: dict[str, dict[str, Any]] = {}
    constraints: dict[str, Any] = {}
    dictionary = s["dictionary"]["attributes"]
    for level in reversed(chain):
        own = level.get("attributes", {})
        if kind == "events" and level.get("name") == "base_event" and any(
                "classification" in i for i in own.get("$include", [])):
            for attr, requirement in _INCLUDED.items():
                attributes.setdefault(attr, {"requirement": requirement,
                                             **dictionary.get(attr, {})})
            attributes["activity_id"].setdefault("enum", {}).update(_INCLUDED_ENUMS["activity_id"])
        for attr, spec in own.items():
            if attr.startswith("$"):
                continue
            merged = {**dictionary.get(attr, {}), **attributes.get(attr, {}), **spec}
            if "enum" in spec and "enum" in attributes.get(attr, {}):
                merged["enum"] = {**attributes[attr]["enum"], **spec["enum"]}
            attributes[attr] = merged
        constraints.update(level.get("constraints", {}))
    return attributes, constraints


def errors(record: dict[str, Any], version: str | None = None, class_name: str = "authentication",
           *, required_only: bool = False) -> list[str]:
    """Everything wrong with ``record`` as an instance of ``class_name`` in ``version`` (the
    record's own metadata.version by default)."""
    version = version or str(record.get("metadata", {}).get("version", ""))
    if version not in versions():
        return [f"metadata.version {version!r} is not an OCSF version ({', '.join(versions())})"]
    out = _check(version, "events", class_name, record, class_name, required_only)
    s = schema(version)
    chain, at = [], class_name
    while at in s["events"]:
        chain.append(s["events"][at])
        at = s["events"][at].get("extends", "")
    category = next(c["category"] for c in chain if c.get("category"))
    category_uid = s["categories_meta"]["attributes"][category]["uid"]
    spec = chain[0]
    class_uid = category_uid * 1000 + spec["uid"]
    if record.get("category_uid") != category_uid or record.get("class_uid") != class_uid:
        out.append(f"{class_name} is category {category_uid}, class {class_uid}")
    activity = record.get("activity_id")
    if isinstance(activity, int) and record.get("type_uid") != class_uid * 100 + activity:
        out.append(f"type_uid must be class_uid * 100 + activity_id = {class_uid * 100 + activity}")
    return out


def _check(version: str, kind: str, name: str, value: dict[str, Any], where: str,
           required_only: bool) -> list[str]:
    attributes, constraints = _merged(version, kind, name)
    out = [f"{where}: required attribute {attr!r} missing"
           for attr, spec in attributes.items()
           if spec.get("requirement") == "required" and attr not in value]
    for rule, names in constraints.items():
        present = [n for n in names if n in value]
        if rule == "at_least_one" and not present:
            out.append(f"{where}: needs at least one of {names}")
        if rule == "just_one" and len(present) != 1:
            out.append(f"{where}: needs exactly one of {names}, has {present}")
    if required_only:
        return out
    for attr, item in value.items():
        spec = attributes.get(attr)
        if spec is None:
            out.append(f"{where}: {attr!r} is not an attribute of {name} in OCSF {version}")
            continue
        out += _check_value(version, spec, item, f"{where}.{attr}", required_only)
        sibling = _SIBLINGS.get(attr)
        enum = spec.get("enum", {})
        if sibling and sibling in value and str(item) in enum and item != 99:
            caption = enum[str(item)].get("caption")
            if value[sibling] != caption:
                out.append(f"{where}.{sibling}: {value[sibling]!r} is not {attr} {item}'s caption {caption!r}")
    return out


def _check_value(version: str, spec: dict[str, Any], item: Any, where: str,
                 required_only: bool) -> list[str]:
    s = schema(version)
    if spec.get("is_array"):
        if not isinstance(item, list):
            return [f"{where}: must be an array"]
        return [e for i, x in enumerate(item)
                for e in _check_value(version, {**spec, "is_array": False}, x, f"{where}[{i}]",
                                      required_only)]
    kind = spec.get("type", "")
    if kind == "object":  # free-form (unmapped): any JSON object
        return [] if isinstance(item, dict) else [f"{where}: must be an object"]
    if kind in s["objects"]:
        if not isinstance(item, dict):
            return [f"{where}: must be a {kind} object"]
        return _check(version, "objects", kind, item, where, required_only)
    types = s["dictionary"]["types"]["attributes"]
    base = kind
    while base in types and base not in _BASE_TYPES:
        base = types[base].get("type", "string_t")
    allowed = _BASE_TYPES.get(base, (str,))
    if not isinstance(item, allowed) or (bool not in allowed and isinstance(item, bool)):
        return [f"{where}: {item!r} is not a {kind}"]
    enum = spec.get("enum")
    if enum and base in ("integer_t", "long_t") and str(item) not in enum \
            and where.rsplit(".", 1)[-1] not in _UIDS:
        return [f"{where}: {item!r} is not one of {sorted(enum)}"]
    return []
