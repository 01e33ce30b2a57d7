"""Re-sync All: every Stripe customer's current state into Salesforce, and the reconcile run.

Phases (each reported through `on_progress` with counts and an ETA):

1. read: Stripe's customers, subscriptions, invoices, charges and payment intents, page by
   page into the run's scratch database (services/staging.py), then the console's records
   in the org (one SOQL per object, paged), so matching and skip-unchanged cost no call per
   record;
2. derive: customers in id order, 500 at a time: the sync rules as of now
   (sync/backfill.py), then the engine's own planner (sync/plan.py: resolve references,
   conflict rules, skip-unchanged, pre-check against describe). Rejections go to failures
   without an API call; the rest is staged;
3. forecast: records and API calls per object, share of today's remaining budget, time;
   a run that would cross the throttle threshold stops here unless forced;
4. upload / process / results, per object, parents first: sObject Collections (5 x 200
   records per composite call) up to `sync.bulk_threshold` records, Bulk API 2.0 jobs above.
   Each written record updates last-written values, counters and the audit log; each
   rejected one becomes a failure with Salesforce's error.

Crash or cancel at any point: the checkpoint (store meta `<name>.checkpoint`) and the staged
rows' statuses say where to go on; a rerun with the same scope resumes there. Stripe pages
are read again from the last stored cursor, staged rows are keyed by record (a replayed
chunk replaces its rows), collections sent but not confirmed are sent again and Bulk jobs
are looked up by id instead of being created twice; upserts by external id make every
replay safe.

The live sync keeps running meanwhile. Both record what they wrote in the store's
last-written values: a staged record that the live sync wrote after this run read Stripe
is newer than ours and is not sent again (counted as `newer`).
"""

from __future__ import annotations

import io
import json
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import stripe
from simple_salesforce import Salesforce

from lc_console import paths
from lc_console.salesforce import bulk, writer
from lc_console.salesforce import errors as sf_errors
from lc_console.services.staging import Staging
from lc_console.settings import Settings
from lc_console.store import Store
from lc_console.stripe.lister import (
    BACKFILL_KINDS,
    RateLimitedTooLong,
    StripeLister,
    customer_of,
)
from lc_console.sync import backfill as bf
from lc_console.sync import mapping, matching, ordering, plan, safety
from lc_console.sync.derive import SalesforceContext
from lc_console.sync.describe import DescribeCache, ObjectInfo
from lc_console.sync.model import ExternalKey, IdKey, RecordKey, Version

PHASES = ("read", "derive", "upload", "process", "results")
CHUNK_CUSTOMERS = 500
KEY_FIELDS = {"Contact": matching.CONTACT_KEY_FIELD, "Account": matching.ACCOUNT_KEY_FIELD,
              "Opportunity": "LostChurn_Recovery_ID__c",
              "LostChurn_Recovery__c": "Recovery_ID__c"}
MATCH_FIELDS = {"Contact": ("Email", "FirstName", "LastName", "AccountId"),
                "Account": ("Name", "Website"), "Opportunity": ("RecordTypeId",),
                "LostChurn_Recovery__c": ()}
STRIPE_KIND = {"customers": "customer", "subscriptions": "subscription",
               "invoices": "invoice", "charges": "charge", "payment_intents": "payment_intent"}
MAX_ROW_ATTEMPTS = 3
TRANSIENT_RETRIES = 5


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int
    total: int | None
    unit: str
    eta_seconds: float | None = None
    message: str = ""

    def line(self) -> str:
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")
        pct = f" {100 * self.done // self.total:3d}%" if self.total else ""
        eta = (f" ETA {bf.format_duration(self.eta_seconds)}"
               if self.eta_seconds is not None else "")
        extra = f"  {self.message}" if self.message else ""
        return f"{self.phase:<8}{pct} {count} {self.unit}{eta}{extra}"


@dataclass
class Options:
    since: int | None = None
    objects: tuple[str, ...] = bf.OBJECTS
    dry_run: bool = False
    force: bool = False


@dataclass
class ObjectCounts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    newer: int = 0
    failed: int = 0
    rejected: int = 0


@dataclass
class Result:
    status: str  # done | dry-run | refused | cancelled | error
    message: str = ""
    forecast: bf.Forecast | None = None
    counts: dict[str, ObjectCounts] = field(default_factory=dict)
    stripe_calls: int = 0
    salesforce_calls: int = 0
    resumed: bool = False
    drift: dict[str, Any] | None = None

    @property
    def failed(self) -> int:
        return sum(c.failed + c.rejected for c in self.counts.values())


class Stop(Exception):
    def __init__(self, status: str, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Last-written values are shared with the live sync (sync/batch.py keeps the same layout):
# key str(RecordKey) ("LostChurn_ID__c=cus_1", "Id=003..."), value {"values": {field: JSON
# value}, "versions": {field: [created, event_id]}}. The live sync skips what a backfill
# wrote, and the other way round.


def lw_key(key_field: str, key_value: str) -> str:
    return str(ExternalKey(key_field, key_value)) if key_field != "Id" else str(IdKey(key_value))


def stored_from(values: Mapping[str, Any] | None, sf_id: str | None) -> plan.Stored:
    values = values or {}
    if "values" not in values and "versions" not in values:
        return plan.Stored(dict(values), {}, sf_id)
    versions = {n: Version(int(v[0]), str(v[1])) for n, v in (values.get("versions") or {}).items()}
    return plan.Stored(dict(values.get("values") or {}), versions, sf_id)


def staging_path(profile: str, name: str) -> Path:
    return paths.state_db(profile).parent / f"{name}.db"


class Backfill:
    """One run (resync or reconcile) over injected clients; see the module docstring."""

    def __init__(self, *, store: Store, stripe_client: stripe.StripeClient, sf: Salesforce,
                 settings: Settings, staging: Path, name: str = "resync",
                 as_of: int | None = None, clock: Callable[[], float] = time.time,
                 cancel: threading.Event | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 poll: tuple[float, float] = (0.2, 5.0),
                 max_upload_bytes: int = bulk.MAX_UPLOAD_BYTES,
                 chunk_customers: int = CHUNK_CUSTOMERS,
                 sleep: Callable[[float], None] = time.sleep,
                 on_forecast: Callable[[bf.Forecast], None] | None = None) -> None:
        self.store = store
        self.on_forecast = on_forecast or (lambda f: None)
        self.sf = sf
        self.settings = settings
        self.rules = settings.rules
        self.name = name
        self.staging_file = staging
        self.clock = clock
        self.cancel = cancel or threading.Event()
        self.on_progress = on_progress or (lambda p: None)
        self.lister = StripeLister(stripe_client)
        self.bulk = bulk.BulkClient(sf, poll_interval=poll[0], max_poll_interval=poll[1],
                                    cancel=self.cancel, sleep=sleep)
        self.max_upload_bytes = max_upload_bytes
        self.chunk_customers = chunk_customers
        self.sleep = sleep
        self.sf_calls = 0
        self._as_of = as_of
        self.cp: dict[str, Any] = {}
        self.stage: Staging | None = None
        self.counts: dict[str, ObjectCounts] = {}
        self.describes: dict[str, ObjectInfo | None] = {}

    # --- checkpoint ---------------------------------------------------------------------

    @property
    def meta_key(self) -> str:
        return f"{self.name}.checkpoint"

    def _save(self) -> None:
        self.cp["stripe_calls"] = self.lister.stats.requests + self._stripe_before
        self.cp["sf_calls"] = self._sf_total()
        self.store.set_meta(self.meta_key, self.cp)

    def _sf_total(self) -> int:
        return self.sf_calls + self.bulk.calls + self._sf_before

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Stop("cancelled", "Cancelled. Run the same command again to resume where it "
                                    "stopped.")

    def _progress(self, phase: str, done: int, total: int | None, unit: str,
                  started: float | None = None, message: str = "") -> None:
        eta = bf.eta(done, total or 0, self.clock() - started) if started else None
        self.on_progress(Progress(phase, done, total, unit, eta, message))

    # --- the run ------------------------------------------------------------------------

    def run(self, options: Options) -> Result:
        # --objects only narrows what is written: a run refused by the forecast resumes at
        # the forecast with a smaller scope, without reading Stripe again.
        params = {"since": options.since, "dry_run": options.dry_run}
        held = self.store.get_meta(self.meta_key)
        resumed = bool(held and held.get("params") == params and held.get("phase") != "done")
        self.stage = Staging(self.staging_file)
        if resumed:
            self.cp = held
        else:
            self.stage.reset()
            self.cp = {"params": params, "phase": "read", "read": {}, "org_done": False,
                       "derive_after": None, "jobs": [], "started_at": self.clock(),
                       "as_of": int(self._as_of if self._as_of is not None else self.clock()),
                       "counts": {}, "stripe_calls": 0, "sf_calls": 0}
        self._stripe_before = int(self.cp.get("stripe_calls") or 0)
        self._sf_before = int(self.cp.get("sf_calls") or 0)
        self.counts = {o: ObjectCounts(**c) for o, c in (self.cp.get("counts") or {}).items()}
        # Stays "running" if an unexpected error (or a crash) leaves _run: the checkpoint
        # keeps its phase and the next run resumes there.
        result = Result("running", resumed=resumed)
        try:
            self.store.set_meta(f"{self.name}.active", {"since": self.clock()})
            self._run(options, result)
            if result.status == "running":
                result.status = "done"
        except Stop as stop:
            result.status, result.message = stop.status, stop.message
        except bulk.Cancelled:
            result.status = "cancelled"
            result.message = ("Cancelled while Salesforce processes a Bulk job; it finishes on "
                              "its own. Run the same command again to pick up its results.")
        except writer.SessionExpired:
            result.status = "error"
            result.message = ("The Salesforce session expired and could not be renewed: "
                              "reconnect Salesforce, then run the same command to resume.")
        except writer.WriteError as exc:
            result.status = "error"
            advice = sf_errors.advice_for(exc.code)
            result.message = (f"Salesforce refused a request ({exc.code}: {exc.message})."
                              + (f" {advice}" if advice else "")
                              + " Run the same command again to resume where it stopped.")
        except stripe.StripeError as exc:
            result.status = "error"
            result.message = (f"Stripe refused a request ({type(exc).__name__}: "
                              f"{exc.user_message or exc}). Check the key with `lc-console "
                              "doctor`, then run the same command again to resume.")
        except RateLimitedTooLong as exc:
            result.status = "error"
            result.message = str(exc)
        finally:
            self.cp["counts"] = {o: vars(c) for o, c in self.counts.items()}
            if result.status in ("done", "dry-run") and self.cp.get("phase") != "gate":
                self.cp["phase"] = "done"
            self._save()
            self.store.delete_meta(f"{self.name}.active")
            if self.stage is not None:
                if self.cp.get("phase") == "done":
                    self.stage.drop()
                else:
                    self.stage.close()
        result.counts = self.counts
        result.stripe_calls = self._stripe_before + self.lister.stats.requests
        result.salesforce_calls = self._sf_total()
        if result.status == "done" and self.name == "resync":
            self.store.set_meta("resync.last_run", {
                "at": self.clock(), "counts": {o: vars(c) for o, c in self.counts.items()},
                "salesforce_calls": result.salesforce_calls})
        return result

    def _run(self, options: Options, result: Result) -> None:
        if self.cp["phase"] == "read":
            if not self.cp.get("read_checked"):
                self._check_read_cost(options)
                self.cp["read_checked"] = True
                self._save()
            self._read_stripe()
            self._read_org()
            self.cp["phase"] = "derive"
            self._save()
        self._describe()
        if self.cp["phase"] == "derive":
            self._derive(options, result)
            self.cp["phase"] = "gate"
            self._save()
        if self.cp["phase"] == "gate":
            fc = self._forecast(options)
            result.forecast = fc
            self.on_forecast(fc)
            if options.dry_run:
                result.status = "dry-run"
                self.cp["phase"] = "done"
                return
            if fc.crosses_threshold and not options.force:
                raise Stop("refused", fc.refusal())
            self.cp["phase"] = "upload"
            self._save()
        if self.cp["phase"] == "upload":
            self._write(options)
            self.cp["phase"] = "done"

    # --- read ---------------------------------------------------------------------------

    def _read_stripe(self) -> None:
        assert self.stage is not None
        self.cp.setdefault("read_started_at", self.clock())
        started = self.clock()
        total = sum(self.stage.count(k) for k in BACKFILL_KINDS)
        for kind in BACKFILL_KINDS:
            state = self.cp["read"].setdefault(kind, {"after": None, "done": False})
            if state["done"]:
                continue
            for page in self.lister.pages(kind, starting_after=state["after"]):
                rows = []
                for obj in page.data:
                    projected = safety.project(obj, kind=STRIPE_KIND[kind])
                    rows.append((obj["id"], customer_of(obj), int(obj.get("created") or 0),
                                 projected))
                self.stage.put_stripe(kind, rows)
                total += len(rows)
                state["after"] = page.last_id or state["after"]
                state["done"] = not page.has_more
                self._save()
                self._progress("read", total, None, "Stripe objects", started, kind)
                self._check_cancel()  # before asking for the next page
            state["done"] = True
            self._save()

    def _fields_of(self, obj: str, info: ObjectInfo | None) -> list[str]:
        wanted = ["Id", "CreatedDate", KEY_FIELDS[obj], *MATCH_FIELDS[obj]]
        for rule in self.rules.fields.values():
            target_obj, _, fname = rule.target.partition(".")
            if target_obj == obj and fname:
                wanted.append(fname)
        for fobj, fname, _policy in mapping.FIXED.values():
            if fobj == obj:
                wanted.append(fname)
        present = [f for f in dict.fromkeys(wanted) if info is None or info.field(f)]
        return present

    def _read_org(self) -> None:
        assert self.stage is not None
        if self.cp.get("org_done"):
            return
        self._describe()
        started = self.clock()
        done = 0
        for obj in bf.OBJECTS:
            info = self.describes.get(obj)
            if info is None:
                continue
            fields = self._fields_of(obj, info)
            soql = f"SELECT {', '.join(fields)} FROM {obj}{self._where(obj)}"
            for rows in self._query_pages(soql):
                self._check_cancel()
                self.stage.put_org(self._org_row(obj, r) for r in rows)
                done += len(rows)
                self._progress("read", done, None, "Salesforce records", started, obj)
        self.cp["org_done"] = True
        self._save()

    @staticmethod
    def _where(obj: str) -> str:
        if obj == "Contact":
            return f" WHERE Email != null OR {KEY_FIELDS[obj]} != null"
        if obj == "Opportunity":
            return f" WHERE {KEY_FIELDS[obj]} != null"
        return ""

    def _check_read_cost(self, options: Options) -> None:
        """Before anything is read: reading the org's records for matching costs one call per
        2,000 records; refuse when that alone would cross the throttle threshold."""
        self._describe()
        present = [o for o in bf.OBJECTS if self.describes.get(o) is not None]
        if not present:
            raise Stop("error", "The LostChurn objects are not installed in the org, or the "
                                "connected user cannot see them: run `lc-console install`.")
        subs = [writer.query_request(f"SELECT COUNT() FROM {o}{self._where(o)}")
                for o in present]
        self.sf_calls += 1
        answers = writer.composite(self.sf, subs)
        counts = {o: int((a.body or {}).get("totalSize") or 0) if a.ok else 0
                  for o, a in zip(present, answers, strict=True)}
        read_calls = sum(max(1, math.ceil(n / 2000)) for n in counts.values())
        used, limit = self._limits()
        pct = self.settings.sync.throttle_threshold_percent
        threshold = limit * pct // 100
        self.cp["org_counts"] = counts
        if used + read_calls > threshold and not options.force:
            raise Stop("refused", (
                f"Reading the org's {sum(counts.values()):,} LostChurn-related records for "
                f"matching needs about {read_calls:,} API calls, which would take the org from "
                f"{used:,} past the throttle threshold of {pct}% ({threshold:,} of {limit:,} "
                "daily requests). Run it when the daily usage is lower, or confirm with "
                "--force."))

    def _query_pages(self, soql: str) -> Iterable[list[dict[str, Any]]]:
        self.sf_calls += 1
        body = writer.call(self.sf, "query/?q=" + quote(soql, safe=""), "GET")
        while True:
            yield [writer._plain(r) for r in body.get("records") or []]
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            self.sf_calls += 1
            path = next_url.split(f"/v{self.sf.sf_version}/", 1)[-1]
            body = writer.call(self.sf, path, "GET")

    @staticmethod
    def _org_row(obj: str, row: dict[str, Any]) -> tuple[Any, ...]:
        key = row.get(KEY_FIELDS[obj])
        email = matching.normalise_email(row.get("Email")) if obj == "Contact" else None
        host = matching.normalise_host(row.get("Website")) if obj == "Account" else None
        name = str(row.get("Name") or "").strip().lower() or None if obj == "Account" else None
        return (obj, row["Id"], key, email, host, name, row)

    def _describe(self) -> None:
        if self.describes:
            return

        def fetch(names: list[str]) -> Mapping[str, Any]:
            subs = [writer.describe_request(n) for n in names]
            self.sf_calls += 1
            answers = writer.composite(self.sf, subs)
            return {n: (a.body if a.ok else None) for n, a in zip(names, answers, strict=True)}

        cache = DescribeCache(self.store, fetch, self.clock)
        self.describes = cache.get(bf.OBJECTS)

    # --- derive -------------------------------------------------------------------------

    def _candidates(self, obj: str, **kwargs: Any) -> list[dict[str, Any]]:
        assert self.stage is not None
        out = []
        for row in self.stage.org_find(obj, **kwargs):
            planned = row.pop(matching.PLANNED, None)
            if planned:
                row.pop("Id", None)  # not in Salesforce yet: matched by its planned key
                row[matching.PLANNED] = ExternalKey(planned["field"], planned["value"])
            out.append(row)
        return out

    def _org_context(self, customer: Mapping[str, Any]) -> SalesforceContext:
        keys = matching.lookup_keys([customer], self.rules.free_mail_domains)
        contacts = self._candidates("Contact", keys=sorted(keys.customer_ids),
                                    emails=sorted(keys.emails))
        accounts = self._candidates("Account", keys=sorted(keys.customer_ids),
                                    ids=sorted(keys.account_ids), hosts=sorted(keys.domains),
                                    names=sorted(keys.domains))
        return SalesforceContext(tuple(contacts), tuple(accounts))

    def _plan_planned(self, derivations: Sequence[Any]) -> None:
        """New Contacts / Accounts become candidates for the customers derived after them."""
        assert self.stage is not None
        rows = []
        for d in derivations:
            for r in d.records:
                if r.sobject not in ("Contact", "Account") or not isinstance(r.key, ExternalKey):
                    continue
                if self.stage.org_find(r.sobject, keys=[r.key.value]):
                    continue
                values = {n: f.value for n, f in r.fields.items()
                          if isinstance(f.value, str | int | float | bool) or f.value is None}
                values[matching.PLANNED] = {"field": r.key.field, "value": r.key.value}
                values[r.key.field] = r.key.value
                row = self._org_row(r.sobject, {"Id": f"planned:{r.key.value}", **values})
                rows.append(row)
        if rows:
            self.stage.put_org(rows)

    def _org_view(self, records: Sequence[Any]) -> plan.OrgView:
        assert self.stage is not None
        wanted: dict[str, set[RecordKey]] = {}
        for r in records:
            wanted.setdefault(r.sobject, set()).add(r.key)
            for f in r.fields.values():
                value = f.value
                if hasattr(value, "sobject") and hasattr(value, "key"):
                    wanted.setdefault(value.sobject, set()).add(value.key)
        current: dict[tuple[str, RecordKey], Mapping[str, Any]] = {}
        stored: dict[tuple[str, RecordKey], plan.Stored] = {}
        for obj, keys in wanted.items():
            ext = [k for k in keys if isinstance(k, ExternalKey)]
            ids = [k for k in keys if isinstance(k, IdKey)]
            for row in self.stage.org_find(obj, keys=[k.value for k in ext],
                                           ids=[k.id for k in ids]):
                if str(row["Id"]).startswith("planned:"):
                    continue
                for k in ext:
                    if row.get(k.field) == k.value:
                        current[(obj, k)] = row
                for k in ids:
                    if matching.same_id(row["Id"], k.id):
                        current[(obj, k)] = row
            held = self.store.get_last_written_many(obj, [str(k) for k in keys])
            for k in keys:
                lw = held.get(str(k))
                if lw is not None:
                    stored[(obj, k)] = stored_from(lw.values, lw.salesforce_id)
        return plan.OrgView(self.describes, current, stored)

    def _derive(self, options: Options, result: Result) -> None:
        assert self.stage is not None
        total = self.stage.count("customers")
        done = int(self.cp.get("derived") or 0)
        started = self.clock()
        as_of = int(self.cp["as_of"])
        drift = self._drift_start() if self.name == "reconcile" else None
        while True:
            self._check_cancel()
            after = self.cp["derive_after"] or [-1, ""]
            page = self.stage.customers_after((int(after[0]), str(after[1])),
                                              self.chunk_customers)
            if not page:
                break
            ids = [cid for _created, cid in page]
            objects = self.stage.objects_of(ids)
            derivations = []
            for cid in ids:
                objs = objects.get(cid) or {}
                customer = (objs.get("customers") or [None])[0]
                if customer is None:
                    continue
                bundle = bf.CustomerBundle(customer, objs.get("subscriptions", []),
                                           objs.get("invoices", []), objs.get("charges", []),
                                           objs.get("payment_intents", []))
                if options.since is not None and bundle.last_activity() < options.since:
                    continue
                invoice_ids = [i["id"] for i in bundle.invoices]
                known = frozenset(str(r.get("Recovery_ID__c")) for r in self.stage.org_find(
                    "LostChurn_Recovery__c", keys=invoice_ids))
                ds = bf.derive_customer(bundle, self._org_context(customer), self.rules,
                                        as_of, known)
                self._plan_planned(ds)
                derivations.extend(ds)
            records = ordering.coalesce(r for d in derivations for r in d.records)
            view = self._org_view(records)
            plans = [plan.plan_record(r, view) for r in records]
            self._stage_plans(plans, options, drift)
            self.cp["derive_after"] = list(page[-1])
            done += len(ids)
            self.cp["derived"] = done
            self.cp["counts"] = {o: vars(c) for o, c in self.counts.items()}
            self._save()
            self._progress("derive", done, total, "customers", started)
        if drift is not None:
            self._drift_orphans(drift)
            result.drift = drift
            self.cp["drift"] = drift
        elif self.cp.get("drift"):
            result.drift = self.cp["drift"]

    def _stage_plans(self, plans: Sequence[plan.RecordPlan], options: Options,
                     drift: dict[str, Any] | None) -> None:
        assert self.stage is not None
        staged = []
        for p in plans:
            counts = self.counts.setdefault(p.sobject, ObjectCounts())
            if drift is not None:
                self._drift_record(drift, p)
            if p.action == "skip":
                counts.skipped += 1
                continue
            key_field = p.key.field if isinstance(p.key, ExternalKey) else "Id"
            key_value = p.key.value if isinstance(p.key, ExternalKey) else p.key.id
            if p.action == "reject":
                counts.rejected += 1
                if options.dry_run:
                    continue
                assert p.problem is not None
                values = {d.field: plan.plain(d.value) for d in p.decisions if d.write}
                values[key_field] = key_value
                self.store.record_failure(
                    object=p.sobject, key=key_value, operation=p.operation, payload=values,
                    error_code=p.problem.code, message=p.problem.message,
                    fields=p.problem.fields, source_event_id=f"{self.name}:{p.customer_id}")
                continue
            staged.append({"object": p.sobject, "operation": p.operation,
                           "key_field": key_field, "key_value": key_value,
                           "customer_id": p.customer_id, "label": p.label,
                           "action": p.action, "payload": p.payload,
                           "written": {"values": p.written, "versions": {
                               n: [v.created, v.event_id] for n, v in sorted(p.versions.items())}}})
        self.stage.stage(staged)

    # --- reconcile drift ----------------------------------------------------------------

    def _drift_start(self) -> dict[str, Any]:
        return self.cp.setdefault("drift", {"objects": {}, "items": []})

    def _drift_record(self, drift: dict[str, Any], p: plan.RecordPlan) -> None:
        stats = drift["objects"].setdefault(p.sobject, {"missing": 0, "different": 0,
                                                        "orphaned": 0, "fields": {}})
        key = p.key.value if isinstance(p.key, ExternalKey) else p.key.id
        if p.action == "create":
            stats["missing"] += 1
            self._drift_item(drift, {"object": p.sobject, "key": key, "kind": "missing",
                                     "label": p.label})
        elif p.action in ("update", "reject"):
            changed = [d for d in p.decisions if d.write and d.rule != "key"]
            if not changed:
                return
            stats["different"] += 1
            for d in changed:
                stats["fields"][d.field] = stats["fields"].get(d.field, 0) + 1
            self._drift_item(drift, {
                "object": p.sobject, "key": key, "kind": "different", "label": p.label,
                "fields": {d.field: {"salesforce": plan.plain(d.current),
                                     "stripe": plan.plain(d.value)} for d in changed}})

    @staticmethod
    def _drift_item(drift: dict[str, Any], item: dict[str, Any]) -> None:
        if len(drift["items"]) < 1000:  # details for the first thousand; counts for all
            drift["items"].append(item)

    def _drift_orphans(self, drift: dict[str, Any]) -> None:
        assert self.stage is not None
        for obj, kind in (("Contact", "customers"), ("Account", "customers"),
                          ("Opportunity", "invoices"), ("LostChurn_Recovery__c", "invoices")):
            stats = drift["objects"].setdefault(obj, {"missing": 0, "different": 0,
                                                      "orphaned": 0, "fields": {}})
            for row in self.stage.org_rows(obj):
                key = row.get(KEY_FIELDS[obj])
                if not key or str(key).startswith("expansion:"):
                    continue
                if not self.stage.has_stripe(kind, str(key)):
                    stats["orphaned"] += 1
                    self._drift_item(drift, {
                        "object": obj, "key": key, "kind": "orphaned", "id": row["Id"],
                        "label": row.get("Email") or row.get("Name") or key})

    # --- forecast -----------------------------------------------------------------------

    def _forecast(self, options: Options) -> bf.Forecast:
        assert self.stage is not None
        objects = [o for o in bf.OBJECTS if o in options.objects]
        counts = self.stage.pending_counts(objects)
        sizes = self.stage.pending_bytes(objects)
        used, limit = self._limits()
        skipped = sum(c.skipped for c in self.counts.values())
        return bf.forecast(counts, bulk_threshold=self.settings.sync.bulk_threshold,
                           used=used, limit=limit,
                           threshold_percent=self.settings.sync.throttle_threshold_percent,
                           read_calls=self._sf_total(), skipped=skipped,
                           bytes_per_object=sizes, max_upload_bytes=self.max_upload_bytes)

    def _limits(self) -> tuple[int, int]:
        self.sf_calls += 1
        used, limit = writer.limits(self.sf)
        self.store.add_usage_sample(used, limit)
        return used, limit

    # --- write --------------------------------------------------------------------------

    def _write(self, options: Options) -> None:
        assert self.stage is not None
        self.stage.release_sent()
        self._finish_open_jobs()
        counts = self.stage.pending_counts(bf.OBJECTS)
        for obj in bf.OBJECTS:
            if obj not in options.objects or not counts.get(obj):
                continue
            path = bf.path_for(counts[obj], self.settings.sync.bulk_threshold)
            for operation in ("upsert", "update"):
                if path == "bulk":
                    self._write_bulk(obj, operation, counts[obj])
                else:
                    self._write_collections(obj, operation, counts[obj])

    def _newer_in_store(self, obj: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop rows the live sync wrote after this run read Stripe (theirs is newer)."""
        assert self.stage is not None
        since = float(self.cp.get("read_started_at") or 0)
        held = self.store.get_last_written_many(
            obj, [lw_key(r["key_field"], r["key_value"]) for r in rows])
        keep, newer = [], []
        for r in rows:
            lw = held.get(lw_key(r["key_field"], r["key_value"]))
            (newer if lw is not None and lw.updated_at > since else keep).append(r)
        if newer:
            self.stage.mark([r["seq"] for r in newer], "skipped")
            self.counts.setdefault(obj, ObjectCounts()).newer += len(newer)
        return keep

    # collections

    def _write_collections(self, obj: str, operation: str, total: int) -> None:
        assert self.stage is not None
        started = self.clock()
        done = 0
        per_call = writer.COLLECTION_LIMIT * writer.COMPOSITE_HEAVY_LIMIT
        while True:
            self._check_cancel()
            rows = self.stage.pending(obj, operation, per_call)
            if not rows:
                return
            rows = self._newer_in_store(obj, rows)
            if not rows:
                continue
            self._progress("upload", done, total, f"{obj} records", started)
            groups = [rows[i:i + writer.COLLECTION_LIMIT]
                      for i in range(0, len(rows), writer.COLLECTION_LIMIT)]
            key_field = rows[0]["key_field"]
            subs = [writer.upsert_request(obj, key_field, [r["payload"] for r in g])
                    if operation == "upsert" else
                    writer.update_request(obj, [r["payload"] for r in g]) for g in groups]
            self.stage.mark([r["seq"] for r in rows], "sent")
            answers = self._composite(subs)
            with self.store.transaction():
                for group, answer in zip(groups, answers, strict=True):
                    if answer is None:
                        continue  # transient and out of retries: rows stay pending
                    if not answer.ok:
                        err = answer.error()
                        for r in group:
                            self._settle_failed(r, err.code, err.message, (), answer.body)
                        continue
                    for r, res in zip(group, writer.parse_results(answer.body or []),
                                      strict=False):
                        if res.ok:
                            self._settle_ok(r, res.sf_id, res.created)
                        elif sf_errors.is_transient(res.code):
                            self._retry_later(r, res.code, res.message, res.fields, res.raw)
                        else:
                            self._settle_failed(r, res.code, res.message, res.fields, res.raw)
            self._save()
            done += len(rows)
            self._progress("upload", done, total, f"{obj} records", started)
            self._progress("results", done, total, f"{obj} records", started)

    def _composite(self, subs: list[writer.Subrequest]) -> list[writer.SubResponse | None]:
        for attempt in range(TRANSIENT_RETRIES):
            try:
                self.sf_calls += 1
                return list(writer.composite(self.sf, subs))
            except writer.WriteError as exc:
                if not exc.transient or attempt == TRANSIENT_RETRIES - 1:
                    if exc.transient:
                        assert self.stage is not None
                        self.stage.release_sent()
                        raise Stop("error", f"Salesforce did not take the request after "
                                            f"{TRANSIENT_RETRIES} tries ({exc.code}: "
                                            f"{exc.message}). Run the same command again to "
                                            "resume.") from None
                    return [writer.SubResponse(exc.status or 400, exc.body) for _ in subs]
                self.sleep(min(30.0, 2 ** attempt))
        return [None for _ in subs]

    # bulk

    def _write_bulk(self, obj: str, operation: str, total: int) -> None:
        """Jobs of up to max_upload_bytes of CSV. Rows are streamed from the staging DB twice
        (pick the job's rows and columns, then write its CSV to a spooled file), so memory
        stays flat however many records an object has."""
        assert self.stage is not None
        done = 0
        started = self.clock()
        after = 0
        while True:
            self._check_cancel()
            seqs, header, key_field, after = self._next_job_rows(obj, operation, after)
            if not seqs:
                return
            self._progress("upload", done, total, f"{obj} records", started,
                           f"new Bulk job of {len(seqs):,}")
            job_id = self.bulk.create_job(obj, operation, key_field)
            self.stage.mark(seqs, "sent", job_id=job_id)
            self.cp["jobs"].append({"id": job_id, "object": obj, "key_field": key_field})
            self._save()
            with tempfile.SpooledTemporaryFile(max_size=8_000_000) as spool:
                text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
                bulk.write_csv(text, header,
                               (r["payload"] for r in self.stage.iter_job(job_id)))
                text.flush()
                spool.seek(0)
                self.bulk.upload(job_id, spool)
                text.detach()
            self.bulk.close(job_id)
            done += len(seqs)
            self._progress("upload", done, total, f"{obj} records", started, f"job {job_id}")
            self._finish_job(job_id, obj, key_field, len(seqs))

    def _next_job_rows(self, obj: str, operation: str, after: int
                       ) -> tuple[list[int], list[str], str, int]:
        """(seqs, CSV header, key field, last seq looked at) of the next job's rows."""
        assert self.stage is not None
        seqs: list[int] = []
        columns: dict[str, None] = {}
        key_field = ""
        size = 0
        while True:
            page = self.stage.pending(obj, operation, 5000, after_seq=after)
            if not page:
                break
            page = self._newer_in_store(obj, page)
            for row in page:
                flat = bulk.flatten(row["payload"])
                estimate = len(json.dumps(flat, default=str)) + 2
                if seqs and (size + estimate > self.max_upload_bytes
                             or len(seqs) >= bulk.MAX_ROWS_PER_JOB):
                    return seqs, list(columns), key_field, after
                key_field = row["key_field"]
                seqs.append(row["seq"])
                columns.update(dict.fromkeys(flat))
                size += estimate
                after = row["seq"]
            if not page:
                continue
        return seqs, list(columns), key_field, after

    def _finish_open_jobs(self) -> None:
        for job in list(self.cp.get("jobs") or []):
            info = self.bulk.info(job["id"])
            if info.get("state") == "Open":
                # Created but never closed: nothing was processed. Abort; rows go again.
                self.bulk.abort(job["id"])
                assert self.stage is not None
                rows = self.stage.rows_of_job(job["id"])
                self.stage.mark([r["seq"] for r in rows if r["status"] == "sent"], "pending")
                self.cp["jobs"].remove(job)
                self._save()
                continue
            self._finish_job(job["id"], job["object"], job["key_field"], None)

    def _finish_job(self, job_id: str, obj: str, key_field: str, size: int | None) -> None:
        assert self.stage is not None
        started = self.clock()

        def polled(info: dict[str, Any]) -> None:
            self._progress("process", int(info.get("numberRecordsProcessed") or 0), size,
                           f"{obj} records", started, str(info.get("state")))

        info = self.bulk.wait(job_id, polled)
        outcome = self.bulk.outcome(job_id, info)
        failed = {f.get(key_field) or "": f for f in outcome.failed}
        unprocessed = {u.get(key_field) for u in outcome.unprocessed}
        incomplete = outcome.state != "JobComplete"
        settled = created = updated = 0
        done_seqs: list[int] = []
        with self.store.transaction():
            for row in self.stage.iter_job(job_id, status="sent"):
                key = row["key_value"]
                f = failed.get(key)
                if f is None and key_field == "Id":
                    f = next((v for k, v in failed.items() if matching.same_id(k, key)), None)
                if f is not None:
                    code, message, fields = bulk.parse_error(f.get("sf__Error", ""))
                    self._settle_failed(row, code, message, fields,
                                        {"sf__Error": f.get("sf__Error", "")}, job_id)
                elif key in unprocessed or (incomplete and not outcome.processed):
                    if outcome.state == "Failed":
                        self._settle_failed(row, "BULK_JOB_FAILED", outcome.error_message or
                                            "the Bulk job failed", (), None, job_id)
                    else:
                        self._retry_later(row, "UNPROCESSED", "not processed by the Bulk job "
                                          f"{job_id} ({outcome.state})", (), None)
                else:
                    self._settle_ok(row, None, row["action"] == "create", mark=False,
                                    count=False)
                    done_seqs.append(row["seq"])
                    if row["action"] == "create":
                        created += 1
                    else:
                        updated += 1
                settled += 1
                if settled % 10_000 == 0:
                    self._progress("results", settled, size, f"{obj} records", started)
            self.store.increment_counters(obj, created=created, updated=updated)
        self.stage.mark(done_seqs, "done")
        self._progress("results", settled, size or settled, f"{obj} records", started)
        self.cp["jobs"] = [j for j in self.cp["jobs"] if j["id"] != job_id]
        self._save()

    # settling rows

    def _settle_ok(self, row: dict[str, Any], sf_id: str | None, created: bool, *,
                   mark: bool = True, count: bool = True) -> None:
        assert self.stage is not None
        obj = row["object"]
        if mark:
            self.stage.mark([row["seq"]], "done")
        name = lw_key(row["key_field"], row["key_value"])
        old = self.store.get_last_written(obj, name)
        written = row["written"]
        merged = dict(stored_from(old.values, None).values) if old else {}
        merged.update(written.get("values") or {})
        self.store.put_last_written(obj, name, {"values": merged,
                                                "versions": written.get("versions") or {}},
                                    sf_id)
        counts = self.counts.setdefault(obj, ObjectCounts())
        if created:
            counts.created += 1
        else:
            counts.updated += 1
        if count:
            self.store.increment_counters(obj, **{"created" if created else "updated": 1})
        self.store.audit(object=obj, action=f"{self.name} {row['operation']}", outcome="ok",
                         customer_id=row["customer_id"], external_key=row["label"],
                         salesforce_id=sf_id, detail="created" if created else "updated")

    def _settle_failed(self, row: dict[str, Any], code: str, message: str,
                       fields: Sequence[str], response: Any, job_id: str | None = None) -> None:
        assert self.stage is not None
        obj = row["object"]
        self.stage.mark([row["seq"]], "failed")
        self.store.record_failure(object=obj, key=row["key_value"], operation=row["operation"],
                                  payload=row["payload"], error_code=code, message=message,
                                  fields=fields, source_event_id=f"{self.name}:{row['customer_id']}",
                                  salesforce_response=response)
        self.counts.setdefault(obj, ObjectCounts()).failed += 1
        self.store.increment_counters(obj, failed=1)
        self.store.audit(object=obj, action=f"{self.name} {row['operation']}", outcome="failed",
                         customer_id=row["customer_id"], external_key=row["label"],
                         detail=f"{code}: {message}" + (f" (Bulk job {job_id})" if job_id else ""))

    def _retry_later(self, row: dict[str, Any], code: str, message: str,
                     fields: Sequence[str], response: Any) -> None:
        assert self.stage is not None
        if int(row.get("attempts") or 0) + 1 >= MAX_ROW_ATTEMPTS:
            self._settle_failed(row, code, message, fields, response)
            return
        self.stage.mark([row["seq"]], "pending", attempt=True)


# --- profile wiring ---------------------------------------------------------------------


def for_profile(profile: str, *, name: str = "resync", cancel: threading.Event | None = None,
                on_progress: Callable[[Progress], None] | None = None,
                on_forecast: Callable[[bf.Forecast], None] | None = None,
                store: Store | None = None, as_of: int | None = None) -> Backfill:
    """A run with the profile's settings, Stripe key (keyring) and Salesforce connection."""
    from lc_console import secrets, settings
    from lc_console.salesforce import tokens
    from lc_console.stripe.client import make_client

    current = settings.load(profile)
    key = secrets.get(profile, secrets.SecretKind.STRIPE_API_KEY)
    if not key:
        raise Stop("error", "No Stripe key: connect Stripe first (`lc-console connect stripe`).")
    manager = tokens.manager_for(profile)
    try:
        sf = manager.salesforce()
    except (tokens.NotConnected, tokens.ConnectionExpired):
        raise Stop("error", "Salesforce is not connected: run `lc-console connect "
                            "salesforce`.") from None
    client = make_client(key, api_base=current.stripe.api_base, ca_bundle=current.tls.ca_bundle)
    return Backfill(store=store or Store.for_profile(profile), stripe_client=client, sf=sf,
                    settings=current, staging=staging_path(profile, name), name=name,
                    cancel=cancel, on_progress=on_progress, on_forecast=on_forecast,
                    as_of=as_of)


def summary_lines(result: Result) -> list[str]:
    out = []
    for obj in bf.OBJECTS:
        c = result.counts.get(obj)
        if c is None:
            continue
        parts = [f"{c.created:,} created", f"{c.updated:,} updated", f"{c.skipped:,} unchanged"]
        if c.newer:
            parts.append(f"{c.newer:,} newer from the live sync")
        if c.failed or c.rejected:
            parts.append(f"{c.failed + c.rejected:,} failed")
        out.append(f"  {obj:<24} " + ", ".join(parts))
    out.append(f"  API calls: {result.salesforce_calls:,} Salesforce, {result.stripe_calls:,} "
               "Stripe")
    if result.failed:
        out.append("  Failed records are kept: `lc-console failures list`, then retry.")
    return out


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
