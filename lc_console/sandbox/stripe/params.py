"""Stripe's bracketed form encoding for query strings: `created[gt]=1`, `types[0]=a`, `expand[]=x`."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl


class ParamError(ValueError):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def parse_query(query: str) -> dict[str, Any]:
    """Nested dicts for brackets; dicts keyed by consecutive integers become lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        parts = _split_key(raw_key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # `expand[]=x`: append
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return {key: _listify(value) for key, value in root.items()}


def _split_key(key: str) -> list[str]:
    if "[" not in key:
        return [key]
    head, _sep, rest = key.partition("[")
    parts = [head]
    while rest:
        inner, _sep, rest = rest.partition("]")
        parts.append(inner)
        if rest.startswith("["):
            rest = rest[1:]
        else:
            break
    return parts


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    value = {k: _listify(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def as_int(value: Any, param: str) -> int:
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise ParamError(f"Invalid integer: {value}", param, "parameter_invalid_integer")


def as_bool(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ParamError(f"Invalid boolean: {value}", param)


def as_str(value: Any, param: str) -> str:
    if isinstance(value, str):
        return value
    raise ParamError(f"Invalid string: {value}", param)


def as_list(value: Any, param: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, str):
        return [value]  # `expand=x` without brackets: Stripe accepts a single value
    raise ParamError(f"Invalid array: {param}", param)


def created_range(value: Any, param: str = "created") -> tuple[int | None, int | None]:
    """`created=N` or `created[gt|gte|lt|lte]=N` as an inclusive [low, high] range."""
    if isinstance(value, str):
        exact = as_int(value, param)
        return exact, exact
    if not isinstance(value, dict):
        raise ParamError(f"Invalid {param}", param)
    low = high = None
    for op, raw in value.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise ParamError(f"Received unknown parameter: {param}[{op}]", f"{param}[{op}]",
                             "parameter_unknown")
        n = as_int(raw, f"{param}[{op}]")
        if op == "gt":
            low = max(low, n + 1) if low is not None else n + 1
        elif op == "gte":
            low = max(low, n) if low is not None else n
        elif op == "lt":
            high = min(high, n - 1) if high is not None else n - 1
        else:
            high = min(high, n) if high is not None else n
    return low, high
