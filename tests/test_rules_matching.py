"""Contact and Account matching over candidates the engine fetched in bulk."""

from __future__ import annotations

import pytest
from test_rules_support import (
    SHAPES,
    context,
    customer,
    event,
    invoice,
    run,
    sf_account,
    sf_contact,
    subscription,
    values,
)

from lc_console.settings import DEFAULT_FREE_MAIL_DOMAINS
from lc_console.sync import matching as m
from lc_console.sync.derive import SalesforceContext
from lc_console.sync.model import ExternalKey, IdKey, Ref

FREE = DEFAULT_FREE_MAIL_DOMAINS


@pytest.mark.parametrize(("website", "host"), [
    ("https://www.Acme.com/about", "acme.com"),
    ("http://acme.com:8080", "acme.com"),
    ("www.acme.com", "acme.com"),
    ("ACME.COM.", "acme.com"),
    ("acme.com/path?q=1", "acme.com"),
    ("https://shop.acme.com", "shop.acme.com"),  # only www. is dropped
    ("", None),
    (None, None),
])
def test_normalise_host(website, host):
    assert m.normalise_host(website) == host


def test_contact_by_email_case_insensitive_first_by_created_date_then_id():
    contacts = [
        sf_contact("003B", "JANE.DOE@ACME.COM", "2024-02-01T00:00:00.000+0000"),
        sf_contact("003C", "jane.doe@acme.com", "2024-01-01T00:00:00.000+0000"),
        sf_contact("003A", "Jane.Doe@acme.com", "2024-01-01T00:00:00.000+0000"),
        sf_contact("003D", "someone@acme.com", "2020-01-01T00:00:00.000+0000"),
    ]
    found = m.match_contact("Jane.Doe@Acme.com", "cus_A", contacts)
    assert (found.how, found.key, found.owned) == ("email", IdKey("003A"), True)


def test_contact_already_linked_to_customer_wins_and_is_addressed_by_external_id():
    contacts = [sf_contact("003A", "jane.doe@acme.com"),
                sf_contact("003Z", "old@acme.com", LostChurn_ID__c="cus_A")]
    found = m.match_contact("jane.doe@acme.com", "cus_A", contacts)
    assert (found.how, found.key) == ("customer_id", ExternalKey("LostChurn_ID__c", "cus_A"))


def test_contact_of_another_customer_is_not_owned():
    contacts = [sf_contact("003A", "jane.doe@acme.com", LostChurn_ID__c="cus_OTHER")]
    found = m.match_contact("jane.doe@acme.com", "cus_A", contacts)
    assert found.key == IdKey("003A") and not found.owned


def test_contact_created_when_none_and_none_without_email():
    found = m.match_contact("new@acme.com", "cus_A", [sf_contact()])
    assert (found.how, found.key, found.created) == (
        "create", ExternalKey("LostChurn_ID__c", "cus_A"), True)
    assert m.match_contact(None, "cus_A", []) is None
    assert m.match_contact("not-an-email", "cus_A", []) is None


@pytest.mark.parametrize(("name", "email", "first", "last"), [
    ("Jane Doe", "j@acme.com", "Jane", "Doe"),
    ("Jean-Luc Picard", "j@acme.com", "Jean-Luc", "Picard"),
    ("Mary Ann van der Berg", "m@acme.com", "Mary Ann van der", "Berg"),
    ("Madonna", "m@acme.com", None, "Madonna"),
    (None, "billing.team@acme.com", None, "billing.team"),
    ("   ", "x@acme.com", None, "x"),
    (None, None, None, "Unknown"),
])
def test_split_name(name, email, first, last):
    assert m.split_name(name, email) == (first, last)


ACCOUNTS = [
    sf_account("001W", "Acme Inc", "https://www.acme.com", "2023-01-01T00:00:00.000+0000"),
    sf_account("001V", "Acme Old", "acme.com", "2022-01-01T00:00:00.000+0000"),
    sf_account("001N", "globex.io", None, "2021-01-01T00:00:00.000+0000"),
    sf_account("001M", "Meta Linked", None, "2021-01-01T00:00:00.000+0000",
               Id="001M00000000001AAA"),
    sf_account("001C", "Linked", None, LostChurn_Stripe_Customer_ID__c="cus_LINKED"),
]


@pytest.mark.parametrize(("cid", "email", "metadata", "how", "key", "name"), [
    ("cus_LINKED", "x@acme.com", {}, "customer_id",
     ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_LINKED"), "Linked"),
    ("cus_A", "x@acme.com", {"salesforce_account_id": "001M00000000001"}, "metadata",
     IdKey("001M00000000001AAA"), "Meta Linked"),
    ("cus_A", "x@ACME.com", {}, "website", IdKey("001V"), "Acme Old"),  # oldest first
    ("cus_A", "x@globex.io", {}, "name", IdKey("001N"), "globex.io"),
    ("cus_A", "x@initech.com", {}, "create_domain",
     ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_A"), "initech.com"),
    ("cus_A", "jane@gmail.com", {}, "create_personal",
     ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_A"), "Jane Doe"),
])
def test_account_matching_order(cid, email, metadata, how, key, name):
    cust = customer(cid, email=email, metadata=metadata)
    found = m.match_account(cust, ACCOUNTS, FREE)
    assert (found.how, found.key, found.name) == (how, key, name)


def test_free_mail_never_matches_a_domain_account():
    accounts = [sf_account("001G", "gmail.com", "https://gmail.com")]
    found = m.match_account(customer(email="jane@gmail.com", name=None), accounts, FREE)
    assert found.how == "create_personal"
    assert found.name == "jane@gmail.com"  # no name: named after the email
    assert found.website is None


def test_free_mail_list_is_a_setting():
    cust = customer(email="jane@corp-mail.example")
    assert m.match_account(cust, [], FREE).how == "create_domain"
    assert m.match_account(cust, [], ["corp-mail.example"]).how == "create_personal"


def test_account_of_another_customer_is_matched_but_not_owned():
    accounts = [sf_account("001W", "Acme", "acme.com", LostChurn_Stripe_Customer_ID__c="cus_B")]
    found = m.match_account(customer("cus_A", email="x@acme.com"), accounts, FREE)
    assert found.how == "website" and found.key == IdKey("001W") and not found.owned


def test_customer_without_email_gets_a_personal_account():
    found = m.match_account(customer(email=None, name="Solo Trader"), [], FREE)
    assert (found.how, found.name) == ("create_personal", "Solo Trader")


def test_lookup_keys_for_bulk_queries():
    keys = m.lookup_keys([customer("cus_1", "A@Acme.com", metadata={
        "salesforce_account_id": "001000000000001"}), customer("cus_2", "b@gmail.com"),
        customer("cus_3", None)], FREE)
    assert keys.emails == {"a@acme.com", "b@gmail.com"}
    assert keys.customer_ids == {"cus_1", "cus_2", "cus_3"}
    assert keys.domains == {"acme.com"}
    assert keys.account_ids == {"001000000000001"}
    assert m.website_like_pattern("my_co.com") == "%my\\_co.com%"


@pytest.mark.parametrize("shape", SHAPES)
def test_derived_contact_fields_on_create(shape):
    inv = invoice(shape)
    d = run(event("invoice.payment_failed", inv, shape=shape),
            context(subs=[subscription(shape)], invoices=[inv]))
    contact = d.record("Contact")
    assert contact.key == ExternalKey("LostChurn_ID__c", "cus_A")
    v = contact.values()
    assert (v["FirstName"], v["LastName"], v["Email"]) == ("Jane", "Doe", "jane.doe@acme.com")
    assert v["AccountId"] == Ref("Account", ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_A"))
    assert v["LostChurn_ID__c"] == "cus_A"
    assert contact.fields["Email"].policy == "fill_if_empty"
    account = values(d, "Account")
    assert (account["Name"], account["Website"]) == ("acme.com", "acme.com")


def test_matched_account_is_not_renamed():
    inv = invoice("current")
    d = run(event("invoice.payment_failed", inv),
            context(subs=[subscription()], invoices=[inv],
                    accounts=[sf_account("001W", "Acme Inc", "https://www.acme.com")]))
    account = d.record("Account")
    assert account.key == IdKey("001W")
    assert "Name" not in account.fields and "Website" not in account.fields
    assert account.values()["LostChurn_Stripe_Customer_ID__c"] == "cus_A"  # claimed


def test_two_customers_of_a_new_domain_share_one_planned_account():
    inv_a = invoice("current", iid="in_A", cid="cus_A", email="a@newco.com")
    inv_b = invoice("current", iid="in_B", cid="cus_B", email="b@newco.com")
    ctx_a = context(cust=customer("cus_A", "a@newco.com", "Ann A"), invoices=[inv_a])
    d_a = run(event("invoice.payment_failed", inv_a, eid="evt_a"), ctx_a)
    planned = SalesforceContext().with_planned(d_a)
    ctx_b = context(cust=customer("cus_B", "b@newco.com", "Bob B"), invoices=[inv_b],
                    accounts=list(planned.accounts), contacts=list(planned.contacts))
    d_b = run(event("invoice.payment_failed", inv_b, eid="evt_b"), ctx_b)
    shared = ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_A")
    assert d_a.record("Account").key == shared
    assert d_b.record("Account") is None  # owned by cus_A: B leaves its billing fields alone
    assert values(d_b, "Contact")["AccountId"] == Ref("Account", shared)
    assert values(d_b, "Opportunity")["AccountId"] == Ref("Account", shared)


def test_same_email_two_customers_one_contact():
    inv_a = invoice("current", iid="in_A", cid="cus_A")
    d_a = run(event("invoice.payment_failed", inv_a, eid="evt_a"),
              context(cust=customer("cus_A"), invoices=[inv_a]))
    planned = SalesforceContext().with_planned(d_a)
    inv_b = invoice("current", iid="in_B", cid="cus_B")
    d_b = run(event("invoice.payment_failed", inv_b, eid="evt_b"),
              context(cust=customer("cus_B"), invoices=[inv_b],
                      contacts=list(planned.contacts), accounts=list(planned.accounts)))
    assert d_b.record("Contact") is None
    assert values(d_b, "LostChurn_Recovery__c")["Contact__c"] == Ref(
        "Contact", ExternalKey("LostChurn_ID__c", "cus_A"))
