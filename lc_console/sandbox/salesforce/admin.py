"""Sandbox control and inspection over HTTP (for the demo and out-of-process tests).

Every route needs the `X-Sandbox-Admin-Secret` header (printed at start). Paths:
GET  /__sandbox__/records/<Object>[?include_deleted=true]
GET  /__sandbox__/events[?sobject=X__e]
GET  /__sandbox__/usage                      {"used", "max", "per_minute": [...]}
GET  /__sandbox__/requests[?limit=N]
POST /__sandbox__/usage        {"used": N} and/or {"max": M}
POST /__sandbox__/clock        {"advance_seconds": S}
POST /__sandbox__/tokens/expire
POST /__sandbox__/revoke       {"token": T} or {"user_id": U}
POST /__sandbox__/faults       {"rate": F, "seed": S, "kinds": [...], "inject": "lock", "count": N}
POST /__sandbox__/latency      {"ms": N}
"""

from __future__ import annotations

from typing import Any

from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.http import Request, Response, json_response, route

P = "/__sandbox__"


def _body(req: Request) -> dict[str, Any]:
    data = req.json() if req.body else {}
    if not isinstance(data, dict):
        raise ApiError("JSON_PARSER_ERROR", "expected a JSON object")
    return data


@route("GET", P + r"/records/(?P<sobject>\w+)", auth="admin")
def records(req: Request) -> Response:
    try:
        rows = req.org.records(req.params["sobject"], req.arg("include_deleted") == "true")
    except KeyError:
        raise ApiError("NOT_FOUND", f"No such object {req.params['sobject']}", status=404) from None
    return json_response({"totalSize": len(rows), "records": rows})


@route("GET", P + r"/events", auth="admin")
def events(req: Request) -> Response:
    return json_response(req.org.published_events(req.arg("sobject")))


@route(("GET", "POST"), P + r"/usage", auth="admin")
def usage(req: Request) -> Response:
    if req.method == "POST":
        data = _body(req)
        if "max" in data:
            req.org.usage.max_requests = int(data["max"])
        if "used" in data:
            req.org.usage.set_used(int(data["used"]))
    u = req.org.usage
    return json_response({"used": u.used(), "max": u.max_requests, "per_minute": u.per_minute()})


@route("GET", P + r"/requests", auth="admin")
def requests_log(req: Request) -> Response:
    limit = int(req.arg("limit") or 1000)
    rows = [r.as_dict() for r in list(req.org.requests)[-limit:]]
    return json_response(rows)


@route("POST", P + r"/clock", auth="admin")
def clock(req: Request) -> Response:
    req.org.clock.advance(float(_body(req).get("advance_seconds", 0)))
    return json_response({"now": req.org.clock.now().isoformat()})


@route("POST", P + r"/tokens/expire", auth="admin")
def expire_tokens(req: Request) -> Response:
    return json_response({"expired": req.org.sessions.expire_all()})


@route("POST", P + r"/revoke", auth="admin")
def revoke(req: Request) -> Response:
    data = _body(req)
    if data.get("user_id"):
        n = req.org.sessions.revoke_user(str(data["user_id"]))
    else:
        n = int(req.org.sessions.revoke(str(data.get("token", ""))))
    return json_response({"revoked": n})


@route("POST", P + r"/faults", auth="admin")
def faults(req: Request) -> Response:
    data = _body(req)
    f = req.app.faults
    try:
        kinds = tuple(data["kinds"]) if "kinds" in data else None
        f.configure(rate=data.get("rate"), seed=data.get("seed"), kinds=kinds)
        if data.get("inject"):
            f.inject(str(data["inject"]), int(data.get("count", 1)))
    except ValueError as exc:
        raise ApiError("INVALID_INPUT", str(exc)) from None
    return json_response({"rate": f.rate, "kinds": list(f.kinds), "injected": f.injected})


@route("POST", P + r"/latency", auth="admin")
def latency(req: Request) -> Response:
    req.app.config.latency_ms = float(_body(req).get("ms", 0))
    return json_response({"latency_ms": req.app.config.latency_ms})


ROUTES = [records, events, usage, requests_log, clock, expire_tokens, revoke, faults, latency]
