"""The conflict rules: one function, table tests and properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lc_console.sync.conflicts import decide, decide_record, fields_to_write, same_value
from lc_console.sync.model import IdKey, Ref

MISSING = object()

# (policy, desired, current, last_written) -> (write, rule)
TABLE = [
    ("lostchurn_wins", "Red", "Green", "Green", True, "lostchurn_wins"),
    ("lostchurn_wins", "Red", "Yellow", "Green", True, "lostchurn_wins"),  # edit overwritten
    ("lostchurn_wins", "Red", "Red", "Green", False, "unchanged"),
    ("salesforce_wins", "Closed Won", "Prospecting", "Prospecting", True, "salesforce_wins"),
    ("salesforce_wins", "Closed Won", "Closed Lost", "Prospecting", False, "salesforce_wins"),
    ("salesforce_wins", "Closed Won", None, "Prospecting", True, "salesforce_wins"),
    ("salesforce_wins", "Closed Won", "Qualification", MISSING, False, "salesforce_wins"),
    ("salesforce_wins", "Closed Won", "", MISSING, True, "salesforce_wins"),
    ("fill_if_empty", "Jane", None, MISSING, True, "fill_if_empty"),
    ("fill_if_empty", "Jane", "", "Jane", True, "fill_if_empty"),
    ("fill_if_empty", "Jane", "Janet", "Jane", False, "fill_if_empty"),
    ("fill_if_empty", "Jane", "jane", MISSING, False, "fill_if_empty"),
    ("key", "in_1", "in_2", MISSING, True, "key"),
]


@pytest.mark.parametrize(("policy", "desired", "current", "last", "write", "rule"), TABLE)
def test_policy_table(policy, desired, current, last, write, rule):
    last_written = {} if last is MISSING else {"F": last}
    (decision,) = decide({"F": desired}, {"F": current}, last_written, {"F": policy})
    assert (decision.write, decision.rule) == (write, rule)
    assert decision.reason


def test_new_record_writes_everything():
    decisions = decide({"A": 1, "B": "x"}, None, {}, {"A": "salesforce_wins",
                                                      "B": "fill_if_empty"})
    assert [(d.field, d.write, d.rule) for d in decisions] == [
        ("A", True, "create"), ("B", True, "create")]


def test_reason_names_the_last_written_value():
    (d,) = decide({"StageName": "Closed Won"}, {"StageName": "Closed Lost"},
                  {"StageName": "Prospecting"}, {"StageName": "salesforce_wins"})
    assert "edited in Salesforce since the last sync" in d.reason and "Prospecting" in d.reason


@pytest.mark.parametrize(("a", "b", "same"), [
    (Decimal("20.00"), 20.0, True),
    (Decimal("20.00"), "20", True),
    (5, 5.0, True),
    (Decimal("20.01"), 20.0, False),
    (dt.date(2026, 5, 28), "2026-05-28", True),
    (dt.datetime(2026, 5, 28, 20, 26, 40, tzinfo=dt.UTC), "2026-05-28T20:26:40.000+0000", True),
    (dt.datetime(2026, 5, 28, 20, 26, 40, tzinfo=dt.UTC), "2026-05-28T22:26:40.000+02:00", True),
    ("001000000000001AAA", "001000000000001", True),
    (Ref("Account", IdKey("001000000000001AAA")), "001000000000001", True),
    (None, "", True),
    (True, True, True),
    (False, None, False),
    ("Jane", "jane", False),
])
def test_same_value_as_salesforce_stores_it(a, b, same):
    assert same_value(a, b) is same


POLICIES = st.sampled_from(["lostchurn_wins", "salesforce_wins", "fill_if_empty"])
VALUES = st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5),
                   st.decimals(min_value=-100, max_value=100, places=2))
FIELDS = st.sampled_from(["A", "B", "C", "D"])


@given(st.dictionaries(FIELDS, VALUES, min_size=1), st.dictionaries(FIELDS, VALUES),
       st.dictionaries(FIELDS, VALUES), st.dictionaries(FIELDS, POLICIES))
def test_writing_the_decision_then_deciding_again_writes_nothing(desired, current, last,
                                                                 policies):
    """No edit loops: once the decided fields are written, the next run is a no-op."""
    write = fields_to_write(desired, current, last, policies)
    after = {**current, **write}
    written = {**last, **write}
    assert fields_to_write(desired, after, written, policies) == {}


@given(st.dictionaries(FIELDS, VALUES, min_size=1), st.dictionaries(FIELDS, VALUES),
       st.dictionaries(FIELDS, VALUES), st.dictionaries(FIELDS, POLICIES))
def test_policies_hold(desired, current, last, policies):
    for d in decide(desired, current, last, policies):
        policy = policies.get(d.field, "lostchurn_wins")
        cur = current.get(d.field)
        if same_value(desired[d.field], cur):
            assert not d.write  # skip-unchanged
        elif policy == "lostchurn_wins":
            assert d.write
        elif policy == "fill_if_empty":
            assert d.write == (cur is None or (isinstance(cur, str) and not cur.strip()))
        else:  # salesforce_wins: a person's edit (current differs from last written) stays
            edited = d.field not in last or not same_value(cur, last[d.field])
            empty = cur is None or (isinstance(cur, str) and not cur.strip())
            assert d.write == (empty or not edited)


@given(st.dictionaries(FIELDS, VALUES, min_size=1), st.dictionaries(FIELDS, POLICIES))
def test_new_records_write_every_field(desired, policies):
    assert fields_to_write(desired, None, {}, policies) == desired


def test_decide_record_names_the_mapping_for_the_dry_run():
    from test_rules_support import context, customer, event, run

    d = run(event("customer.updated", customer()), context())
    contact = d.record("Contact")
    current = {"Email": "jane.doe@acme.com", "FirstName": "J.", "LastName": "Doe",
               "AccountId": None, "LostChurn_ID__c": None, "LostChurn_MRR__c": 0,
               "LostChurn_Recovery_Count__c": 0, "LostChurn_Churn_Risk__c": 0}
    by_field = {x.field: x for x in decide_record(contact, current, {})}
    assert by_field["FirstName"].source == "contact.first_name"
    assert (by_field["FirstName"].write, by_field["FirstName"].rule) == (False, "fill_if_empty")
    assert by_field["Email"].rule == "unchanged"
    assert by_field["LostChurn_ID__c"].write and by_field["AccountId"].write
