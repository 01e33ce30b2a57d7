"""Salesforce REST calls of the sync: sObject Collections, composite, queries, describe, limits.

Writes go through sObject Collections with allOrNone=false, so one bad record never holds back
the others; each record's result is reported in input order. Several collections (and the
queries of a batch) travel in one `/composite` request, which Salesforce counts as ONE API call:
at most 25 subrequests, of which at most 5 may be collections or queries.

Transport-level problems (5xx, dropped connections, timeouts, the daily limit) raise WriteError
with a code the retry policy understands (`errors.is_transient`); an expired session that the
token manager's adapter could not renew raises SessionExpired.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from lc_console.salesforce import errors

COLLECTION_LIMIT = 200
COMPOSITE_LIMIT = 25
# Of a composite's subrequests, at most this many may be collections or queries.
COMPOSITE_HEAVY_LIMIT = 5
TIMEOUT = (10.0, 120.0)  # connect, read (seconds)


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

    def __init__(self, code: str, message: str, status: int | None = None, body: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.body = body

    @property
    def transient(self) -> bool:
        return errors.is_transient(self.code) or (self.status or 0) >= 500 or self.status == 429


def _decode(content: Any) -> Any:
    # simple-salesforce hands over the parsed JSON when the body was JSON, else the text.
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if isinstance(content, str):
        try:
            return json.loads(content or "null")
        except ValueError:
            return content
    return content


def error_from_body(status: int, content: Any) -> WriteError:
    body = _decode(content)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        code = first.get("errorCode") or first.get("statusCode") or f"HTTP_{status}"
        return WriteError(str(code), str(first.get("message", "")), status, body)
    code = "HTTP_5XX" if status >= 500 else f"HTTP_{status}"
    text = body if isinstance(body, str) else json.dumps(body)
    return WriteError(code, (text or "")[:300], status, body)


def _transport(exc: requests.RequestException) -> WriteError:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection dropped"
    return WriteError("CONNECTION_ERROR", f"{kind} ({type(exc).__name__})")


def call(sf: Salesforce, path: str, method: str, body: Any = None) -> Any:
    """One REST call relative to /services/data/vNN.N/; maps every failure to SessionExpired
    or WriteError."""
    try:
        return sf.restful(
            path, method=method, data=None if body is None else json.dumps(body, default=str),
            headers={"Content-Type": "application/json"}, timeout=TIMEOUT,
        )
    except SalesforceExpiredSession:
        raise SessionExpired() from None
    except SalesforceError as exc:
        raise error_from_body(exc.status, exc.content) from None
    except requests.RequestException as exc:
        raise _transport(exc) from None


def parse_results(items: Sequence[dict[str, Any]]) -> list[RecordResult]:
    results = []
    for item in items:
        # Platform events succeed with errors=[OPERATION_ENQUEUED]: judge by `success`.
        if item.get("success"):
            results.append(RecordResult(True, item.get("id"), bool(item.get("created")), raw=item))
            continue
        errs = item.get("errors") or [{}]
        first = errs[0]
        results.append(RecordResult(
            False, item.get("id"), False,
            code=first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR",
            message=first.get("message", ""),
            fields=tuple(first.get("fields") or ()),
            raw=item,
        ))
    return results


def _records(sobject: str | None, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if "attributes" in row:
            out.append(dict(row))
        else:
            out.append({"attributes": {"type": sobject}, **row})
    return out


def _check_size(rows: Sequence[Any]) -> None:
    if len(rows) > COLLECTION_LIMIT:
        raise ValueError(f"at most {COLLECTION_LIMIT} records per collection request")


# --- one collection per call ------------------------------------------------------------


def upsert(sf: Salesforce, sobject: str, external_field: str,
           rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Upsert up to 200 rows (each holding the external id field) in one call."""
    _check_size(rows)
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, f"composite/sobjects/{sobject}/{external_field}", "PATCH", body)
    return parse_results(items or [])


def create(sf: Salesforce, sobject: str | None,
           rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Create up to 200 rows (Tasks, platform events) in one call. Rows that carry their own
    `attributes` may mix types (group them by type: Salesforce splits the request in chunks
    at each change of type)."""
    _check_size(rows)
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, "composite/sobjects", "POST", body)
    return parse_results(items or [])


def update(sf: Salesforce, sobject: str, rows: Sequence[dict[str, Any]]) -> list[RecordResult]:
    """Update up to 200 rows by Id in one call."""
    _check_size(rows)
    if not rows:
        return []
    body = {"allOrNone": False, "records": _records(sobject, rows)}
    items = call(sf, "composite/sobjects", "PATCH", body)
    return parse_results(items or [])


# --- composite: several collections or queries for one API call -------------------------


@dataclass(frozen=True)
class Subrequest:
    method: str
    path: str  # relative to /services/data/vNN.N/
    body: Any = None
    heavy: bool = True  # a collection or a query (at most 5 per composite)


@dataclass(frozen=True)
class SubResponse:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    def error(self) -> WriteError:
        return error_from_body(self.status, self.body)


def upsert_request(sobject: str, external_field: str,
                   rows: Sequence[dict[str, Any]]) -> Subrequest:
    _check_size(rows)
    return Subrequest("PATCH", f"composite/sobjects/{sobject}/{external_field}",
                      {"allOrNone": False, "records": _records(sobject, rows)})


def update_request(sobject: str, rows: Sequence[dict[str, Any]]) -> Subrequest:
    _check_size(rows)
    return Subrequest("PATCH", "composite/sobjects",
                      {"allOrNone": False, "records": _records(sobject, rows)})


def create_request(rows: Sequence[dict[str, Any]], sobject: str | None = None) -> Subrequest:
    _check_size(rows)
    return Subrequest("POST", "composite/sobjects",
                      {"allOrNone": False, "records": _records(sobject, rows)})


def query_request(soql: str) -> Subrequest:
    return Subrequest("GET", "query?q=" + quote(soql, safe=""))


def describe_request(sobject: str) -> Subrequest:
    return Subrequest("GET", f"sobjects/{sobject}/describe", heavy=False)


def composite(sf: Salesforce, subrequests: Sequence[Subrequest]) -> list[SubResponse]:
    """Run the subrequests in order in ONE API call (allOrNone=false: each stands alone).
    A single subrequest is sent as itself (same cost, simpler for Salesforce)."""
    if not subrequests:
        return []
    if len(subrequests) > COMPOSITE_LIMIT:
        raise ValueError(f"at most {COMPOSITE_LIMIT} subrequests per composite request")
    if sum(1 for s in subrequests if s.heavy) > COMPOSITE_HEAVY_LIMIT:
        raise ValueError(f"at most {COMPOSITE_HEAVY_LIMIT} collections or queries per "
                         "composite request")
    if len(subrequests) == 1:
        only = subrequests[0]
        try:
            return [SubResponse(200, call(sf, only.path, only.method, only.body))]
        except WriteError as exc:
            if exc.status is None or exc.status >= 500 or exc.code in ("REQUEST_LIMIT_EXCEEDED",):
                raise
            return [SubResponse(exc.status, exc.body)]
    prefix = f"/services/data/v{sf.sf_version}/"
    body = {"allOrNone": False, "compositeRequest": [
        {"method": s.method, "url": prefix + s.path, "referenceId": f"r{i}",
         **({"body": s.body} if s.body is not None else {})}
        for i, s in enumerate(subrequests)]}
    answer = call(sf, "composite", "POST", body) or {}
    items = answer.get("compositeResponse") or []
    out = [SubResponse(int(item.get("httpStatusCode") or 500), item.get("body"))
           for item in items]
    if len(out) != len(subrequests):
        raise WriteError("HTTP_5XX", "composite answer does not match the request", 500)
    return out


def pack(subrequests: Sequence[Subrequest]) -> list[list[Subrequest]]:
    """Split subrequests, in order, into as few composite requests as the limits allow."""
    calls: list[list[Subrequest]] = []
    current: list[Subrequest] = []
    heavy = 0
    for sub in subrequests:
        if current and (len(current) >= COMPOSITE_LIMIT
                        or (sub.heavy and heavy >= COMPOSITE_HEAVY_LIMIT)):
            calls.append(current)
            current, heavy = [], 0
        current.append(sub)
        heavy += 1 if sub.heavy else 0
    if current:
        calls.append(current)
    return calls


def query_rows(sf: Salesforce, response: SubResponse) -> list[dict[str, Any]]:
    """Rows of a query subresponse, following nextRecordsUrl (extra calls) when needed."""
    if not response.ok:
        raise response.error()
    body = response.body or {}
    rows = [_plain(r) for r in body.get("records") or []]
    next_url = body.get("nextRecordsUrl")
    while not body.get("done", True) and next_url:
        try:
            body = sf.query_more(next_url, identifier_is_url=True)
        except SalesforceExpiredSession:
            raise SessionExpired() from None
        except SalesforceError as exc:
            raise error_from_body(exc.status, exc.content) from None
        except requests.RequestException as exc:
            raise _transport(exc) from None
        rows.extend(_plain(r) for r in body.get("records") or [])
        next_url = body.get("nextRecordsUrl")
    return rows


def _plain(row: Any) -> dict[str, Any]:
    out = dict(row)
    out.pop("attributes", None)
    return out


def query_all(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    """All rows of a query (follows nextRecordsUrl); errors mapped like writes."""
    rows: list[dict[str, Any]] = []
    try:
        for row in sf.query_all_iter(soql):
            rows.append(_plain(row))
    except SalesforceExpiredSession:
        raise SessionExpired() from None
    except SalesforceError as exc:
        raise error_from_body(exc.status, exc.content) from None
    except requests.RequestException as exc:
        raise _transport(exc) from None
    return rows


def limits(sf: Salesforce) -> tuple[int, int]:
    """(used, max) of the daily API requests, from /limits."""
    body = call(sf, "limits/", "GET") or {}
    daily = body.get("DailyApiRequests") or {}
    maximum = int(daily.get("Max") or 0)
    return maximum - int(daily.get("Remaining") or 0), maximum


def soql_quote(value: str) -> str:
    """Quote a string literal for SOQL."""
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f"'{escaped}'"


def in_clause(values: Sequence[str]) -> str:
    return "(" + ", ".join(soql_quote(v) for v in values) + ")"


def usage(sf: Salesforce) -> tuple[int, int] | None:
    """(used, max) from the last response's Sforce-Limit-Info, if any."""
    u = sf.api_usage.get("api-usage")
    if u is None:
        return None
    return int(u.used), int(u.total)  # type: ignore[union-attr]
