"""The entry point the engine calls: one Stripe event + what it fetched -> Salesforce records.

    needs(event) -> Needs                      what to fetch from Stripe for this event
    derive(event, context) -> Derivation       the records, Tasks and platform events

The engine passes the event (a dict or a stripe object) and a `Context`:
- `StripeContext`: the customer, and the customer's subscriptions (all statuses), invoices,
  charges (for decline codes, failure counts and refunds), payment intents by id, and the
  discounts and coupons by id (subscriptions list discount ids and discounts name coupon
  ids unless expanded), all as fetched for the batch;
- `SalesforceContext`: the candidate Contacts and Accounts fetched in bulk for the batch
  (`matching.lookup_keys` says which), plus the records planned earlier in the same batch
  (`with_planned`), so that two customers of one new domain share one new Account;
- the rules settings, and the recovery ids the org already holds (evidence of a failure).

Everything is derived "as of" the event's `created`: history after it is ignored, so the
result depends only on the event and the Stripe history, never on when it is processed.
The event's own object replaces the fetched copy of the same id (it is the state the
event reports). Every event of a customer re-derives the customer's Contact and Account
(skip-unchanged in the engine makes that free when nothing moved); event-specific records
(recoveries, expansion opportunities) and Tasks / platform events come on top.

Every Stripe input is first projected through `safety.project` (allow-list), and every
string output is scrubbed with `safety.redact`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from lc_console.settings import RulesSettings
from lc_console.sync import billing, flows, mapping, matching, money, recoveries, safety
from lc_console.sync import decline_categories as dc
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.model import (
    Derivation,
    DesiredField,
    DesiredRecord,
    ExternalKey,
    Insert,
    RecordTypeRef,
    Ref,
    Value,
    Version,
    utc_date,
)

RECOVERY_OBJECT = "LostChurn_Recovery__c"
RECOVERY_EVENT = "LostChurn_Recovery_Event__e"
RECOVERY_RECORD_TYPE = "LostChurn_Recovery"
EXPANSION_RECORD_TYPE = "LostChurn_Expansion"
FAILURE_EVENT_TYPES = ("invoice.payment_failed", "charge.failed",
                       "payment_intent.payment_failed")
REFUND_EVENT_TYPES = ("refund.created", "refund.updated", "charge.refund.updated")
HANDLED_OBJECTS = ("invoice", "charge", "payment_intent", "refund", "customer", "subscription")

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class StripeContext:
    customer: Any = None
    subscriptions: Sequence[Any] = ()
    invoices: Sequence[Any] = ()
    charges: Sequence[Any] = ()
    payment_intents: Mapping[str, Any] = field(default_factory=dict)
    coupons: Mapping[str, Any] = field(default_factory=dict)
    discounts: Mapping[str, Any] = field(default_factory=dict)  # by id, when not expanded

    @cached_property
    def projected(self) -> _Projected:
        """The allow-listed copies, computed once however many events share this context."""
        customer = safety.project(self.customer, kind="customer") if self.customer else None
        return _Projected(
            customer if isinstance(customer, Mapping) else None,
            _project_all(self.subscriptions, "subscription"),
            _project_all(self.invoices, "invoice"),
            _project_all(self.charges, "charge"),
            _project_all(list(self.payment_intents.values()), "payment_intent"),
            {k: safety.project(v, kind="coupon") for k, v in self.coupons.items()},
            {k: safety.project(v, kind="discount") for k, v in self.discounts.items()},
        )


@dataclass(frozen=True)
class _Projected:
    customer: Mapping[str, Any] | None
    subscriptions: list[Obj]
    invoices: list[Obj]
    charges: list[Obj]
    payment_intents: list[Obj]
    coupons: dict[str, Obj]
    discounts: dict[str, Obj]


@dataclass(frozen=True)
class SalesforceContext:
    contacts: Sequence[Mapping[str, Any]] = ()
    accounts: Sequence[Mapping[str, Any]] = ()

    def with_planned(self, derivation: Derivation) -> SalesforceContext:
        """These candidates plus the Contacts / Accounts `derivation` is about to create."""
        contacts, accounts = list(self.contacts), list(self.accounts)
        for record in derivation.records:
            if record.sobject not in ("Contact", "Account"):
                continue
            if not isinstance(record.key, ExternalKey):
                continue
            pool = contacts if record.sobject == "Contact" else accounts
            if any(c.get(record.key.field) == record.key.value for c in pool):
                continue
            planned: dict[str, Any] = {matching.PLANNED: record.key,
                                       record.key.field: record.key.value}
            planned.update({n: f.value for n, f in record.fields.items()
                            if not isinstance(f.value, Ref)})
            pool.append(planned)
        return SalesforceContext(tuple(contacts), tuple(accounts))


@dataclass(frozen=True)
class Context:
    stripe: StripeContext = field(default_factory=StripeContext)
    salesforce: SalesforceContext = field(default_factory=SalesforceContext)
    rules: RulesSettings = field(default_factory=RulesSettings)
    known_recovery_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Needs:
    """What the engine should fetch from Stripe (cached per batch) before `derive`.

    With `history`, the customer's subscriptions (status=all; expand their discounts, or
    fetch the discount and coupon ids they list), invoices and charges. Invoices'
    `payments` are not included by default on basil and later: expand them, or pass the
    charges (linked by payment intent) and payment intents.
    """

    customer_id: str | None
    subscription_ids: frozenset[str] = frozenset()
    invoice_ids: frozenset[str] = frozenset()
    charge_ids: frozenset[str] = frozenset()
    payment_intent_ids: frozenset[str] = frozenset()
    history: bool = True  # the customer's subscriptions (status=all), invoices, charges


def needs(event: Any) -> Needs:
    ev = safety.project(event, kind="event")
    obj = ss.dig(ev, "data.object") or {}
    kind = obj.get("object")
    subs, invoices, charges, pis = set(), set(), set(), set()
    if kind == "invoice":
        subs.update(filter(None, [ss.invoice_subscription_id(obj)]))
        charges.update(ss.invoice_charge_ids(obj))
        pis.update(ss.invoice_payment_intent_ids(obj))
    elif kind == "charge":
        invoices.update(filter(None, [ss.charge_invoice_id(obj)]))
        pis.update(filter(None, [ss.ref_id(obj.get("payment_intent"))]))
    elif kind == "payment_intent":
        invoices.update(filter(None, [ss.ref_id(obj.get("invoice"))]))
    elif kind == "refund":
        charges.update(filter(None, [ss.ref_id(obj.get("charge"))]))
    elif kind == "subscription":
        invoices.update(filter(None, [ss.ref_id(obj.get("latest_invoice"))]))
    return Needs(ss.customer_id_of(obj), frozenset(subs), frozenset(invoices),
                 frozenset(charges), frozenset(pis), kind in HANDLED_OBJECTS)


# --- the Stripe state as of the event -------------------------------------------------------


@dataclass(frozen=True)
class _State:
    customer: dict[str, Any]
    subscriptions: list[Obj]
    invoices: list[Obj]
    charges: ss.ChargeIndex
    payment_intents: dict[str, Obj]
    coupons: dict[str, Obj]
    discounts: dict[str, Obj]
    email: str | None
    name: str | None


def _project_all(items: Sequence[Any], kind: str) -> list[Obj]:
    out = []
    for item in items or ():
        projected = safety.project(item, kind=kind)
        if isinstance(projected, Mapping) and projected.get("id"):
            out.append(projected)
    return out


def _clean_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return safety.redact(value.strip())


def _state(ctx: StripeContext, obj: Obj, customer_id: str, as_of: int) -> _State:
    kind = obj.get("object")
    pre = ctx.projected
    customer = obj if kind == "customer" else pre.customer
    if not customer or customer.get("id") != customer_id:
        customer = {"id": customer_id}
    subs = ss.newest_by_id(pre.subscriptions, [obj] if kind == "subscription" else [])
    invoices = ss.newest_by_id(pre.invoices, [obj] if kind == "invoice" else [])
    charges = ss.newest_by_id(pre.charges, [obj] if kind == "charge" else [])
    pis = ss.newest_by_id(pre.payment_intents, [obj] if kind == "payment_intent" else [])
    coupons = pre.coupons
    # Nothing after the event: the result must not depend on when it is processed.
    invoice_list = [i for i in invoices.values() if (i.get("created") or 0) <= as_of]
    charge_list = ss.ChargeIndex(c for c in charges.values() if (c.get("created") or 0) <= as_of)
    email = customer.get("email")
    name = customer.get("name")
    if not email or not name:
        for invoice in [obj] if kind == "invoice" else invoice_list:
            email = email or invoice.get("customer_email")
            name = name or invoice.get("customer_name")
    clean_email = _clean_text(email)
    if clean_email and (clean_email != email.strip() or not matching.normalise_email(clean_email)):
        clean_email = None  # an "email" that holds card-like data is not an email
    return _State(dict(customer), list(subs.values()), invoice_list, charge_list, pis, coupons,
                  pre.discounts,
                  matching.normalise_email(clean_email), _clean_text(name))


# --- derive -------------------------------------------------------------------------------


def derive(event: Any, context: Context) -> Derivation:
    ev = safety.project(event, kind="event")
    etype = str(ev.get("type") or "")
    version = Version(int(ev.get("created") or 0), str(ev.get("id") or ""))
    obj: Obj = ss.dig(ev, "data.object") or {}
    previous = ss.dig(ev, "data.previous_attributes")
    kind = obj.get("object")

    def skipped(why: str, customer_id: str | None = None) -> Derivation:
        return Derivation(version.event_id, etype, version, customer_id, notes=(why,))

    if kind not in HANDLED_OBJECTS:
        return skipped(f"{etype}: not a billing event the sync rules use")
    if etype == "customer.deleted" or obj.get("deleted"):
        return skipped("customer deleted in Stripe: Salesforce records are kept",
                       obj.get("id"))
    if kind == "invoice" and not obj.get("id"):
        return skipped(f"{etype}: an upcoming invoice has no id yet")
    customer_id = ss.customer_id_of(obj) or _refund_customer(obj, context.stripe)
    if not customer_id:
        return skipped(f"{etype}: the {kind} has no customer")

    rules = context.rules
    as_of = version.created
    st = _state(context.stripe, obj, customer_id, as_of)
    account = matching.match_account(st.customer, context.salesforce.accounts,
                                     rules.free_mail_domains, email=st.email, name=st.name)
    contact = matching.match_contact(st.email, customer_id, context.salesforce.contacts)
    contact_ref = contact.ref() if contact else None
    summary = billing.summarize(
        customer=st.customer, subscriptions=st.subscriptions, invoices=st.invoices,
        charges=st.charges, coupons=st.coupons, discounts=st.discounts, as_of=as_of,
        lifespan_months=rules.lifespan_months, window_days=rules.health_window_days,
        clv_high=rules.clv_high_threshold, clv_mid=rules.clv_mid_threshold)

    records: list[DesiredRecord] = []
    inserts: list[Insert] = []
    notes: list[str] = []

    def record(sobject: str, key: Any, values: dict[str, Value], reason: str) -> None:
        fields = mapping.build_fields(sobject, values, rules.fields, version)
        records.append(DesiredRecord(sobject, key, fields, customer_id, reason))

    # Account
    if account.owned:
        values: dict[str, Value] = {
            "account.customer_id": customer_id,
            "account.mrr": summary.mrr,
            "account.clv": summary.clv,
            "account.clv_tier": summary.clv_tier,
            "account.last_payment_date": summary.last_payment_date,
            "account.payment_health": summary.payment_health,
            "account.churn_risk_flag": summary.churn_risk_flag,
        }
        if summary.subscription_status:
            values["account.subscription_status"] = summary.subscription_status
        if account.created:
            values["account.name"] = account.name
            if account.website:
                values["account.website"] = account.website
        record("Account", account.key, values, f"{etype}: account matched by {account.how}")
    else:
        notes.append(f"Account {account.key} belongs to another Stripe customer: its billing "
                     "fields are left to that customer")

    # Contact
    if contact is not None and contact.owned:
        first, last = matching.split_name(st.name, st.email)
        record("Contact", contact.key, {
            "contact.email": st.email,
            "contact.first_name": first,
            "contact.last_name": last,
            "contact.account_id": account.ref(),
            "contact.customer_id": customer_id,
            "contact.mrr": summary.mrr,
            "contact.recovery_count": recoveries.recovered_count(
                st.invoices, st.charges, st.payment_intents, context.known_recovery_ids),
            "contact.churn_risk": summary.churn_risk,
        }, f"{etype}: contact matched by {contact.how}")
    elif contact is None:
        notes.append("the customer has no usable email: no Contact")

    # Recoveries
    subs_by_id = {s["id"]: s for s in st.subscriptions}
    for invoice in _recovery_invoices(obj, kind, st):
        invoice = next((i for i in st.invoices if i.get("id") == invoice.get("id")), invoice)
        rec = recoveries.derive_recovery(
            invoice, charges=st.charges, payment_intents=st.payment_intents,
            subscription=subs_by_id.get(ss.invoice_subscription_id(invoice) or ""),
            event_type=etype if invoice.get("id") == obj.get("id") else None,
            event_created=as_of, known_recovery_ids=context.known_recovery_ids)
        if rec is None:
            continue
        _recovery_records(rec, st, account, contact_ref, rules, record)
        inserts.extend(_recovery_events(rec, st.email, version, customer_id))

    # Flows
    if etype in FAILURE_EVENT_TYPES:
        merged = next((i for i in st.invoices if i.get("id") == obj.get("id")), obj) \
            if kind == "invoice" else obj
        task = _failure_task(etype, merged, st, account, contact_ref, rules, as_of, version,
                             customer_id)
        if task is not None:
            inserts.append(task)
    if etype == "customer.subscription.deleted" and not any(
            s.get("status") in billing.LIVE_STATUSES for s in st.subscriptions):
        lost = billing.subscription_mrr_minor({**obj, "status": "active"}, summary.currency,
                                              st.coupons, as_of, st.discounts)
        inserts.append(flows.winback_task(
            customer_id=customer_id, subscription=obj, account=account, contact=contact_ref,
            lost_mrr=money.to_major(lost, summary.currency), currency=summary.currency,
            days=rules.winback_task_days, as_of=as_of, version=version))
    if etype == "customer.subscription.updated":
        delta = flows.expansion_delta(obj, previous, summary.currency, st.coupons, as_of,
                                      st.discounts)
        if delta is not None:
            _expansion_record(delta, version, account, etype, record)
    if etype in REFUND_EVENT_TYPES or etype == "charge.refunded":
        refunds = [obj] if kind == "refund" else ss.list_data(obj.get("refunds"))
        inserts.extend(flows.refund_review_tasks(
            customer_id=customer_id, refunds=refunds,
            threshold=rules.refund_review_threshold, account=account, contact=contact_ref,
            as_of=as_of, version=version))

    return Derivation(version.event_id, etype, version, customer_id,
                      tuple(_scrub_record(r) for r in records),
                      tuple(_scrub_insert(i) for i in inserts), tuple(notes))


def _refund_customer(obj: Obj, ctx: StripeContext) -> str | None:
    if obj.get("object") != "refund":
        return None
    charge_id = ss.ref_id(obj.get("charge"))
    for charge in ctx.projected.charges:
        if charge.get("id") == charge_id:
            return ss.ref_id(charge.get("customer"))
    customer = ctx.projected.customer
    return customer.get("id") if customer else None


def _recovery_invoices(obj: Obj, kind: str | None, st: _State) -> list[Obj]:
    """The invoices whose recovery this event may change."""
    if kind == "invoice":
        return [] if obj.get("status") == "draft" else [obj]
    if kind in ("charge", "payment_intent"):
        found = []
        for invoice in st.invoices:
            if kind == "charge" and ss.charges_of_invoice(invoice, [obj]):
                found.append(invoice)
            elif kind == "payment_intent" and (
                    obj.get("id") in ss.invoice_payment_intent_ids(invoice)
                    or ss.ref_id(obj.get("invoice")) == invoice.get("id")):
                found.append(invoice)
        return found
    if kind == "subscription":
        # A subscription that ends unpaid ends its open recoveries.
        return [i for i in st.invoices if ss.invoice_subscription_id(i) == obj.get("id")
                and not ss.invoice_is_paid(i) and (i.get("attempt_count") or 0) > 0]
    return []


def _recovery_records(rec: recoveries.Recovery, st: _State, account: matching.AccountMatch,
                      contact_ref: Ref | None, rules: RulesSettings, record: Any) -> None:
    opp_key = ExternalKey("LostChurn_Recovery_ID__c", rec.recovery_id)
    stage = rules.stage_mapping.get(rec.status, rec.status)
    record("Opportunity", opp_key, {
        "opportunity.recovery_id": rec.recovery_id,
        "opportunity.record_type": RecordTypeRef("Opportunity", RECOVERY_RECORD_TYPE),
        "opportunity.name": recoveries.opportunity_name(st.email or st.customer.get("id"),
                                                        rec.start_date),
        "opportunity.amount": rec.amount_due,
        "opportunity.stage": stage,
        "opportunity.close_date": rec.close_date,
        "opportunity.account_id": account.ref(),
    }, f"recovery {rec.recovery_id}: {rec.status}")
    values: dict[str, Value] = {
        "recovery.id": rec.recovery_id,
        "recovery.status": rec.status,
        "recovery.decline_code": rec.decline_code,
        "recovery.decline_category": rec.decline_category,
        "recovery.retry_count": rec.retry_count,
        "recovery.recovered_amount": rec.recovered_amount,
        "recovery.started_at": rec.started_at,
        "recovery.completed_at": rec.completed_at,
        "recovery.opportunity": Ref("Opportunity", opp_key),
    }
    if contact_ref is not None:
        values["recovery.contact"] = contact_ref
    record(RECOVERY_OBJECT, ExternalKey("Recovery_ID__c", rec.recovery_id), values,
           f"recovery {rec.recovery_id}: {rec.status}")


def _recovery_events(rec: recoveries.Recovery, email: str | None, version: Version,
                     customer_id: str) -> list[Insert]:
    out = []
    for event_type, suffix, attempt in recoveries.platform_event_types(rec):
        amount = rec.recovered_amount if event_type == "succeeded" else rec.amount_due
        code = attempt.decline_code if attempt and attempt.decline_code else rec.decline_code
        out.append(Insert(RECOVERY_EVENT, {
            "Recovery_ID__c": rec.recovery_id,
            "Event_Type__c": event_type,
            "Customer_Email__c": email,
            "Amount__c": amount,
            "Decline_Code__c": code,
        }, f"{rec.recovery_id}:{suffix}", version, customer_id, f"recovery {event_type}"))
    return out


def _failure_task(etype: str, obj: Obj, st: _State, account: matching.AccountMatch,
                  contact_ref: Ref | None, rules: RulesSettings, as_of: int, version: Version,
                  customer_id: str) -> Insert | None:
    times = billing.failed_payment_times(st.charges)
    failure_id, charge, this_invoice = None, None, None
    if etype == "charge.failed":
        charge, failure_id = obj, obj.get("id")
    elif etype == "invoice.payment_failed":
        this_invoice = obj
        linked = [c for c in ss.charges_of_invoice(obj, st.charges, st.payment_intents)
                  if c.get("status") == "failed" and (c.get("created") or 0) <= as_of]
        if linked:
            charge, failure_id = linked[-1], linked[-1].get("id")
    elif etype == "payment_intent.payment_failed":
        charge_id = ss.dig(obj, "last_payment_error.charge") or ss.ref_id(obj.get("latest_charge"))
        charge = next((c for c in st.charges if c.get("id") == charge_id), None)
        failure_id = charge_id
    if not failure_id or not any(c.get("id") == failure_id for c in st.charges
                                 if c.get("status") == "failed"):
        # The failed payment is not in the fetched history: count it at the event's time.
        failure_id = failure_id or f"{obj.get('id')}#{obj.get('attempt_count') or as_of}"
        times = sorted([*times, as_of])
    failures_now = billing.failures_in_window(times, as_of, rules.health_window_days)
    before = billing.health_from_count(max(failures_now - 1, 0))
    flag_before = (before == billing.RED or billing.cancellation_scheduled(st.subscriptions)
                   or _was_past_due(st, this_invoice))
    pi = st.payment_intents.get(ss.ref_id(obj.get("payment_intent")) or "") if charge else None
    decline = dc.decline_code(charge, obj if etype.startswith("payment_intent") else pi)
    return flows.payment_failure_task(
        customer_id=customer_id, account=account, contact=contact_ref,
        failure_id=str(failure_id), failures_now=failures_now,
        window_days=rules.health_window_days, flag_before=flag_before, decline=decline,
        as_of=as_of, version=version)


def _was_past_due(st: _State, this_invoice: Obj | None) -> bool:
    """Another, earlier invoice still open after a failure: the subscription was past_due."""
    this_id = this_invoice.get("id") if this_invoice else None
    this_created = (this_invoice or {}).get("created") or 0
    for invoice in st.invoices:
        if invoice.get("id") == this_id or invoice.get("status") != "open":
            continue
        if this_invoice is not None and (invoice.get("created") or 0) >= this_created:
            continue
        failed = recoveries.failed_charges(invoice, st.charges, st.payment_intents)
        if recoveries.has_failed(invoice, failed):
            return True
    return False


def _expansion_record(delta: tuple[Any, Any], version: Version, account: matching.AccountMatch,
                      etype: str, record: Any) -> None:
    old, new = delta
    key = f"expansion:{version.event_id}"
    day = utc_date(version.created)
    record("Opportunity", ExternalKey("LostChurn_Recovery_ID__c", key), {
        "expansion.key": key,
        "expansion.record_type": RecordTypeRef("Opportunity", EXPANSION_RECORD_TYPE),
        "expansion.name": f"Expansion - {account.name} - {day.isoformat() if day else ''}"[:120],
        "expansion.amount": (new - old) * 12,
        "expansion.stage": "Closed Won",
        "expansion.close_date": day,
        "expansion.account_id": account.ref(),
    }, f"{etype}: MRR {old} -> {new}")


def _scrub_record(record: DesiredRecord) -> DesiredRecord:
    fields = {n: (replace(f, value=safety.scrub_value(f.value)) if isinstance(f.value, str) else f)
              for n, f in record.fields.items()}
    return replace(record, fields=fields)


def _scrub_insert(insert: Insert) -> Insert:
    return replace(insert, fields={n: safety.scrub_value(v) for n, v in insert.fields.items()})


__all__ = [
    "Context", "Derivation", "DesiredField", "Needs", "SalesforceContext", "StripeContext",
    "derive", "needs",
]
