"""8 threads upserting into the same object for 10 seconds leave a consistent org: one record
per external id, creates counted once, API usage equal to the requests made."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from lc_console.sandbox.salesforce import schema as sch

THREADS = 8
SECONDS = 10.0
KEYS = 400  # small key space: threads collide on the same external ids all the time


def sf_client(sb: Any, token: str) -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False
    return Salesforce(instance_url=sb.url, session_id=token, version="62.0", session=session)


@pytest.mark.slow
def test_parallel_upserts_leave_a_consistent_org(salesforce_sandbox) -> None:
    org = salesforce_sandbox.org
    org.upsert_field("Contact", sch.FieldDef("LC_Id__c", "string", length=80, external_id=True,
                                             unique=True, custom=True))  # fmt: skip
    org.upsert_field("Contact", sch.FieldDef("LC_Writer__c", "double", precision=18, scale=0, custom=True))
    org.upsert_permission_set(sch.PermissionSetDef("LC", "LC", field_permissions={
        "Contact.LC_Id__c": sch.FieldPermission(True, True),
        "Contact.LC_Writer__c": sch.FieldPermission(True, True)}))  # fmt: skip
    org.assign_permission_set(org.admin_id, "LC")
    token = salesforce_sandbox.login()
    before = salesforce_sandbox.usage()
    deadline = time.monotonic() + SECONDS
    lock = threading.Lock()
    created: Counter[str] = Counter()
    requests_made = [0]
    errors: list[str] = []

    def worker(n: int) -> None:
        sf = sf_client(salesforce_sandbox, token)
        rng = random.Random(n)
        made = 0
        try:
            while time.monotonic() < deadline:
                if rng.random() < 0.8:
                    key = f"K{rng.randrange(KEYS)}"
                    r = sf.Contact.upsert(f"LC_Id__c/{key}", {"LastName": f"w{n}", "LC_Writer__c": n},
                                          raw_response=True)  # fmt: skip
                    made += 1
                    body = r.json()
                    with lock:
                        if body["created"]:
                            created[key] += 1
                else:
                    keys = rng.sample(range(KEYS), 50)
                    out = sf.restful("composite/sobjects/Contact/LC_Id__c", method="PATCH", json={
                        "allOrNone": False, "records": [
                            {"attributes": {"type": "Contact"}, "LC_Id__c": f"K{k}", "LastName": f"c{n}",
                             "LC_Writer__c": n} for k in keys]})  # fmt: skip
                    made += 1
                    with lock:
                        for k, item in zip(keys, out, strict=True):
                            if not item["success"]:
                                errors.append(str(item))
                            elif item["created"]:
                                created[f"K{k}"] += 1
        except Exception as exc:  # surfaced by the assertion below
            errors.append(repr(exc))
        with lock:
            requests_made[0] += made

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    records = salesforce_sandbox.records("Contact")
    ext_ids = [r["LC_Id__c"] for r in records]
    assert len(ext_ids) == len(set(ext_ids)), "duplicate external ids"
    assert set(ext_ids) == set(created), "a record exists for exactly the keys reported created"
    assert all(c == 1 for c in created.values()), "each key created once"
    assert salesforce_sandbox.usage() - before == requests_made[0]
    assert requests_made[0] > THREADS * 20  # the threads really ran in parallel for the duration
    # every record's fields come from one coherent write (LastName and writer agree)
    for r in records:
        assert r["LastName"][1:] == str(int(r["LC_Writer__c"]))
