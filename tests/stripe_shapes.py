"""Checks of Stripe sandbox responses against Stripe's own reference data.

- 2020-08-27 and other pre-basil shapes: the OpenAPI 3.0 subset of Stripe's spec
  (`openapi-subset.json`), with `nullable` read as "null allowed", through jsonschema.
- Current shapes (basil and later): the field names and annotated types of stripe-python 16
  (`sdk-fields-endive.json`) and the key sets and value kinds of Stripe's 2026 fixtures
  (`fixtures-subset.json`).
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

# Stripe's own data (see data/stripe/SOURCE.md: MIT-licensed, copied verbatim).
REFERENCE_DIR = Path(os.environ.get("LC_STRIPE_REFERENCE",
                                    Path(__file__).parent / "data" / "stripe"))

# Object type -> stripe-python class in sdk-fields-endive.json.
SDK_CLASS = {
    "event": "Event", "customer": "Customer", "invoice": "Invoice",
    "invoice_payment": "InvoicePayment", "line_item": "InvoiceLineItem",
    "subscription": "Subscription", "subscription_item": "SubscriptionItem", "price": "Price",
    "charge": "Charge", "refund": "Refund", "payment_intent": "PaymentIntent",
    "account": "Account", "list": "ListObject",
}

# Fixture keys the sandbox leaves out on purpose, with the reason.
FIXTURE_KEYS_NOT_RENDERED = {
    # Includable since 2022-11-15: present only with expand[]=refunds.
    "charge": {"refunds"},
    # Removed from Invoice in 2025-03-31.basil (stripe-python 16 has no such field); the 2026
    # fixture still carries it as null.
    "invoice": {"subscription"},
}


@cache
def _spec() -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / "openapi-subset.json").read_text())


@cache
def _sdk() -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / "sdk-fields-endive.json").read_text())["objects"]


@cache
def fixtures() -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / "fixtures-subset.json").read_text())["resources"]


def _nullable_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_to_jsonschema(value) for key, value in node.items()
           if key != "nullable"}
    if node.get("nullable"):
        if "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
        elif "anyOf" in out or "oneOf" in out:
            key = "anyOf" if "anyOf" in out else "oneOf"
            out[key] = [*out[key], {"type": "null"}]
        elif "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _components() -> dict[str, Any]:
    return _nullable_to_jsonschema(copy.deepcopy(_spec()["components"]))


def _validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    root = {"components": _components(), "allOf": [_nullable_to_jsonschema(schema)]}
    return jsonschema.Draft4Validator(root)


@cache
def _schema_validator(name: str) -> jsonschema.Draft4Validator:
    return _validator({"$ref": f"#/components/schemas/{name}"})


@cache
def _path_validator(path: str) -> jsonschema.Draft4Validator:
    op = _spec()["paths"][path]["get"]
    return _validator(op["responses"]["200"]["content"]["application/json"]["schema"])


def openapi_errors(instance: Any, *, schema: str | None = None, path: str | None = None) -> list[str]:
    validator = _schema_validator(schema) if schema else _path_validator(path or "")
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator.iter_errors(instance)]


# -- stripe-python annotations --------------------------------------------------------------
@cache
def _split_top(text: str) -> tuple[str, ...]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if current:
        parts.append("".join(current).strip())
    return tuple(parts)


@cache
def _literals(ann: str) -> frozenset[Any]:
    return frozenset(json.loads(x.replace("'", '"')) if x.startswith("'") else x
                     for x in _split_top(_inner(ann, "Literal")))


def _inner(ann: str, head: str) -> str:
    return ann[len(head) + 1 : -1]


def _class_def(name: str, nested: dict[str, Any]) -> dict[str, Any] | None:
    name = name.strip("'\"")
    if name in nested:
        return nested[name]
    return _sdk().get(name)


def _type_errors(value: Any, ann: str, where: str, nested: dict[str, Any]) -> list[str]:
    ann = ann.strip()
    if ann == "Any":
        return []
    if ann.startswith("Optional["):
        if value is None:
            return []
        return _type_errors(value, _inner(ann, "Optional"), where, nested)
    if ann.startswith("Union["):
        options = _split_top(_inner(ann, "Union"))
        for option in options:
            if not _type_errors(value, option, where, nested):
                return []
        return [f"{where}: {value!r:.80} is none of {ann[:120]}"]
    if ann.startswith("Literal["):
        ok = isinstance(value, str | bool) and value in _literals(ann)
        return [] if ok else [f"{where}: {value!r} not in Literal"]
    if ann.startswith("List["):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        errors: list[str] = []
        for i, item in enumerate(value):
            errors += _type_errors(item, _inner(ann, "List"), f"{where}[{i}]", nested)
        return errors
    if ann.startswith("ExpandableField["):
        if isinstance(value, str):
            return []
        if isinstance(value, dict):
            return _type_errors(value, _inner(ann, "ExpandableField"), where, nested)
        return [f"{where}: expected an id or an object"]
    if ann.startswith("ListObject["):
        if not isinstance(value, dict) or value.get("object") != "list" or \
                not isinstance(value.get("data"), list) or "url" not in value or \
                not isinstance(value.get("has_more"), bool):
            return [f"{where}: expected a list object"]
        errors = []
        for i, item in enumerate(value["data"]):
            errors += _type_errors(item, _inner(ann, "ListObject"), f"{where}.data[{i}]", nested)
        return errors
    if ann.startswith("UntypedStripeObject["):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        return []
    if ann == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected int, got {value!r:.40}"]
    if ann == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected float, got {value!r:.40}"]
    if ann == "str":
        return [] if isinstance(value, str) else [f"{where}: expected str, got {value!r:.40}"]
    if ann == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected bool, got {value!r}"]
    if ann == "Decimal":
        return [] if isinstance(value, str) else [f"{where}: expected a decimal string"]
    if ann.startswith("'") and "," in ann:
        return []  # forward references to unions of classes
    # A class: an object, checked field by field when the class is known.
    if not isinstance(value, dict):
        return [f"{where}: expected an object for {ann}, got {value!r:.40}"]
    definition = _class_def(ann, nested)
    if definition is None:
        return []
    return _object_errors(value, definition, where)


def _object_errors(obj: dict[str, Any], definition: dict[str, Any], where: str) -> list[str]:
    nested = definition.get("__nested__", {})
    errors = []
    for key, value in obj.items():
        ann = definition.get(key)
        if ann is None or key == "__nested__":
            errors.append(f"{where}.{key}: not a field of the stripe-python class")
            continue
        errors += _type_errors(value, ann, f"{where}.{key}", nested)
    return errors


def sdk_errors(obj: dict[str, Any], object_type: str | None = None) -> list[str]:
    """Fields and types of a current-shape object against stripe-python 16.1.0."""
    object_type = object_type or obj.get("object")
    definition = _sdk()[SDK_CLASS[object_type]]
    errors = _object_errors(obj, definition, object_type)
    for key, ann in definition.items():
        if key == "__nested__" or ann.startswith("Optional[") or key in obj:
            continue
        if object_type == "list":
            continue
        errors.append(f"{object_type}.{key}: required by stripe-python, missing")
    return errors


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def fixture_errors(obj: dict[str, Any], fixture: dict[str, Any] | None = None,
                   where: str | None = None) -> list[str]:
    """Key sets and value kinds against Stripe's 2026 fixture of the same object type."""
    object_type = obj.get("object")
    if fixture is None:
        fixture = fixtures().get(object_type or "")
        if fixture is None:
            return []
    where = where or str(object_type)
    skip = FIXTURE_KEYS_NOT_RENDERED.get(object_type or "", set())
    errors = []
    for key, expected in fixture.items():
        if key in skip:
            continue
        if key not in obj:
            errors.append(f"{where}.{key}: in Stripe's fixture, missing here")
            continue
        value = obj[key]
        if expected is None or value is None:
            continue
        if isinstance(expected, str) and isinstance(value, dict) and "object" in value:
            errors += fixture_errors(value, where=f"{where}.{key}")  # an expanded id
            continue
        if _kind(expected) != _kind(value):
            errors.append(f"{where}.{key}: {_kind(value)} where the fixture has {_kind(expected)}")
        elif isinstance(expected, dict) and "object" not in expected and "object" not in value:
            errors += _nested_fixture_errors(value, expected, f"{where}.{key}")
        elif isinstance(expected, dict) and expected.get("object") == "list" and \
                expected.get("data") and value.get("data"):
            errors += fixture_errors(value["data"][0], expected["data"][0], f"{where}.{key}[0]")
    return errors


def _nested_fixture_errors(value: dict[str, Any], expected: dict[str, Any],
                           where: str) -> list[str]:
    errors = []
    for key, exp in expected.items():
        if key not in value or exp is None or value[key] is None:
            continue  # nested optional hashes vary with the object's state
        if _kind(exp) != _kind(value[key]):
            errors.append(f"{where}.{key}: {_kind(value[key])} where the fixture has {_kind(exp)}")
    return errors


def current_shape_errors(obj: dict[str, Any]) -> list[str]:
    return sdk_errors(obj) + fixture_errors(obj)


def list_errors(page: dict[str, Any], url_prefix: str) -> list[str]:
    errors = []
    if set(page) != {"object", "data", "has_more", "url"}:
        errors.append(f"list keys {sorted(page)}")
    if page.get("object") != "list" or not isinstance(page.get("has_more"), bool):
        errors.append("not a list object")
    if not str(page.get("url", "")).startswith(url_prefix):
        errors.append(f"url {page.get('url')!r} does not start with {url_prefix}")
    return errors


# -- whole responses --------------------------------------------------------------------------
# Fields that left (or moved within) each object in 2025-03-31.basil: never in older shapes'
# counterpart, never in current shapes.
BASIL_ONLY = {"invoice": {"parent", "payments", "amount_overpaid", "total_taxes"}}
PRE_BASIL_ONLY = {"invoice": {"paid", "charge", "payment_intent", "subscription", "discount",
                              "total_tax_amounts"},
                  "subscription": {"current_period_start", "current_period_end", "discount"},
                  "charge": {"invoice"}, "payment_intent": {"invoice"}}


def is_legacy(version: str) -> bool:
    return version[:10] < "2025-03-31"


def object_errors(obj: dict[str, Any], version: str) -> list[str]:
    """Every check that applies to one object rendered in `version` (recursing into events)."""
    object_type = obj.get("object", "?")
    if is_legacy(version):
        errors = openapi_errors(obj, schema=object_type)
        if version[:10] >= "2022-11-15":
            # The spec is 2020-08-27's: 2022-11-15 made Charge.refunds includable.
            errors = [e for e in errors if "'refunds' is a required property" not in e]
        errors += [f"{object_type}.{k}: a basil field in a {version} object"
                   for k in BASIL_ONLY.get(object_type, set()) if k in obj]
        if object_type == "subscription":
            errors += [f"subscription.items: current_period_* on an item in {version}"
                       for item in obj["items"]["data"] if "current_period_end" in item]
            if "current_period_end" not in obj:
                errors.append("subscription.current_period_end missing before basil")
    else:
        errors = current_shape_errors(obj)
        errors += [f"{object_type}.{k}: a pre-basil field in a {version} object"
                   for k in PRE_BASIL_ONLY.get(object_type, set()) if k in obj]
    if object_type == "event":
        data = obj["data"]
        errors += object_errors(data["object"], obj["api_version"])
        if not obj["type"].endswith(".updated") and "previous_attributes" in data:
            errors.append(f"event {obj['id']}: previous_attributes on {obj['type']}")
        if obj["type"].endswith(".updated") and "previous_attributes" not in data:
            errors.append(f"event {obj['id']}: no previous_attributes on {obj['type']}")
    return errors


def response_errors(body: dict[str, Any], version: str, url_prefix: str | None = None) -> list[str]:
    """Checks of one API response body (an object or a list) rendered in `version`."""
    if body.get("object") == "list":
        errors = list_errors(body, url_prefix or "/v1/")
        if is_legacy(version) and url_prefix in _spec()["paths"]:
            errors += openapi_errors({**body, "data": []}, path=url_prefix)
        for item in body["data"]:
            errors += object_errors(item, version)
        return errors
    return object_errors(body, version)
