"""Compact records of the simulated account.

Each object keeps what never changes in slots and what changes in `st`, a small named tuple
that is replaced, never mutated (copy on write). An event holds the `st` of its object at the
time it was emitted (and the previous one for `*.updated`), so rendering an old event later
shows the object exactly as it was, at the cost of one shared reference per event. Tuples keep
the large scenario (100,000 customers) well inside its memory budget.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .catalog import CouponDef, Decline, Plan, ProductDef


class CustomerSt(NamedTuple):
    email: str | None
    name: str | None
    card: Card | None
    delinquent: bool
    currency: str | None  # set by the first subscription, as on Stripe
    invoice_seq: int  # invoices finalized so far (numbers PREFIX-0001, ...)


class SubSt(NamedTuple):
    status: str
    items: tuple[SubItem, ...]
    period_start: int
    period_end: int
    anchor: int
    cycle: int
    trial_start: int | None
    trial_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    cancel_reason: str | None
    cancel_feedback: str | None
    latest_invoice: Invoice | None
    discount: Discount | None


class InvoiceSt(NamedTuple):
    status: str
    number: int | None  # sequence of the customer's invoices; rendered PREFIX-0001
    attempt_count: int
    attempted: bool
    next_payment_attempt: int | None
    amount_paid: int
    payment_intent: PaymentIntent | None
    charge: Charge | None
    auto_advance: bool
    finalized_at: int | None
    paid_at: int | None
    marked_uncollectible_at: int | None
    voided_at: int | None
    payment: InvoicePayment | None


class InvoicePaymentSt(NamedTuple):
    status: str  # open | paid | canceled
    amount_paid: int | None
    paid_at: int | None
    canceled_at: int | None


class PaymentIntentSt(NamedTuple):
    status: str
    latest_charge: Charge | None
    charges: tuple[Charge, ...]
    last_error: Charge | None  # the failed charge whose decline it reports
    amount_received: int
    card: Card | None
    canceled_at: int | None
    cancellation_reason: str | None


class ChargeSt(NamedTuple):
    amount_refunded: int
    refunds: tuple[Refund, ...]


class EmptySt(NamedTuple):
    pass


def _install_fast_replace(cls: Any) -> None:
    """Replace NamedTuple._replace with a generated one: keyword binding happens in C."""
    fields = cls._fields
    if not fields:
        return
    params = ", ".join(f"{f}=_M" for f in fields)
    values = ", ".join(f"self[{i}] if {f} is _M else {f}" for i, f in enumerate(fields))
    namespace = {"_M": object(), "_new": tuple.__new__, "_cls": cls}
    exec(f"def _replace(self, *, {params}):\n    return _new(_cls, ({values},))", namespace)
    cls._replace = namespace["_replace"]


for _cls in (CustomerSt, SubSt, InvoiceSt, InvoicePaymentSt, PaymentIntentSt, ChargeSt):
    _install_fast_replace(_cls)


EMPTY = EmptySt()
State = Any


class Product:
    __slots__ = ("n", "defn", "created")

    def __init__(self, n: int, defn: ProductDef, created: int) -> None:
        self.n, self.defn, self.created = n, defn, created


class Price:
    __slots__ = ("n", "plan", "product", "created")

    def __init__(self, n: int, plan: Plan, product: Product, created: int) -> None:
        self.n, self.plan, self.product, self.created = n, plan, product, created


class Coupon:
    __slots__ = ("defn", "created")

    def __init__(self, defn: CouponDef, created: int) -> None:
        self.defn, self.created = defn, created


class Card:
    """A card payment method (pm_...) as far as charges and customers show it."""

    __slots__ = ("n", "brand", "last4", "funding", "country", "exp_month", "exp_year",
                 "fingerprint", "created", "owner")

    def __init__(self, n: int, brand: str, last4: str, funding: str, country: str,
                 exp_month: int, exp_year: int, fingerprint: str, created: int) -> None:
        self.n, self.brand, self.last4, self.funding = n, brand, last4, funding
        self.country, self.exp_month, self.exp_year = country, exp_month, exp_year
        self.fingerprint, self.created = fingerprint, created
        self.owner: Customer | None = None


class Customer:
    __slots__ = ("n", "created", "phone", "country", "home_currency", "address", "metadata",
                 "description", "st", "subs", "invoices", "charges", "payment_intents",
                 "refunds")

    def __init__(self, n: int, created: int, phone: str | None, country: str,
                 home_currency: str,
                 address: tuple[str, str, str | None, str] | None, metadata: dict[str, str],
                 description: str | None, st: CustomerSt) -> None:
        self.n, self.created, self.phone, self.country = n, created, phone, country
        # The currency its prices are in (by country); Stripe's `currency` is in the state.
        self.home_currency, self.address, self.metadata = home_currency, address, metadata
        self.description, self.st = description, st
        self.subs: list[Subscription] = []
        self.invoices: list[Invoice] = []
        self.charges: list[Charge] = []
        self.payment_intents: list[PaymentIntent] = []
        self.refunds: list[Refund] = []


class Discount:
    __slots__ = ("n", "coupon", "start", "end", "customer", "sub")

    def __init__(self, n: int, coupon: Coupon, start: int, end: int | None,
                 customer: Customer, sub: Subscription) -> None:
        self.n, self.coupon, self.start, self.end = n, coupon, start, end
        self.customer, self.sub = customer, sub


class SubItem:
    """A subscription item; a new one replaces it when the price changes, as on Stripe."""

    __slots__ = ("n", "price", "quantity", "created")

    def __init__(self, n: int, price: Price, quantity: int, created: int) -> None:
        self.n, self.price, self.quantity, self.created = n, price, quantity, created


class Subscription:
    __slots__ = ("n", "customer", "created", "currency", "on_exhausted", "st", "invoices")

    def __init__(self, n: int, customer: Customer, created: int, currency: str,
                 on_exhausted: str, st: SubSt) -> None:
        self.n, self.customer, self.created, self.currency = n, customer, created, currency
        self.on_exhausted, self.st = on_exhausted, st
        self.invoices: list[Invoice] = []


class Line:
    """An invoice line item (il_...)."""

    __slots__ = ("n", "price", "quantity", "amount", "discount_amount", "period_start",
                 "period_end", "proration", "description", "sub_item_n")

    def __init__(self, n: int, price: Price, quantity: int, amount: int, discount_amount: int,
                 period_start: int, period_end: int, proration: bool, description: str,
                 sub_item_n: int | None) -> None:
        self.n, self.price, self.quantity, self.amount = n, price, quantity, amount
        self.discount_amount, self.period_start = discount_amount, period_start
        self.period_end, self.proration, self.description = period_end, proration, description
        self.sub_item_n = sub_item_n


class Invoice:
    __slots__ = ("n", "customer", "sub", "created", "currency", "billing_reason", "lines",
                 "subtotal", "discount", "discount_amount", "total", "period_start",
                 "period_end", "customer_email", "customer_name", "st")

    def __init__(self, n: int, customer: Customer, sub: Subscription | None, created: int,
                 currency: str, billing_reason: str, lines: tuple[Line, ...], subtotal: int,
                 discount: Discount | None, discount_amount: int, period_start: int,
                 period_end: int, st: InvoiceSt) -> None:
        self.n, self.customer, self.sub, self.created = n, customer, sub, created
        self.currency, self.billing_reason, self.lines = currency, billing_reason, lines
        self.subtotal, self.discount, self.discount_amount = subtotal, discount, discount_amount
        self.total = subtotal - discount_amount
        self.period_start, self.period_end = period_start, period_end
        self.customer_email = customer.st.email
        self.customer_name = customer.st.name
        self.st = st


class InvoicePayment:
    __slots__ = ("n", "invoice", "pi", "created", "st")

    def __init__(self, n: int, invoice: Invoice, pi: PaymentIntent, created: int,
                 st: InvoicePaymentSt) -> None:
        self.n, self.invoice, self.pi, self.created, self.st = n, invoice, pi, created, st


class PaymentIntent:
    __slots__ = ("n", "customer", "invoice", "created", "amount", "currency", "description",
                 "secret", "st")

    def __init__(self, n: int, customer: Customer, invoice: Invoice | None, created: int,
                 amount: int, currency: str, description: str, secret: int,
                 st: PaymentIntentSt) -> None:
        self.n, self.customer, self.invoice, self.created = n, customer, invoice, created
        self.amount, self.currency, self.description = amount, currency, description
        self.secret, self.st = secret, st


class Charge:
    __slots__ = ("n", "customer", "pi", "invoice", "created", "amount", "currency", "card",
                 "decline", "risk_score", "description", "receipt", "st", "billing_email",
                 "billing_name")

    def __init__(self, n: int, customer: Customer, pi: PaymentIntent, invoice: Invoice | None,
                 created: int, amount: int, currency: str, card: Card, decline: Decline | None,
                 risk_score: int, description: str, receipt: int, st: ChargeSt) -> None:
        self.n, self.customer, self.pi, self.invoice = n, customer, pi, invoice
        self.created, self.amount, self.currency, self.card = created, amount, currency, card
        self.decline, self.risk_score, self.description = decline, risk_score, description
        self.receipt, self.st = receipt, st
        self.billing_email, self.billing_name = customer.st.email, customer.st.name

    @property
    def succeeded(self) -> bool:
        return self.decline is None


class Refund:
    __slots__ = ("n", "charge", "created", "amount", "reason", "arn")

    def __init__(self, n: int, charge: Charge, created: int, amount: int, reason: str | None,
                 arn: str) -> None:
        self.n, self.charge, self.created, self.amount = n, charge, created, amount
        self.reason, self.arn = reason, arn

    st = EMPTY  # refunds settle at once in test mode; nothing changes afterwards


class Event:
    """One entry of the Events API: immutable once emitted."""

    __slots__ = ("n", "created", "type", "obj", "st", "prev", "req", "idem", "version")

    def __init__(self, n: int, created: int, type_: str, obj: Any, st: State,
                 prev: State | None, req: int | None, idem: int | None, version: str) -> None:
        self.n, self.created, self.type, self.obj, self.st = n, created, type_, obj, st
        self.prev, self.req, self.idem, self.version = prev, req, idem, version


KIND_OF_CLASS = {
    Customer: "customer",
    Subscription: "subscription",
    Invoice: "invoice",
    InvoicePayment: "invoice_payment",
    PaymentIntent: "payment_intent",
    Charge: "charge",
    Refund: "refund",
}
