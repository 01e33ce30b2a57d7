"""Find the Salesforce Contact and Account of a Stripe customer among bulk-fetched candidates.

The engine queries candidates in bulk per batch (`lookup_keys` says what to ask for) and
passes them as plain dicts with Salesforce field names:

    Contact: Id, Email, CreatedDate, AccountId, LostChurn_ID__c, FirstName, LastName
    Account: Id, Name, Website, CreatedDate, OwnerId, LostChurn_Stripe_Customer_ID__c,
             LostChurn_Payment_Health__c, LostChurn_Churn_Risk_Flag__c

Records the batch is about to create are candidates too (`planned_contact` /
`planned_account`, see `derive.SalesforceContext.with_planned`): they have no Id, only the
external key they will be upserted by, so two customers of one new domain share one Account.

Rules:
- Contact: the Contact already linked to the customer (`LostChurn_ID__c`, unique; its email
  may have changed in Stripe); else Email equal, case-insensitively, several -> the first by
  CreatedDate, then Id (what Salesforce admins are told). Else create, upserting by
  `LostChurn_ID__c` = customer id.
- Account: by `LostChurn_Stripe_Customer_ID__c`; then the Id in the customer's
  `metadata.salesforce_account_id` (15 or 18 characters); then the email domain against the
  Website host (scheme, port, path and a leading `www.` dropped, case-insensitive); then
  Name equal to the domain (case-insensitive). Several -> first by CreatedDate, then Id.
  Else create with Name and Website = domain.
- Free-mail domains (settings) never match or create a domain Account: the customer gets an
  Account of their own named after them (name, else email, else customer id), found again by
  `LostChurn_Stripe_Customer_ID__c`.
- A customer without an email gets no Contact (nothing to match on) and an Account of their
  own, as for free mail.
- Ownership (decision): a matched record "belongs" to the customer whose id is in its
  LostChurn id field; an empty field is claimed by the customer that matches it. Only the
  owner writes the record's billing fields, so two Stripe customers sharing one Contact
  (same email) or one Account (same domain) never overwrite each other in turns; the others
  still point their Contacts, recoveries, opportunities and Tasks at it.
- Keys: a record the customer owns is addressed by its external id (stable from creation
  on, so the engine's store sees one identity), another matched record by its Id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lc_console.sync.model import ExternalKey, IdKey, RecordKey, Ref

CONTACT_KEY_FIELD = "LostChurn_ID__c"
ACCOUNT_KEY_FIELD = "LostChurn_Stripe_Customer_ID__c"
PLANNED = "_planned_key"  # candidate dict key holding the ExternalKey of a planned record

Candidate = Mapping[str, Any]


def normalise_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.strip().lower()


def email_domain(email: str | None) -> str | None:
    norm = normalise_email(email)
    if not norm:
        return None
    domain = norm.rsplit("@", 1)[1].strip().rstrip(".")
    return domain or None


def normalise_host(website: str | None) -> str | None:
    """'https://www.Acme.com:443/about' -> 'acme.com'."""
    if not website or not website.strip():
        return None
    text = website.strip()
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return host or None


def is_free_mail(domain: str | None, free_mail_domains: Iterable[str]) -> bool:
    return bool(domain) and domain in {d.strip().lower() for d in free_mail_domains}


def same_id(a: str | None, b: str | None) -> bool:
    """Salesforce ids compare on their case-sensitive 15-character form."""
    if not a or not b:
        return False
    return a.strip()[:15] == b.strip()[:15]


def _order(candidate: Candidate) -> tuple[int, str, str]:
    # Existing records first (by CreatedDate, then Id); planned ones after, by key.
    if candidate.get("Id"):
        return (0, str(candidate.get("CreatedDate") or ""), str(candidate["Id"]))
    return (1, "", str(candidate.get(PLANNED, "")))


def _first(candidates: Iterable[Candidate]) -> Candidate | None:
    found = sorted(candidates, key=_order)
    return found[0] if found else None


def key_of(candidate: Candidate) -> RecordKey:
    if candidate.get("Id"):
        return IdKey(str(candidate["Id"]))
    planned = candidate.get(PLANNED)
    if isinstance(planned, ExternalKey):
        return planned
    raise ValueError("a candidate needs an Id or a planned external key")


def stable_key(candidate: Candidate, field: str, customer_id: str) -> RecordKey:
    """A record this customer already owns is addressed by its external id, which stays the
    same from its creation on; other matched records by Id."""
    if candidate.get(field) == customer_id:
        return ExternalKey(field, customer_id)
    return key_of(candidate)


def _owned(candidate: Candidate | None, field: str, customer_id: str) -> bool:
    if candidate is None:
        return True
    holder = candidate.get(field)
    return not holder or holder == customer_id


# --- Contact ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactMatch:
    how: str  # "email" | "customer_id" | "create"
    key: RecordKey
    record: Candidate | None
    owned: bool

    @property
    def created(self) -> bool:
        return self.record is None

    def ref(self) -> Ref:
        return Ref("Contact", self.key)


def match_contact(email: str | None, customer_id: str,
                  contacts: Sequence[Candidate]) -> ContactMatch | None:
    """The customer's Contact, or how to create it; None without a usable email."""
    norm = normalise_email(email)
    if not norm:
        return None
    # The Contact already linked to this customer comes first: LostChurn_ID__c is unique,
    # so claiming another Contact of the same email would be rejected as a duplicate.
    found = _first(c for c in contacts if c.get(CONTACT_KEY_FIELD) == customer_id)
    how = "customer_id"
    if found is None:
        found = _first(c for c in contacts if normalise_email(c.get("Email")) == norm)
        how = "email"
    if found is None:
        return ContactMatch("create", ExternalKey(CONTACT_KEY_FIELD, customer_id), None, True)
    return ContactMatch(how, stable_key(found, CONTACT_KEY_FIELD, customer_id), found,
                        _owned(found, CONTACT_KEY_FIELD, customer_id))


def split_name(name: str | None, email: str | None) -> tuple[str | None, str]:
    """(FirstName, LastName): last word is the last name; no name -> the email's local part.

    Salesforce requires LastName (80 characters) and allows FirstName up to 40.
    """
    words = (name or "").split()
    if not words:
        local = (normalise_email(email) or "").split("@", 1)[0]
        return None, (local or "Unknown")[:80]
    if len(words) == 1:
        return None, words[0][:80]
    return " ".join(words[:-1])[:40], words[-1][:80]


# --- Account ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountMatch:
    how: str  # customer_id | metadata | website | name | create_domain | create_personal
    key: RecordKey
    record: Candidate | None
    owned: bool
    name: str  # the Account's Name (existing, or the one it is created with)
    domain: str | None  # the company domain, None for personal accounts
    website: str | None = None  # Website to create with

    @property
    def created(self) -> bool:
        return self.record is None

    def ref(self) -> Ref:
        return Ref("Account", self.key)


def personal_account_name(name: str | None, email: str | None, customer_id: str) -> str:
    return ((name or "").strip() or (email or "").strip() or customer_id)[:255]


def match_account(customer: Mapping[str, Any], accounts: Sequence[Candidate],
                  free_mail_domains: Iterable[str], *, email: str | None = None,
                  name: str | None = None) -> AccountMatch:
    customer_id = str(customer.get("id"))
    email = email if email is not None else customer.get("email")
    name = name if name is not None else customer.get("name")

    def found(how: str, cand: Candidate, domain: str | None) -> AccountMatch:
        return AccountMatch(how, stable_key(cand, ACCOUNT_KEY_FIELD, customer_id), cand,
                            _owned(cand, ACCOUNT_KEY_FIELD, customer_id),
                            str(cand.get("Name") or domain or customer_id), domain)

    domain = email_domain(email)
    company = domain if domain and not is_free_mail(domain, free_mail_domains) else None

    by_customer = _first(a for a in accounts if a.get(ACCOUNT_KEY_FIELD) == customer_id)
    if by_customer is not None:
        return found("customer_id", by_customer, company)
    wanted = ((customer.get("metadata") or {}).get("salesforce_account_id") or "").strip()
    if wanted:
        by_meta = _first(a for a in accounts if same_id(a.get("Id"), wanted))
        if by_meta is not None:
            return found("metadata", by_meta, company)
    if company:
        by_site = _first(a for a in accounts if normalise_host(a.get("Website")) == company)
        if by_site is not None:
            return found("website", by_site, company)
        by_name = _first(a for a in accounts
                         if str(a.get("Name") or "").strip().lower() == company)
        if by_name is not None:
            return found("name", by_name, company)
        return AccountMatch("create_domain", ExternalKey(ACCOUNT_KEY_FIELD, customer_id), None,
                            True, company[:255], company, company)
    return AccountMatch("create_personal", ExternalKey(ACCOUNT_KEY_FIELD, customer_id), None,
                        True, personal_account_name(name, email, customer_id), None, None)


# --- what the engine should fetch ---------------------------------------------------------


@dataclass(frozen=True)
class LookupKeys:
    """Values for the engine's bulk `IN (...)` / `LIKE` queries of one batch."""

    emails: frozenset[str]  # Contact.Email (SOQL = is case-insensitive)
    customer_ids: frozenset[str]  # Contact.LostChurn_ID__c, Account.LostChurn_Stripe_Customer_ID__c
    account_ids: frozenset[str]  # Account.Id from metadata.salesforce_account_id
    domains: frozenset[str]  # Account.Name IN (...) and Website LIKE '%domain%'


_SAFE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def lookup_keys(customers: Iterable[Mapping[str, Any]],
                free_mail_domains: Iterable[str]) -> LookupKeys:
    free = list(free_mail_domains)
    emails, ids, account_ids, domains = set(), set(), set(), set()
    for customer in customers:
        if customer.get("id"):
            ids.add(str(customer["id"]))
        email = normalise_email(customer.get("email"))
        if email:
            emails.add(email)
            domain = email_domain(email)
            if domain and not is_free_mail(domain, free):
                domains.add(domain)
        wanted = ((customer.get("metadata") or {}).get("salesforce_account_id") or "").strip()
        if _SAFE_ID.match(wanted):
            account_ids.add(wanted)
    return LookupKeys(frozenset(emails), frozenset(ids), frozenset(account_ids),
                      frozenset(domains))


def website_like_pattern(domain: str) -> str:
    """A SOQL LIKE pattern that finds every Website whose host may be `domain`."""
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
