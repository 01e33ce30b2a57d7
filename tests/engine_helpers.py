"""Fixtures and helpers of the engine tests: an org with the LostChurn schema installed (by
the install service, once per session, then loaded from its saved state in each test, which
takes milliseconds), a profile connected to it and to the Stripe sandbox, and readers of
what the org holds.

Import the fixtures in a test module: `from engine_helpers import org, installed_org  # noqa`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from install_helpers import connect

from lc_console import secrets, settings
from lc_console.sandbox.salesforce import SalesforceSandbox
from lc_console.services import install as install_service

PROFILE = "default"
SYNC_OBJECTS = ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c", "Task")
# Fields that differ between two runs by construction (ids, audit times, auto numbers).
VOLATILE = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById",
            "LastModifiedById", "OwnerId", "Name_auto", "IsDeleted", "LastActivityDate",
            "LastReferencedDate", "LastViewedDate", "attributes"}


@pytest.fixture(scope="session")
def installed_org(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved org state with the schema installed by the product's install service."""
    from conftest import MemoryKeyring

    root = tmp_path_factory.mktemp("installed-org")
    certs = root / "certs"
    state = root / "org.json"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        previous = keyring.get_keyring()
        keyring.set_keyring(MemoryKeyring())
        try:
            with SalesforceSandbox(state_file=state, cert_dir=certs) as sandbox:
                target = connect(sandbox)
                result = install_service.install(target, poll_interval=0.05,
                                                 max_poll_interval=0.2)
                assert result.ok, result.lines()
        finally:
            keyring.set_keyring(previous)
    return {"state": state, "certs": certs}


@pytest.fixture
def org(installed_org: dict[str, Path], tmp_path: Path) -> Iterator[SalesforceSandbox]:
    """A running org with the LostChurn schema, connected as the `default` profile."""
    state = tmp_path / "org.json"
    shutil.copy(installed_org["state"], state)
    with SalesforceSandbox(state_file=state, cert_dir=installed_org["certs"],
                           save_interval=3600) as sandbox:
        connect(sandbox)
        yield sandbox


def connect_stripe(stripe_sandbox: Any, profile: str = PROFILE) -> None:
    """Store the sandbox's restricted key and its address, as `connect stripe` does."""
    current = settings.load(profile)
    current.stripe.api_base = stripe_sandbox.url
    current.stripe.account_id = "acct_sandbox"
    settings.save(profile, current)
    secrets.put(profile, secrets.SecretKind.STRIPE_API_KEY, stripe_sandbox.keys["restricted"])


def fast_settings(profile: str = PROFILE, **sync: Any) -> None:
    """Short windows and intervals for tests."""
    current = settings.load(profile)
    current.sync.poll_interval_seconds = sync.pop("poll_interval_seconds", 0.1)
    current.sync.batch_window_seconds = sync.pop("batch_window_seconds", 0.0)
    for name, value in sync.items():
        setattr(current.sync, name, value)
    settings.save(profile, current)


def snapshot(sandbox: SalesforceSandbox, objects: tuple[str, ...] = SYNC_OBJECTS
             ) -> dict[str, list[dict[str, Any]]]:
    """What the org holds, comparable across runs: ids replaced by the record's key."""
    ids: dict[str, str] = {}
    tables = {o: sandbox.records(o) for o in objects}
    for sobject, rows in tables.items():
        for row in rows:
            ids[str(row["Id"])] = f"{sobject}:{_key(sobject, row)}"
    out: dict[str, list[dict[str, Any]]] = {}
    for sobject, rows in tables.items():
        clean = []
        for row in rows:
            item = {}
            for name, value in row.items():
                if name in VOLATILE or (sobject == "LostChurn_Recovery__c" and name == "Name"):
                    continue
                if isinstance(value, str) and value in ids:
                    value = ids[value]
                item[name] = value
            clean.append(item)
        out[sobject] = sorted(clean, key=lambda r: repr(sorted(r.items(), key=str)))
    return out


def _key(sobject: str, row: dict[str, Any]) -> str:
    for name in ("LostChurn_Stripe_Customer_ID__c", "LostChurn_ID__c",
                 "LostChurn_Recovery_ID__c", "Recovery_ID__c"):
        if row.get(name):
            return str(row[name])
    if sobject == "Task":
        return str(row.get("Description") or "").rsplit("LostChurn ref: ", 1)[-1]
    return str(row.get("Email") or row.get("Name") or row["Id"])


# --- what the rules predict, computed without the engine ----------------------------------


def _all(client: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page_params = dict(params, limit=100)
        if after:
            page_params["starting_after"] = after
        page = client.raw_request("get", path, **page_params).data
        out += [dict(x) for x in page["data"]]
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]


def predict(stripe_sandbox: Any, since: int = 0) -> dict[str, Any]:
    """Derive every event Stripe lists (created >= since), oldest first, into an empty org,
    with each customer's objects listed in bulk: the records and inserts the sync must
    produce. Independent of the engine: no batching, no Salesforce, no store."""
    import stripe as stripe_lib

    from lc_console.sync import ordering
    from lc_console.sync.derive import Context, SalesforceContext, StripeContext, derive

    client = stripe_lib.StripeClient(stripe_sandbox.keys["secret"],
                                     base_addresses={"api": stripe_sandbox.url})
    events = [e for e in reversed(_all(client, "/v1/events")) if e["created"] >= since]
    customers = {c["id"]: c for c in _all(client, "/v1/customers")}
    objects: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def owner(obj: dict[str, Any]) -> str | None:
        ref = obj.get("customer")
        return ref.get("id") if isinstance(ref, dict) else ref

    for kind, path, params in (
            ("subs", "/v1/subscriptions", {"status": "all",
                                           "expand": ["data.discounts.source.coupon"]}),
            ("invoices", "/v1/invoices", {"expand": ["data.payments"]}),
            ("charges", "/v1/charges", {}),
            ("pis", "/v1/payment_intents", {})):
        for obj in _all(client, path, **params):
            objects.setdefault(owner(obj) or "", {}).setdefault(kind, []).append(obj)
    org = SalesforceContext()
    state: dict[Any, Any] = {}
    values: dict[tuple[Any, str], list[Any]] = {}
    inserts = []
    for ev in events:
        obj = ev["data"]["object"]
        cid = obj["id"] if obj.get("object") == "customer" else owner(obj)
        if cid is None and obj.get("object") == "refund":
            cid = next((c["customer"] for o in objects.values() for c in o.get("charges", [])
                        if c["id"] == obj.get("charge")), None)
        objs = objects.get(cid or "", {})
        coupons = {}
        for sub in objs.get("subs", []):
            for disc in sub.get("discounts") or []:
                coupon = (disc.get("source") or {}).get("coupon") if isinstance(disc, dict) else None
                if isinstance(coupon, dict):
                    coupons[coupon["id"]] = coupon
        ctx = Context(StripeContext(customers.get(cid or ""), objs.get("subs", []),
                                    objs.get("invoices", []), objs.get("charges", []),
                                    {p["id"]: p for p in objs.get("pis", [])}, coupons), org)
        d = derive(ev, ctx)
        org = org.with_planned(d)
        state = ordering.apply(state, d.records)
        for r in d.records:
            for name, f in r.fields.items():
                values.setdefault((r.identity, name), []).append(f.value)
        inserts.extend(d.inserts)
    from lc_console.sync.derive import HANDLED_OBJECTS

    handled = sum(1 for e in events if e["data"]["object"].get("object") in HANDLED_OBJECTS)
    return {"records": state, "values": values,
            "inserts": ordering.coalesce_inserts(inserts), "events": handled}


def _org_index(sandbox: SalesforceSandbox) -> dict[tuple[str, Any], dict[str, Any]]:
    from lc_console.sync.model import ExternalKey

    out = {}
    for sobject, field in (("Account", "LostChurn_Stripe_Customer_ID__c"),
                           ("Contact", "LostChurn_ID__c"),
                           ("Opportunity", "LostChurn_Recovery_ID__c"),
                           ("LostChurn_Recovery__c", "Recovery_ID__c")):
        for row in sandbox.records(sobject):
            if row.get(field):
                out[(sobject, ExternalKey(field, row[field]))] = row
    return out


def differences(sandbox: SalesforceSandbox, prediction: dict[str, Any], *,
                shared_owner_may_differ: bool = False) -> list[str]:
    """Where the org differs from the prediction (empty when it holds exactly that).

    `shared_owner_may_differ`: when customers of one company domain are not processed in
    Stripe's order (a transient error held one back), another of them may create the shared
    Account: it must still be ONE Account per domain, and everything else identical (the
    shared Account's billing fields then come from its owner, so they are not compared)."""
    from lc_console.sync.conflicts import same_value
    from lc_console.sync.model import RecordTypeRef, Ref, to_json

    index = _org_index(sandbox)
    record_types = {rt.developer_name: rt.id for rt in
                    sandbox.org.schema.get("Opportunity").record_types.values()}
    problems: list[str] = []
    predicted = prediction["records"]
    loose: set[Any] = set()
    if shared_owner_may_differ:
        domain_key = {str(r.fields["Website"].value): ident for ident, r in predicted.items()
                      if ident[0] == "Account" and r.fields.get("Website") is not None
                      and r.fields["Website"].value}
        rows_by_site: dict[str, list[dict[str, Any]]] = {}
        for row in sandbox.records("Account"):
            if row.get("Website"):
                rows_by_site.setdefault(str(row["Website"]), []).append(row)
        if {s: len(r) for s, r in rows_by_site.items()} != dict.fromkeys(domain_key, 1):
            problems.append(f"domain accounts differ: org {sorted(rows_by_site)}, "
                            f"rules {sorted(domain_key)}")
        for ident in [i for i in index if i[0] == "Account"
                      and str(index[i].get("Website") or "") in domain_key]:
            del index[ident]
        for site, ident in domain_key.items():
            if rows_by_site.get(site):
                index[ident] = rows_by_site[site][0]
        loose = set(domain_key.values())
    if set(index) != set(predicted):
        extra = sorted(map(str, set(index) - set(predicted)))[:5]
        missing = sorted(map(str, set(predicted) - set(index)))[:5]
        problems.append(f"records differ: extra {extra}, missing {missing}")

    def org_value(value: Any) -> Any:
        if isinstance(value, Ref):
            row = index.get((value.sobject, value.key))
            return row["Id"] if row else f"unresolved {value}"
        if isinstance(value, RecordTypeRef):
            return record_types.get(value.developer_name)
        return to_json(value)

    for identity, record in predicted.items():
        row = index.get(identity)
        if row is None:
            continue
        for name, f in record.fields.items():
            if identity in loose and name not in ("Name", "Website"):
                continue
            have = row.get(name)
            if f.policy == "fill_if_empty":
                seen = [org_value(v) for v in prediction["values"][(identity, name)]]
                ok = any(same_value(have, v) for v in seen)
            else:
                ok = same_value(have, org_value(f.value))
            if not ok:
                problems.append(f"{identity[0]} {identity[1]} {name}: org {have!r}, "
                                f"rules {org_value(f.value)!r} ({f.policy})")
    tasks = sorted(str(t.get("Description") or "").rsplit("LostChurn ref: ", 1)[-1]
                   for t in sandbox.records("Task"))
    want_tasks = sorted(i.dedupe_key for i in prediction["inserts"] if i.sobject == "Task")
    if tasks != want_tasks:
        problems.append(f"tasks differ: org {tasks}, rules {want_tasks}")
    published = sorted((e["payload"].get("Recovery_ID__c"), e["payload"].get("Event_Type__c"))
                       for e in sandbox.published_events("LostChurn_Recovery_Event__e"))
    want_events = sorted((i.fields["Recovery_ID__c"], i.fields["Event_Type__c"])
                         for i in prediction["inserts"] if i.sobject.endswith("__e"))
    if published != want_events:
        problems.append(f"platform events differ: org {published}, rules {want_events}")
    return problems


def snapshot_diff(a: dict[str, list[dict[str, Any]]],
                  b: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Readable differences between two snapshots (records matched by their key)."""
    out = []
    for sobject in sorted(set(a) | set(b)):
        ka = {_key(sobject, r): r for r in a.get(sobject, [])}
        kb = {_key(sobject, r): r for r in b.get(sobject, [])}
        for key in sorted(set(ka) | set(kb)):
            ra, rb = ka.get(key), kb.get(key)
            if ra is None or rb is None:
                out.append(f"{sobject} {key}: only in {'second' if ra is None else 'first'}")
                continue
            for name in sorted(set(ra) | set(rb)):
                if ra.get(name) != rb.get(name):
                    out.append(f"{sobject} {key} {name}: {ra.get(name)!r} != {rb.get(name)!r}")
        if len(ka) != len(a.get(sobject, [])) or len(kb) != len(b.get(sobject, [])):
            out.append(f"{sobject}: duplicate keys ({len(a.get(sobject, []))} vs "
                       f"{len(b.get(sobject, []))} rows)")
    return out


def reconnect(sandbox: SalesforceSandbox, profile: str = PROFILE) -> None:
    """What `lc-console connect salesforce` leaves after a new sign-in: fresh tokens, and the
    expired mark cleared."""
    current = settings.load(profile)
    current.salesforce.connection_expired = False
    settings.save(profile, current)
    connect(sandbox, profile=profile)
