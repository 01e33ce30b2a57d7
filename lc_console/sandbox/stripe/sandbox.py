"""`StripeSandbox`: a seeded Stripe account served on 127.0.0.1, with controls for tests.

    with StripeSandbox(scenario="small", seed=1) as st:
        client = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
        st.advance(days=2)                                  # billing runs, events appear
        st.run_story(customer_id, "dunning_recovered")      # a forced dunning course

The same seed, scenario and controls give the same account (ids, amounts, events). With
`state=FILE` the configuration and every control is kept in FILE and replayed on the next
start, so a restarted sandbox is the same account.
"""

from __future__ import annotations

import gc
import json
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .api import CONSOLE_PERMISSIONS, PERMISSIONS, ApiKey, StripeApi
from .catalog import DECLINE_BY_CODE
from .ids import ALPHABET, IdCodec
from .ledger import Ledger
from .model import (
    Charge,
    Customer,
    Event,
    Invoice,
    InvoicePayment,
    PaymentIntent,
    Refund,
    Subscription,
)
from .server import SandboxHTTPServer
from .simulation import DAY, HOUR, OK, ScenarioConfig, Script, Simulation
from .versions import DEFAULT_API_VERSION, LEGACY_API_VERSION, is_current_shape, parse_version

STATE_FORMAT = 1

SCENARIOS: dict[str, dict[str, Any]] = {
    "small": {"customers": 50, "days": 90},
    "demo": {"customers": 500, "days": 90},
    "large": {"customers": 100_000, "days": 90},
    "live": {"customers": 500, "days": 90},
}
# The account ran on 2020-08-27 until this many days before the end of the history, then its
# owner upgraded the default version: recent history holds both shapes.
UPGRADE_DAYS_BEFORE_END = 12

DUNNING_STORIES = {
    "renewal_paid": lambda dc: Script([OK]),
    "dunning_recovered_first_retry": lambda dc: Script([dc, OK]),
    "dunning_recovered": lambda dc: Script([dc, dc, OK]),
    "dunning_card_updated": lambda dc: Script([dc, dc, OK], card_update_after=2),
    "dunning_exhausted_canceled": lambda dc: Script([dc] * 8, on_exhausted="cancel"),
    "dunning_exhausted_unpaid": lambda dc: Script([dc] * 8, on_exhausted="unpaid"),
    "hard_decline_exhausted": lambda dc: Script([dc], on_exhausted="cancel"),
}
STORY_DEFAULT_DECLINE = {"dunning_card_updated": "expired_card",
                         "hard_decline_exhausted": "lost_card"}
ACTION_STORIES = ("upgrade", "downgrade", "cancel_at_period_end", "cancel_now", "refund",
                  "profile_update")
STORIES = tuple(DUNNING_STORIES) + ACTION_STORIES


class SandboxError(ValueError):
    """A control asked for something the account cannot do (the message says why)."""


@dataclass
class StoryResult:
    story: str
    customer: str
    subscription: str | None
    invoice: str | None
    events: list[dict[str, Any]] = field(default_factory=list)  # this customer's, in list order

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


@dataclass
class SandboxConfig:
    scenario: str
    customers: int
    days: int
    seed: int
    anchor: int
    api_version: str
    live: bool
    events_per_minute: int


def _derive_key(rng: random.Random, prefix: str, tag: str) -> str:
    return f"{prefix}51{tag}" + "".join(rng.choice(ALPHABET) for _ in range(88))


class StripeSandbox:
    def __init__(self, scenario: str = "demo", *, customers: int | None = None,
                 days: int | None = None, seed: int = 1, port: int = 0,
                 host: str = "127.0.0.1", state: str | os.PathLike[str] | None = None,
                 rate_limit: float | None = None, fault_rate: float = 0.0,
                 events_per_minute: int = 60, api_version: str = DEFAULT_API_VERSION,
                 now: int | None = None) -> None:
        if scenario not in SCENARIOS:
            raise SandboxError(f"unknown scenario {scenario!r}: choose one of "
                               f"{', '.join(SCENARIOS)}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SandboxError("the Stripe sandbox serves on loopback only (127.0.0.1)")
        if not 0.0 <= fault_rate < 1.0:
            raise SandboxError("fault rate must be between 0 and 1 (e.g. 0.2 for 20%)")
        if rate_limit is not None and rate_limit <= 0:
            raise SandboxError("rate limit must be a positive number of requests per second")
        try:
            api_version = parse_version(api_version)
        except ValueError:
            raise SandboxError(f"invalid Stripe API version {api_version!r}: use a released "
                               f"version such as {DEFAULT_API_VERSION} or "
                               f"{LEGACY_API_VERSION}") from None
        defaults = SCENARIOS[scenario]
        anchor = int(now) if now is not None else int(time.time()) // 60 * 60
        self.config = SandboxConfig(scenario, customers or defaults["customers"],
                                    days or defaults["days"], seed, anchor, api_version,
                                    scenario == "live", events_per_minute)
        if self.config.customers < 1 or self.config.days < 1:
            raise SandboxError("customers and days must be at least 1")
        self.host, self.port = host, port
        self.state_path = Path(state) if state else None
        self.rate_limit, self.fault_rate = rate_limit, fault_rate
        self.ops: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self.resumed = False
        self._server: SandboxHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._dirty = False
        self._frozen = False
        self.test: Simulation
        self.live_mode: Simulation
        self.api: StripeApi

    # -- lifecycle ---------------------------------------------------------------------------
    def build(self) -> StripeSandbox:
        """Generate the account (or replay the state file); no server yet."""
        if self.state_path is not None and self.state_path.exists():
            self._load_state()
        self._generate()
        for op in self.ops:
            self._apply(op, record=False)
        keys = self._make_keys()
        self.api = StripeApi(self.test, self.live_mode, keys, self.lock,
                             rate_limit=self.rate_limit, fault_rate=self.fault_rate,
                             seed=self.config.seed)
        self._save_state()
        return self

    def start(self) -> StripeSandbox:
        if not hasattr(self, "api"):
            self.build()
        self._server = SandboxHTTPServer(self.host, self.port, self.api, self._admin)
        self.port = self._server.server_address[1]
        serve = threading.Thread(target=self._server.serve_forever, name="stripe-sandbox",
                                 daemon=True)
        serve.start()
        self._threads.append(serve)
        if self.config.live:
            live = threading.Thread(target=self._live_loop, name="stripe-sandbox-live",
                                    daemon=True)
            live.start()
            self._threads.append(live)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        with self.lock:
            self._save_state()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False

    def __enter__(self) -> StripeSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "keys": dict(self.keys), "live_keys": dict(self.live_keys),
                "scenario": self.config.scenario, "api_version": self.test.default_version,
                "resumed": self.resumed}

    # -- generation and keys -----------------------------------------------------------------
    def _generate(self) -> None:
        cfg = self.config
        legacy = None
        if is_current_shape(cfg.api_version) and cfg.scenario != "large":
            legacy = LEGACY_API_VERSION
        scenario = ScenarioConfig(cfg.scenario, cfg.customers, cfg.days, cfg.seed, cfg.anchor,
                                  cfg.api_version, legacy, UPGRADE_DAYS_BEFORE_END)
        live_cfg = ScenarioConfig("live-mode", 3, min(cfg.days, 20), cfg.seed, cfg.anchor,
                                  cfg.api_version, None, 0)
        was_enabled = gc.isenabled()
        gc.disable()  # millions of small objects: the cyclic collector would only slow us down
        try:
            self.test = Simulation(Ledger(IdCodec(cfg.seed, "test"), False), scenario, "test")
            self.test.generate()
            self.live_mode = Simulation(Ledger(IdCodec(cfg.seed, "live"), True), live_cfg,
                                        "live")
            self.live_mode.generate()
        finally:
            if was_enabled:
                gc.enable()
        if cfg.customers >= 20_000:
            gc.collect()
            gc.freeze()  # keep the collector off the ledger for the server's lifetime
            self._frozen = True

    def _make_keys(self) -> list[ApiKey]:
        rng = random.Random(f"{self.config.seed}:keys")
        tag = self.test.ledger.codec.account_tag
        missing = CONSOLE_PERMISSIONS - {PERMISSIONS["invoice"]}
        self.keys = {
            "secret": _derive_key(rng, "sk_test_", tag),
            "restricted": _derive_key(rng, "rk_test_", tag),
            "restricted_missing": _derive_key(rng, "rk_test_", tag),
        }
        self.live_keys = {
            "secret": _derive_key(rng, "sk_live_", tag),
            "restricted": _derive_key(rng, "rk_live_", tag),
        }
        return [
            ApiKey(self.keys["secret"], False, None),
            ApiKey(self.keys["restricted"], False, CONSOLE_PERMISSIONS),
            ApiKey(self.keys["restricted_missing"], False, missing),
            ApiKey(self.live_keys["secret"], True, None),
            ApiKey(self.live_keys["restricted"], True, CONSOLE_PERMISSIONS),
        ]

    # -- state file -----------------------------------------------------------------------------
    def _load_state(self) -> None:
        assert self.state_path is not None
        try:
            data = json.loads(self.state_path.read_text())
            if data.get("format") != STATE_FORMAT:
                raise ValueError("unknown format")
            self.config = SandboxConfig(**data["config"])
            self.ops = list(data["ops"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SandboxError(f"cannot read the sandbox state file {self.state_path}: {exc}. "
                               "Delete it to start a fresh account.") from None
        self.resumed = True

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        data = {"format": STATE_FORMAT, "config": asdict(self.config), "ops": self.ops}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_path)
        self._dirty = False

    def _record(self, op: dict[str, Any]) -> None:
        self.ops.append(op)
        self._dirty = True
        if not self.config.live:
            self._save_state()

    # -- controls ------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.test.now

    def _apply(self, op: dict[str, Any], record: bool = True) -> Any:
        kind = op["op"]
        if kind == "advance":
            result = self._advance_to(op["to"])
        elif kind == "tick":
            self._advance_to(op["to"])
            for _ in range(op["activities"]):
                self.test.live_activity()
            result = None
        elif kind == "story":
            result = self._story(op)
        elif kind == "emit":
            result = self._emit(op["type"], op["object"])
        elif kind == "relist":
            result = self._relist(op["events"], op["move"])
        elif kind == "api_version":
            self.test.change_version(op["version"])
            self.live_mode.change_version(op["version"])
            result = None
        else:
            raise SandboxError(f"unknown control {kind!r}")
        if record:
            self._record(op)
        return result

    def _advance_to(self, to: int) -> int:
        before = len(self.test.ledger.events)
        self.test.advance(to)
        self.live_mode.advance(to)
        return len(self.test.ledger.events) - before

    def advance(self, seconds: int = 0, *, days: float = 0, to: int | None = None) -> list[str]:
        """Move the simulated clock forward, running the billing that falls due.

        Returns the ids of the test-mode events emitted, oldest first.
        """
        with self.lock:
            target = to if to is not None else self.now + int(seconds + days * DAY)
            if target < self.now:
                raise SandboxError("the clock only moves forward")
            before = len(self.test.ledger.events)
            self._apply({"op": "advance", "to": target})
            return [self.test.ledger.id_of("event", n)
                    for n in range(before, len(self.test.ledger.events))]

    def set_api_version(self, version: str) -> None:
        """The account owner upgrades the default API version from now on."""
        try:
            version = parse_version(version)
        except ValueError:
            raise SandboxError(f"invalid Stripe API version {version!r}") from None
        with self.lock:
            self._apply({"op": "api_version", "version": version})

    def run_story(self, customer: str, story: str, *, decline_code: str | None = None,
                  when: str = "next_renewal", advance: bool = True) -> StoryResult:
        """Drive one customer through a named course of events.

        Dunning stories force the outcome of each payment attempt of the customer's next
        renewal (`when="next_renewal"`) or of a billing cycle reset now (`when="now"`, as
        `billing_cycle_anchor=now` does); with `advance`, the clock runs until the invoice is
        resolved. Action stories (upgrade, downgrade, cancel_at_period_end, cancel_now,
        refund, profile_update) happen at once, as API requests.
        """
        if story not in STORIES:
            raise SandboxError(f"unknown story {story!r}: choose one of {', '.join(STORIES)}")
        if when not in ("next_renewal", "now"):
            raise SandboxError("when must be 'next_renewal' or 'now'")
        if decline_code is not None and decline_code not in DECLINE_BY_CODE:
            raise SandboxError(f"unknown decline code {decline_code!r}: choose one of "
                               f"{', '.join(DECLINE_BY_CODE)}")
        with self.lock:
            return self._apply({"op": "story", "customer": customer, "story": story,
                                "decline_code": decline_code, "when": when,
                                "advance": advance})

    def emit(self, event_type: str, object_id: str) -> str:
        """Emit an extra event of `event_type` carrying the object's current state."""
        with self.lock:
            return self._apply({"op": "emit", "type": event_type, "object": object_id})

    def emit_sequence(self, events: list[tuple[str, str]]) -> list[str]:
        """Emit several events, in order: [(event type, object id), ...]; returns their ids."""
        with self.lock:
            for event_type, object_id in events:  # check them all before emitting any
                self._check_emit(event_type, object_id)
            return [self.emit(event_type, object_id) for event_type, object_id in events]

    def redeliver(self, event_id: str) -> None:
        """List an event again at the newest end (the same event delivered twice)."""
        with self.lock:
            self._apply({"op": "relist", "events": [event_id], "move": False})

    def deliver_out_of_order(self, event_ids: list[str]) -> None:
        """Move these events to the newest end of the list, in the order given."""
        with self.lock:
            self._apply({"op": "relist", "events": list(event_ids), "move": True})

    # -- control implementations ---------------------------------------------------------------
    def _customer(self, customer_id: str) -> Customer:
        cust = self.test.ledger.lookup("customer", customer_id)
        if cust is None:
            raise SandboxError(f"no such customer: {customer_id!r}")
        return cust

    def _story(self, op: dict[str, Any]) -> StoryResult:
        sim, ledger = self.test, self.test.ledger
        cust = self._customer(op["customer"])
        story = op["story"]
        start_events = len(ledger.events)
        first_invoice = len(ledger.invoices)
        live_subs = [s for s in cust.subs if s.st.status in ("active", "trialing", "past_due")]
        sub: Subscription | None = live_subs[0] if live_subs else None
        invoice: Invoice | None = None
        if story in DUNNING_STORIES:
            if sub is None:
                raise SandboxError(f"customer {op['customer']} has no active subscription")
            decline = op["decline_code"] or STORY_DEFAULT_DECLINE.get(story, "insufficient_funds")
            script = DUNNING_STORIES[story](decline)
            sim.automatic()
            run = sim.start_dunning_story(sub, script, now=op["when"] == "now")
            invoice = run.invoice
            if op["advance"]:
                invoice = self._run_until_resolved(sub, invoice, first_invoice)
        else:
            invoice = self._action_story(story, cust, sub)
        result = StoryResult(story, ledger.id_of("customer", cust.n),
                             ledger.id_of("subscription", sub.n) if sub else None,
                             ledger.id_of("invoice", invoice.n) if invoice else None)
        renderer = self.api.modes[False].renderer if hasattr(self, "api") else None
        if renderer is not None:
            for event in self._events_since(start_events):
                if _customer_of(event.obj) is cust:
                    result.events.append(renderer.event(event))
        return result

    def _run_until_resolved(self, sub: Subscription, invoice: Invoice | None,
                            first_invoice: int) -> Invoice | None:
        """Advance hour by hour until the story's invoice is paid, written off or void."""
        sim = self.test
        horizon = (sim.now if invoice is not None else sub.st.period_end) + 20 * DAY
        while sim.now < horizon:
            if invoice is None:
                invoice = next((i for i in sub.invoices if i.n >= first_invoice
                                and i.billing_reason == "subscription_cycle"), None)
            if invoice is not None and invoice.st.status not in ("open", "draft"):
                break
            self._advance_to(min(horizon, sim.now + HOUR))
        return invoice

    def _events_since(self, start: int) -> list[Event]:
        events = self.test.ledger.events
        return [events[n] for n in range(start, len(events))]

    def _action_story(self, story: str, cust: Customer, sub: Subscription | None) -> Invoice | None:
        sim = self.test
        before = len(sim.ledger.invoices)
        if story == "profile_update":
            sim._update_profile(cust)
            return None
        if story == "refund":
            charges = [c for c in cust.charges if c.succeeded and c.st.amount_refunded < c.amount]
            if not charges:
                raise SandboxError(f"customer {self.test.ledger.id_of('customer', cust.n)} has "
                                   "no refundable charge")
            sim._refund(charges[-1], charges[-1].amount - charges[-1].st.amount_refunded)
            return charges[-1].invoice
        if sub is None:
            raise SandboxError("the customer has no active subscription")
        if story in ("upgrade", "downgrade"):
            if not sim._change_plan(sub, upgrade=story == "upgrade"):
                raise SandboxError(f"cannot {story} this subscription (it must be active, in "
                                   "usd, not set to cancel, on a plan with a higher/lower tier)")
        elif story == "cancel_at_period_end":
            if not sim._request_cancel(sub, immediately=False):
                raise SandboxError("the subscription is already set to cancel")
        elif story == "cancel_now":
            sim._request_cancel(sub, immediately=True)
        new = sim.ledger.invoices[before:]
        return new[0] if new else None

    def _check_emit(self, event_type: str, object_id: str) -> Any:
        ledger = self.test.ledger
        kind = ledger.codec.kind_of(object_id)
        obj = ledger.lookup(kind, object_id) if kind in (
            "customer", "subscription", "invoice", "charge", "payment_intent", "refund") else None
        if obj is None:
            raise SandboxError(f"no such object: {object_id!r}")
        expected = "customer.subscription" if kind == "subscription" else kind
        if not event_type.startswith(expected + ".") or (
                kind == "customer" and event_type.startswith("customer.subscription.")):
            raise SandboxError(f"event type {event_type!r} does not carry a {kind}")
        return obj

    def _emit(self, event_type: str, object_id: str) -> str:
        obj = self._check_emit(event_type, object_id)
        ledger = self.test.ledger
        before = len(ledger.events)
        self.test.emit_notification(event_type, obj)
        return ledger.id_of("event", before)

    def _relist(self, event_ids: list[str], move: bool) -> None:
        ledger = self.test.ledger
        events = []
        for event_id in event_ids:
            event = ledger.lookup("event", event_id)
            if event is None:
                raise SandboxError(f"no such event: {event_id!r}")
            events.append(event)
        for event in events:
            ledger.relist(event, move)

    # -- live scenario ------------------------------------------------------------------------
    def _live_loop(self) -> None:
        per_second = self.config.events_per_minute / 60.0
        budget = 0.0
        last_save = time.monotonic()
        while not self._stop.wait(1.0):
            with self.lock:
                target = max(self.now, int(time.time()))
                budget = min(budget + per_second, max(10.0, per_second * 5))
                activities = 0
                start = self.test.emitted
                self._advance_to(target)
                budget -= self.test.emitted - start
                while budget > 0 and activities < 100:
                    before = self.test.emitted
                    self.test.live_activity()
                    activities += 1
                    budget -= max(1, self.test.emitted - before)
                last = self.ops[-1] if self.ops else None
                if activities == 0 and last and last["op"] == "tick" and not last["activities"]:
                    last["to"] = target  # quiet seconds fold into one step of the replay
                else:
                    self.ops.append({"op": "tick", "to": target, "activities": activities})
                self._dirty = True
                if self._dirty and time.monotonic() - last_save > 5:
                    self._save_state()
                    last_save = time.monotonic()

    # -- admin endpoint ------------------------------------------------------------------------
    def _admin(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.keys['secret']}":
            return 401, {"error": {"message": "The sandbox admin endpoint needs the test "
                                              "secret key as a Bearer token."}}
        name = path[len("/_sandbox/"):].split("?", 1)[0].strip("/")
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise SandboxError("the request body must be a JSON object")
            if method == "GET" and name == "state":
                with self.lock:
                    ledger = self.test.ledger
                    return 200, {"now": self.now, "api_version": self.test.default_version,
                                 "scenario": self.config.scenario, "seed": self.config.seed,
                                 "counts": {k: len(ledger.objects(k)) for k in (
                                     "customer", "subscription", "invoice", "charge", "refund",
                                     "payment_intent", "event")}}
            if method != "POST":
                raise SandboxError(f"unknown admin request {method} {path}")
            if name == "advance":
                ids = self.advance(int(payload.get("seconds", 0)),
                                   days=float(payload.get("days", 0)), to=payload.get("to"))
                return 200, {"now": self.now, "events": ids}
            if name == "story":
                result = self.run_story(payload["customer"], payload["story"],
                                        decline_code=payload.get("decline_code"),
                                        when=payload.get("when", "next_renewal"),
                                        advance=bool(payload.get("advance", True)))
                return 200, {"story": result.story, "customer": result.customer,
                             "subscription": result.subscription, "invoice": result.invoice,
                             "events": [e["id"] for e in result.events],
                             "types": result.types}
            if name == "emit":
                if "events" in payload:
                    pairs = [(e["type"], e["object"]) for e in payload["events"]]
                    return 200, {"events": self.emit_sequence(pairs)}
                return 200, {"event": self.emit(payload["type"], payload["object"])}
            if name == "redeliver":
                self.redeliver(payload["event"])
                return 200, {}
            if name == "reorder":
                self.deliver_out_of_order(payload["events"])
                return 200, {}
            if name == "api_version":
                self.set_api_version(payload["version"])
                return 200, {"api_version": self.test.default_version}
            raise SandboxError(f"unknown admin request {method} {path}")
        except KeyError as exc:
            return 400, {"error": {"message": f"missing field {exc.args[0]!r}"}}
        except (SandboxError, ValueError, TypeError) as exc:
            return 400, {"error": {"message": str(exc)}}


def _customer_of(obj: Any) -> Customer | None:
    if isinstance(obj, Customer):
        return obj
    if isinstance(obj, Subscription | Invoice | Charge | PaymentIntent):
        return obj.customer
    if isinstance(obj, InvoicePayment):
        return obj.invoice.customer
    if isinstance(obj, Refund):
        return obj.charge.customer
    return None
