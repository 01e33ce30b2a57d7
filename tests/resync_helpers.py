"""Helpers of the re-sync and reconcile tests: a Backfill run over the product's own clients,
connected to the Salesforce sandbox (`org` from engine_helpers) and the Stripe sandbox, and
the records the sync rules derive from the same Stripe data read independently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from engine_helpers import PROFILE, connect_stripe

from lc_console import settings
from lc_console.salesforce import tokens
from lc_console.services.resync import Backfill, staging_path
from lc_console.settings import RulesSettings
from lc_console.store import Store
from lc_console.stripe.client import make_client
from lc_console.sync import backfill as bf
from lc_console.sync import ordering
from lc_console.sync.derive import SalesforceContext
from lc_console.sync.model import DesiredRecord, ExternalKey, RecordTypeRef, Ref


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.for_profile(PROFILE) as s:
        yield s


def set_sync(**values: Any) -> None:
    current = settings.load(PROFILE)
    for name, value in values.items():
        setattr(current.sync, name, value)
    settings.save(PROFILE, current)


def runner(stripe_sandbox: Any, store: Store, *, name: str = "resync", **kwargs: Any
           ) -> Backfill:
    connect_stripe(stripe_sandbox)
    current = settings.load(PROFILE)
    sf = tokens.manager_for(PROFILE).salesforce()
    client = make_client(stripe_sandbox.keys["restricted"], api_base=stripe_sandbox.url,
                         ca_bundle=current.tls.ca_bundle, max_network_retries=0)
    kwargs.setdefault("poll", (0.02, 0.2))
    kwargs.setdefault("as_of", stripe_sandbox.now)
    return Backfill(store=store, stripe_client=client, sf=sf, settings=current,
                    staging=staging_path(PROFILE, name), name=name, **kwargs)


def _fetch(service: Any, **params: Any) -> list[dict[str, Any]]:
    return [o.to_dict() for o in service.list(params={"limit": 100, **params}).auto_paging_iter()]


def _customer(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return obj["id"]
    ref = obj.get("customer")
    return ref.get("id") if isinstance(ref, dict) else ref


def expected_records(stripe_sandbox: Any) -> dict[tuple[str, Any], DesiredRecord]:
    """What the rules derive for an empty org, with Stripe read by the plain client."""
    client = stripe.StripeClient(stripe_sandbox.keys["restricted"],
                                 base_addresses={"api": stripe_sandbox.url})
    customers = _fetch(client.v1.customers)
    objs: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for kind, found in (
            ("subs", _fetch(client.v1.subscriptions, status="all",
                            expand=["data.discounts.source.coupon"])),
            ("invoices", _fetch(client.v1.invoices, expand=["data.payments"])),
            ("charges", _fetch(client.v1.charges)),
            ("pis", _fetch(client.v1.payment_intents))):
        for obj in found:
            objs[str(_customer(obj))][kind].append(obj)
    org = SalesforceContext()
    state: dict[tuple[str, Any], DesiredRecord] = {}
    for customer in sorted(customers, key=lambda c: (c["created"], c["id"])):
        o = objs[customer["id"]]
        bundle = bf.CustomerBundle(customer, o["subs"], o["invoices"], o["charges"], o["pis"])
        for d in bf.derive_customer(bundle, org, RulesSettings(), stripe_sandbox.now):
            org = org.with_planned(d)
            state = ordering.apply(state, d.records)
    return state


def org_matches(sandbox: Any, expected: dict[tuple[str, Any], DesiredRecord]) -> list[str]:
    """Differences between the org and the expected records (empty when it holds them)."""
    from lc_console.sync.conflicts import same_value

    tables = {o: sandbox.records(o) for o in bf.OBJECTS}
    problems = []
    for (sobject, key), record in expected.items():
        assert isinstance(key, ExternalKey)
        rows = [r for r in tables[sobject] if r.get(key.field) == key.value]
        if len(rows) != 1:
            problems.append(f"{sobject} {key}: {len(rows)} rows")
            continue
        row = rows[0]
        for name, f in record.fields.items():
            value = f.value
            if isinstance(value, Ref):
                assert isinstance(value.key, ExternalKey)
                parent = [p for p in tables[value.sobject]
                          if p.get(value.key.field) == value.key.value]
                ok = len(parent) == 1 and row.get(name) == parent[0]["Id"]
            elif isinstance(value, RecordTypeRef):
                ok = bool(row.get(name))
            else:
                ok = same_value(value, row.get(name))
            if not ok:
                problems.append(f"{sobject} {key} {name}: org {row.get(name)!r}, rules {value!r}")
    for sobject in bf.OBJECTS:
        wanted = sum(1 for (o, _k) in expected if o == sobject)
        if len(tables[sobject]) != wanted:
            problems.append(f"{sobject}: org holds {len(tables[sobject])}, rules {wanted}")
    return problems
