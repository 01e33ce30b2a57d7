"""The engine's entry points: needs(), derive() routing, mapping settings, decline table."""

from __future__ import annotations

import pytest
from test_rules_support import (
    SHAPES,
    T0,
    charge,
    context,
    customer,
    event,
    fixture,
    invoice,
    refund,
    run,
    subscription,
    values,
)

from lc_console.settings import FieldRule, RulesSettings
from lc_console.sync import decline_categories as dc
from lc_console.sync.derive import needs
from lc_console.sync.mapping import MappingError
from lc_console.sync.model import Version, relationship_name, to_json


@pytest.mark.parametrize("shape", SHAPES)
def test_needs_for_an_invoice_event(shape):
    inv = invoice(shape, sid="sub_Z", charge_id="ch_Z", pi_id="pi_Z")
    n = needs(event("invoice.payment_failed", inv, shape=shape))
    assert n.customer_id == "cus_A" and n.history
    assert n.subscription_ids == {"sub_Z"}
    assert n.payment_intent_ids == {"pi_Z"}
    if shape == "legacy":
        assert n.charge_ids == {"ch_Z"}


def test_needs_for_other_events():
    assert needs(event("refund.created", refund(chid="ch_Q"))).charge_ids == {"ch_Q"}
    assert needs(event("charge.failed", charge(invoice="in_Q", shape="legacy"))).invoice_ids \
        == {"in_Q"}
    assert needs(fixture("event")).history is False  # plan.created: nothing to fetch


@pytest.mark.parametrize(("etype", "obj", "note"), [
    ("plan.created", fixture("event")["data"]["object"], "not a billing event"),
    ("customer.deleted", fixture("deleted_customer"), "customer deleted"),
    ("invoice.upcoming", dict(invoice("current"), id=None), "upcoming invoice"),
    ("charge.succeeded", dict(charge(status="succeeded"), customer=None), "has no customer"),
])
def test_events_that_derive_nothing_say_why(etype, obj, note):
    d = run(event(etype, obj), context())
    assert d.records == () and d.inserts == ()
    assert note in d.notes[0]


def test_version_is_created_then_event_id():
    d = run(event("customer.updated", customer(), created=T0, eid="evt_9"), context())
    assert d.version == Version(T0, "evt_9")
    assert all(f.version == d.version for r in d.records for f in r.fields.values())


def test_customer_event_derives_contact_and_account_only():
    d = run(event("customer.created", customer()), context())
    assert sorted(r.sobject for r in d.records) == ["Account", "Contact"]
    assert d.inserts == ()


def test_sources_and_policies_travel_with_each_field():
    d = run(event("invoice.payment_failed", invoice("current")), context())
    account = d.record("Account")
    assert account.fields["LostChurn_MRR__c"].source == "account.mrr"
    assert account.fields["Name"].source == "fixed:account.name"
    opp = d.record("Opportunity")
    assert opp.fields["StageName"].policy == "salesforce_wins"
    assert opp.fields["LostChurn_Recovery_ID__c"].policy == "key"


def test_field_mapping_setting_is_applied():
    rules = RulesSettings()
    rules.fields["account.mrr"] = FieldRule("Account.Custom_MRR__c", "fill_if_empty")
    d = run(event("customer.updated", customer()), context(rules=rules))
    field = d.record("Account").fields["Custom_MRR__c"]
    assert (field.source, field.policy) == ("account.mrr", "fill_if_empty")
    assert "LostChurn_MRR__c" not in d.record("Account").fields


@pytest.mark.parametrize(("target", "message"), [
    ("Contact.LostChurn_MRR__c", "rules.fields.account.mrr.target"),
])
def test_mapping_to_the_wrong_object_names_the_setting(target, message):
    rules = RulesSettings()
    rules.fields["account.mrr"] = FieldRule(target)
    with pytest.raises(MappingError, match=message):
        run(event("customer.updated", customer()), context(rules=rules))


def test_missing_mapping_names_the_fix():
    rules = RulesSettings()
    del rules.fields["contact.mrr"]
    with pytest.raises(MappingError, match="rules.fields.contact.mrr is missing"):
        run(event("customer.updated", customer()), context(rules=rules))


@pytest.mark.parametrize(("code", "category"), [
    ("insufficient_funds", "soft"), ("do_not_honor", "soft"), ("generic_decline", "soft"),
    ("card_declined", "soft"), ("try_again_later", "soft"), ("processing_error", "soft"),
    ("do_not_try_again", "hard"), ("transaction_not_allowed", "hard"),
    ("card_not_supported", "hard"), ("stop_payment_order", "hard"),
    ("revocation_of_authorization", "hard"),
    ("expired_card", "card-update"), ("incorrect_cvc", "card-update"),
    ("incorrect_number", "card-update"), ("authentication_required", "card-update"),
    ("incorrect_zip", "card-update"),
    ("fraudulent", "fraud"), ("lost_card", "fraud"), ("stolen_card", "fraud"),
    ("pickup_card", "fraud"), ("merchant_blacklist", "fraud"),
    ("INSUFFICIENT_FUNDS", "soft"), (None, "soft"), ("brand_new_code", "soft"),
])
def test_decline_category_table(code, category):
    assert dc.categorize(code) == category


def test_every_category_in_the_table_is_one_of_four():
    assert set(dc.TABLE.values()) == set(dc.CATEGORIES)


@pytest.mark.parametrize(("charge_over", "pi_error", "expected"), [
    ({"failure_code": "card_declined", "outcome": {"type": "issuer_declined",
                                                   "reason": "insufficient_funds"}},
     None, "insufficient_funds"),
    ({"failure_code": "expired_card", "outcome": {"type": "issuer_declined", "reason": None}},
     None, "expired_card"),
    ({"failure_code": "card_declined", "outcome": {"type": "blocked", "reason": "rule"}},
     None, "blocked"),
    ({"failure_code": "card_declined", "outcome": {"type": "blocked",
                                                   "reason": "highest_risk_level"}},
     None, "highest_risk_level"),
    ({"failure_code": "card_declined", "outcome": {}}, {"decline_code": "lost_card",
                                                        "code": "card_declined"}, "lost_card"),
    ({}, {"code": "payment_intent_authentication_failure"},
     "payment_intent_authentication_failure"),
    ({}, None, None),
])
def test_decline_code_source_order(charge_over, pi_error, expected):
    pi = {"last_payment_error": pi_error} if pi_error else None
    assert dc.decline_code(charge_over, pi) == expected


def test_json_forms():
    import datetime as dt
    from decimal import Decimal

    assert to_json(Decimal("19.99")) == 19.99
    assert to_json(dt.date(2026, 5, 28)) == "2026-05-28"
    assert to_json(dt.datetime(2026, 5, 28, 20, 26, 40, tzinfo=dt.UTC)) == \
        "2026-05-28T20:26:40.000Z"
    assert relationship_name("Contact__c") == "Contact__r"
    assert relationship_name("AccountId") == "Account"


@pytest.mark.parametrize("shape", SHAPES)
def test_subscription_deleted_ends_open_recovery(shape):
    inv = invoice(shape, attempt_count=3)
    sub = subscription(shape, status="canceled", ended_at=T0 + 5)
    d = run(event("customer.subscription.deleted", sub, created=T0 + 5, shape=shape),
            context(subs=[sub], invoices=[inv]))
    assert values(d, "LostChurn_Recovery__c")["Status__c"] == "Exhausted"
