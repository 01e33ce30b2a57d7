"""REST API: versions, resources, sObject describe, CRUD, upsert by external id, query /
queryAll with paging, limits, sObject Collections, composite, composite graph and batch."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from lc_console.sandbox.salesforce import ids, soql
from lc_console.sandbox.salesforce import schema as sch
from lc_console.sandbox.salesforce.errors import ApiError, SaveResult, not_found
from lc_console.sandbox.salesforce.http import (
    DATA,
    JSON_TYPE,
    Headers,
    Request,
    Response,
    empty_response,
    error_response,
    json_response,
    route,
)

MIN_VERSION = 31
MAX_VERSION = 67
QUERY_BATCH = 2000
COLLECTION_MAX = 200
COMPOSITE_MAX = 25
GRAPH_MAX_GRAPHS = 75
GRAPH_MAX_NODES = 500
CURSOR_TTL_SECONDS = 15 * 60
MAX_CURSORS = 2000


def release_label(version: int) -> str:
    k = version - 59  # 59.0 = Winter '24
    season = ("Winter", "Spring", "Summer")[k % 3]
    return f"{season} '{24 + k // 3:02d}"


def check_version(req: Request) -> float:
    v = float(req.params.get("version") or req.api_version)
    if not MIN_VERSION <= v <= MAX_VERSION or v != int(v):
        raise not_found()
    return v


def _acc(req: Request):  # -> Access
    assert req.access is not None
    return req.access


def _errors(res: SaveResult, status: int = 400) -> Response:
    return json_response([e.rest() for e in res.errors], status)


# -- versions and resources -------------------------------------------------------------------------


@route("GET", r"/services/data/?", auth="public")
def versions(req: Request) -> Response:
    return json_response([
        {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ])  # fmt: skip


@route("GET", DATA + r"/?")
def resources(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    base = f"/services/data/v{v}"
    names = ["sobjects", "query", "queryAll", "search", "limits", "composite", "jobs",
             "tooling", "metadata", "recent", "actions", "tabs", "theme", "event"]  # fmt: skip
    out = {n: f"{base}/{n}" for n in names}
    out["identity"] = f"{req.base_url()}/id/{req.org.org_id}/{req.user_id}"
    return json_response(out)


# -- describe --------------------------------------------------------------------------------------


@route("GET", DATA + r"/sobjects/?")
def describe_global(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    with org.lock:
        objs = [o for o in org.schema.objects.values()
                if org.can_object(acc, o, "create" if o.platform_event else "read")]  # fmt: skip
        out = [sch.describe_global_entry(o, v) for o in sorted(objs, key=lambda o: o.name)]
    return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": out})


@route("GET", DATA + r"/sobjects/(?P<sobject>\w+)/describe/?")
def describe(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    with org.lock:
        obj = org.sobject(req.params["sobject"], acc)
        return json_response(sch.render_describe(org.schema, obj, v, org.visible_fields(acc, obj)))


# -- sObject basic info / create ----------------------------------------------------------------------


@route(("GET", "POST"), DATA + r"/sobjects/(?P<sobject>\w+)/?")
def sobject_root(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    if req.method == "GET":
        with org.lock:
            obj = org.sobject(req.params["sobject"], acc)
            return json_response({"objectDescribe": sch.describe_global_entry(obj, v),
                                  "recentItems": []})  # fmt: skip
    data = req.json()
    if not isinstance(data, dict):
        raise ApiError("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from "
                       "START_ARRAY value [line:1, column:1]")  # fmt: skip
    res = org.insert(req.params["sobject"], data, acc)
    if not res.success:
        return _errors(res)
    return json_response(res.item(), 201)


# -- one record ---------------------------------------------------------------------------------


def _fields_arg(req: Request) -> list[str] | None:
    raw = req.arg("fields")
    if raw is None:
        return None
    return [f for f in (x.strip() for x in raw.split(",")) if f]


@route(("GET", "PATCH", "DELETE", "POST", "HEAD"), DATA + r"/sobjects/(?P<sobject>\w+)/(?P<rid>[^/]+)/?")
def record(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    sobject, rid = req.params["sobject"], req.params["rid"]
    if req.method == "POST":
        if rid.lower() != "id":
            raise ApiError("METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are "
                           "HEAD,GET,PATCH,DELETE", status=405)  # fmt: skip
        return upsert_response(req, org.upsert(sobject, "Id", None, _body_dict(req), acc), v)
    if req.method in ("GET", "HEAD"):
        return json_response(org.retrieve(sobject, rid, acc, _fields_arg(req), v))
    with org.lock:
        obj = org.sobject(sobject, acc, "edit" if req.method == "PATCH" else "delete")
        if obj.platform_event:
            raise not_found()
        org.retrieve(obj.name, rid, acc, ["Id"], v)  # 404 / ENTITY_IS_DELETED / MALFORMED_ID
        if req.method == "PATCH":
            res = org.update(obj.name, rid, _body_dict(req), acc)
        else:
            res = org.delete(rid, acc, sobject=obj.name)
    if not res.success:
        return _errors(res)
    return empty_response(204)


def _body_dict(req: Request) -> dict[str, Any]:
    data = req.json() if req.body else {}
    if not isinstance(data, dict):
        raise ApiError("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from "
                       "START_ARRAY value [line:1, column:1]")  # fmt: skip
    return data


def upsert_response(req: Request, res: SaveResult, version: str) -> Response:
    if res.matches:
        obj = req.params["sobject"]
        return json_response([f"/services/data/v{version}/sobjects/{obj}/{m}" for m in res.matches], 300)
    if not res.success:
        return _errors(res)
    if float(version) >= 46.0:
        return json_response({"id": res.id, "success": True, "errors": [], "created": bool(res.created)},
                             201 if res.created else 200)  # fmt: skip
    if res.created:
        return json_response({"id": res.id, "success": True, "errors": []}, 201)
    return empty_response(204)


@route(("GET", "PATCH", "DELETE", "HEAD"), DATA + r"/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?")
def by_external_id(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    sobject, fname = req.params["sobject"], req.params["field"]
    # simple-salesforce's get_by_custom_id quote_plus-es the value: "+" stands for a space
    value = unquote_plus(req.path.rstrip("/").rsplit("/", 1)[-1])
    if req.method == "PATCH":
        data = _body_dict(req)
        if fname.lower() != "id":
            body_val = next((val for k, val in data.items() if k.lower() == fname.lower()), None)
            if body_val is not None and str(body_val) != value:
                raise ApiError("INVALID_FIELD", f"Field {fname} is not allowed to be specified in "
                               "the body when it is used as the external ID in the URL")  # fmt: skip
        return upsert_response(req, org.upsert(sobject, fname, value, data, acc), v)
    with org.lock:
        obj = org.sobject(sobject, acc, "read" if req.method in ("GET", "HEAD") else "delete")
        ext = org._external_id_field(obj, fname, acc)
        matches = org.find_by_external_id(obj.name, ext.name, value)
        if len(matches) > 1:
            return json_response([f"/services/data/v{v}/sobjects/{obj.name}/{m}" for m in matches], 300)
        if not matches:
            raise not_found()
        if req.method == "DELETE":
            res = org.delete(matches[0], acc, sobject=obj.name)
            return empty_response(204) if res.success else _errors(res)
        return json_response(org.retrieve(obj.name, matches[0], acc, _fields_arg(req), v))


# -- query --------------------------------------------------------------------------------------------


class QueryCursors:
    """Open query locators: the remaining ids of a query plus how to render them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, tuple[float, soql.Executor, list[str], str]] = OrderedDict()

    def open(self, ex: soql.Executor, rest_ids: list[str], user_id: str) -> str:
        locator = ids.new_id("01g")
        with self._lock:
            self._cursors[locator] = (time.monotonic(), ex, rest_ids, user_id)
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
        return locator

    def get(self, locator: str) -> tuple[soql.Executor, list[str], str] | None:
        with self._lock:
            item = self._cursors.get(locator)
            if item is None:
                return None
            if time.monotonic() - item[0] > CURSOR_TTL_SECONDS:
                del self._cursors[locator]
                return None
            self._cursors[locator] = (time.monotonic(), item[1], item[2], item[3])
            return item[1], item[2], item[3]


def _cursors(req: Request) -> QueryCursors:
    cur = req.app.extensions.get("query_cursors")
    if cur is None:
        cur = req.app.extensions.setdefault("query_cursors", QueryCursors())
    return cur


def _batch_size(req: Request) -> int:
    opts = req.headers.get("Sforce-Query-Options") or ""
    m = re.search(r"batchSize\s*=\s*(\d+)", opts)
    if not m:
        return QUERY_BATCH
    return max(200, min(QUERY_BATCH, int(m.group(1))))


@route("GET", DATA + r"/(?P<kind>query|queryAll)/?")
def query(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    text = req.arg("q")
    if text is None:
        raise ApiError("MALFORMED_QUERY", "A query string has to be specified")
    include_deleted = req.params["kind"] == "queryAll"
    batch = _batch_size(req)
    with org.lock:
        q = soql.parse(org, acc, text)
        ex = soql.Executor(org, q, include_deleted)
        rows = ex.run()
        if q.count_only:
            return json_response({"totalSize": len(rows), "done": True, "records": []})
        if q.count_field is not None:
            get = ex.getter(q.count_field)
            n = sum(1 for rid, row in rows if get(rid, row) is not None)
            return json_response({"totalSize": 1, "done": True, "records": [
                {"attributes": {"type": "AggregateResult"}, "expr0": n}]})  # fmt: skip
        records = [ex.render(rid, row, v) for rid, row in rows[:batch]]
    out: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= batch}
    if len(rows) > batch:
        locator = _cursors(req).open(ex, [rid for rid, _ in rows], req.user_id)
        out["nextRecordsUrl"] = f"/services/data/v{v}/{req.params['kind']}/{locator}-{batch}"
    out["records"] = records
    return json_response(out)


@route("GET", DATA + r"/(?P<kind>query|queryAll)/(?P<locator>01g[0-9A-Za-z]{12,15})-(?P<offset>\d+)/?")
def query_more(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org = req.org
    hit = _cursors(req).get(req.params["locator"])
    if hit is None or hit[2] != req.user_id:
        raise ApiError("INVALID_QUERY_LOCATOR", "invalid query locator")
    ex, all_ids, _ = hit
    offset = int(req.params["offset"])
    batch = _batch_size(req)
    chunk = all_ids[offset : offset + batch]
    with org.lock:
        table = ex.table
        records = [ex.render(rid, table.rows[rid], v) for rid in chunk if rid in table.rows]
    out: dict[str, Any] = {"totalSize": len(all_ids), "done": offset + batch >= len(all_ids)}
    if not out["done"]:
        out["nextRecordsUrl"] = (f"/services/data/v{v}/{req.params['kind']}/"
                                 f"{req.params['locator']}-{offset + batch}")  # fmt: skip
    out["records"] = records
    return json_response(out)


# -- limits ----------------------------------------------------------------------------------------


@route("GET", DATA + r"/limits/?")
def limits(req: Request) -> Response:
    check_version(req)
    org = req.org
    if not _acc(req).has("ViewSetup"):
        raise ApiError("INSUFFICIENT_ACCESS", "The user does not have the View Setup and "
                       "Configuration permission", status=403)  # fmt: skip
    used = org.usage.used()
    hour_ago = org.clock.now_ms() - 3_600_000
    with org.lock:
        published = sum(1 for e in org.events if e.published_ms >= hour_ago)
    max_api = org.usage.max_requests

    def lim(mx: int, used_: int = 0) -> dict[str, int]:
        return {"Max": mx, "Remaining": max(0, mx - used_)}

    out: dict[str, Any] = {
        "ActiveScratchOrgs": lim(3),
        "AnalyticsExternalDataSizeMB": lim(40960),
        "ConcurrentAsyncGetReportInstances": lim(200),
        "ConcurrentSyncReportRuns": lim(20),
        "DailyAnalyticsDataflowJobExecutions": lim(60),
        "DailyApiRequests": lim(max_api, used),
        "DailyAsyncApexExecutions": lim(250000),
        "DailyBulkApiBatches": lim(15000),
        "DailyBulkV2QueryFileStorageMB": lim(976562),
        "DailyBulkV2QueryJobs": lim(10000),
        "DailyDurableGenericStreamingApiEvents": lim(10000),
        "DailyDurableStreamingApiEvents": lim(10000),
        "DailyGenericStreamingApiEvents": lim(10000),
        "DailyStandardVolumePlatformEvents": lim(10000),
        "DailyStreamingApiEvents": lim(10000),
        "DailyWorkflowEmails": lim(2000),
        "DataStorageMB": lim(1024),
        "FileStorageMB": lim(10240),
        "HourlyAsyncReportRuns": lim(1200),
        "HourlyDashboardRefreshes": lim(200),
        "HourlyDashboardResults": lim(5000),
        "HourlyDashboardStatuses": lim(999999999),
        "HourlyODataCallout": lim(10000),
        "HourlyPublishedPlatformEvents": lim(250000, published),
        "HourlyPublishedStandardVolumePlatformEvents": lim(1000),
        "HourlySyncReportRuns": lim(500),
        "HourlyTimeBasedWorkflow": lim(50),
        "MassEmail": lim(5000),
        "PermissionSets": {**lim(1500, len(org.schema.permission_sets)),
                           "CreateCustom": lim(1000)},  # fmt: skip
        "SingleEmail": lim(5000),
        "StreamingApiConcurrentClients": lim(2000),
    }
    for ext in list(req.app.extensions.values()):
        contribute = getattr(ext, "limits", None)
        if callable(contribute):
            out.update(contribute())
    return json_response(out)


# -- sObject Collections ------------------------------------------------------------------------------


def _records_body(req: Request) -> tuple[list[dict[str, Any]], bool]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError("JSON_PARSER_ERROR", "Cannot deserialize request body: expected "
                       "{\"allOrNone\": ..., \"records\": [...]}")  # fmt: skip
    records = body["records"]
    if len(records) > COLLECTION_MAX:
        raise ApiError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 "
                       "records into this call")  # fmt: skip
    if not all(isinstance(r, dict) for r in records):
        raise ApiError("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject")
    return records, bool(body.get("allOrNone", False))


@route(("POST", "PATCH", "DELETE"), DATA + r"/composite/sobjects/?")
def collections(req: Request) -> Response:
    check_version(req)
    org, acc = req.org, _acc(req)
    if req.method == "DELETE":
        raw = req.arg("ids") or ""
        id_list = [x for x in raw.split(",") if x]
        if not id_list:
            raise ApiError("MALFORMED_ID", "ids parameter is required")
        if len(id_list) > COLLECTION_MAX:
            raise ApiError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than "
                           "200 records into this call")  # fmt: skip
        all_or_none = (req.arg("allOrNone") or "false").lower() == "true"
        results = org.save_many("delete", None, [{"Id": i} for i in id_list], acc, all_or_none)
        for r, i in zip(results, id_list, strict=True):
            if r.id is None and r.success is False and r.errors and r.errors[0].code != "ALL_OR_NONE_OPERATION_ROLLED_BACK":
                r.id = ids.try_normalize(i) or i
        return json_response([r.item() for r in results])
    records, all_or_none = _records_body(req)
    if req.method == "POST":
        results = org.save_many("insert", None, records, acc, all_or_none)
    else:
        results = org.save_many("update", None, records, acc, all_or_none)
        for r, rec in zip(results, records, strict=True):
            if r.id is None and not r.success:
                given = rec.get("id") or rec.get("Id")
                if given and r.errors and r.errors[0].code != "ALL_OR_NONE_OPERATION_ROLLED_BACK":
                    r.id = ids.try_normalize(str(given))
    return json_response([r.item() for r in results])


@route(("GET", "POST"), DATA + r"/composite/sobjects/(?P<sobject>\w+)/?")
def collections_retrieve(req: Request) -> Response:
    v = f"{check_version(req):.1f}"
    org, acc = req.org, _acc(req)
    if req.method == "POST":
        body = _body_dict(req)
        id_list = [str(x) for x in body.get("ids") or []]
        fields = [str(x) for x in body.get("fields") or []]
    else:
        id_list = [x for x in (req.arg("ids") or "").split(",") if x]
        fields = _fields_arg(req) or []
    if not fields:
        raise ApiError("MALFORMED_QUERY", "The fields parameter is required")
    if len(id_list) > 2000:
        raise ApiError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 2000 records into this call")
    out: list[Any] = []
    with org.lock:
        obj = org.sobject(req.params["sobject"], acc)
        for i in id_list:
            rid = ids.try_normalize(i)
            if rid is None or rid[:3] != obj.key_prefix:
                raise ApiError("MALFORMED_ID", f"malformed id {i}")
            try:
                out.append(org.retrieve(obj.name, rid, acc, fields, v))
            except ApiError as exc:
                if exc.code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
                    out.append(None)
                else:
                    raise
    return json_response(out)


@route("PATCH", DATA + r"/composite/sobjects/(?P<sobject>\w+)/(?P<field>\w+)/?")
def collections_upsert(req: Request) -> Response:
    version = check_version(req)
    if version < 46.0:
        raise not_found()
    org, acc = req.org, _acc(req)
    records, all_or_none = _records_body(req)
    sobject = req.params["sobject"]
    for rec in records:
        t = (rec.get("attributes") or {}).get("type") if isinstance(rec.get("attributes"), dict) else None
        if t is None:
            raise ApiError("INVALID_INPUT", "Each record must have an attributes.type")
        if str(t).lower() != sobject.lower():
            raise ApiError("INVALID_INPUT", f"The sObject type {t} does not match the URL {sobject}")
    results = org.save_many("upsert", sobject, records, acc, all_or_none,
                            external_id_field=req.params["field"])  # fmt: skip
    return json_response([r.item(upsert=True) for r in results])


# -- composite ------------------------------------------------------------------------------------------

_REF_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _RefError(Exception):
    pass


def _resolve(text: str, results: dict[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        ref, path = m.group(1), m.group(2)
        if ref not in results:
            raise _RefError(f"Invalid reference specified. No value for {ref}{path} found in {ref}. "
                            f"Provided referenceId ({ref}) was not found in any previous subrequest.")  # fmt: skip
        node: Any = results[ref]
        for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            key, idx = part
            try:
                node = node[int(idx)] if idx else node[key]
            except (KeyError, IndexError, TypeError):
                raise _RefError(f"Invalid reference specified. No value for {ref}{path} found in "
                                f"{ref}.") from None  # fmt: skip
        if node is None:
            raise _RefError(f"Invalid reference specified. No value for {ref}{path} found in {ref}.")
        return str(node)

    return _REF_RE.sub(sub, text)


def _resolve_json(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _resolve(value, results)
    if isinstance(value, list):
        return [_resolve_json(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_json(v, results) for k, v in value.items()}
    return value


def run_subrequest(parent: Request, method: str, url: str, body: Any,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    """Run one REST subrequest in the parent's session (no extra API call counted)."""
    split = urlsplit(url)
    if not split.path.startswith("/services/data/v"):
        return 400, [{"errorCode": "INVALID_API_INPUT",
                      "message": f"The url {url} is not a valid REST API resource"}], {}  # fmt: skip
    app = parent.app
    route_, params, other = app.match(method.upper(), split.path)
    if route_ is None or route_.auth != "api" or route_.handler in (composite, composite_graph, composite_batch):
        if other:
            return 405, [{"errorCode": "METHOD_NOT_ALLOWED",
                          "message": f"HTTP Method '{method}' not allowed."}], {}  # fmt: skip
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], {}
    raw = json.dumps(body).encode() if body is not None else b""
    sub = Request(method=method.upper(), path=split.path, query_string=split.query,
                  headers=Headers([*(headers or {}).items(), ("Content-Type", "application/json")]),
                  body=raw, app=app, params=params, session=parent.session, access=parent.access,
                  client=parent.client, host=parent.host)  # fmt: skip
    try:
        resp = route_.handler(sub)
    except ApiError as exc:
        return exc.status, [exc.rest()] if exc.fields else [{"errorCode": exc.code, "message": exc.message}], {}
    out_headers: dict[str, str] = {}
    parsed: Any = None
    if resp.body and (resp.content_type or "").startswith("application/json"):
        parsed = json.loads(resp.body)
    if resp.status == 201 and isinstance(parsed, dict) and parsed.get("id"):
        obj = params.get("sobject", "")
        out_headers["Location"] = f"/services/data/v{params.get('version', '62.0')}/sobjects/{obj}/{parsed['id']}"
    return resp.status, parsed, out_headers


def _halted() -> list[dict[str, str]]:
    return [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]


def _run_composite(req: Request, subs: list[Any], all_or_none: bool) -> tuple[list[dict[str, Any]], bool]:
    """Run subrequests in order; returns (compositeResponse items, all succeeded)."""
    org = req.org
    results: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    failed = False
    with org.transaction() as tx:
        for sub in subs:
            if not isinstance(sub, dict) or not sub.get("method") or not sub.get("url") or not sub.get("referenceId"):
                raise ApiError("INVALID_API_INPUT", "Each subrequest needs method, url and referenceId")
            ref = str(sub["referenceId"])
            if failed and all_or_none:
                out.append({"body": _halted(), "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref})
                continue
            try:
                url = _resolve(str(sub["url"]), results)
                body = _resolve_json(sub.get("body"), results)
            except _RefError as exc:
                status, parsed, hdrs = 400, [{"errorCode": "PROCESSING_HALTED", "message": str(exc)}], {}
            else:
                status, parsed, hdrs = run_subrequest(req, str(sub["method"]), url, body,
                                                      sub.get("httpHeaders") or {})  # fmt: skip
            if status < 400:
                results[ref] = parsed
            else:
                failed = True
            out.append({"body": parsed, "httpHeaders": hdrs, "httpStatusCode": status, "referenceId": ref})
        if failed and all_or_none:
            tx.rollback()
            for item in out:
                if item["httpStatusCode"] < 400:
                    item.update({"body": _halted(), "httpHeaders": {}, "httpStatusCode": 400})
    return out, not failed


@route("POST", DATA + r"/composite/?")
def composite(req: Request) -> Response:
    check_version(req)
    body = _body_dict(req)
    subs = body.get("compositeRequest")
    if not isinstance(subs, list) or not subs:
        raise ApiError("JSON_PARSER_ERROR", "compositeRequest is required")
    if len(subs) > COMPOSITE_MAX:
        raise ApiError("INVALID_API_INPUT", f"Composite API allows a maximum of {COMPOSITE_MAX} "
                       f"subrequests; the request has {len(subs)}")  # fmt: skip
    refs = [s.get("referenceId") for s in subs if isinstance(s, dict)]
    if len(set(refs)) != len(refs):
        raise ApiError("INVALID_API_INPUT", "Duplicate referenceId provided in the request")
    out, _ = _run_composite(req, subs, bool(body.get("allOrNone", False)))
    return json_response({"compositeResponse": out})


@route("POST", DATA + r"/composite/graph/?")
def composite_graph(req: Request) -> Response:
    check_version(req)
    body = _body_dict(req)
    graphs = body.get("graphs")
    if not isinstance(graphs, list) or not graphs:
        raise ApiError("JSON_PARSER_ERROR", "graphs is required")
    if len(graphs) > GRAPH_MAX_GRAPHS:
        raise ApiError("INVALID_API_INPUT", f"A payload can have at most {GRAPH_MAX_GRAPHS} graphs")
    total = sum(len(g.get("compositeRequest") or []) for g in graphs if isinstance(g, dict))
    if total > GRAPH_MAX_NODES:
        raise ApiError("INVALID_API_INPUT", f"A payload can have at most {GRAPH_MAX_NODES} nodes")
    out = []
    failures = 0
    for g in graphs:
        if not isinstance(g, dict) or not g.get("graphId") or not isinstance(g.get("compositeRequest"), list):
            raise ApiError("INVALID_API_INPUT", "Each graph needs a graphId and a compositeRequest")
        if failures >= 14:
            items = [{"body": _halted(), "httpHeaders": {}, "httpStatusCode": 400,
                      "referenceId": s.get("referenceId")} for s in g["compositeRequest"]]  # fmt: skip
            out.append({"graphId": g["graphId"], "graphResponse": {"compositeResponse": items},
                        "isSuccessful": False})  # fmt: skip
            continue
        items, ok = _run_composite(req, g["compositeRequest"], True)
        failures += 0 if ok else 1
        out.append({"graphId": g["graphId"], "graphResponse": {"compositeResponse": items},
                    "isSuccessful": ok})  # fmt: skip
    return json_response({"graphs": out})


@route("POST", DATA + r"/composite/batch/?")
def composite_batch(req: Request) -> Response:
    check_version(req)
    body = _body_dict(req)
    subs = body.get("batchRequests")
    if not isinstance(subs, list) or not subs:
        raise ApiError("JSON_PARSER_ERROR", "batchRequests is required")
    if len(subs) > COMPOSITE_MAX:
        raise ApiError("INVALID_API_INPUT", f"Batch API allows a maximum of {COMPOSITE_MAX} subrequests")
    halt = bool(body.get("haltOnError", False))
    results = []
    has_errors = False
    for sub in subs:
        if has_errors and halt:
            results.append({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request"}]})  # fmt: skip
            continue
        # every batch subrequest counts against the limit (the batch itself counted one)
        if len(results) > 0 and not req.org.usage.try_count():
            status, parsed = 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
        else:
            url = str(sub.get("url", ""))
            if not url.startswith("/"):
                url = f"/services/data/{url}" if url.startswith("v") else url
            status, parsed, _ = run_subrequest(req, str(sub.get("method", "GET")), url,
                                               sub.get("richInput"))  # fmt: skip
        has_errors = has_errors or status >= 400
        results.append({"statusCode": status, "result": parsed})
    return json_response({"hasErrors": has_errors, "results": results})


ROUTES = [
    versions, resources, describe_global, describe, sobject_root, by_external_id, record,
    query_more, query, limits, collections_upsert, collections_retrieve, collections,
    composite_graph, composite_batch, composite,
]  # fmt: skip

__all__ = ["ROUTES", "JSON_TYPE", "error_response", "run_subrequest"]
