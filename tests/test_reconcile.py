# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""Reconcile against both sandboxes: drift per object and field after an admin's edits,
--fix writes the differences through the re-sync path, a person's Sales edits and records of
deleted Stripe customers are reported or respected, never overwritten or deleted; the
schedule."""

from __future__ import annotations

from typing import Any

from engine_helpers import installed_org, org  # noqa: F401
from install_helpers import admin_client
from resync_helpers import runner, store  # noqa: F401

from lc_console.services import reconcile
from lc_console.services.resync import Options
from lc_console.store import Store
from lc_console.sync.backfill import due


def _reconcile(stripe_sandbox: Any, store: Store, fix: bool = False) -> Any:
    return reconcile.run(runner(stripe_sandbox, store, name="reconcile"), fix=fix)


def test_drift_is_reported_per_object_and_field_and_fixed(org: Any, stripe_sandbox: Any,
                                                          store: Store) -> None:
    assert runner(stripe_sandbox, store).run(Options()).status == "done"
    clean = _reconcile(stripe_sandbox, store)
    assert clean.status == "dry-run"
    assert reconcile.total_drift(clean.drift) == {"missing": 0, "different": 0, "orphaned": 0}
    assert reconcile.drift_lines(clean.drift)[0].startswith("No drift")

    admin = admin_client(org)
    accounts = [a for a in org.records("Account") if a.get("LostChurn_MRR__c")]
    edited = accounts[0]
    admin.Account.update(edited["Id"], {"LostChurn_MRR__c": 1.23})
    recovery_contacts = {r.get("Contact__c") for r in org.records("LostChurn_Recovery__c")}
    gone = next(c for c in org.records("Contact") if c["Id"] not in recovery_contacts)
    admin.Contact.delete(gone["Id"])
    admin.Contact.create({"LastName": "Former", "Email": "former@example.org",
                          "LostChurn_ID__c": "cus_DeletedInStripe1"})
    opp = org.records("Opportunity")[0]
    admin.Opportunity.update(opp["Id"], {"StageName": "Qualification"})  # a person's call

    found = _reconcile(stripe_sandbox, store)
    objects = found.drift["objects"]
    assert objects["Account"]["different"] == 1
    assert objects["Account"]["fields"] == {"LostChurn_MRR__c": 1}
    assert objects["Contact"]["missing"] == 1
    assert objects["Contact"]["orphaned"] == 1
    assert "StageName" not in objects.get("Opportunity", {}).get("fields", {})
    items = {(i["object"], i["kind"]): i for i in found.drift["items"]}
    diff = items[("Account", "different")]["fields"]["LostChurn_MRR__c"]
    assert diff["salesforce"] == 1.23 and diff["stripe"] == edited["LostChurn_MRR__c"]
    assert items[("Contact", "orphaned")]["key"] == "cus_DeletedInStripe1"
    text = "\n".join(reconcile.drift_lines(found.drift))
    assert "LostChurn_MRR__c (1)" in text and "not in Stripe any more" in text
    # The report writes nothing.
    assert not any(c.get("LostChurn_ID__c") == gone["LostChurn_ID__c"]
                   for c in org.records("Contact"))

    fixed = _reconcile(stripe_sandbox, store, fix=True)
    assert fixed.status == "done", fixed.message
    assert fixed.counts["Contact"].created == 1 and fixed.counts["Account"].updated == 1
    row = next(a for a in org.records("Account") if a["Id"] == edited["Id"])
    assert row["LostChurn_MRR__c"] == edited["LostChurn_MRR__c"]
    assert any(c.get("LostChurn_ID__c") == gone["LostChurn_ID__c"]
               for c in org.records("Contact"))
    assert any(c.get("LostChurn_ID__c") == "cus_DeletedInStripe1"
               for c in org.records("Contact"))  # reported, never deleted
    assert next(o for o in org.records("Opportunity")
                if o["Id"] == opp["Id"])["StageName"] == "Qualification"

    after = _reconcile(stripe_sandbox, store)
    assert reconcile.total_drift(after.drift) == {"missing": 0, "different": 0, "orphaned": 1}
    assert store.get_meta(reconcile.LAST_RUN_KEY)["drift"]["orphaned"] == 1


def test_schedule_due() -> None:
    day = 86_400
    assert not due(10 * day, None, "off")
    assert due(10 * day, None, "daily")
    assert not due(10 * day, 10 * day - 3600, "daily")
    assert due(10 * day, 9 * day, "daily")
    assert not due(10 * day, 5 * day, "weekly")
    assert due(10 * day, 3 * day, "weekly")


def test_is_due_reads_the_last_run_from_the_store(store: Store) -> None:
    assert reconcile.is_due(store, "daily", now=1_000_000)
    store.set_meta(reconcile.LAST_RUN_KEY, {"at": 1_000_000 - 3600})
    assert not reconcile.is_due(store, "daily", now=1_000_000)
    assert reconcile.is_due(store, "daily", now=1_000_000 + 86_400)
