"""Objects as JSON-ready dicts in a given API version, rendered lazily from the ledger.

Each `_<kind>` function builds the current shape (2026 `endive`, the field sets of Stripe's
2026 fixtures and stripe-python 16's classes). `legacy.downgrade` then walks an object back
across the breaking changes the console can see, for versions before basil, clover or
2022-11-15. Additive fields stay in old versions, as on Stripe.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from . import legacy
from .ledger import Ledger
from .model import (
    Card,
    Charge,
    Coupon,
    Customer,
    Discount,
    Event,
    Invoice,
    InvoicePayment,
    Line,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Subscription,
)
from .simulation import invoice_prefix
from .versions import CLOVER, at_least

ACCOUNT_NAME = "Lighthouse Cloud"
ACCOUNT_EMAIL = "billing@lighthouse-cloud.example"
STATEMENT_DESCRIPTOR = "LIGHTHOUSE CLOUD"

NULL_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None,
                "postal_code": None, "state": None}


class Renderer:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.acct = ledger.codec.account_id
        self.mode = "live" if ledger.livemode else "test"
        # Redemptions per coupon, counted incrementally as discounts are added (the list only
        # grows): counting per render scanned every discount for each expanded coupon.
        self._redeemed: dict[int, int] = {}
        self._redeemed_upto = 0

    def id(self, kind: str, n: int) -> str:
        return self.ledger.codec.make(kind, n)

    def _token(self, text: str) -> str:
        raw = f"{self.acct}_{text}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # -- dispatch ------------------------------------------------------------------------
    def render(self, kind: str, obj: Any, version: str, st: Any = None,
               includes: frozenset[str] = frozenset()) -> dict[str, Any]:
        st = obj.st if st is None else st
        out = getattr(self, "_" + kind)(obj, st, includes, version)
        return legacy.downgrade(kind, out, version, self, obj, st)

    def event(self, ev: Event) -> dict[str, Any]:
        kind = _kind_of_event_object(ev)
        data: dict[str, Any] = {"object": self.render(kind, ev.obj, ev.version, ev.st)}
        if ev.prev is not None:
            before = self.render(kind, ev.obj, ev.version, ev.prev)
            data["previous_attributes"] = previous_attributes(before, data["object"])
        request = {"id": self.id("request", ev.req) if ev.req is not None else None,
                   "idempotency_key": (str(uuid.UUID(int=ev.idem, version=4))
                                       if ev.idem is not None else None)}
        return {
            "id": self.id("event", ev.n),
            "object": "event",
            "api_version": ev.version,
            "created": ev.created,
            "data": data,
            "livemode": self.ledger.livemode,
            "pending_webhooks": 0,
            "request": request,
            "type": ev.type,
        }

    # -- account ----------------------------------------------------------------------------
    def account(self) -> dict[str, Any]:
        requirements = {"alternatives": [], "current_deadline": None, "currently_due": [],
                        "disabled_reason": None, "errors": [], "eventually_due": [],
                        "past_due": [], "pending_verification": []}
        return {
            "business_profile": {
                "annual_revenue": None, "estimated_worker_count": None, "mcc": "5734",
                "minority_owned_business_designation": None, "name": ACCOUNT_NAME,
                "product_description": "Cloud analytics software, billed by subscription",
                "support_address": {"city": "San Francisco", "country": "US",
                                    "line1": "500 Howard St", "line2": None,
                                    "postal_code": "94105", "state": "CA"},
                "support_email": "support@lighthouse-cloud.example",
                "support_phone": "+14155550100", "support_url": None,
                "url": "https://lighthouse-cloud.example",
            },
            "business_type": "company",
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True,
            "controller": {"type": "account"},
            "country": "US",
            "created": self.ledger.account_created,
            "default_currency": "usd",
            "details_submitted": True,
            "email": ACCOUNT_EMAIL,
            "external_accounts": {"data": [], "has_more": False, "object": "list",
                                  "url": f"/v1/accounts/{self.acct}/external_accounts"},
            "future_requirements": dict(requirements),
            "id": self.acct,
            "metadata": {},
            "object": "account",
            "payouts_enabled": True,
            "requirements": dict(requirements),
            "settings": {
                "bacs_debit_payments": {"display_name": ACCOUNT_NAME, "service_user_number": None},
                "branding": {"icon": None, "logo": None, "primary_color": "#0b5cad",
                             "secondary_color": None},
                "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
                "card_payments": {"decline_on": {"avs_failure": False, "cvc_failure": True},
                                  "statement_descriptor_prefix": "LIGHTHOUSE",
                                  "statement_descriptor_prefix_kana": None,
                                  "statement_descriptor_prefix_kanji": None},
                "dashboard": {"display_name": ACCOUNT_NAME, "timezone": "America/Los_Angeles"},
                "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": "offer"},
                "payments": {"statement_descriptor": STATEMENT_DESCRIPTOR,
                             "statement_descriptor_kana": None,
                             "statement_descriptor_kanji": None,
                             "statement_descriptor_prefix_kana": None,
                             "statement_descriptor_prefix_kanji": None},
                "payouts": {"debit_negative_balances": True,
                            "schedule": {"delay_days": 2, "interval": "daily"},
                            "statement_descriptor": None},
                "sepa_debit_payments": {},
            },
            "tos_acceptance": {"date": self.ledger.account_created + 600, "ip": "203.0.113.7",
                               "user_agent": "Mozilla/5.0"},
            "type": "standard",
        }

    # -- catalog ----------------------------------------------------------------------------
    def product(self, product: Product) -> dict[str, Any]:
        d = product.defn
        return {
            "id": self.id("product", product.n), "object": "product", "active": True,
            "attributes": [], "created": product.created, "default_price": None,
            "description": d.description, "images": [], "livemode": self.ledger.livemode,
            "marketing_features": [], "metadata": {}, "name": d.name,
            "package_dimensions": None, "shippable": None, "statement_descriptor": None,
            "tax_code": None, "type": "service", "unit_label": d.unit_label,
            "updated": product.created, "url": None,
        }

    def price(self, price: Price) -> dict[str, Any]:
        plan = price.plan
        return {
            "active": True, "billing_scheme": "per_unit", "created": price.created,
            "currency": plan.currency, "custom_unit_amount": None,
            "id": self.id("price", price.n), "livemode": self.ledger.livemode,
            "lookup_key": plan.key, "metadata": {}, "nickname": plan.nickname,
            "object": "price", "product": self.id("product", price.product.n),
            "recurring": {"interval": plan.interval, "interval_count": plan.interval_count,
                          "meter": None, "trial_period_days": None, "usage_type": "licensed"},
            "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
            "type": "recurring", "unit_amount": plan.unit_amount,
            "unit_amount_decimal": str(plan.unit_amount),
        }

    def plan(self, price: Price) -> dict[str, Any]:
        plan = price.plan
        return {
            "active": True, "amount": plan.unit_amount, "amount_decimal": str(plan.unit_amount),
            "billing_scheme": "per_unit", "created": price.created, "currency": plan.currency,
            "id": self.id("price", price.n), "interval": plan.interval,
            "interval_count": plan.interval_count, "livemode": self.ledger.livemode,
            "metadata": {}, "meter": None, "nickname": plan.nickname, "object": "plan",
            "product": self.id("product", price.product.n), "tiers_mode": None,
            "transform_usage": None, "trial_period_days": None, "usage_type": "licensed",
        }

    def coupon(self, coupon: Coupon) -> dict[str, Any]:
        d = coupon.defn
        used = self._times_redeemed(coupon)
        return {
            "id": d.id, "object": "coupon", "amount_off": d.amount_off,
            "created": coupon.created, "currency": d.currency, "duration": d.duration,
            "duration_in_months": d.duration_in_months, "livemode": self.ledger.livemode,
            "max_redemptions": None, "metadata": {}, "name": d.name,
            "percent_off": d.percent_off, "redeem_by": None, "times_redeemed": used,
            "valid": True,
        }

    def _times_redeemed(self, coupon: Coupon) -> int:
        discounts, counts = self.ledger.discounts, self._redeemed
        for disc in discounts[self._redeemed_upto:]:
            counts[id(disc.coupon)] = counts.get(id(disc.coupon), 0) + 1
        self._redeemed_upto = len(discounts)
        return counts.get(id(coupon), 0)

    def discount(self, disc: Discount, version: str) -> dict[str, Any]:
        out = {
            "id": self.id("discount", disc.n), "object": "discount", "checkout_session": None,
            "customer": self.id("customer", disc.customer.n), "customer_account": None,
            "end": disc.end, "invoice": None, "invoice_item": None, "promotion_code": None,
            "source": {"coupon": disc.coupon.defn.id, "type": "coupon"},
            "start": disc.start, "subscription": self.id("subscription", disc.sub.n),
            "subscription_item": None,
        }
        if not at_least(version, CLOVER):
            # Before clover the coupon sat on the discount, always expanded.
            del out["source"]
            out["coupon"] = self.coupon(disc.coupon)
        return out

    def payment_method(self, card: Card, customer: Customer | None) -> dict[str, Any]:
        return {
            "id": self.id("payment_method", card.n), "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {"address": dict(NULL_ADDRESS), "email": None, "name": None,
                                "phone": None, "tax_id": None},
            "card": {
                "brand": card.brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None,
                           "cvc_check": "pass"},
                "country": card.country, "display_brand": card.brand,
                "exp_month": card.exp_month, "exp_year": card.exp_year,
                "fingerprint": card.fingerprint, "funding": card.funding,
                "generated_from": None, "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True}, "wallet": None,
            },
            "created": card.created,
            "customer": self.id("customer", customer.n) if customer else None,
            "livemode": self.ledger.livemode, "metadata": {}, "type": "card",
        }

    # -- customers ----------------------------------------------------------------------------
    def _customer(self, cust: Customer, st: Any, includes: frozenset[str], version: str) -> dict[str, Any]:
        address = dict(NULL_ADDRESS)
        if cust.address:
            line1, city, state, postal = cust.address
            address = {"city": city, "country": cust.country, "line1": line1, "line2": None,
                       "postal_code": postal, "state": state}
        out: dict[str, Any] = {
            "id": self.id("customer", cust.n),
            "object": "customer",
            "address": address if cust.address else None,
            "balance": 0,
            "created": cust.created,
            "currency": st.currency,
            "default_source": None,
            "delinquent": st.delinquent,
            "description": cust.description,
            "discount": None,
            "email": st.email,
            "invoice_prefix": invoice_prefix(self.ledger, cust),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": self.id("payment_method", st.card.n) if st.card else None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": self.ledger.livemode,
            "metadata": dict(cust.metadata),
            "name": st.name,
            "next_invoice_sequence": st.invoice_seq + 1,
            "phone": cust.phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        if "subscriptions" in includes:
            subs = [s for s in cust.subs if s.st.status not in ("canceled", "incomplete_expired")]
            out["subscriptions"] = self.list_object(
                [self.render("subscription", s, version) for s in subs[:10]],
                len(subs) > 10, f"/v1/customers/{out['id']}/subscriptions")
        return out

    # -- subscriptions ------------------------------------------------------------------------
    def _subscription(self, sub: Subscription, st: Any, includes: frozenset[str], version: str) -> dict[str, Any]:
        sid = self.id("subscription", sub.n)
        items = [self._sub_item(item, sid, st) for item in st.items]
        return {
            "id": sid,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": st.anchor,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"type": "classic"},
            "billing_schedules": [],
            "billing_thresholds": None,
            "cancel_at": st.cancel_at,
            "cancel_at_period_end": st.cancel_at_period_end,
            "canceled_at": st.canceled_at,
            "cancellation_details": {"comment": None, "feedback": st.cancel_feedback,
                                     "reason": st.cancel_reason},
            "collection_method": "charge_automatically",
            "created": sub.created,
            "currency": sub.currency,
            "customer": self.id("customer", sub.customer.n),
            "customer_account": None,
            "days_until_due": None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [self.id("discount", st.discount.n)] if st.discount else [],
            "ended_at": st.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": self.list_object(items, False, f"/v1/subscription_items?subscription={sid}"),
            "latest_invoice": self.id("invoice", st.latest_invoice.n) if st.latest_invoice else None,
            "livemode": self.ledger.livemode,
            "managed_payments": {"enabled": False},
            "metadata": {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": sub.created,
            "status": st.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": st.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": st.trial_start,
        }

    def _sub_item(self, item: Any, sid: str, st: Any) -> dict[str, Any]:
        return {
            "id": self.id("subscription_item", item.n),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": item.created,
            "current_period_end": st.period_end,
            "current_period_start": st.period_start,
            "discounts": [],
            "metadata": {},
            "plan": self.plan(item.price),
            "price": self.price(item.price),
            "quantity": item.quantity,
            "subscription": sid,
            "tax_rates": [],
        }

    # -- invoices -------------------------------------------------------------------------------
    def _invoice(self, inv: Invoice, st: Any, includes: frozenset[str], version: str) -> dict[str, Any]:
        iid = self.id("invoice", inv.n)
        cust = inv.customer
        sub = inv.sub
        sid = self.id("subscription", sub.n) if sub else None
        finalized = st.finalized_at is not None
        token = self._token(iid)
        discount_id = self.id("discount", inv.discount.n) if inv.discount else None
        lines = [self._line(line, inv, iid, sid, discount_id) for line in inv.lines]
        remaining = inv.total - st.amount_paid if st.status not in ("void", "paid") else 0
        if st.status == "uncollectible":
            remaining = inv.total - st.amount_paid
        out: dict[str, Any] = {
            "id": iid,
            "object": "invoice",
            "account_country": "US",
            "account_name": ACCOUNT_NAME,
            "account_tax_ids": None,
            "amount_due": inv.total,
            "amount_overpaid": 0,
            "amount_paid": st.amount_paid,
            "amount_remaining": remaining,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": st.attempt_count,
            "attempted": st.attempted,
            "auto_advance": st.auto_advance,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                              "provider": None, "status": None},
            "automatically_finalizes_at": (inv.created + 3600
                                           if st.status == "draft" and st.auto_advance else None),
            "billing_reason": inv.billing_reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": None,
            "created": inv.created,
            "currency": inv.currency,
            "custom_fields": None,
            "customer": self.id("customer", cust.n),
            "customer_account": None,
            "customer_address": _customer_address(cust),
            "customer_email": inv.customer_email,
            "customer_name": inv.customer_name,
            "customer_phone": cust.phone,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [discount_id] if discount_id else [],
            "due_date": None,
            "effective_at": st.finalized_at,
            "ending_balance": 0 if finalized else None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": (f"https://invoice.stripe.com/i/{self.acct}/{self.mode}_{token}"
                                   "?s=ap" if finalized else None),
            "invoice_pdf": (f"https://pay.stripe.com/invoice/{self.acct}/{self.mode}_{token}/pdf"
                            "?s=ap" if finalized else None),
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": self.list_object(lines, False, f"/v1/invoices/{iid}/lines"),
            "livemode": self.ledger.livemode,
            "metadata": {},
            "next_payment_attempt": st.next_payment_attempt,
            "number": (f"{invoice_prefix(self.ledger, cust)}-{st.number:04d}"
                       if st.number is not None else None),
            "on_behalf_of": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sid,
                                         "subscription_proration_date": None},
                "type": "subscription_details",
            } if sub else None,
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "period_end": inv.period_end,
            "period_start": inv.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": st.status,
            "status_transitions": {"finalized_at": st.finalized_at,
                                   "marked_uncollectible_at": st.marked_uncollectible_at,
                                   "paid_at": st.paid_at, "voided_at": st.voided_at},
            "subtotal": inv.subtotal,
            "subtotal_excluding_tax": inv.subtotal,
            "test_clock": None,
            "total": inv.total,
            "total_discount_amounts": ([{"amount": inv.discount_amount, "discount": discount_id}]
                                       if discount_id else []),
            "total_excluding_tax": inv.total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": inv.created + 5 if finalized else None,
        }
        if "payments" in includes:
            payments = [st.payment] if st.payment is not None else []
            out["payments"] = self.list_object(
                [self.render("invoice_payment", p, version) for p in payments],
                False, f"/v1/invoices/{iid}/payments")
        return out

    def _line(self, line: Line, inv: Invoice, iid: str, sid: str | None,
              discount_id: str | None) -> dict[str, Any]:
        price = line.price
        si = self.id("subscription_item", line.sub_item_n) if line.sub_item_n is not None else None
        return {
            "id": self.id("line_item", line.n),
            "object": "line_item",
            "amount": line.amount,
            "currency": inv.currency,
            "description": line.description,
            "discount_amounts": ([{"amount": line.discount_amount, "discount": discount_id}]
                                 if discount_id else []),
            "discountable": True,
            "discounts": [],
            "invoice": iid,
            "livemode": self.ledger.livemode,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None, "proration": line.proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sid, "subscription_item": si,
                },
                "type": "subscription_item_details",
            },
            "period": {"end": line.period_end, "start": line.period_start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": self.id("price", price.n),
                                  "product": self.id("product", price.product.n)},
                "type": "price_details",
                "unit_amount_decimal": str(price.plan.unit_amount),
            },
            "quantity": line.quantity,
            "quantity_decimal": str(line.quantity),
            "subscription": sid,
            "subtotal": line.amount,
            "taxes": [],
        }

    def _invoice_payment(self, pay: InvoicePayment, st: Any, includes: frozenset[str],
                         version: str) -> dict[str, Any]:
        return {
            "id": self.id("invoice_payment", pay.n),
            "object": "invoice_payment",
            "amount_paid": st.amount_paid,
            "amount_requested": pay.pi.amount,
            "created": pay.created,
            "currency": pay.pi.currency,
            "invoice": self.id("invoice", pay.invoice.n),
            "is_default": True,
            "livemode": self.ledger.livemode,
            "payment": {"payment_intent": self.id("payment_intent", pay.pi.n),
                        "type": "payment_intent"},
            "status": st.status,
            "status_transitions": {"canceled_at": st.canceled_at, "paid_at": st.paid_at},
        }

    # -- payments -------------------------------------------------------------------------------
    def _payment_intent(self, pi: PaymentIntent, st: Any, includes: frozenset[str],
                        version: str) -> dict[str, Any]:
        pid = self.id("payment_intent", pi.n)
        error = None
        failed = st.last_error
        if failed is not None and failed.decline is not None:
            error = self.card_error(failed)
        return {
            "id": pid,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": st.amount_received,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": st.canceled_at,
            "cancellation_reason": st.cancellation_reason,
            "capture_method": "automatic",
            "client_secret": f"{pid}_secret_{pi.secret:x}",
            "confirmation_method": "automatic",
            "created": pi.created,
            "currency": pi.currency,
            "customer": self.id("customer", pi.customer.n),
            "customer_account": None,
            "description": pi.description,
            "excluded_payment_method_types": None,
            "last_payment_error": error,
            "latest_charge": self.id("charge", st.latest_charge.n) if st.latest_charge else None,
            "livemode": self.ledger.livemode,
            "managed_payments": None,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": self.id("payment_method", st.card.n) if st.card else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {"installments": None, "mandate_options": None, "network": None,
                         "request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": "off_session",
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": st.status,
            "transfer_data": None,
            "transfer_group": None,
        }

    def card_error(self, charge: Charge) -> dict[str, Any]:
        decline = charge.decline
        assert decline is not None
        return {
            "advice_code": decline.advice_code,
            "charge": self.id("charge", charge.n),
            "code": decline.failure_code,
            "decline_code": decline.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/" +
                       decline.failure_code.replace("_", "-"),
            "message": decline.message,
            "network_advice_code": None,
            "network_decline_code": decline.network_decline_code,
            "payment_method": self.payment_method(charge.card, charge.customer),
            "type": "card_error",
        }

    def _charge(self, ch: Charge, st: Any, includes: frozenset[str], version: str) -> dict[str, Any]:
        cid = self.id("charge", ch.n)
        decline = ch.decline
        card = ch.card
        succeeded = decline is None
        if succeeded:
            outcome = {"advice_code": None, "network_advice_code": None,
                       "network_decline_code": None, "network_status": "approved_by_network",
                       "reason": None, "risk_level": "normal", "risk_score": ch.risk_score,
                       "seller_message": "Payment complete.", "type": "authorized"}
        elif decline.blocked:
            outcome = {"advice_code": decline.advice_code, "network_advice_code": None,
                       "network_decline_code": None, "network_status": "not_sent_to_network",
                       "reason": "highest_risk_level", "risk_level": "highest",
                       "risk_score": ch.risk_score,
                       "seller_message": "Stripe blocked this payment as too risky.",
                       "type": "blocked"}
        else:
            outcome = {"advice_code": decline.advice_code, "network_advice_code": None,
                       "network_decline_code": decline.network_decline_code,
                       "network_status": "declined_by_network", "reason": decline.decline_code,
                       "risk_level": "normal", "risk_score": ch.risk_score,
                       "seller_message": "The bank returned the decline code "
                                         f"`{decline.decline_code}`.",
                       "type": "issuer_declined"}
        cust = ch.customer
        out: dict[str, Any] = {
            "id": cid,
            "object": "charge",
            "amount": ch.amount,
            "amount_captured": ch.amount if succeeded else 0,
            "amount_refunded": st.amount_refunded,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": (self.id("balance_transaction", ch.n) if succeeded else None),
            "billing_details": {"address": {**NULL_ADDRESS, "country": card.country,
                                            "postal_code": None},
                                "email": ch.billing_email, "name": ch.billing_name,
                                "phone": None,
                                "tax_id": None},
            "calculated_statement_descriptor": STATEMENT_DESCRIPTOR,
            "captured": succeeded,
            "created": ch.created,
            "currency": ch.currency,
            "customer": self.id("customer", cust.n),
            "description": ch.description,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline.failure_code if decline else None,
            "failure_message": decline.message if decline else None,
            "fraud_details": {},
            "livemode": self.ledger.livemode,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": outcome,
            "paid": succeeded,
            "payment_intent": self.id("payment_intent", ch.pi.n),
            "payment_method": self.id("payment_method", card.n),
            "payment_method_details": {
                "card": {
                    "amount_authorized": ch.amount if succeeded else None,
                    "authorization_code": f"{ch.risk_score * 7919 % 1000000:06d}"
                                          if succeeded else None,
                    "brand": card.brand,
                    "checks": {"address_line1_check": None, "address_postal_code_check": None,
                               "cvc_check": "pass"},
                    "country": card.country,
                    "exp_month": card.exp_month,
                    "exp_year": card.exp_year,
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": card.fingerprint,
                    "funding": card.funding,
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": None,
                    "last4": card.last4,
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network": card.brand,
                    "network_token": {"used": False},
                    "network_transaction_id": None,
                    "overcapture": {"maximum_amount_capturable": ch.amount,
                                    "status": "unavailable"},
                    "regulated_status": "unregulated",
                    "three_d_secure": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "radar_options": {},
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": (f"https://pay.stripe.com/receipts/invoices/{self._token(cid)}?s=ap"
                            if succeeded else None),
            "refunded": st.amount_refunded >= ch.amount and ch.amount > 0,
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if succeeded else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        if "refunds" in includes:
            out["refunds"] = self.refund_list(ch, st, version)
        return out

    def refund_list(self, ch: Charge, st: Any, version: str) -> dict[str, Any]:
        cid = self.id("charge", ch.n)
        refunds = [self.render("refund", r, version) for r in st.refunds]
        return self.list_object(refunds, False, f"/v1/charges/{cid}/refunds")

    def _refund(self, refund: Refund, st: Any, includes: frozenset[str], version: str) -> dict[str, Any]:
        ch = refund.charge
        return {
            "id": self.id("refund", refund.n),
            "object": "refund",
            "amount": refund.amount,
            "balance_transaction": self.id("balance_transaction", 10_000_000 + refund.n),
            "charge": self.id("charge", ch.n),
            "created": refund.created,
            "currency": ch.currency,
            "customer": self.id("customer", ch.customer.n),
            "customer_account": None,
            "destination_details": {
                "card": {"reference": refund.arn, "reference_status": "available",
                         "reference_type": "acquirer_reference_number", "type": "refund"},
                "type": "card",
            },
            "metadata": {},
            "payment_intent": self.id("payment_intent", ch.pi.n),
            "payment_method": self.id("payment_method", ch.card.n),
            "reason": refund.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def list_object(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
        return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _customer_address(cust: Customer) -> dict[str, Any] | None:
    if not cust.address:
        return None
    line1, city, state, postal = cust.address
    return {"city": city, "country": cust.country, "line1": line1, "line2": None,
            "postal_code": postal, "state": state}


def _kind_of_event_object(ev: Event) -> str:
    prefix = ev.type.split(".", 1)[0]
    if prefix == "customer" and ev.type.startswith("customer.subscription."):
        return "subscription"
    return {"customer": "customer", "invoice": "invoice", "invoice_payment": "invoice_payment",
            "payment_intent": "payment_intent", "charge": "charge",
            "refund": "refund"}[prefix]


_MISSING = object()


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The attributes of `before` that differ in `after`, as Stripe reports them.

    Nested hashes report only their changed keys; arrays are reported whole.
    """
    out: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key, _MISSING)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            nested = previous_attributes(old, new)
            if nested:
                out[key] = nested
        else:
            out[key] = old
    for key in after:
        if key not in before:
            out[key] = None
    return out


