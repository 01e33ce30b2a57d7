"""One batch of the sync, start to end:

    events -> Stripe context (per customer, once) -> round 1 of bulk reads (candidate Contacts
    and Accounts; Tasks left in doubt by an interrupted create) -> derive -> round 2 (current
    values of the other records) -> plan -> write (collections in composite requests) ->
    record (audit log, last-written values and versions, counters, failures)

`BatchRunner.prepare` does everything up to the plan and writes nothing anywhere (the dry
run stops there); `write` sends the plan and records the outcome in one store transaction.
A batch costs two read calls and, usually, one write call whatever its size (at most 200
records per object per collection, five collections per composite request).

Errors: a record Salesforce refuses for good (validation, missing field, ...) goes to the
failures table at once; a transient one (lock, 5xx, dropped connection, limit) is reported
in `Outcome.retry_customers` so the engine tries that customer's events again later, until
the last attempt, when it goes to failures too. Everything the console wrote is remembered
per record and field (value and Stripe version) for skip-unchanged, conflicts and ordering.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lc_console.salesforce.writer import (
    RecordResult,
    Subrequest,
    WriteError,
    create_request,
    pack,
    parse_results,
    query_request,
    update_request,
    upsert_request,
)
from lc_console.settings import RulesSettings
from lc_console.store import Counters, Store
from lc_console.sync import derive, lookups, mapping, matching
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.describe import DescribeCache
from lc_console.sync.model import Derivation, ExternalKey, IdKey, RecordKey, Version
from lc_console.sync.plan import (
    TASK_REF_PREFIX,
    WRITE_ORDER,
    InsertPlan,
    InsertState,
    OrgView,
    Plan,
    RecordPlan,
    Stored,
    identities,
    order_of,
    plan_batch,
)
from lc_console.sync.progress import ObjectCounts
from lc_console.sync.salesforce_link import SalesforceLink
from lc_console.sync.stripe_context import CustomerNeeds, StripeFetcher

log = logging.getLogger(__name__)

SYNC_OBJECTS = WRITE_ORDER
INFLIGHT_META = "sync.inflight_inserts"
INSERT_PREFIX = "insert:"
DOUBT_WINDOW_SECONDS = 2 * 86400


@dataclass(frozen=True)
class WorkItem:
    """One Stripe event to process (from an outbox row, a replay, or a manual retry)."""

    event: Mapping[str, Any]
    row_id: int | None = None
    attempts: int = 0  # earlier attempts of the row

    @property
    def event_id(self) -> str:
        return str(self.event.get("id") or "")

    @property
    def created(self) -> int:
        return int(self.event.get("created") or 0)


@dataclass
class Prepared:
    items: list[WorkItem]
    derivations: list[Derivation]
    plan: Plan
    org: OrgView
    customer_of: dict[str, str | None]  # event id -> Stripe customer
    derive_errors: list[tuple[WorkItem, str]] = field(default_factory=list)
    salesforce_reads: int = 0
    stripe_calls: int = 0
    planned: derive.SalesforceContext | None = None  # Contacts / Accounts it would create

    def write_requests(self) -> list[tuple[Subrequest, list[RecordPlan | InsertPlan]]]:
        return build_requests(self.plan)

    def write_calls(self) -> int:
        return len(pack([s for s, _ in self.write_requests()]))


@dataclass
class Outcome:
    objects: dict[str, Counters] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)  # failure ids recorded
    retry_customers: set[str] = field(default_factory=set)
    retry_events: set[str] = field(default_factory=set)  # events without customer to retry
    first_error: str = ""
    limit_exceeded: bool = False
    salesforce_calls: int = 0
    stripe_calls: int = 0

    def count(self, sobject: str, kind: str, n: int = 1) -> None:
        counters = self.objects.setdefault(sobject, Counters())
        setattr(counters, kind, getattr(counters, kind) + n)

    def object_counts(self) -> dict[str, ObjectCounts]:
        return {o: ObjectCounts(c.created, c.updated, c.skipped, c.failed)
                for o, c in sorted(self.objects.items(), key=lambda kv: order_of(kv[0]))}


@dataclass
class _Result:
    item: RecordPlan | InsertPlan
    ok: bool
    sf_id: str | None = None
    created: bool = False
    code: str = ""
    message: str = ""
    fields: tuple[str, ...] = ()
    raw: Any = None
    transient: bool = False
    in_doubt: bool = False  # sent, answer lost: the create may or may not have happened


# --- stored values -------------------------------------------------------------------------


def record_key(key: RecordKey) -> str:
    return str(key)


def _stored_from(values: Mapping[str, Any] | None, sf_id: str | None) -> Stored:
    values = values or {}
    versions = {name: Version(int(v[0]), str(v[1]))
                for name, v in (values.get("versions") or {}).items()}
    return Stored(dict(values.get("values") or {}), versions, sf_id)


def _versions_json(versions: Mapping[str, Version]) -> dict[str, list[Any]]:
    return {name: [v.created, v.event_id] for name, v in sorted(versions.items())}


def _fields_of(sobject: str, rules: RulesSettings) -> set[str]:
    """Every field the sync may write on `sobject` (mapped and fixed)."""
    out = set()
    for rule in rules.fields.values():
        obj, _, name = rule.target.partition(".")
        if obj == sobject and name:
            out.add(name)
    for obj, name, _policy in mapping.FIXED.values():
        if obj == sobject:
            out.add(name)
    return out


# --- requests ------------------------------------------------------------------------------


def build_requests(plan: Plan) -> list[tuple[Subrequest, list[RecordPlan | InsertPlan]]]:
    """The collections to send, in write order: upserts per object and external id field,
    then updates by Id, then creates (Tasks, platform events), 200 records each."""
    out: list[tuple[Subrequest, list[RecordPlan | InsertPlan]]] = []
    send = plan.to_send()
    upserts: dict[tuple[str, str], list[RecordPlan]] = {}
    updates: list[RecordPlan] = []
    creates: list[InsertPlan] = []
    for item in send:
        if isinstance(item, InsertPlan):
            creates.append(item)
        elif isinstance(item.key, ExternalKey):
            upserts.setdefault((item.sobject, item.key.field), []).append(item)
        else:
            updates.append(item)
    for (sobject, ext), items in sorted(upserts.items(), key=lambda kv: (order_of(kv[0][0]),
                                                                         kv[0][1])):
        for chunk in _chunks(items):
            out.append((upsert_request(sobject, ext, [i.payload for i in chunk]), list(chunk)))
    for chunk in _chunks(sorted(updates, key=lambda i: order_of(i.sobject))):
        rows = [{"attributes": {"type": i.sobject}, **i.payload} for i in chunk]
        out.append((update_request(chunk[0].sobject, rows), list(chunk)))
    for chunk in _chunks(sorted(creates, key=lambda i: order_of(i.sobject))):
        rows = [{"attributes": {"type": i.sobject}, **i.payload} for i in chunk]
        out.append((create_request(rows), list(chunk)))
    return out


def _chunks(items: Sequence[Any], size: int = 200) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- the runner ----------------------------------------------------------------------------


class BatchRunner:
    def __init__(self, store: Store, link: SalesforceLink, fetcher: StripeFetcher,
                 describes: DescribeCache, rules: RulesSettings, *,
                 clock: Callable[[], float] = time.time, max_attempts: int = 8) -> None:
        self.store = store
        self.link = link
        self.fetcher = fetcher
        self.describes = describes
        self.rules = rules
        self.clock = clock
        self.max_attempts = max_attempts

    # -- reading and planning (writes nothing) -----------------------------------------

    def prepare(self, items: Sequence[WorkItem],
                seed: derive.SalesforceContext | None = None) -> Prepared:
        """Read and plan. `seed`: records planned by earlier batches that were not written
        (a dry run over several batches), so they are matched as if they existed."""
        sf_calls0, stripe_calls0 = self.link.calls, self.fetcher.calls
        items = sorted(items, key=lambda it: (it.created, it.event_id))
        customer_of: dict[str, str | None] = {}
        needs: dict[str, CustomerNeeds] = {}
        for it in items:
            n = derive.needs(it.event)
            cid = n.customer_id
            if cid is None and n.charge_ids:
                cid = self.fetcher.customer_of_charge(sorted(n.charge_ids)[0])
            customer_of[it.event_id] = cid
            if cid:
                needs.setdefault(cid, CustomerNeeds(cid)).add(n)
        newest: dict[str, int] = {}
        for it in items:
            cid = customer_of.get(it.event_id)
            if cid:
                newest[cid] = max(newest.get(cid, 0), it.created)
        cursor = self.store.get_cursor()
        horizon = max([cursor.created if cursor else 0, *newest.values()])
        contexts = self.fetcher.fetch(needs.values(), horizon=horizon, newest=newest)
        describes = self.describes.get(SYNC_OBJECTS)

        # Round 1: candidates for matching (and current values of Contacts / Accounts).
        people = []
        for cid, ctx in contexts.items():
            people.append(dict(ctx.customer) if ctx.customer else {"id": cid})
            for invoice in ctx.invoices:
                if invoice.get("customer_email"):
                    people.append({"id": cid, "email": invoice["customer_email"]})
        for it in items:
            obj = ss.dig(it.event, "data.object") or {}
            if obj.get("object") == "customer":
                people.append(dict(obj))
            elif obj.get("customer_email") and customer_of.get(it.event_id):
                people.append({"id": customer_of[it.event_id], "email": obj["customer_email"]})
        keys = matching.lookup_keys(people, self.rules.free_mail_domains)
        contact_fields = lookups.select_list(
            describes.get("Contact"), {*lookups.CONTACT_MATCH_FIELDS, *_fields_of("Contact", self.rules)})
        account_fields = lookups.select_list(
            describes.get("Account"), {*lookups.ACCOUNT_MATCH_FIELDS, *_fields_of("Account", self.rules)})
        round1: list[tuple[str, Subrequest]] = []
        if describes.get("Contact") and describes.get("Account"):
            round1 = [(o, query_request(q)) for o, q in
                      lookups.candidate_queries(keys, contact_fields, account_fields)]
        inflight = self._inflight()
        doubt_subjects = [v.get("subject", "") for v in inflight.get("Task", {}).values()]
        doubt_query = lookups.task_doubt_query([s for s in doubt_subjects if s],
                                               self.clock() - DOUBT_WINDOW_SECONDS)
        if doubt_query and describes.get("Task"):
            round1.append(("Task", query_request(doubt_query)))
        rows1 = self._read(round1)

        # Derive, oldest first; records planned earlier in the batch are candidates too.
        known = self._known_recovery_ids(contexts.values())
        sf_ctx = derive.SalesforceContext(
            tuple(rows1.get("Contact", [])) + tuple(seed.contacts if seed else ()),
            tuple(rows1.get("Account", [])) + tuple(seed.accounts if seed else ()))
        derivations: list[Derivation] = []
        errors: list[tuple[WorkItem, str]] = []
        for it in items:
            cid = customer_of.get(it.event_id)
            ctx = derive.Context(contexts.get(cid or "", derive.StripeContext()), sf_ctx,
                                 self.rules, known)
            try:
                d = derive.derive(dict(it.event), ctx)
            except Exception as exc:  # a rule that cannot read this event: keep it, go on
                log.exception("deriving %s failed", it.event_id)
                errors.append((it, f"{type(exc).__name__}: {exc}"))
                continue
            derivations.append(d)
            sf_ctx = sf_ctx.with_planned(d)

        # Round 2: current values of the other records of the batch.
        wanted = identities(derivations)
        round2: list[tuple[str, Subrequest]] = []
        for sobject, rkeys in sorted(wanted.items()):
            if sobject in ("Contact", "Account") or not describes.get(sobject):
                continue
            names = {"Id", *(k.field for k in rkeys if isinstance(k, ExternalKey))}
            for d in derivations:
                for r in d.records:
                    if r.sobject == sobject:
                        names.update(r.fields)
            select = lookups.select_list(describes[sobject], names)
            round2 += [(sobject, query_request(q))
                       for q in lookups.current_queries(sobject, rkeys, select)]
        rows2 = self._read(round2)

        current: dict[tuple[str, RecordKey], Mapping[str, Any]] = {}
        for sobject, rkeys in wanted.items():
            rows = rows1.get(sobject, []) + rows2.get(sobject, [])
            current.update(lookups.index_rows(sobject, rows, rkeys))
        stored = self._stored(wanted, current)
        inserts = self._insert_states(derivations, inflight, rows1.get("Task", []))
        org = OrgView(describes, current, stored, inserts)
        plan = plan_batch(derivations, org)
        planned = derive.SalesforceContext(
            tuple(c for c in sf_ctx.contacts if matching.PLANNED in c),
            tuple(a for a in sf_ctx.accounts if matching.PLANNED in a))
        return Prepared(items, derivations, plan, org, customer_of, errors,
                        self.link.calls - sf_calls0, self.fetcher.calls - stripe_calls0,
                        planned)

    def _read(self, queries: list[tuple[str, Subrequest]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        if not queries:
            return out
        subs = [s for _, s in queries]
        answers = []
        for group in pack(subs):
            answers += self.link.composite(group)
        for (sobject, _), answer in zip(queries, answers, strict=True):
            out.setdefault(sobject, []).extend(self.link.query_rows(answer))
        return out

    def _known_recovery_ids(self, contexts: Iterable[derive.StripeContext]) -> frozenset[str]:
        invoice_ids = {i.get("id") for ctx in contexts for i in ctx.invoices if i.get("id")}
        if not invoice_ids:
            return frozenset()
        keys = [record_key(ExternalKey("Recovery_ID__c", str(i))) for i in sorted(invoice_ids)]
        found = self.store.get_last_written_many("LostChurn_Recovery__c", keys)
        return frozenset(k.split("=", 1)[1] for k in found)

    def _stored(self, wanted: Mapping[str, set[RecordKey]],
                current: Mapping[tuple[str, RecordKey], Mapping[str, Any]]
                ) -> dict[tuple[str, RecordKey], Stored]:
        out: dict[tuple[str, RecordKey], Stored] = {}
        for sobject, rkeys in wanted.items():
            by_name = {record_key(k): k for k in rkeys}
            found = self.store.get_last_written_many(sobject, list(by_name))
            for name, lw in found.items():
                out[(sobject, by_name[name])] = _stored_from(lw.values, lw.salesforce_id)
            # A record first matched by Id (then owned, so addressed by external id since):
            # what was written under its Id still counts.
            fallback = {}
            for k in rkeys:
                row = current.get((sobject, k))
                if (sobject, k) not in out and isinstance(k, ExternalKey) and row and row.get("Id"):
                    fallback[record_key(IdKey(str(row["Id"])))] = k
            if fallback:
                for name, lw in self.store.get_last_written_many(sobject, list(fallback)).items():
                    out[(sobject, fallback[name])] = _stored_from(lw.values, lw.salesforce_id)
        return out

    def _inflight(self) -> dict[str, dict[str, dict[str, Any]]]:
        data = self.store.get_meta(INFLIGHT_META, {}) or {}
        return {str(k): dict(v) for k, v in data.items()}

    def _insert_states(self, derivations: Sequence[Derivation],
                       inflight: Mapping[str, Mapping[str, Any]],
                       tasks: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], InsertState]:
        wanted: dict[str, set[str]] = {}
        for d in derivations:
            for i in d.inserts:
                wanted.setdefault(i.sobject, set()).add(i.dedupe_key)
        found_tasks: dict[str, str] = {}
        for task in tasks:
            text = str(task.get("Description") or "")
            if TASK_REF_PREFIX in text:
                found_tasks[text.rsplit(TASK_REF_PREFIX, 1)[1].strip()] = str(task["Id"])
        out: dict[tuple[str, str], InsertState] = {}
        for sobject, dkeys in wanted.items():
            done = self.store.get_last_written_many(sobject, [INSERT_PREFIX + k for k in dkeys])
            doubt = inflight.get(sobject, {})
            for k in dkeys:
                if INSERT_PREFIX + k in done:
                    out[(sobject, k)] = InsertState(done=True)
                elif k in doubt:
                    out[(sobject, k)] = InsertState(in_doubt=True,
                                                    found_id=found_tasks.get(k))
        return out

    # -- writing and recording ---------------------------------------------------------

    def write(self, prepared: Prepared) -> Outcome:
        outcome = Outcome()
        sf_calls0 = self.link.calls
        requests = prepared.write_requests()
        self._mark_inflight([i for _, items in requests for i in items
                             if isinstance(i, InsertPlan)])
        results: list[_Result] = []
        pending_exc: BaseException | None = None
        groups = pack([s for s, _ in requests])
        position = 0
        for group in groups:
            members = [requests[position + n][1] for n in range(len(group))]
            position += len(group)
            if pending_exc is not None:
                results += [_Result(i, False, code="NOT_SENT", message=str(pending_exc),
                                    transient=True) for items in members for i in items]
                continue
            try:
                answers = self.link.composite(group)
            except WriteError as exc:
                outcome.limit_exceeded |= exc.code == "REQUEST_LIMIT_EXCEEDED"
                doubt = exc.code == "CONNECTION_ERROR" or (exc.status or 0) >= 500
                results += [_Result(i, False, code=exc.code, message=exc.message,
                                    transient=exc.transient, in_doubt=doubt)
                            for items in members for i in items]
                continue
            except Exception as exc:  # session / connection expired: record, then re-raise
                pending_exc = exc
                results += [_Result(i, False, code="NOT_SENT", message=str(exc),
                                    transient=True, in_doubt=True)
                            for items in members for i in items]
                continue
            for answer, items in zip(answers, members, strict=True):
                if answer.ok:
                    parsed = parse_results(answer.body or [])
                    if len(parsed) != len(items):
                        parsed = [RecordResult(False, code="HTTP_5XX",
                                               message="answer does not match the request")] * len(items)
                    results += [_from_record(i, r) for i, r in zip(items, parsed, strict=True)]
                else:
                    err = answer.error()
                    outcome.limit_exceeded |= err.code == "REQUEST_LIMIT_EXCEEDED"
                    results += [_Result(i, False, code=err.code, message=err.message,
                                        raw=err.body, transient=err.transient)
                                for i in items]
        outcome.salesforce_calls = self.link.calls - sf_calls0
        self._record(prepared, results, outcome)
        if pending_exc is not None:
            raise pending_exc
        return outcome

    def _mark_inflight(self, creates: Sequence[InsertPlan]) -> None:
        if not creates:
            return
        data = self._inflight()
        now = self.clock()
        for i in creates:
            data.setdefault(i.sobject, {})[i.dedupe_key] = {
                "subject": str(i.payload.get("Subject") or ""), "at": now}
        self.store.set_meta(INFLIGHT_META, data)

    def _final(self, prepared: Prepared, customer: str | None, event_id: str) -> bool:
        """Whether this is the last attempt for the events behind a record."""
        for it in prepared.items:
            same = (prepared.customer_of.get(it.event_id) == customer if customer
                    else it.event_id == event_id)
            if same and it.row_id is not None and it.attempts + 1 >= self.max_attempts:
                return True
            if same and it.row_id is None:
                return True  # a manual retry: no second attempt behind it
        return False

    def _record(self, prepared: Prepared, results: list[_Result], outcome: Outcome) -> None:
        ids: dict[tuple[str, RecordKey], str] = {}
        for r in results:
            if r.ok and r.sf_id and isinstance(r.item, RecordPlan):
                ids[r.item.identity] = r.sf_id
        for p in prepared.plan.records:
            if p.sf_id and p.identity not in ids:
                ids[p.identity] = p.sf_id
        by_item = {id(r.item): r for r in results}
        resolved: dict[str, list[str]] = {}
        inflight = self._inflight()
        inflight_changed = False
        with self.store.transaction():
            for p in prepared.plan.records:
                r = by_item.get(id(p))
                if p.action == "skip":
                    outcome.count(p.sobject, "skipped")
                    if p.versions:
                        self._remember(p, {}, p.sf_id)
                    # Salesforce already holds what the sync wants: an old failure is moot.
                    resolved.setdefault(p.sobject, []).append(p.label)
                elif p.action == "reject":
                    assert p.problem is not None
                    outcome.count(p.sobject, "failed")
                    outcome.failures.append(self._fail(
                        p, p.problem.code, p.problem.message, p.problem.fields,
                        {"precheck": "refused before sending, from the org's describe"}))
                elif r is not None and r.ok:
                    outcome.count(p.sobject, "created" if p.action == "create" else "updated")
                    values = dict(p.written)
                    for name, ref in p.refs.items():
                        if (ref.sobject, ref.key) in ids:
                            values[name] = ids[(ref.sobject, ref.key)]
                    self._remember(p, values, r.sf_id)
                    self._audit(p.sobject, p.action, "ok", p, r.sf_id,
                                _detail(p.payload))
                    resolved.setdefault(p.sobject, []).append(p.label)
                elif r is not None:
                    self._failed(prepared, p, r, outcome)
            for i in prepared.plan.inserts:
                r = by_item.get(id(i))
                if i.action == "skip":
                    outcome.count(i.sobject, "skipped")
                elif i.action == "found":
                    self._insert_done(i, i.found_id)
                    self._audit(i.sobject, "insert", "ok", i, i.found_id,
                                "found in Salesforce after an interrupted create: not created again")
                    outcome.count(i.sobject, "skipped")
                    inflight_changed |= _forget(inflight, i)
                elif i.action == "reject":
                    assert i.problem is not None
                    outcome.count(i.sobject, "failed")
                    outcome.failures.append(self._fail(
                        i, i.problem.code, i.problem.message, i.problem.fields,
                        {"precheck": "refused before sending, from the org's describe"}))
                elif r is not None and r.ok:
                    outcome.count(i.sobject, "created")
                    self._insert_done(i, r.sf_id)
                    self._audit(i.sobject, _insert_action(i), "ok", i, r.sf_id,
                                _detail(i.payload))
                    resolved.setdefault(i.sobject, []).append(i.dedupe_key)
                    inflight_changed |= _forget(inflight, i)
                elif r is not None:
                    if not r.in_doubt:
                        inflight_changed |= _forget(inflight, i)
                    self._failed(prepared, i, r, outcome)
            for it, message in prepared.derive_errors:
                outcome.failures.append(self.store.record_failure(
                    object="event", key=it.event_id, operation="derive",
                    payload={"type": it.event.get("type"), "id": it.event_id},
                    error_code="DERIVE_ERROR", message=message, source_event_id=it.event_id))
                outcome.count("event", "failed")
            derived = [d.event_id for d in prepared.derivations]
            if derived:
                resolved.setdefault("event", []).extend(derived)
            for sobject, labels in resolved.items():
                active = self.store.active_failures_for(sobject, labels)
                if active:
                    self.store.set_failure_status(active.values(), "resolved")
            for sobject, counters in outcome.objects.items():
                self.store.increment_counters(sobject, created=counters.created,
                                              updated=counters.updated,
                                              skipped=counters.skipped, failed=counters.failed)
            if inflight_changed:
                self.store.set_meta(INFLIGHT_META, {k: v for k, v in inflight.items() if v})
            if self.link.usage:
                self.store.add_usage_sample(*self.link.usage)

    def _failed(self, prepared: Prepared, item: RecordPlan | InsertPlan, r: _Result,
                outcome: Outcome) -> None:
        customer = item.customer_id
        final = not r.transient or self._final(prepared, customer, item.event_id)
        if final:
            outcome.count(item.sobject, "failed")
            outcome.failures.append(self._fail(item, r.code, r.message, r.fields, r.raw))
            return
        outcome.first_error = outcome.first_error or f"{item.sobject}: {r.code} {r.message}".strip()
        if customer:
            outcome.retry_customers.add(customer)
        else:
            outcome.retry_events.add(item.event_id)
        self._audit(item.sobject, _action(item), "retrying", item, None,
                    f"{r.code}: {r.message}")

    def _fail(self, item: RecordPlan | InsertPlan, code: str, message: str,
              fields: Sequence[str], response: Any) -> int:
        if isinstance(item, RecordPlan):
            key, operation = item.label, item.operation
        else:
            key, operation = item.dedupe_key, _insert_action(item)
        payload = {"attributes": {"type": item.sobject}, **(item.payload or _would_send(item))}
        failure_id = self.store.record_failure(
            object=item.sobject, key=key, operation=operation, payload=payload,
            error_code=code or "UNKNOWN_ERROR", message=message, fields=list(fields),
            source_event_id=item.event_id or None, salesforce_response=response)
        self._audit(item.sobject, _action(item), "failed", item, None,
                    f"{code}: {message}"[:2000])
        return failure_id

    def _remember(self, p: RecordPlan, values: Mapping[str, Any], sf_id: str | None) -> None:
        old = self.store.get_last_written(p.sobject, record_key(p.key))
        merged = dict((old.values or {}).get("values") or {}) if old else {}
        merged.update(values)
        self.store.put_last_written(
            p.sobject, record_key(p.key),
            {"values": merged, "versions": _versions_json(p.versions)}, sf_id or p.sf_id)

    def _insert_done(self, i: InsertPlan, sf_id: str | None) -> None:
        self.store.put_last_written(i.sobject, INSERT_PREFIX + i.dedupe_key,
                                    {"done": True, "event": i.event_id}, sf_id)

    def _audit(self, sobject: str, action: str, outcome: str, item: RecordPlan | InsertPlan,
               sf_id: str | None, detail: str) -> None:
        key = item.label if isinstance(item, RecordPlan) else item.dedupe_key
        self.store.audit(object=sobject, action=action, outcome=outcome,
                         stripe_event_id=item.event_id or None, customer_id=item.customer_id,
                         external_key=key, salesforce_id=sf_id, detail=detail)


def _from_record(item: RecordPlan | InsertPlan, r: RecordResult) -> _Result:
    from lc_console.salesforce import errors

    return _Result(item, r.ok, r.sf_id, r.created, r.code, r.message, r.fields, r.raw,
                   transient=not r.ok and errors.is_transient(r.code))


def _forget(inflight: dict[str, dict[str, Any]], i: InsertPlan) -> bool:
    bucket = inflight.get(i.sobject)
    if bucket and i.dedupe_key in bucket:
        del bucket[i.dedupe_key]
        return True
    return False


def _action(item: RecordPlan | InsertPlan) -> str:
    return item.action if isinstance(item, RecordPlan) else _insert_action(item)


def _insert_action(i: InsertPlan) -> str:
    return "publish" if i.sobject.endswith("__e") else "insert"


def _would_send(item: RecordPlan | InsertPlan) -> dict[str, Any]:
    """For a rejected record: the values it would have sent, readable."""
    from lc_console.sync.plan import plain

    if isinstance(item, RecordPlan):
        return {d.field: plain(d.value) for d in item.decisions if d.write}
    return {}


def _detail(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))[:2000]
