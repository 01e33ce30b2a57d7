"""Recoveries: one Stripe invoice that failed at least once, from first failure to its end.

Status machine (recovery id = invoice id):

    Started    the first payment attempt failed and the invoice is open;
    Retrying   later attempts failed too and the invoice is still open;
    Succeeded  the invoice is paid after a failure;
    Exhausted  the invoice is uncollectible or void, its subscription ended unpaid
               (canceled, incomplete_expired, unpaid), or Stripe schedules no further
               attempt (`next_payment_attempt` is null on an open, automatically charged
               invoice).

Evidence that an invoice failed at least once: a failed charge linked to it, an
`attempt_count` above 1 on a paid invoice (only automatic retries raise it), an open invoice
with attempts, the event itself being `invoice.payment_failed` /
`invoice.payment_action_required`, or a recovery the org already holds for it
(`known_recovery_ids`). A paid invoice with none of these never becomes a recovery.

Decisions where the issue is silent:
- failed attempts = max(failed charges linked, attempt_count - 1 if paid else
  attempt_count), at least 1; retry count = all attempts after the first (so a recovery
  paid on the second try has retry count 1).
- started_at = the first failed charge's `created`; without charges, the event time when
  the event is the first failure, else the invoice's finalisation (or creation) time.
- completed_at = paid_at (Succeeded); marked_uncollectible_at / voided_at, the
  subscription's ended_at, or the last failed attempt (Exhausted).
- recovered amount = `amount_paid` in major units (partial payments count), 0 before.
- Opportunity Amount = `amount_due` in major units; Name uses the customer's email (falls
  back to the invoice's customer_email, then the customer id) and the UTC start date.
- CloseDate = completion date; while open the next attempt date, else the due date, else
  the start date (Salesforce requires a CloseDate).
- send_invoice invoices never have a next attempt: for them a missing attempt date does not
  mean Exhausted; nor for `invoice.payment_action_required` (3D Secure: the customer must
  act, Stripe waits for them rather than retrying).
- Platform events: every state implies its events (`started`, `failed` for attempts 2..n,
  then `succeeded` / `exhausted`), each with a dedupe key `<invoice>:<type>[:<n>]`, so the
  set published is the same whatever order the Stripe events arrive in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lc_console.sync import decline_categories as dc
from lc_console.sync import money
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.model import utc_datetime

STARTED, RETRYING, SUCCEEDED, EXHAUSTED = "Started", "Retrying", "Succeeded", "Exhausted"
FAILURE_EVENTS = ("invoice.payment_failed", "invoice.payment_action_required")
ENDED_UNPAID = ("canceled", "incomplete_expired", "unpaid")


@dataclass(frozen=True)
class FailedAttempt:
    number: int  # 1-based
    at: int | None  # unix time
    decline_code: str | None
    charge_id: str | None


@dataclass(frozen=True)
class Recovery:
    recovery_id: str
    customer_id: str | None
    status: str
    failed_attempts: tuple[FailedAttempt, ...]
    retry_count: int
    decline_code: str | None
    decline_category: str
    currency: str
    amount_due: Decimal
    recovered_amount: Decimal
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    due_at: dt.datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in (STARTED, RETRYING)

    @property
    def close_date(self) -> dt.date | None:
        for moment in (self.completed_at, self.next_attempt_at if self.is_open else None,
                       self.due_at if self.is_open else None, self.started_at):
            if moment is not None:
                return moment.date()
        return None

    @property
    def start_date(self) -> dt.date | None:
        return self.started_at.date() if self.started_at else None


def failed_charges(invoice: Mapping[str, Any], charges: Sequence[Mapping[str, Any]],
                   payment_intents: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> list[Mapping[str, Any]]:
    return [c for c in ss.charges_of_invoice(invoice, charges, payment_intents)
            if c.get("status") == "failed"]


def has_failed(invoice: Mapping[str, Any], failed: Sequence[Mapping[str, Any]],
               event_type: str | None = None,
               known_recovery_ids: frozenset[str] = frozenset(),
               pending: bool = False) -> bool:
    if failed or event_type in FAILURE_EVENTS or invoice.get("id") in known_recovery_ids:
        return True
    attempts = int(invoice.get("attempt_count") or 0)
    if ss.invoice_is_paid(invoice):
        return attempts > 1
    # An attempted, unpaid invoice failed, unless its payment is still processing (bank
    # debits stay pending for days).
    return (attempts >= 1 and not pending
            and invoice.get("status") in ("open", "uncollectible", "void"))


def status_of(invoice: Mapping[str, Any], failed_attempts: int,
              subscription: Mapping[str, Any] | None = None,
              event_type: str | None = None) -> str:
    if ss.invoice_is_paid(invoice):
        return SUCCEEDED
    if invoice.get("status") in ("uncollectible", "void"):
        return EXHAUSTED
    if subscription and subscription.get("status") in ENDED_UNPAID:
        return EXHAUSTED
    if (invoice.get("next_payment_attempt") is None
            and invoice.get("collection_method", "charge_automatically") != "send_invoice"
            and event_type != "invoice.payment_action_required"):
        return EXHAUSTED
    return STARTED if failed_attempts <= 1 else RETRYING


def derive_recovery(
    invoice: Mapping[str, Any],
    *,
    charges: Sequence[Mapping[str, Any]] = (),
    payment_intents: Mapping[str, Mapping[str, Any]] | None = None,
    subscription: Mapping[str, Any] | None = None,
    event_type: str | None = None,
    event_created: int | None = None,
    known_recovery_ids: frozenset[str] = frozenset(),
) -> Recovery | None:
    """The recovery an invoice is in, or None when it never failed."""
    payment_intents = payment_intents or {}
    linked = ss.charges_of_invoice(invoice, charges, payment_intents)
    failed = [c for c in linked if c.get("status") == "failed"]
    pending = any(c.get("status") == "pending" for c in linked)
    if not has_failed(invoice, failed, event_type, known_recovery_ids, pending):
        return None
    paid = ss.invoice_is_paid(invoice)
    attempt_count = int(invoice.get("attempt_count") or 0)
    n_failed = max(len(failed), attempt_count - 1 if paid else attempt_count, 1)
    attempts = _attempts(invoice, failed, n_failed, payment_intents, event_type,
                         event_created)
    status = status_of(invoice, n_failed, subscription, event_type)
    currency = str(invoice.get("currency") or "usd")
    code = next((a.decline_code for a in reversed(attempts) if a.decline_code), None)
    started = attempts[0].at if attempts and attempts[0].at else _fallback_start(invoice)
    return Recovery(
        recovery_id=str(invoice.get("id")),
        customer_id=ss.invoice_customer_id(invoice),
        status=status,
        failed_attempts=tuple(attempts),
        retry_count=n_failed + (1 if paid else 0) - 1,
        decline_code=code,
        decline_category=dc.categorize(code),
        currency=currency,
        amount_due=money.to_major(invoice.get("amount_due"), currency),
        recovered_amount=money.to_major(invoice.get("amount_paid") or 0, currency),
        started_at=utc_datetime(started),
        completed_at=utc_datetime(_completed(invoice, status, subscription, attempts)),
        next_attempt_at=utc_datetime(invoice.get("next_payment_attempt")),
        due_at=utc_datetime(invoice.get("due_date")),
    )


def _attempts(invoice: Mapping[str, Any], failed: Sequence[Mapping[str, Any]], n_failed: int,
              payment_intents: Mapping[str, Mapping[str, Any]], event_type: str | None,
              event_created: int | None) -> list[FailedAttempt]:
    pis = [payment_intents.get(i) for i in ss.invoice_payment_intent_ids(invoice)]
    pis += [r for r in ss.invoice_payment_intent_refs(invoice) if isinstance(r, Mapping)]
    pi = next((p for p in reversed(pis) if p and p.get("last_payment_error")), None)
    out: list[FailedAttempt] = []
    for i in range(n_failed):
        charge = failed[i] if i < len(failed) else None
        at = charge.get("created") if charge else None
        if at is None and i == n_failed - 1 and event_type in FAILURE_EVENTS:
            at = event_created  # this event reports the latest failed attempt
        # The payment intent's last error describes the latest attempt only.
        code = dc.decline_code(charge, pi if i == n_failed - 1 else None)
        out.append(FailedAttempt(i + 1, at, code, charge.get("id") if charge else None))
    return out


def _fallback_start(invoice: Mapping[str, Any]) -> int | None:
    return (ss.dig(invoice, "status_transitions.finalized_at") or invoice.get("created"))


def _completed(invoice: Mapping[str, Any], status: str, subscription: Mapping[str, Any] | None,
               attempts: Sequence[FailedAttempt]) -> int | None:
    if status == SUCCEEDED:
        return ss.invoice_paid_at(invoice)
    if status != EXHAUSTED:
        return None
    transitions = invoice.get("status_transitions") or {}
    for key in ("marked_uncollectible_at", "voided_at"):
        if transitions.get(key):
            return int(transitions[key])
    if subscription and subscription.get("status") in ENDED_UNPAID:
        ended = subscription.get("ended_at") or subscription.get("canceled_at")
        if ended:
            return int(ended)
    last = next((a.at for a in reversed(attempts) if a.at), None)
    return last


def opportunity_name(email: str | None, start: dt.date | None) -> str:
    day = start.isoformat() if start else "unknown date"
    return f"Recovery - {email or 'unknown customer'} - {day}"[:120]


def platform_event_types(recovery: Recovery) -> list[tuple[str, str, FailedAttempt | None]]:
    """(event type, dedupe suffix, attempt) for every event the recovery's state implies."""
    attempts = recovery.failed_attempts
    events: list[tuple[str, str, FailedAttempt | None]] = [
        ("started", "started", attempts[0] if attempts else None)]
    for attempt in attempts[1:]:
        events.append(("failed", f"failed:{attempt.number}", attempt))
    if recovery.status == SUCCEEDED:
        events.append(("succeeded", "succeeded", None))
    elif recovery.status == EXHAUSTED:
        events.append(("exhausted", "exhausted", attempts[-1] if attempts else None))
    return events


def recovered_count(invoices: Sequence[Mapping[str, Any]], charges: Sequence[Mapping[str, Any]],
                    payment_intents: Mapping[str, Mapping[str, Any]] | None = None,
                    known_recovery_ids: frozenset[str] = frozenset()) -> int:
    """How many of a customer's invoices were recovered (paid after a failure)."""
    count = 0
    any_failed = any(c.get("status") == "failed" for c in charges)
    for invoice in invoices:
        if not ss.invoice_is_paid(invoice):
            continue
        if not any_failed:  # no failed charge at all: only attempt counts can tell
            count += has_failed(invoice, [], None, known_recovery_ids)
            continue
        failed = failed_charges(invoice, charges, payment_intents)
        if has_failed(invoice, failed, None, known_recovery_ids):
            count += 1
    return count
