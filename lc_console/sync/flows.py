"""The seeded flows: payment failure, cancellation, expansion and refund follow-ups.

Tasks are `Insert`s with a dedupe key, so each is created once however often (and in
whatever order) the events behind it arrive:

- Payment failure: when a failed payment moves the Account's payment health up to Yellow
  or Red, a Task for the Account owner, Priority High, due the next day: "Payment failed -
  contact {Account} within 24 hours"; "URGENT - " in front when the churn-risk flag was
  already set before this failure. Key: task:payment_failed:<customer>:<failure>:<health>.
  "Before" is computed from Stripe's history (failures in the window without this one;
  past_due = another earlier invoice still open after a failure; a cancellation scheduled),
  not from what Salesforce holds, so the result does not depend on the order events are
  processed in.
- Cancellation (`customer.subscription.deleted`): the Account's subscription status comes
  from the billing summary (canceled when nothing live remains) and, when the customer has
  no live subscription left, a win-back Task due in `winback_task_days` (default 14).
  Key: task:winback:<subscription>.
- Expansion (`customer.subscription.updated` whose MRR rose): an Opportunity of record
  type LostChurn_Expansion, Amount = MRR delta x 12, Stage Closed Won, CloseDate the event's
  date, upserted by LostChurn_Recovery_ID__c = "expansion:<event id>" (the only unique
  external id on Opportunity). The old MRR comes from `previous_attributes` applied to the
  subscription; a subscription that was not paying before (trial, incomplete) is a new
  customer, not an expansion.
- Refund: CLV is recomputed net of refunds by the billing rules; a review Task when one
  refund is above `refund_review_threshold` (in the refund's currency, major units).
  Tasks come from `refund.*` events and from `charge.refunded` events that list their
  refunds, keyed task:refund_review:<refund id>, so both kinds of event give one Task.

Task owner: the matched Account's OwnerId; for an Account the console creates, the
integration user (Salesforce's default owner).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from lc_console.sync import billing, money
from lc_console.sync.matching import AccountMatch
from lc_console.sync.model import Insert, Ref, Value, Version, utc_date

TASK = "Task"


def _task(subject: str, *, priority: str, due: dt.date | None, account: AccountMatch,
          contact: Ref | None, description: str, key: str, version: Version,
          customer_id: str, reason: str) -> Insert:
    fields: dict[str, Value] = {
        "Subject": subject[:255],
        "Priority": priority,
        "Status": "Not Started",
        "ActivityDate": due,
        "WhatId": account.ref(),
        "Description": description,
    }
    if contact is not None:
        fields["WhoId"] = contact
    owner = (account.record or {}).get("OwnerId")
    if owner:
        fields["OwnerId"] = str(owner)
    return Insert(TASK, fields, key, version, customer_id, reason)


def payment_failure_task(*, customer_id: str, account: AccountMatch, contact: Ref | None,
                         failure_id: str, failures_now: int, window_days: int,
                         flag_before: bool, decline: str | None, as_of: int,
                         version: Version) -> Insert | None:
    """The Task for a failure that moved health up to Yellow or Red, else None."""
    before = billing.health_from_count(max(failures_now - 1, 0))
    after = billing.health_from_count(failures_now)
    if billing.HEALTH_ORDER[after] <= billing.HEALTH_ORDER[before]:
        return None
    subject = f"Payment failed - contact {account.name} within 24 hours"
    if flag_before:
        subject = "URGENT - " + subject
    when = utc_date(as_of)
    due = when + dt.timedelta(days=1) if when else None
    description = (f"Payment health moved from {before} to {after}: {failures_now} failed "
                   f"payment(s) in the last {window_days} days."
                   + (f" Latest decline: {decline}." if decline else ""))
    return _task(subject, priority="High", due=due, account=account, contact=contact,
                 description=description,
                 key=f"task:payment_failed:{customer_id}:{failure_id}:{after}",
                 version=version, customer_id=customer_id, reason="payment failure")


def winback_task(*, customer_id: str, subscription: Mapping[str, Any], account: AccountMatch,
                 contact: Ref | None, lost_mrr: Decimal, currency: str, days: int, as_of: int,
                 version: Version) -> Insert:
    when = utc_date(as_of)
    due = when + dt.timedelta(days=days) if when else None
    reason = ((subscription.get("cancellation_details") or {}).get("reason")
              or "not given")
    description = (f"Subscription {subscription.get('id')} was canceled (reason: {reason}). "
                   f"MRR lost: {lost_mrr} {currency.upper()}.")
    return _task(f"Win back {account.name}: subscription canceled", priority="Normal",
                 due=due, account=account, contact=contact, description=description,
                 key=f"task:winback:{subscription.get('id')}", version=version,
                 customer_id=customer_id, reason="cancellation")


def previous_state(obj: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The object as it was before an `*.updated` event (previous_attributes applied)."""
    before = copy.deepcopy(dict(obj))
    for key, value in (previous or {}).items():
        before[key] = copy.deepcopy(value)
    return before


def expansion_delta(subscription: Mapping[str, Any], previous: Mapping[str, Any] | None,
                    currency: str, coupons: Mapping[str, Any], as_of: int,
                    discounts: Mapping[str, Any] | None = None
                    ) -> tuple[Decimal, Decimal] | None:
    """(old MRR, new MRR) in major units when the update raised a paying subscription's MRR."""
    if not previous:
        return None
    before = previous_state(subscription, previous)
    old = money.to_major(billing.subscription_mrr_minor(before, currency, coupons, as_of,
                                                        discounts), currency)
    new = money.to_major(billing.subscription_mrr_minor(subscription, currency, coupons, as_of,
                                                        discounts), currency)
    if old <= 0 or new <= old:
        return None
    return old, new


def refund_review_tasks(*, customer_id: str, refunds: Sequence[Mapping[str, Any]],
                        threshold: float, account: AccountMatch, contact: Ref | None,
                        as_of: int, version: Version) -> list[Insert]:
    tasks = []
    for refund in refunds:
        if refund.get("status") in ("failed", "canceled") or not refund.get("id"):
            continue
        currency = str(refund.get("currency") or "usd")
        amount = money.to_major(refund.get("amount") or 0, currency)
        if amount <= Decimal(str(threshold)):
            continue
        subject = f"Review refund of {amount} {currency.upper()} for {account.name}"
        description = (f"Refund {refund['id']} of {amount} {currency.upper()} "
                       f"(reason: {refund.get('reason') or 'not given'}) is above the review "
                       f"threshold of {threshold}. CLV was reduced accordingly.")
        tasks.append(_task(subject, priority="Normal", due=utc_date(as_of), account=account,
                           contact=contact, description=description,
                           key=f"task:refund_review:{refund['id']}", version=version,
                           customer_id=customer_id, reason="refund"))
    return tasks
