"""Install, repair, conflicts, permissions, deploy failures and removal against the Salesforce
sandbox, through the product's token manager and the real simple-salesforce client."""

from __future__ import annotations

from typing import Any

import pytest
from install_helpers import (
    FAST,
    admin_client,
    connect,
    deploy_requests,
    deploy_specs,
    field_as,
    values_for,
)
from simple_salesforce.exceptions import SalesforceResourceNotFound

from lc_console.salesforce.schema_diff import Kind, Status
from lc_console.salesforce.schema_manifest import MANIFEST, FieldKind, PicklistValue
from lc_console.services import install as svc

pytestmark = pytest.mark.slow  # each test runs one or more real deploys (about 1 s each)


def statuses(plan: Any) -> dict[str, Status]:
    return {i.name: i.status for i in plan.items}


def test_plan_on_an_empty_org_lists_everything_missing(salesforce_sandbox: Any) -> None:
    target = connect(salesforce_sandbox)
    plan = svc.plan(target)
    assert plan.counts() == {"present": 0, "missing": 36, "different": 0, "conflict": 0}
    assert plan.can_customize and plan.metadata_error == ""
    kinds = {i.kind for i in plan.items}
    assert kinds == set(Kind)
    assert deploy_requests(salesforce_sandbox) == []  # planning changes nothing


def test_install_then_everything_is_present_writable_and_a_second_install_changes_nothing(
        salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    seen: list[svc.Progress] = []
    result = svc.install(target, on_progress=seen.append, **FAST)
    assert result.outcome is svc.Outcome.INSTALLED, result.lines()
    assert result.message.startswith("Installed: 35 created, LostChurn_Integration assigned to "
                                     "admin@lc-sandbox.example.com. Verified:")
    # Progress followed checkDeployStatus through validation and the real deploy.
    phases = [p.phase for p in seen]
    assert phases.index(svc.Phase.VALIDATE) < phases.index(svc.Phase.DEPLOY) < phases.index(
        svc.Phase.ASSIGN) < phases.index(svc.Phase.VERIFY)
    deploy_statuses = [p.status for p in seen if p.status is not None]
    assert any(s.status == "InProgress" and 0 < s.deployed < s.total for s in deploy_statuses)
    assert [s.check_only for s in deploy_statuses if s.finished] == [True, False]
    assert len(deploy_requests(sb)) == 2

    # The org describes everything, and the connected user writes every field.
    sf = target.client()
    for obj in MANIFEST.objects:
        names = {f["name"] for f in getattr(sf, obj.name).describe()["fields"]}
        assert {f.name for f in MANIFEST.fields_of(obj.name)} <= names, obj.name
    rts = {r["developerName"]: r for r in sf.Opportunity.describe()["recordTypeInfos"]}
    assert rts["LostChurn_Recovery"]["name"] == "Recovery" and rts["LostChurn_Recovery"]["available"]
    assert rts["LostChurn_Expansion"]["available"]
    ps = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'LostChurn_Integration'")
    assert ps["totalSize"] == 1

    ids: dict[str, str] = {}
    ids["Account"] = sf.Account.create({"Name": "Acme", **values_for("Account", ids)})["id"]
    ids["Contact"] = sf.Contact.create({"LastName": "Doe", "AccountId": ids["Account"],
                                        **values_for("Contact", ids)})["id"]
    ids["Opportunity"] = sf.Opportunity.create({
        "Name": "Recovery", "StageName": "Prospecting", "CloseDate": "2025-04-01",
        "RecordTypeId": rts["LostChurn_Recovery"]["recordTypeId"],
        **values_for("Opportunity", ids)})["id"]
    rec = sf.LostChurn_Recovery__c.create(values_for("LostChurn_Recovery__c", ids))
    event = sf.LostChurn_Recovery_Event__e.create(values_for("LostChurn_Recovery_Event__e", ids))
    assert event["success"]
    stored = sf.LostChurn_Recovery__c.get(rec["id"])
    assert stored["Status__c"] == "Exhausted" and stored["Contact__c"] == ids["Contact"]
    assert stored["Name"].startswith("LCR-")
    for sobject in ("Contact", "Account", "Opportunity"):
        got = getattr(sf, sobject).get(ids[sobject])
        for spec in MANIFEST.fields_of(sobject):
            assert got[spec.name] not in (None, False), spec.full_name
    published = sb.published_events("LostChurn_Recovery_Event__e")
    assert published and published[-1]["payload"]["Event_Type__c"] == "v-Event_Type__c"

    again = svc.plan(target)
    assert again.nothing_to_change, [i for i in again.items if i.status is not Status.PRESENT]
    second = svc.install(target, **FAST)
    assert second.outcome is svc.Outcome.NOTHING_TO_CHANGE
    assert second.message.startswith("Nothing to change: every component is installed")
    assert len(deploy_requests(sb)) == 2  # no new deploy


def test_partial_install_is_repaired_keeping_what_the_org_has(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    # An earlier, partial install: a shorter non-unique id field, a picklist missing values
    # but holding one of the admin's own, and two recovery fields only.
    tier = MANIFEST.field("Account.LostChurn_CLV_Tier__c")
    deploy_specs(admin_client(sb), [
        field_as("Contact.LostChurn_ID__c", length=32, unique=False),
        field_as("Account.LostChurn_CLV_Tier__c",
                 values=(tier.values[0], PicklistValue("Platinum", "Platinum"))),
        field_as("Account.LostChurn_Stripe_Customer_ID__c", length=255),
        MANIFEST.field("LostChurn_Recovery__c.Recovery_ID__c"),
        MANIFEST.field("LostChurn_Recovery__c.Status__c"),
    ], whole_objects={"LostChurn_Recovery__c"})

    plan = svc.plan(target)
    items = {i.name: i for i in plan.items}
    assert items["Contact.LostChurn_ID__c"].status is Status.DIFFERENT
    assert items["Contact.LostChurn_ID__c"].detail.startswith(
        "length 32 -> 64; set Unique (fails if duplicate values exist)")
    assert items["Account.LostChurn_CLV_Tier__c"].detail.startswith(
        "add values Mid, Low; values Platinum kept")
    assert items["LostChurn_Recovery__c"].status is Status.PRESENT
    assert items["LostChurn_Recovery__c.Status__c"].status is Status.PRESENT
    assert items["LostChurn_Recovery__c.Decline_Code__c"].status is Status.MISSING
    # Fields deployed without a permission set are invisible to describe (FLS), yet found.
    assert "not visible to you yet" in items["LostChurn_Recovery__c.Status__c"].detail

    result = svc.install(target, **FAST)
    assert result.outcome is svc.Outcome.INSTALLED, result.lines()
    assert svc.plan(target).nothing_to_change
    sf = target.client()
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert (fields["LostChurn_ID__c"]["length"], fields["LostChurn_ID__c"]["unique"]) == (64, True)
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    values = [v["value"] for v in account["LostChurn_CLV_Tier__c"]["picklistValues"]]
    assert values == ["High", "Platinum", "Mid", "Low"]
    assert account["LostChurn_Stripe_Customer_ID__c"]["length"] == 255


def test_a_field_of_another_type_stops_the_install_before_any_deploy(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    deploy_specs(admin_client(sb), [field_as("Contact.LostChurn_MRR__c", kind=FieldKind.TEXT,
                                             length=20, precision=None, scale=None)])
    before = len(deploy_requests(sb))
    plan = svc.plan(target)
    [conflict] = plan.conflicts
    assert conflict.name == "Contact.LostChurn_MRR__c"
    assert conflict.found == "Text(20)"
    result = svc.install(target, **FAST)
    assert result.outcome is svc.Outcome.CONFLICT
    assert "Nothing was changed" in result.message
    assert result.issues == [
        "Contact.LostChurn_MRR__c exists as Text(20); the console needs Currency(16,2). Changing "
        "the type can lose data, so the console will not do it: change or delete the field in "
        "Setup (after saving its data), then run install again."]
    assert len(deploy_requests(sb)) == before
    with pytest.raises(SalesforceResourceNotFound):
        target.client().LostChurn_Recovery__c.describe()


def test_a_user_without_customize_application_is_told_before_any_deploy(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb, sb.user)
    plan = svc.plan(target)
    assert not plan.can_customize
    assert all(i.status is Status.MISSING for i in plan.items)
    result = svc.install(target, **FAST)
    assert result.outcome is svc.Outcome.NO_PERMISSION
    assert result.message == (
        "user@lc-sandbox.example.com lacks the Customize Application permission, which is "
        "needed to install the LostChurn objects and fields. Ask a Salesforce admin to grant it "
        "(profile or a permission set), or connect as an admin. Nothing was changed.")
    assert deploy_requests(sb) == []


def test_validation_failure_lists_each_component_with_salesforces_message(
        salesforce_sandbox: Any) -> None:
    """Someone changes the org between the plan and the deploy: validation fails, the
    failures are reported one per line, and nothing is changed."""
    sb = salesforce_sandbox
    target = connect(sb)
    admin = admin_client(sb)

    def meddle(p: svc.Progress) -> None:
        if p.plan is not None:
            deploy_specs(admin, [field_as("Contact.LostChurn_MRR__c", kind=FieldKind.LOOKUP,
                                          reference_to="Account", relationship_name="LC_MRR",
                                          relationship_label="LC MRR", precision=None,
                                          scale=None)])

    result = svc.install(target, on_progress=meddle, **FAST)
    assert result.outcome is svc.Outcome.VALIDATION_FAILED
    assert result.message == "Validation failed: Salesforce rejected 1 component. Nothing was changed."
    assert result.lines()[1:] == [
        "CustomField Contact.LostChurn_MRR__c: Cannot update a field from a Lookup to something else"]
    with pytest.raises(SalesforceResourceNotFound):
        target.client().LostChurn_Recovery__c.describe()


def test_deploy_failure_after_validation_is_rolled_back_and_reported(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    admin = admin_client(sb)

    def meddle(p: svc.Progress) -> None:
        if p.phase is svc.Phase.DEPLOY and p.status is None:  # validated, deploy not sent yet
            deploy_specs(admin, [field_as("Account.LostChurn_CLV__c", kind=FieldKind.LOOKUP,
                                          reference_to="Contact", relationship_name="LC_CLV",
                                          relationship_label="LC CLV", precision=None,
                                          scale=None)])

    result = svc.install(target, on_progress=meddle, **FAST)
    assert result.outcome is svc.Outcome.DEPLOY_FAILED
    assert result.message == "Deploy failed and was rolled back (1 component error). Nothing was changed."
    assert result.lines()[1] == ("CustomField Account.LostChurn_CLV__c: Cannot update a field "
                                 "from a Lookup to something else")
    with pytest.raises(SalesforceResourceNotFound):
        target.client().LostChurn_Recovery__c.describe()


def test_remove_counts_the_data_then_deletes_it(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    assert svc.install(target, **FAST).ok
    sf = target.client()
    rt = {r["developerName"]: r["recordTypeId"] for r in sf.Opportunity.describe()["recordTypeInfos"]}
    acc = sf.Account.create({"Name": "Acme", "LostChurn_CLV__c": 900,
                             "LostChurn_Churn_Risk_Flag__c": True})["id"]
    sf.Account.create({"Name": "Beta", "LostChurn_Churn_Risk_Flag__c": False})
    contacts = [sf.Contact.create({"LastName": f"C{i}", "LostChurn_MRR__c": 10 * i})["id"]
                for i in (1, 2)]
    sf.Contact.create({"LastName": "Empty"})
    opp = sf.Opportunity.create({"Name": "R", "StageName": "Prospecting", "CloseDate": "2025-04-01",
                                 "AccountId": acc, "RecordTypeId": rt["LostChurn_Recovery"],
                                 "LostChurn_Recovery_ID__c": "rec_1"})["id"]
    for i in range(3):
        sf.LostChurn_Recovery__c.create({"Recovery_ID__c": f"rec_{i}", "Contact__c": contacts[0],
                                         "Opportunity__c": opp})

    preview = svc.remove_preview(target)
    assert preview.records == 3
    assert {k: v for k, v in preview.populated.items() if v} == {
        "Account.LostChurn_CLV__c": 1, "Account.LostChurn_Churn_Risk_Flag__c": 1,
        "Contact.LostChurn_MRR__c": 2, "Opportunity.LostChurn_Recovery_ID__c": 1}
    assert preview.populated_values == 5 and preview.populated_fields == 4
    assert preview.opportunities_with_record_types == 1
    assert preview.summary().startswith(
        "Removal deletes 3 LostChurn_Recovery__c records and 5 values in 4 populated LostChurn "
        "fields on Contact, Account and Opportunity, with 16 components.")

    result = svc.remove(target, **FAST)
    assert result.ok, result.lines()
    assert result.unassigned == 1
    assert result.message == ("Removed 16 components: 3 LostChurn_Recovery__c records and 5 "
                              "field values deleted.")
    with pytest.raises(KeyError):
        sb.records("LostChurn_Recovery__c")
    with pytest.raises(SalesforceResourceNotFound):
        sf.LostChurn_Recovery__c.describe()
    assert not [f for f in sf.Contact.describe()["fields"] if f["name"].startswith("LostChurn_")]
    assert sf.Opportunity.get(opp)["Name"] == "R"  # records of standard objects stay
    after = svc.plan(target)
    state = statuses(after)
    assert state["LostChurn_Recovery__c"] is Status.MISSING
    assert state["LostChurn_Integration"] is Status.MISSING
    assert state["Opportunity.LostChurn_Recovery"] is Status.DIFFERENT  # kept, inactive
    assert svc.remove_preview(target).nothing_installed

    # And it can be installed again: the record types come back to life.
    again = svc.install(target, **FAST)
    assert again.outcome is svc.Outcome.INSTALLED, again.lines()
    assert svc.plan(target).nothing_to_change


def test_verify_names_the_permission_set_fix_and_install_repairs_the_assignment(
        salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    assert svc.install(target, **FAST).ok
    sf = target.client()
    # deploy() leaves text/xml in simple-salesforce's headers (reference §5.6); ours are clean,
    # so a JSON POST through restful() still works.
    assert sf.headers["Content-Type"] == "application/json" and "SOAPAction" not in sf.headers
    created = sf.restful("sobjects/Account/", method="POST", json={"Name": "After deploy"})
    assert created["success"]

    [psa] = sf.query("SELECT Id FROM PermissionSetAssignment WHERE "
                     "PermissionSet.Name = 'LostChurn_Integration'")["records"]
    sf.PermissionSetAssignment.delete(psa["Id"])
    checked = svc.verify(target)
    assert not checked.ok
    assert ("Contact.LostChurn_MRR__c is not visible to admin@lc-sandbox.example.com: "
            "field-level security hides it. Assign the LostChurn_Integration permission set "
            "(Setup > Permission Sets > LostChurn Integration > Manage Assignments) or run "
            "`lc-console install` to repair.") in checked.issues

    plan = svc.plan(target)
    assert [(i.name, i.status) for i in plan.changes] == [
        ("LostChurn_Integration -> admin@lc-sandbox.example.com", Status.MISSING)]
    before = len(deploy_requests(sb))
    repaired = svc.install(target, **FAST)
    assert repaired.outcome is svc.Outcome.INSTALLED
    assert repaired.message.startswith("Installed: LostChurn_Integration assigned to")
    assert len(deploy_requests(sb)) == before  # an assignment needs no deploy
    assert svc.verify(target).ok


def test_an_expired_session_is_refreshed_for_rest_and_metadata_calls(salesforce_sandbox: Any) -> None:
    from lc_console.salesforce import metadata

    sb = salesforce_sandbox
    target = connect(sb)
    target.client()  # the client exists with the current token
    assert sb.expire_tokens() >= 1
    # A SOAP call first: the Metadata API answers with a fault, the token manager refreshes.
    found = target.run(lambda sf: metadata.read_metadata(sf, "PermissionSet", ["Nope"]))
    assert found == {}
    assert sb.expire_tokens() >= 1
    assert svc.plan(target).counts()["missing"] == 36  # REST: refreshed by the HTTP adapter
