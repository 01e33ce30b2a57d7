"""Batched writes through sObject Collections (one API call per 200 records).

Upserts by external id with allOrNone=false, so one bad record never holds back the others;
each record's result is reported in input order. Transport-level problems (5xx, dropped
connections, limits) raise WriteError with a code the retry policy understands; an expired
session raises SessionExpired so the token manager can refresh and the caller retry once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

COLLECTION_LIMIT = 200


@dataclass(frozen=True)
class RecordResult:
    ok: bool
    sf_id: str | None = None
    created: bool = False
    code: str = ""
    message: str = ""
    fields: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


class SessionExpired(Exception):
    pass


class WriteError(Exception):
    """The whole request failed; `code` is a Salesforce error code or one of ours."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _error_from_body(status: int, content: bytes) -> WriteError:
    try:
        body = json.loads(content or b"null")
    except ValueError:
        body = None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        code = first.get("errorCode") or first.get("statusCode") or f"HTTP_{status}"
        return WriteError(code, first.get("message", ""), status)
    code = "HTTP_5XX" if status >= 500 else f"HTTP_{status}"
    return WriteError(code, (content or b"")[:300].decode("utf-8", "replace"), status)


def call(sf: Salesforce, path: str, method: str, body: Any = None) -> Any:
    """One REST call; maps every failure to SessionExpired or WriteError."""
    try:
        return sf.restful(
            path, method=method, data=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
    except SalesforceExpiredSession:
        raise SessionExpired() from None
    except SalesforceError as exc:
        raise _error_from_body(exc.status, exc.content) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise WriteError("CONNECTION_ERROR", type(exc).__name__) from None


def parse_results(items: Sequence[dict[str, Any]]) -> list[RecordResult]:
    results = []
    for item in items:
        if item.get("success"):
            results.append(RecordResult(True, item.get("id"), bool(item.get("created")), raw=item))
            continue
        errors = item.get("errors") or [{}]
        first = errors[0]
        results.append(RecordResult(
            False, item.get("id"), False,
            code=first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR",
            message=first.get("message", ""),
            fields=tuple(first.get("fields") or ()),
            raw=item,
        ))
    return results


def _records(sobject: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"attributes": {"type": sobject}, **row} for row in rows]


def upsert(sf: Salesforce, sobject: str, external_field: str,
           rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Upsert up to 200 rows (each holding the external id field) in one call."""
    if len(rows) > COLLECTION_LIMIT:
        raise ValueError(f"at most {COLLECTION_LIMIT} records per collection request")
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, f"composite/sobjects/{sobject}/{external_field}", "PATCH", body)
    return parse_results(items or [])


def create(sf: Salesforce, sobject: str, rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Create up to 200 rows (Tasks, platform events) in one call."""
    if len(rows) > COLLECTION_LIMIT:
        raise ValueError(f"at most {COLLECTION_LIMIT} records per collection request")
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, "composite/sobjects", "POST", body)
    return parse_results(items or [])


def update(sf: Salesforce, sobject: str, rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Update up to 200 rows by Id in one call."""
    if len(rows) > COLLECTION_LIMIT:
        raise ValueError(f"at most {COLLECTION_LIMIT} records per collection request")
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, "composite/sobjects", "PATCH", body)
    return parse_results(items or [])


def query_all(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    """All rows of a query (follows nextRecordsUrl); errors mapped like writes."""
    rows: list[dict[str, Any]] = []
    try:
        for row in sf.query_all_iter(soql):
            row = dict(row)
            row.pop("attributes", None)
            rows.append(row)
    except SalesforceExpiredSession:
        raise SessionExpired() from None
    except SalesforceError as exc:
        raise _error_from_body(exc.status, exc.content) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise WriteError("CONNECTION_ERROR", type(exc).__name__) from None
    return rows


def soql_quote(value: str) -> str:
    """Quote a string literal for SOQL."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def in_clause(values: Sequence[str]) -> str:
    return "(" + ", ".join(soql_quote(v) for v in values) + ")"


def usage(sf: Salesforce) -> tuple[int, int] | None:
    """(used, max) from the last response's Sforce-Limit-Info, if any."""
    u = sf.api_usage.get("api-usage")
    if u is None:
        return None
    return int(u.used), int(u.total)  # type: ignore[union-attr]
