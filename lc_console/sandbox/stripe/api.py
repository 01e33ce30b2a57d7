"""The HTTP-independent Stripe API: auth, versions, limits, faults, routes, lists, expansion.

`StripeApi.handle` takes a request's method, path, query and headers and returns status,
headers and body exactly as Stripe would (errors in Stripe's envelope, `Request-Id` on every
response), or asks the transport to drop the connection (fault injection).
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ids import ALPHABET
from .ledger import Ledger
from .lists import page_events, page_objects
from .params import ParamError, as_bool, as_int, as_list, as_str, created_range, parse_query
from .render import Renderer
from .simulation import Simulation
from .versions import BASIL, CHARGES_ON_PI_REMOVED, InvalidApiVersion, at_least, parse_version

DOCS = "https://stripe.com/docs/error-codes/"

# Read permission of a restricted key needed for each kind of object.
PERMISSIONS = {
    "account": "rak_accounts_kyc_basic_read",
    "customer": "rak_customer_read",
    "subscription": "rak_subscription_read",
    "invoice": "rak_invoice_read",
    "invoice_payment": "rak_invoice_read",
    "charge": "rak_charge_read",
    "refund": "rak_refund_read",
    "payment_intent": "rak_payment_intent_read",
    "event": "rak_event_read",
    "product": "rak_product_read",
    "coupon": "rak_coupon_read",
    "discount": "rak_coupon_read",
    "payment_method": "rak_payment_method_read",
}
CONSOLE_PERMISSIONS = frozenset(PERMISSIONS.values())

NAMES = {"customer": "customer", "subscription": "subscription", "invoice": "invoice",
         "charge": "charge", "refund": "refund", "payment_intent": "payment_intent",
         "event": "event"}
PATHS = {"customers": "customer", "subscriptions": "subscription", "invoices": "invoice",
         "charges": "charge", "refunds": "refund", "payment_intents": "payment_intent",
         "events": "event"}

LIST_PARAMS = {
    "customer": {"created", "email", "ending_before", "expand", "limit", "starting_after",
                 "test_clock"},
    "subscription": {"automatic_tax", "collection_method", "created", "current_period_end",
                     "current_period_start", "customer", "ending_before", "expand", "limit",
                     "price", "starting_after", "status", "test_clock"},
    "invoice": {"collection_method", "created", "customer", "due_date", "ending_before",
                "expand", "limit", "starting_after", "status", "subscription"},
    "charge": {"created", "customer", "ending_before", "expand", "limit", "payment_intent",
               "starting_after", "transfer_group"},
    "refund": {"charge", "created", "ending_before", "expand", "limit", "payment_intent",
               "starting_after"},
    "payment_intent": {"created", "customer", "ending_before", "expand", "limit",
                       "starting_after"},
    "event": {"created", "delivery_success", "ending_before", "expand", "limit",
              "starting_after", "type", "types"},
}
SUB_STATUSES = ("active", "all", "canceled", "ended", "incomplete", "incomplete_expired",
                "past_due", "paused", "trialing", "unpaid")
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")

# (object type, field path inside it) -> kind of the object an id there expands to.
EXPANDABLE = {
    ("customer", "invoice_settings.default_payment_method"): "payment_method",
    ("subscription", "customer"): "customer",
    ("subscription", "latest_invoice"): "invoice",
    ("subscription", "discounts"): "discount",
    ("subscription", "default_payment_method"): "payment_method",
    ("invoice", "customer"): "customer",
    ("invoice", "subscription"): "subscription",
    ("invoice", "parent.subscription_details.subscription"): "subscription",
    ("invoice", "charge"): "charge",
    ("invoice", "payment_intent"): "payment_intent",
    ("invoice", "discounts"): "discount",
    ("invoice", "default_payment_method"): "payment_method",
    ("line_item", "subscription"): "subscription",
    ("invoice_payment", "invoice"): "invoice",
    ("invoice_payment", "payment.payment_intent"): "payment_intent",
    ("invoice_payment", "payment.charge"): "charge",
    ("payment_intent", "customer"): "customer",
    ("payment_intent", "invoice"): "invoice",
    ("payment_intent", "latest_charge"): "charge",
    ("payment_intent", "payment_method"): "payment_method",
    ("charge", "customer"): "customer",
    ("charge", "invoice"): "invoice",
    ("charge", "payment_intent"): "payment_intent",
    ("refund", "charge"): "charge",
    ("refund", "customer"): "customer",
    ("refund", "payment_intent"): "payment_intent",
    ("refund", "payment_method"): "payment_method",
    ("price", "product"): "product",
    ("plan", "product"): "product",
    ("discount", "customer"): "customer",
    ("discount", "subscription"): "subscription",
    ("discount", "source.coupon"): "coupon",
    ("payment_method", "customer"): "customer",
}


def includable(object_type: str, name: str, version: str) -> bool:
    """Fields Stripe adds only when expanded."""
    if object_type == "invoice" and name == "payments":
        return at_least(version, BASIL)
    if object_type == "charge" and name == "refunds":
        return at_least(version, CHARGES_ON_PI_REMOVED)
    return object_type == "customer" and name == "subscriptions"


@dataclass(frozen=True)
class ApiKey:
    key: str
    livemode: bool
    permissions: frozenset[str] | None  # None: a secret key, all permissions

    @property
    def restricted(self) -> bool:
        return self.permissions is not None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.param, self.headers = param, headers or {}


def mask_key(key: str) -> str:
    """Stripe's redaction in error messages: `sk_test_****************************1234`."""
    match = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)", key)
    prefix = match.group(1) if match else ""
    rest = key[len(prefix):]
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


class RawJSON:
    """A response body already serialised."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


EVENT_CACHE_SIZE = 20_000  # ~80 MB of JSON at most


class Mode:
    """One mode (test or live) of the account: its simulation and renderer."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.ledger: Ledger = sim.ledger
        self.renderer = Renderer(sim.ledger)
        self._event_json: dict[int, bytes] = {}

    def event_json(self, event: Any) -> bytes:
        """An event serialised once: events never change, and polls re-read the newest."""
        cached = self._event_json.get(event.n)
        if cached is None:
            if len(self._event_json) >= EVENT_CACHE_SIZE:
                self._event_json.clear()
            cached = self._event_json[event.n] = _dumps(self.renderer.event(event))
        return cached


class RateLimiter:
    """Token bucket per mode: Stripe limits each account's test and live traffic separately."""

    def __init__(self, rps: float) -> None:
        self.rps = rps
        self.tokens = {False: rps, True: rps}
        self.stamp = {False: time.monotonic(), True: time.monotonic()}
        self.lock = threading.Lock()

    def allow(self, livemode: bool) -> bool:
        with self.lock:
            now = time.monotonic()
            tokens = min(self.rps, self.tokens[livemode] + (now - self.stamp[livemode]) * self.rps)
            self.stamp[livemode] = now
            if tokens >= 1:
                self.tokens[livemode] = tokens - 1
                return True
            self.tokens[livemode] = tokens
            return False


class StripeApi:
    def __init__(self, test: Simulation, live: Simulation, keys: list[ApiKey],
                 lock: threading.RLock, *, rate_limit: float | None = None,
                 fault_rate: float = 0.0, seed: int = 0) -> None:
        self.modes = {False: Mode(test), True: Mode(live)}
        self.keys = {k.key: k for k in keys}
        self.lock = lock
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        self.fault_rate = fault_rate
        self.fault_rng = random.Random(f"{seed}:faults")
        self.request_rng = random.Random()
        self.request_count = 0

    # -- entry point --------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> Response:
        request_id = "req_" + "".join(self.request_rng.choice(ALPHABET) for _ in range(14))
        base = {"Request-Id": request_id, "Content-Type": "application/json",
                "Cache-Control": "no-cache, no-store"}
        path, _sep, query = raw_path.partition("?")
        version: str | None = None
        livemode = False
        try:
            if self.fault_rate and path.startswith("/v1/"):
                fault = self._fault()
                if fault == "drop":
                    return Response(0, b"", base, drop=True)
                if fault == "500":
                    raise ApiError(500, "An unknown error occurred", type_="api_error")
            key = self._authenticate(headers)
            livemode = key.livemode
            version = self._version(headers, key)
            if self.limiter is not None and not self.limiter.allow(key.livemode):
                raise ApiError(429, "Request rate limit exceeded. You can learn more about rate "
                               "limits here https://stripe.com/docs/rate-limits.",
                               code="rate_limit",
                               headers={"Stripe-Should-Retry": "false",
                                        "Stripe-Rate-Limited-Reason": "global-rate"})
            if method != "GET":
                raise self._unrecognized(method, path)
            params = parse_query(query)
            with self.lock:
                body = self._route(path, params, key, version)
            payload = body.data if isinstance(body, RawJSON) else _dumps(body)
            return Response(200, payload, {**base, "Stripe-Version": version})
        except ParamError as exc:
            return self._error(ApiError(400, exc.message, code=exc.code, param=exc.param),
                               base, version, livemode)
        except ApiError as exc:
            return self._error(exc, base, version, livemode)

    def _error(self, exc: ApiError, base: dict[str, str], version: str | None,
               livemode: bool) -> Response:
        error: dict[str, Any] = {}
        if exc.code:
            error["code"] = exc.code
            error["doc_url"] = DOCS + exc.code.replace("_", "-")
        error["message"] = exc.message
        if exc.param:
            error["param"] = exc.param
        if exc.status not in (401, 500):
            logs = "logs" if livemode else "test/logs"
            error["request_log_url"] = (f"https://dashboard.stripe.com/{logs}/"
                                        f"{base['Request-Id']}?t={int(time.time())}")
        error["type"] = exc.type
        headers = {**base, **exc.headers}
        if version:
            headers["Stripe-Version"] = version
        body = json.dumps({"error": error}, indent=2).encode()
        return Response(exc.status, body, headers)

    def _fault(self) -> str | None:
        with self.lock:
            if self.fault_rng.random() >= self.fault_rate:
                return None
            return "drop" if self.fault_rng.random() < 0.4 else "500"

    # -- auth and version ------------------------------------------------------------------
    def _authenticate(self, headers: dict[str, str]) -> ApiKey:
        auth = headers.get("authorization", "").strip()
        supplied = None
        if auth.lower().startswith("bearer "):
            supplied = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            supplied = decoded.split(":", 1)[0]
        if not supplied:
            raise ApiError(401, "You did not provide an API key. You need to provide your API "
                           "key in the Authorization header, using Bearer auth (e.g. "
                           "'Authorization: Bearer YOUR_SECRET_KEY'). See "
                           "https://stripe.com/docs/api#authentication for details, or we can "
                           "help at https://support.stripe.com/.")
        key = self.keys.get(supplied)
        if key is None:
            raise ApiError(401, f"Invalid API Key provided: {mask_key(supplied)}")
        return key

    def _version(self, headers: dict[str, str], key: ApiKey) -> str:
        raw = headers.get("stripe-version")
        if raw is None or not raw.strip():
            return self.modes[key.livemode].sim.default_version
        try:
            return parse_version(raw)
        except InvalidApiVersion:
            raise ApiError(400, f"Invalid Stripe API version: {raw.strip()}",
                           param=None) from None

    def _require(self, key: ApiKey, kind: str) -> None:
        if key.permissions is None:
            return
        permission = PERMISSIONS[kind]
        if permission not in key.permissions:
            acct = self.modes[key.livemode].ledger.codec.account_id
            raise ApiError(403, f"The provided key '{mask_key(key.key)}' does not have the "
                           f"required permissions for this endpoint on account '{acct}'. "
                           f"Having the '{permission}' permission would allow this request "
                           "to continue.")

    @staticmethod
    def _unrecognized(method: str, path: str) -> ApiError:
        return ApiError(404, f"Unrecognized request URL ({method}: {path}). Please see "
                        "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    # -- routing ---------------------------------------------------------------------------
    def _route(self, path: str, params: dict[str, Any], key: ApiKey,
               version: str) -> dict[str, Any] | RawJSON:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or parts[0] != "v1":
            raise self._unrecognized("GET", path)
        mode = self.modes[key.livemode]
        if parts[1:] == ["account"]:
            self._require(key, "account")
            self._check_params(params, {"expand"})
            return mode.renderer.account()
        kind = PATHS.get(parts[1])
        if kind is None or len(parts) > 3:
            raise self._unrecognized("GET", path)
        self._require(key, kind)
        if len(parts) == 3:
            allowed = {"expand", "client_secret"} if kind == "payment_intent" else {"expand"}
            self._check_params(params, allowed)
            return self._retrieve(mode, key, kind, parts[2], params, version)
        self._check_params(params, LIST_PARAMS[kind])
        return self._list(mode, key, kind, params, version, "/v1/" + parts[1])

    @staticmethod
    def _check_params(params: dict[str, Any], allowed: set[str]) -> None:
        for name in params:
            if name not in allowed:
                raise ParamError(f"Received unknown parameter: {name}", name, "parameter_unknown")

    def _missing(self, mode: Mode, kind: str, object_id: str, param: str,
                 status: int = 404) -> ApiError:
        message = f"No such {NAMES[kind]}: '{object_id}'"
        other = self.modes[not mode.ledger.livemode].ledger
        if other.lookup(kind, object_id) is not None:
            here, there = ("test", "live") if not mode.ledger.livemode else ("live", "test")
            message += (f"; a similar object exists in {there} mode, but a {here} mode key was "
                        "used to make this request.")
        return ApiError(status, message, code="resource_missing", param=param)

    def _retrieve(self, mode: Mode, key: ApiKey, kind: str, object_id: str,
                  params: dict[str, Any], version: str) -> dict[str, Any] | RawJSON:
        obj = mode.ledger.lookup(kind, object_id)
        if obj is None:
            raise self._missing(mode, kind, object_id, "intent" if kind == "payment_intent"
                                else "id")
        paths = as_list(params.get("expand", []), "expand")
        if kind == "event":
            if paths:
                raise ApiError(400, f"This property cannot be expanded ({paths[0]}).")
            return RawJSON(mode.event_json(obj))
        return self._render_expanded(mode, key, kind, obj, version, paths)

    # -- lists -------------------------------------------------------------------------------
    def _list(self, mode: Mode, key: ApiKey, kind: str, params: dict[str, Any], version: str,
              url: str) -> dict[str, Any] | RawJSON:
        limit = 10
        if "limit" in params:
            limit = as_int(params["limit"], "limit")
            if limit < 1:
                raise ParamError("This value must be greater than or equal to 1.", "limit")
            if limit > 100:
                raise ParamError("This value must be less than or equal to 100.", "limit")
        if "starting_after" in params and "ending_before" in params:
            raise ParamError("You may only specify one of these parameters: ending_before, "
                             "starting_after.", "ending_before", "parameters_exclusive")
        after = before = None
        if "starting_after" in params:
            cursor = as_str(params["starting_after"], "starting_after")
            after = mode.ledger.lookup(kind, cursor)
            if after is None:
                raise self._missing(mode, kind, cursor, "starting_after", 400)
        if "ending_before" in params:
            cursor = as_str(params["ending_before"], "ending_before")
            before = mode.ledger.lookup(kind, cursor)
            if before is None:
                raise self._missing(mode, kind, cursor, "ending_before", 400)
        low = high = None
        if "created" in params:
            low, high = created_range(params["created"])
        paths = as_list(params.get("expand", []), "expand")
        item_paths = []
        for path in paths:
            if not path.startswith("data."):
                raise ApiError(400, f"This property cannot be expanded ({path}). You may want "
                               f"to try expanding 'data.{path}' instead.")
            item_paths.append(path[5:])
        if kind == "event":
            if item_paths:
                raise ApiError(400, f"This property cannot be expanded ({paths[0]}).")
            types = self._event_types(params, mode.ledger)
            if "delivery_success" in params and not as_bool(params["delivery_success"],
                                                             "delivery_success"):
                found: list[Any] = []
                has_more = False
            else:
                found, has_more = page_events(mode.ledger, limit=limit, after=after,
                                              before=before, low=low, high=high, types=types)
            return RawJSON(b'{"object":"list","data":[' +
                           b",".join(mode.event_json(ev) for ev in found) +
                           b'],"has_more":' + (b"true" if has_more else b"false") +
                           b',"url":' + _dumps(url) + b"}")
        items, keep = self._candidates(mode, kind, params)
        found, has_more = page_objects(items, limit=limit, after=after, before=before, low=low,
                                       high=high, keep=keep)
        data = [self._render_expanded(mode, key, kind, obj, version, item_paths, "data.")
                for obj in found]
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    @staticmethod
    def _event_types(params: dict[str, Any], ledger: Ledger) -> set[str] | None:
        if "type" in params and "types" in params:
            raise ParamError("You may only specify one of these parameters: type, types.",
                             "types", "parameters_exclusive")
        if "types" in params:
            wanted = as_list(params["types"], "types")
            if len(wanted) > 20:
                raise ParamError("Invalid array: you may pass at most 20 types.", "types")
            return set(wanted)
        if "type" in params:
            wanted_one = as_str(params["type"], "type")
            if "*" in wanted_one:
                pattern = re.compile("^" + re.escape(wanted_one).replace(r"\*", ".*") + "$")
                known = set(EVENT_TYPES) | set(ledger.type_positions)
                return {t for t in known if pattern.match(t)}
            return {wanted_one}
        return None

    def _candidates(self, mode: Mode, kind: str,
                    params: dict[str, Any]) -> tuple[list[Any], Callable[[Any], bool] | None]:
        ledger = mode.ledger
        items: list[Any] = ledger.objects(kind)
        checks: list[Callable[[Any], bool]] = []
        if "customer" in params:
            cid = as_str(params["customer"], "customer")
            cust = ledger.lookup("customer", cid)
            if cust is None:
                raise self._missing(mode, "customer", cid, "customer", 400)
            items = {"subscription": cust.subs, "invoice": cust.invoices,
                     "charge": cust.charges, "payment_intent": cust.payment_intents,
                     "refund": cust.refunds}[kind]
        if kind == "customer" and "email" in params:
            email = as_str(params["email"], "email")
            items = sorted(ledger.email_index.get(email, []), key=lambda c: c.n)
            checks.append(lambda c, email=email: c.st.email == email)
        if kind == "subscription":
            status = params.get("status")
            if status is None:
                checks.append(lambda s: s.st.status != "canceled")
            else:
                status = as_str(status, "status")
                if status not in SUB_STATUSES:
                    raise ParamError(f"Invalid status: must be one of {', '.join(SUB_STATUSES)}",
                                     "status")
                if status == "ended":
                    checks.append(lambda s: s.st.status in ("canceled", "incomplete_expired"))
                elif status != "all":
                    checks.append(lambda s, status=status: s.st.status == status)
            if "price" in params:
                price = as_str(params["price"], "price")
                checks.append(lambda s, price=price: any(
                    ledger.codec.make("price", i.price.n) == price for i in s.st.items))
            for name, attr in (("current_period_start", "period_start"),
                               ("current_period_end", "period_end")):
                if name in params:
                    lo, hi = created_range(params[name], name)
                    checks.append(lambda s, lo=lo, hi=hi, attr=attr: _within(
                        getattr(s.st, attr), lo, hi))
        if kind == "invoice":
            if "subscription" in params:
                sid = as_str(params["subscription"], "subscription")
                sub = ledger.lookup("subscription", sid)
                if sub is None:
                    raise self._missing(mode, "subscription", sid, "subscription", 400)
                sub_n = sub.n
                checks.append(lambda i, sub_n=sub_n: i.sub is not None and i.sub.n == sub_n)
            if "status" in params:
                status = as_str(params["status"], "status")
                if status not in INVOICE_STATUSES:
                    raise ParamError("Invalid status: must be one of "
                                     f"{', '.join(INVOICE_STATUSES)}", "status")
                checks.append(lambda i, status=status: i.st.status == status)
            if "due_date" in params:
                created_range(params["due_date"], "due_date")
                checks.append(lambda i: False)  # charge_automatically invoices have no due date
        if "collection_method" in params:
            method = as_str(params["collection_method"], "collection_method")
            if method not in ("charge_automatically", "send_invoice"):
                raise ParamError("Invalid collection_method: must be one of "
                                 "charge_automatically or send_invoice", "collection_method")
            if method == "send_invoice":
                checks.append(lambda _o: False)
        if kind in ("charge", "refund") and "payment_intent" in params:
            pid = as_str(params["payment_intent"], "payment_intent")
            pi = ledger.lookup("payment_intent", pid)
            if pi is None:
                raise self._missing(mode, "payment_intent", pid, "payment_intent", 400)
            charges = sorted(pi.st.charges, key=lambda c: c.n)
            if kind == "charge":
                items = charges
            else:
                items = sorted((r for c in charges for r in c.st.refunds), key=lambda r: r.n)
        if kind == "refund" and "charge" in params:
            chid = as_str(params["charge"], "charge")
            ch = ledger.lookup("charge", chid)
            if ch is None:
                raise self._missing(mode, "charge", chid, "charge", 400)
            items = sorted(ch.st.refunds, key=lambda r: r.n)
        if kind == "charge" and params.get("transfer_group"):
            checks.append(lambda _c: False)
        if "test_clock" in params:
            checks.append(lambda _o: False)  # no test clocks in this account
        if not checks:
            return items, None
        if len(checks) == 1:
            return items, checks[0]
        return items, lambda obj: all(check(obj) for check in checks)

    # -- rendering with expand[] ---------------------------------------------------------------
    def _render_expanded(self, mode: Mode, key: ApiKey, kind: str, obj: Any, version: str,
                         paths: list[str], shown: str = "") -> dict[str, Any]:
        """Render with `expand[]` paths (`shown` prefixes them in messages: `data.`)."""
        includes = frozenset(p.split(".", 1)[0] for p in paths
                             if includable(kind, p.split(".", 1)[0], version))
        out = mode.renderer.render(kind, obj, version, includes=includes)
        for path in paths:
            segments = path.split(".")
            if sum(1 for s in segments if s != "data") > 4:
                raise ApiError(400, "You cannot expand more than 4 levels of a property. "
                               f"Property: {path}")
            self._expand(mode, key, out, segments, 0, kind, [], shown + path, version)
        return out

    def _expand(self, mode: Mode, key: ApiKey, node: dict[str, Any], segments: list[str],
                i: int, ctx: str, sub: list[str], path: str, version: str) -> None:
        """Expand one `expand[]` path in place, walking lists, objects and plain hashes."""
        seg, last = segments[i], i == len(segments) - 1
        cannot = ApiError(400, f"This property cannot be expanded ({path}).")
        if node.get("object") == "list":
            if seg != "data" or last:
                raise cannot
            for item in node["data"]:
                if isinstance(item, dict):
                    self._expand(mode, key, item, segments, i + 1, item.get("object", ctx), [],
                                 path, version)
            return
        if "object" in node:
            ctx, sub = node["object"], []
        if (ctx == "event" and seg == "data") or seg not in node:
            raise cannot  # event payloads are snapshots: nothing in them expands
        value = node[seg]
        target = EXPANDABLE.get((ctx, ".".join([*sub, seg])))
        nxt = None if last else segments[i + 1]
        if target is not None:
            if isinstance(value, str):
                value = node[seg] = self._resolve(mode, key, target, value, version, nxt)
            elif isinstance(value, list):
                value = node[seg] = [self._resolve(mode, key, target, v, version, nxt)
                                     if isinstance(v, str) else v for v in value]
        elif not isinstance(value, dict) or (last and not includable(ctx, seg, version)):
            raise cannot
        if last or value is None:
            return
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    self._expand(mode, key, item, segments, i + 1, item.get("object", ctx), [],
                                 path, version)
            return
        if not isinstance(value, dict):
            raise cannot
        inner = [] if "object" in value else [*sub, seg]
        self._expand(mode, key, value, segments, i + 1, ctx, inner, path, version)

    def _resolve(self, mode: Mode, key: ApiKey, kind: str, object_id: str, version: str,
                 next_segment: str | None) -> Any:
        self._require(key, kind)
        ledger, r = mode.ledger, mode.renderer
        if kind == "product":
            n = ledger.codec.decode("product", object_id)
            return r.product(ledger.products[n]) if n is not None and n < len(
                ledger.products) else object_id
        if kind == "coupon":
            coupon = ledger.coupons.get(object_id)
            return r.coupon(coupon) if coupon else object_id
        if kind == "discount":
            n = ledger.codec.decode("discount", object_id)
            return r.discount(ledger.discounts[n], version) if n is not None and n < len(
                ledger.discounts) else object_id
        if kind == "payment_method":
            n = ledger.codec.decode("payment_method", object_id)
            if n is None or n >= len(ledger.cards):
                return object_id
            card = ledger.cards[n]
            return r.payment_method(card, card.owner)
        obj = ledger.lookup(kind, object_id)
        if obj is None:
            return object_id
        includes = frozenset({next_segment}) if next_segment and includable(
            kind, next_segment, version) else frozenset()
        return r.render(kind, obj, version, includes=includes)


def _within(value: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


# Event types this account emits (for `type=invoice.*` wildcards).
EVENT_TYPES = (
    "charge.failed", "charge.refunded", "charge.succeeded",
    "customer.created", "customer.updated",
    "customer.subscription.created", "customer.subscription.deleted",
    "customer.subscription.trial_will_end", "customer.subscription.updated",
    "invoice.created", "invoice.finalized", "invoice.marked_uncollectible", "invoice.paid",
    "invoice.payment_failed", "invoice.payment_succeeded", "invoice.updated", "invoice.voided",
    "invoice_payment.paid",
    "payment_intent.canceled", "payment_intent.created", "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "refund.created",
)
