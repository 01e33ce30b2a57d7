"""Stripe decline codes -> what a RevOps team should do about them.

The decline code of a failed payment is the issuer's `decline_code` when present (on the
payment intent's `last_payment_error.decline_code`, or the charge's `outcome.reason` when
`outcome.type` is `issuer_declined`), else the charge's `failure_code` (`card_declined`,
`expired_card`, ...), else the payment intent error's `code`.

Categories (the four the CRM shows):

soft         temporary: retrying later (Smart Retries) can succeed; no action needed yet.
hard         the issuer refuses this card for this kind of payment; retries will not help,
             the customer must use another payment method.
card-update  the card details are wrong, outdated or need the cardholder (expired, wrong
             number/CVC/ZIP, authentication required): ask the customer to update them.
fraud        lost, stolen, flagged as fraudulent or blocked by risk rules: do not retry, do
             not send a normal dunning email; review the account.

Table (codes from docs.stripe.com/declines/codes and the charge failure codes):

| category | codes |
|---|---|
| soft | approve_with_id, card_velocity_exceeded, generic_decline, card_declined, do_not_honor, insufficient_funds, issuer_not_available, processing_error, reenter_transaction, try_again_later, withdrawal_count_limit_exceeded, no_action_taken, call_issuer, offline_pin_required, online_or_offline_pin_required, testmode_decline, balance_insufficient, debit_not_authorized (bank debits: retry after the customer acts) |
| hard | card_not_supported, currency_not_supported, do_not_try_again, duplicate_transaction, invalid_account, invalid_amount, not_permitted, restricted_card, revocation_of_all_authorizations, revocation_of_authorization, security_violation, service_not_allowed, stop_payment_order, transaction_not_allowed, pin_try_exceeded, account_closed, no_account, bank_account_restricted, account_frozen |
| card-update | expired_card, incorrect_number, invalid_number, incorrect_cvc, invalid_cvc, invalid_expiry_month, invalid_expiry_year, invalid_expiry_date, incorrect_zip, incorrect_address, incorrect_pin, invalid_pin, new_account_information_available, authentication_required, card_not_activated, bank_account_unusable, payment_method_not_available, payment_intent_authentication_failure |
| fraud | fraudulent, lost_card, stolen_card, pickup_card, merchant_blacklist, highest_risk_level, elevated_risk_level, blocked (Radar `outcome.type`) |

Decisions: `do_not_honor` and `generic_decline` are soft (issuers use them for many
temporary reasons and Stripe's Smart Retries keep retrying them); `call_issuer` is soft
(the cardholder calls the bank, then a retry succeeds); `authentication_required` is
card-update because only the cardholder can fix it; an unknown or missing code is soft,
since Stripe keeps retrying such failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SOFT, HARD, CARD_UPDATE, FRAUD = "soft", "hard", "card-update", "fraud"
CATEGORIES = (SOFT, HARD, CARD_UPDATE, FRAUD)

TABLE: dict[str, str] = {}
for _category, _codes in (
    (SOFT, """approve_with_id card_velocity_exceeded generic_decline card_declined do_not_honor
        insufficient_funds issuer_not_available processing_error reenter_transaction
        try_again_later withdrawal_count_limit_exceeded no_action_taken call_issuer
        offline_pin_required online_or_offline_pin_required testmode_decline
        balance_insufficient debit_not_authorized"""),
    (HARD, """card_not_supported currency_not_supported do_not_try_again duplicate_transaction
        invalid_account invalid_amount not_permitted restricted_card
        revocation_of_all_authorizations revocation_of_authorization security_violation
        service_not_allowed stop_payment_order transaction_not_allowed pin_try_exceeded
        account_closed no_account bank_account_restricted account_frozen"""),
    (CARD_UPDATE, """expired_card incorrect_number invalid_number incorrect_cvc invalid_cvc
        invalid_expiry_month invalid_expiry_year invalid_expiry_date incorrect_zip
        incorrect_address incorrect_pin invalid_pin new_account_information_available
        authentication_required card_not_activated bank_account_unusable
        payment_method_not_available payment_intent_authentication_failure"""),
    (FRAUD, """fraudulent lost_card stolen_card pickup_card merchant_blacklist
        highest_risk_level elevated_risk_level blocked"""),
):
    for _code in _codes.split():
        TABLE[_code] = _category


def categorize(code: str | None) -> str:
    """Category of a decline code; unknown or missing codes are soft (see module doc)."""
    if not code:
        return SOFT
    return TABLE.get(code.strip().lower(), SOFT)


def decline_code(charge: Mapping[str, Any] | None,
                 payment_intent: Mapping[str, Any] | None = None) -> str | None:
    """Issuer decline code when present, else the charge's failure code."""
    error = (payment_intent or {}).get("last_payment_error") or {}
    if error.get("decline_code"):
        return str(error["decline_code"])
    charge = charge or {}
    outcome = charge.get("outcome") or {}
    if outcome.get("type") == "issuer_declined" and outcome.get("reason"):
        return str(outcome["reason"])
    if outcome.get("type") == "blocked":
        # Radar blocked the payment: the reason names a risk level, or "rule".
        reason = str(outcome.get("reason") or "")
        return reason if TABLE.get(reason) == FRAUD else "blocked"
    if charge.get("failure_code"):
        return str(charge["failure_code"])
    if error.get("code"):
        return str(error["code"])
    return None
