"""Seeded simulation of a Stripe Billing account: signups, renewals, dunning, changes, refunds.

A discrete-event loop: actions sit in a heap by time and run in order, changing objects (copy
on write) and emitting the events Stripe would emit, stamped with the account's API version of
the moment. Every random draw comes from one `random.Random` in that order, so a seed and the
same sequence of controls always give the same account.

Request-driven changes (signups, plan changes, cancellations, refunds, card updates) carry a
`request.id`; what Stripe's billing engine does by itself (renewals, retries, dunning outcomes)
has `request.id` null.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import catalog
from .catalog import DECLINE_BY_CODE, Decline, Plan
from .ledger import RETENTION_S, Ledger
from .model import (
    Card,
    Charge,
    ChargeSt,
    Coupon,
    Customer,
    CustomerSt,
    Discount,
    Event,
    Invoice,
    InvoicePayment,
    InvoicePaymentSt,
    InvoiceSt,
    Line,
    PaymentIntent,
    PaymentIntentSt,
    Price,
    Product,
    Refund,
    SubItem,
    Subscription,
    SubSt,
)
from .versions import INVOICE_PAYMENT_EVENTS, at_least

DAY = 86400
HOUR = 3600
MAX_ATTEMPTS = 8
OK = "ok"  # a successful attempt in a story script


def add_months(ts: int, months: int) -> int:
    d = datetime.fromtimestamp(ts, UTC)
    total = d.month - 1 + months
    year, month = d.year + total // 12, total % 12 + 1
    day = min(d.day, monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def period_months(plan: Plan) -> int:
    return plan.interval_count * (12 if plan.interval == "year" else 1)


def money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€"}.get(currency, "")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount) / 100:,.2f}"


def plan_phrase(plan: Plan) -> str:
    if plan.interval_count == 1:
        return f"/ {plan.interval}"
    return f"every {plan.interval_count} {plan.interval}s"


def _date_text(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y")


@dataclass
class Script:
    """A forced course for one invoice: attempt outcomes in order, and what happens after."""

    outcomes: list[str]  # decline codes or OK
    card_update_after: int | None = None  # failures before the customer updates the card
    on_exhausted: str | None = None  # cancel | unpaid


@dataclass
class Dunning:
    decline: Decline
    first_failure: int
    retry_times: list[int]
    card_update_at: int | None
    token: int = 0
    script: Script | None = None


@dataclass
class ScenarioConfig:
    name: str
    customers: int
    days: int
    seed: int
    anchor: int  # end of the generated history (unix seconds)
    api_version: str
    legacy_version: str | None  # account version before the upgrade (None: no upgrade)
    upgrade_days_before_end: int
    renewal_failure_rate: float = 0.08
    signup_failure_rate: float = 0.03


@dataclass
class StoryRun:
    subscription: Subscription
    script: Script | None
    invoice: Invoice | None = None
    events_before: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(self, ledger: Ledger, cfg: ScenarioConfig, salt: str) -> None:
        self.ledger = ledger
        self.cfg = cfg
        self.rng = random.Random(f"{cfg.seed}:{salt}")
        self.heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.now = 0
        self.record_from = cfg.anchor - RETENTION_S - HOUR
        self.req: tuple[int, str | None] | None = None
        self.dunning: dict[int, Dunning] = {}
        self.scripts: dict[int, Script] = {}  # subscription n -> course of its next renewal
        self.emitted = 0  # events recorded so far (rate control in live mode)
        start = cfg.anchor - cfg.days * DAY
        self.start = start
        if cfg.legacy_version and cfg.upgrade_days_before_end < cfg.days:
            switch = cfg.anchor - cfg.upgrade_days_before_end * DAY
            self.timeline = [(start - 400 * DAY, cfg.legacy_version), (switch, cfg.api_version)]
        else:
            self.timeline = [(start - 400 * DAY, cfg.api_version)]
        self._companies: list[tuple[str, str]] = []
        self._version_cache: tuple[int, int, str] | None = None

    # -- clock and scheduling --------------------------------------------------------------
    def schedule(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.heap, (t, self.seq, fn, args))
        self.seq += 1

    def set_now(self, t: int) -> None:
        if t > self.now:
            self.now = t
            self.ledger.now = t

    def advance(self, to: int) -> None:
        """Run every action due up to `to`, then set the clock to `to`."""
        heap = self.heap
        while heap and heap[0][0] <= to:
            t, _seq, fn, args = heapq.heappop(heap)
            self.set_now(t)
            fn(*args)
        self.set_now(to)

    def version_at(self, t: int) -> str:
        cache = self._version_cache
        if cache is not None and cache[0] <= t < cache[1]:
            return cache[2]
        times = [start for start, _v in self.timeline]
        i = max(0, bisect_right(times, t) - 1)
        until = times[i + 1] if i + 1 < len(times) else 1 << 62
        self._version_cache = (times[i], until, self.timeline[i][1])
        return self.timeline[i][1]

    @property
    def default_version(self) -> str:
        return self.version_at(self.now)

    def change_version(self, version: str) -> None:
        """The account's owner upgrades the default API version from now on."""
        self.timeline.append((self.now, version))
        self._version_cache = None

    # -- requests and events ---------------------------------------------------------------
    def request(self) -> None:
        n = self.ledger.next_number("request")
        # The idempotency key stripe-python would have sent (a UUID4), formatted when rendered.
        self.req = (n, self.rng.getrandbits(128))

    def automatic(self) -> None:
        self.req = None

    def emit(self, type_: str, obj: Any, prev: Any = None) -> None:
        if self.now < self.record_from:
            return
        ledger = self.ledger
        req, idem = self.req if self.req else (None, None)
        event = Event(len(ledger.events), self.now, type_, obj, obj.st, prev, req, idem,
                      self.version_at(self.now))
        ledger.append_event(event)
        self.emitted += 1

    # -- generation --------------------------------------------------------------------------
    def generate(self) -> None:
        """Build the catalog and the whole history up to the anchor."""
        cfg = self.cfg
        setup = self.start - 120 * DAY
        self.set_now(setup)
        self.ledger.account_created = setup - 200 * DAY
        self._build_catalog(setup)
        self._build_companies(max(4, cfg.customers // 3))
        span = max(1, cfg.anchor - self.start - HOUR)
        times = sorted(self.start + int(span * (self.rng.random() ** 1.35))
                       for _ in range(cfg.customers))
        for t in times:
            self.schedule(t, self._signup)
        self.advance(cfg.anchor)

    def _build_catalog(self, t: int) -> None:
        ledger = self.ledger
        for i, pdef in enumerate(catalog.PRODUCTS):
            ledger.products.append(Product(i, pdef, t))
        product_by_key = {p.defn.key: p for p in ledger.products}
        for i, plan in enumerate(catalog.PLANS):
            price = Price(i, plan, product_by_key[plan.product_key], t + 60 + i)
            ledger.prices.append(price)
            ledger.price_by_key[plan.key] = price
        for cdef in catalog.COUPONS:
            ledger.coupons[cdef.id] = Coupon(cdef, t + 300)

    def _build_companies(self, count: int) -> None:
        rng = self.rng
        seen: set[str] = set()
        while len(self._companies) < count:
            word = rng.choice(catalog.COMPANY_WORDS)
            suffix = rng.choice(catalog.COMPANY_SUFFIXES)
            name = f"{word} {suffix}"
            domain_base = (word + suffix).lower()
            domain = f"{domain_base}.{rng.choice(catalog.TLDS)}"
            if domain in seen:
                domain = f"{domain_base}{len(self._companies)}.{rng.choice(catalog.TLDS)}"
                if domain in seen:
                    continue
            seen.add(domain)
            self._companies.append((name, domain))

    # -- customers ---------------------------------------------------------------------------
    def _new_card(self, country_hint: str | None = None) -> Card:
        rng = self.rng
        brand, last4, funding, country = rng.choice(catalog.CARDS)
        ledger = self.ledger
        year = datetime.fromtimestamp(self.now, UTC).year
        n = len(ledger.cards)
        fingerprint = f"{rng.getrandbits(64):016x}"
        card = Card(n, brand, last4, funding, country_hint or country, rng.randint(1, 12),
                    year + rng.randint(1, 5), fingerprint, self.now)
        ledger.cards.append(card)
        return card

    def _person(self) -> tuple[str, str]:
        return self.rng.choice(catalog.FIRST_NAMES), self.rng.choice(catalog.LAST_NAMES)

    def _work_email(self, first: str, last: str, domain: str) -> str:
        f, la = _ascii(first), _ascii(last)
        pattern = self.rng.random()
        if pattern < 0.55:
            local = f"{f}.{la}"
        elif pattern < 0.75:
            local = f"{f[0]}{la}"
        elif pattern < 0.9:
            local = f
        else:
            local = f"{f}{la[0]}"
        return f"{local}@{domain}"

    def _free_email(self, first: str, last: str) -> str:
        f, la = _ascii(first), _ascii(last)
        rng = self.rng
        local = rng.choice((f"{f}.{la}", f"{f}{la}", f"{f}.{la}{rng.randint(1, 99)}",
                            f"{f[0]}{la}{rng.randint(70, 99)}"))
        return f"{local}@{rng.choice(catalog.FREE_MAIL_DOMAINS)}"

    def _new_customer(self) -> Customer:
        rng, ledger = self.rng, self.ledger
        first, last = self._person()
        roll = rng.random()
        existing = ledger.customers
        if roll < 0.03 and existing:
            # The same person signing up twice (sometimes typing the email differently).
            other = existing[rng.randrange(len(existing))]
            email = other.st.email
            if email and rng.random() < 0.4:
                email = email[0].upper() + email[1:]
                local, _at, domain = email.partition("@")
                email = local.title() + "@" + domain
            name = other.st.name
        elif roll < 0.71:
            _company, domain = self._companies[rng.randrange(len(self._companies))]
            email = self._work_email(first, last, domain)
            name = f"{first} {last}"
        elif roll < 0.985:
            email = self._free_email(first, last)
            name = f"{first} {last}"
        else:
            email = None
            name = f"{first} {last}"
        if rng.random() < 0.02:
            name = None
        country = _weighted(rng, [(c, w) for c, _cur, w in catalog.COUNTRIES])
        currency = next(cur for c, cur, _w in catalog.COUNTRIES if c == country)
        address = None
        if rng.random() < 0.7:
            city, state, postal = rng.choice(catalog.CITIES[country])
            address = (f"{rng.randint(1, 999)} {rng.choice(catalog.STREETS)}", city, state, postal)
        phone = None
        if rng.random() < 0.4:
            phone = f"+1{rng.randint(201, 989)}555{rng.randint(0, 9999):04d}"
        metadata: dict[str, str] = {}
        if rng.random() < 0.25:
            metadata["signup_source"] = rng.choice(("web", "web", "sales", "partner"))
        if rng.random() < 0.01:
            # Free text people type into metadata; the sync must never copy card numbers.
            metadata["support_note"] = (
                "Customer read card 4242 4242 4242 4242 exp 12/29 over the phone; "
                "told them we never take cards by phone"
            )
        description = "Imported from legacy billing" if rng.random() < 0.05 else None
        card = self._new_card()
        n = len(ledger.customers)
        cust = Customer(n, self.now, phone, country, currency, address, metadata, description,
                        CustomerSt(email, name, card, False, None, 0))
        card.owner = cust
        ledger.customers.append(cust)
        if email:
            ledger.email_index.setdefault(email, []).append(cust)
        return cust

    def _signup(self) -> None:
        self.request()
        cust = self._new_customer()
        self.emit("customer.created", cust)
        rng = self.rng
        if rng.random() < 0.04:
            return
        self.schedule(self.now + rng.randint(3, 90), self._subscribe, cust, True)
        if rng.random() < 0.04:
            self.schedule(self.now + rng.randint(2, 40) * DAY, self._subscribe, cust, False)
        if rng.random() < 0.05:
            self.schedule(self.now + rng.randint(1, 80) * DAY, self._update_profile, cust)

    def _update_profile(self, cust: Customer) -> None:
        """A new work email (changed jobs) or a new last name."""
        self.request()
        rng = self.rng
        prev = cust.st
        first, _sep, last = (prev.name or "").partition(" ")
        if not first or not last:
            first, last = self._person()
        if rng.random() < 0.6:
            _company, domain = self._companies[rng.randrange(len(self._companies))]
            email = self._work_email(first, last, domain)
            cust.st = prev._replace(email=email)
            self.ledger.email_index.setdefault(email, []).append(cust)
        else:
            cust.st = prev._replace(name=f"{first} {self._person()[1]}")
        self.emit("customer.updated", cust, prev)

    # -- subscriptions -----------------------------------------------------------------------
    def _pick_plan(self, cust: Customer) -> tuple[Plan, int]:
        rng = self.rng
        if cust.home_currency == "eur":
            plan = catalog.PLAN_BY_KEY["pro_monthly_eur"]
        else:
            plan = catalog.PLAN_BY_KEY[_weighted(rng, catalog.PLAN_WEIGHTS)]
        qty = 1
        if plan.per_seat:
            qty = min(60, 2 + int(rng.expovariate(1 / 8)))
        return plan, qty

    def _subscribe(self, cust: Customer, first: bool) -> None:
        self.request()
        rng = self.rng
        plan, qty = self._pick_plan(cust)
        if not first:
            plan, qty = catalog.PLAN_BY_KEY["starter_monthly" if cust.home_currency == "usd"
                                             else "pro_monthly_eur"], 1
        trial_days = 14 if plan.interval == "month" and plan.interval_count == 1 and \
            rng.random() < 0.15 else 0
        coupon = None
        roll = rng.random()
        if roll < 0.10:
            coupon = "LAUNCH20"
        elif roll < 0.14 and cust.home_currency == "usd":
            coupon = "SAVE10"
        elif roll < 0.19:
            coupon = "HALFOFF3"
        fail = rng.random() < self.cfg.signup_failure_rate
        on_exhausted = "cancel" if rng.random() < 0.7 else "unpaid"
        sub = self.create_subscription(cust, plan, qty, trial_days, coupon, on_exhausted,
                                       fail_first=fail)
        self._plan_lifecycle(sub)

    def create_subscription(self, cust: Customer, plan: Plan, qty: int, trial_days: int,
                            coupon_id: str | None, on_exhausted: str,
                            fail_first: bool = False) -> Subscription:
        ledger, now = self.ledger, self.now
        price = ledger.price_by_key[plan.key]
        item = SubItem(self._next("subscription_item"), price, qty, now)
        n = len(ledger.subscriptions)
        sub = Subscription(n, cust, now, plan.currency, on_exhausted, None)  # type: ignore[arg-type]
        discount = None
        if coupon_id:
            coupon = ledger.coupons[coupon_id]
            end = None
            if coupon.defn.duration == "repeating" and coupon.defn.duration_in_months:
                end = add_months(now, coupon.defn.duration_in_months)
            discount = Discount(len(ledger.discounts), coupon, now, end, cust, sub)
            ledger.discounts.append(discount)
        if trial_days:
            trial_end = now + trial_days * DAY
            sub.st = SubSt("trialing", (item,), now, trial_end, trial_end, 0, now, trial_end,
                           False, None, None, None, None, None, None, discount)
        else:
            end = add_months(now, period_months(plan))
            sub.st = SubSt("incomplete" if fail_first else "active", (item,), now, end, now, 1,
                           None, None, False, None, None, None, None, None, None, discount)
        ledger.subscriptions.append(sub)
        cust.subs.append(sub)
        if cust.st.currency is None:
            cust.st = cust.st._replace(currency=plan.currency)
        st = sub.st
        if trial_days:
            line = self._line(price, qty, 0, st.period_start, st.period_end, False,
                              f"Trial period for {price.product.defn.name}", item.n)
            inv = self._build_invoice(sub, "subscription_create", (line,), st.period_start,
                                      st.period_end)
        else:
            inv = self._build_invoice(sub, "subscription_create",
                                      self._cycle_lines(sub, st.period_start, st.period_end),
                                      st.period_start, st.period_end)
        sub.st = sub.st._replace(latest_invoice=inv)
        self.emit("customer.subscription.created", sub)
        self.emit("invoice.created", inv)
        self._finalize(inv)
        if trial_days:
            if st.trial_end - 3 * DAY > now:
                self.schedule(st.trial_end - 3 * DAY, self._trial_will_end, sub, st.trial_end)
        elif fail_first:
            decline = DECLINE_BY_CODE[_weighted(self.rng, catalog.DECLINE_WEIGHTS)]
            self._attempt(inv, decline, next_attempt=None)
            self._incomplete_course(inv, decline)
        else:
            self._collect(inv)
        self.schedule(sub.st.period_end, self._renew, sub, sub.st.period_end)
        return sub

    def _plan_lifecycle(self, sub: Subscription) -> None:
        rng = self.rng
        if rng.random() < 0.12:
            self.schedule(self.now + rng.randint(3, 70) * DAY + rng.randint(0, DAY),
                          self._change_plan, sub)
        if rng.random() < 0.09:
            self.schedule(self.now + rng.randint(5, 110) * DAY + rng.randint(0, DAY),
                          self._request_cancel, sub)

    def _next(self, kind: str) -> int:
        return self.ledger.next_number(kind)

    def _line(self, price: Price, qty: int, amount: int, start: int, end: int, proration: bool,
              description: str, item_n: int | None) -> Line:
        return Line(self._next("line_item"), price, qty, amount, 0, start, end, proration,
                    description, item_n)

    def _cycle_lines(self, sub: Subscription, start: int, end: int) -> tuple[Line, ...]:
        lines = []
        for item in sub.st.items:
            plan = item.price.plan
            amount = plan.unit_amount * item.quantity
            desc = (f"{item.quantity} × {item.price.product.defn.name} "
                    f"(at {money(plan.unit_amount, plan.currency)} {plan_phrase(plan)})")
            lines.append(self._line(item.price, item.quantity, amount, start, end, False, desc,
                                    item.n))
        return tuple(lines)

    def _build_invoice(self, sub: Subscription, reason: str, lines: tuple[Line, ...],
                       period_start: int, period_end: int) -> Invoice:
        ledger = self.ledger
        subtotal = sum(line.amount for line in lines)
        discount = sub.st.discount
        if discount is not None and discount.end is not None and discount.end <= period_start:
            discount = None
        discount_amount = 0
        if discount is not None and subtotal > 0:
            c = discount.coupon.defn
            if c.percent_off:
                for line in lines:
                    line.discount_amount = round(line.amount * c.percent_off / 100)
            elif c.amount_off:
                budget = min(c.amount_off, subtotal)
                positive = sum(line.amount for line in lines if line.amount > 0) or 1
                left = budget
                for i, line in enumerate(lines):
                    if line.amount <= 0:
                        continue
                    share = left if i == len(lines) - 1 else round(budget * line.amount / positive)
                    share = min(share, left)
                    line.discount_amount = share
                    left -= share
            discount_amount = sum(line.discount_amount for line in lines)
        cust = sub.customer
        inv = Invoice(len(ledger.invoices), cust, sub, self.now, sub.currency, reason, lines,
                      subtotal, discount if discount_amount else None, discount_amount,
                      period_start, period_end,
                      InvoiceSt("draft", None, 0, False, None, 0, None, None, True, None, None,
                                None, None, None))
        ledger.invoices.append(inv)
        cust.invoices.append(inv)
        sub.invoices.append(inv)
        return inv

    # -- invoices: finalize, pay, dunning ----------------------------------------------------
    def _finalize(self, inv: Invoice) -> None:
        ledger, cust = self.ledger, inv.customer
        prev = inv.st
        number = cust.st.invoice_seq + 1
        cust.st = cust.st._replace(invoice_seq=number)
        if inv.total <= 0:
            inv.st = prev._replace(status="open", number=number, finalized_at=self.now,
                                   next_payment_attempt=None)
            self.emit("invoice.finalized", inv)
            prev = inv.st
            inv.st = prev._replace(status="paid", paid_at=self.now, attempted=True,
                                   auto_advance=False)
            self.emit("invoice.paid", inv)
            self.emit("invoice.payment_succeeded", inv)
            return
        desc = "Subscription creation" if inv.billing_reason == "subscription_create" \
            else "Subscription update"
        secret = self.rng.getrandbits(100)
        pi = PaymentIntent(len(ledger.payment_intents), cust, inv, self.now, inv.total,
                           inv.currency, desc, secret,
                           PaymentIntentSt("requires_confirmation", None, (), None, 0,
                                           cust.st.card, None, None))
        ledger.payment_intents.append(pi)
        cust.payment_intents.append(pi)
        payment = InvoicePayment(len(ledger.invoice_payments), inv, pi, self.now,
                                 InvoicePaymentSt("open", None, None, None))
        ledger.invoice_payments.append(payment)
        inv.st = prev._replace(status="open", number=number, finalized_at=self.now,
                               payment_intent=pi, payment=payment,
                               next_payment_attempt=self.now)
        self.emit("invoice.finalized", inv)
        self.emit("payment_intent.created", pi)

    def _collect(self, inv: Invoice, script: Script | None = None) -> None:
        """First payment attempt of a finalized invoice, and the dunning course if it fails."""
        if script is None and inv.sub is not None and inv.billing_reason == "subscription_cycle":
            script = self.scripts.pop(inv.sub.n, None)
        if script is not None:
            first = script.outcomes[0] if script.outcomes else OK
            decline = None if first == OK else DECLINE_BY_CODE[first]
        else:
            rate = self.cfg.renewal_failure_rate
            if inv.billing_reason != "subscription_cycle":
                rate = self.cfg.signup_failure_rate
            decline = None
            if self.rng.random() < rate:
                decline = DECLINE_BY_CODE[_weighted(self.rng, catalog.DECLINE_WEIGHTS)]
        if decline is None:
            self._attempt(inv, None)
            return
        plan = self._plan_dunning(inv, decline, script)
        self._attempt(inv, decline, next_attempt=self._next_attempt_time(plan, 1))
        self._after_failure(inv, plan)

    def _plan_dunning(self, inv: Invoice, decline: Decline, script: Script | None) -> Dunning:
        rng, now = self.rng, self.now
        retry_times = [now + off * HOUR + rng.randint(-3 * HOUR, 3 * HOUR)
                       for off in catalog.RETRY_OFFSETS_H]
        card_update_at = None
        if script is not None:
            k = script.card_update_after
            if k is not None:
                failed_at = now if k <= 1 else retry_times[min(k, len(retry_times) + 1) - 2]
                card_update_at = failed_at + 3 * HOUR
        else:
            p_update = {"soft": 0.12, "card_update": 0.5, "hard": 0.3, "fraud": 0.15}[decline.kind]
            if rng.random() < p_update:
                card_update_at = now + rng.randint(2 * HOUR, 12 * DAY)
        plan = Dunning(decline, now, retry_times, card_update_at, script=script)
        self.dunning[inv.n] = plan
        if card_update_at is not None:
            self.schedule(card_update_at, self._card_update, inv, plan.token)
        return plan

    def _next_attempt_time(self, plan: Dunning, attempts_done: int) -> int | None:
        """When Stripe will try again after `attempts_done` attempts (None: no retry)."""
        if attempts_done >= MAX_ATTEMPTS:
            return None
        if plan.script is not None:
            if attempts_done >= len(plan.script.outcomes):
                return None
        elif plan.decline.kind not in ("soft", "card_update"):
            return None  # issuer said do not try again: Smart Retries stop
        for t in plan.retry_times:
            if t > self.now:
                return t
        return None

    def _attempt(self, inv: Invoice, decline: Decline | None,
                 next_attempt: int | None = None) -> None:
        ledger, now = self.ledger, self.now
        cust = inv.customer
        pi = inv.st.payment_intent
        assert pi is not None
        card = cust.st.card
        assert card is not None
        amount = inv.total
        receipt = self.rng.getrandbits(120)
        risk = self.rng.randint(5, 60) if decline is None or not decline.blocked \
            else self.rng.randint(80, 99)
        charge = Charge(len(ledger.charges), cust, pi, inv, now, amount, inv.currency, card,
                        decline, risk, pi.description, receipt, ChargeSt(0, ()))
        ledger.charges.append(charge)
        cust.charges.append(charge)
        prev_inv, prev_pi = inv.st, pi.st
        attempts = prev_inv.attempt_count + 1
        payment = prev_inv.payment
        if decline is None:
            pi.st = prev_pi._replace(status="succeeded", latest_charge=charge,
                                     charges=prev_pi.charges + (charge,), last_error=None,
                                     amount_received=amount, card=card)
            if payment is not None:
                payment.st = payment.st._replace(status="paid", amount_paid=amount, paid_at=now)
            inv.st = prev_inv._replace(status="paid", attempt_count=attempts, attempted=True,
                                       next_payment_attempt=None, amount_paid=amount,
                                       charge=charge, paid_at=now, auto_advance=False)
            self.emit("charge.succeeded", charge)
            self.emit("payment_intent.succeeded", pi)
            if payment is not None and at_least(self.version_at(now), INVOICE_PAYMENT_EVENTS):
                self.emit("invoice_payment.paid", payment)
            self.emit("invoice.paid", inv)
            self.emit("invoice.payment_succeeded", inv)
            plan = self.dunning.pop(inv.n, None)
            if plan is not None:
                plan.token += 1
            self._settle_subscription(inv)
            if self.rng.random() < 0.025:
                self.schedule(now + self.rng.randint(HOUR, 12 * DAY), self._refund, charge)
            return
        pi.st = prev_pi._replace(status="requires_payment_method", latest_charge=charge,
                                 charges=prev_pi.charges + (charge,), last_error=charge,
                                 card=card)
        inv.st = prev_inv._replace(attempt_count=attempts, attempted=True,
                                   next_payment_attempt=next_attempt, charge=charge)
        self.emit("charge.failed", charge)
        self.emit("payment_intent.payment_failed", pi)
        self.emit("invoice.payment_failed", inv)
        self.emit("invoice.updated", inv, prev_inv)
        if not cust.st.delinquent:
            cust.st = cust.st._replace(delinquent=True)
        sub = inv.sub
        if sub is not None and sub.st.status in ("active", "trialing"):
            prev_sub = sub.st
            sub.st = prev_sub._replace(status="past_due")
            self.emit("customer.subscription.updated", sub, prev_sub)

    def _settle_subscription(self, inv: Invoice) -> None:
        cust, sub = inv.customer, inv.sub
        if cust.st.delinquent and not any(i.n in self.dunning for i in cust.invoices):
            cust.st = cust.st._replace(delinquent=False)
        if sub is None:
            return
        if sub.st.status in ("past_due", "incomplete", "unpaid") and \
                not any(i.n in self.dunning for i in sub.invoices):
            prev = sub.st
            sub.st = prev._replace(status="active")
            self.emit("customer.subscription.updated", sub, prev)

    def _after_failure(self, inv: Invoice, plan: Dunning) -> None:
        """Schedule what follows a failed attempt: a retry, a card update, or the end."""
        now = self.now
        nxt = inv.st.next_payment_attempt
        update = plan.card_update_at
        if update is not None and update > now and (nxt is None or update < nxt):
            return  # the customer replaces the card first; that triggers the next attempt
        if nxt is not None:
            self.schedule(nxt, self._retry, inv, plan.token)
            return
        if plan.decline.kind in ("hard", "fraud"):
            # No retry scheduled: the invoice stays open until the dunning window closes.
            self.schedule(max(now + 1, plan.first_failure + catalog.DUNNING_WINDOW_S),
                          self._exhaust, inv, plan.token)
        else:
            self.schedule(now + 1, self._exhaust, inv, plan.token)

    def _outcome(self, inv: Invoice, plan: Dunning, after_update: bool) -> Decline | None:
        attempts = inv.st.attempt_count
        if plan.script is not None:
            outcomes = plan.script.outcomes
            outcome = outcomes[attempts] if attempts < len(outcomes) else plan.decline.decline_code
            return None if outcome == OK else DECLINE_BY_CODE[outcome]
        if after_update:
            return DECLINE_BY_CODE["insufficient_funds"] if self.rng.random() < 0.1 else None
        if plan.decline.kind == "soft":
            return None if self.rng.random() < 0.3 else plan.decline
        return plan.decline  # the same card keeps failing until it is replaced

    def _retry(self, inv: Invoice, token: int, after_update: bool = False) -> None:
        plan = self.dunning.get(inv.n)
        if plan is None or plan.token != token or inv.st.status != "open":
            return
        self.automatic()
        decline = self._outcome(inv, plan, after_update)
        if inv.sub is not None and inv.sub.st.status == "incomplete":
            self._attempt(inv, decline, next_attempt=None)
            return  # unpaid first invoices are not retried; they expire after 23 hours
        if decline is not None:
            plan.decline = decline
        attempts = inv.st.attempt_count + 1
        next_attempt = self._next_attempt_time(plan, attempts) if decline is not None else None
        self._attempt(inv, decline, next_attempt=next_attempt)
        if decline is not None:
            self._after_failure(inv, plan)

    def _card_update(self, inv: Invoice, token: int) -> None:
        plan = self.dunning.get(inv.n)
        if plan is None or plan.token != token or inv.st.status != "open":
            return
        self.request()
        cust = inv.customer
        prev = cust.st
        card = self._new_card(prev.card.country if prev.card else None)
        card.owner = cust
        cust.st = prev._replace(card=card)
        self.emit("customer.updated", cust, prev)
        plan.token += 1
        plan.card_update_at = None
        # Stripe retries the open invoice once the customer has a new payment method.
        self.schedule(self.now + self.rng.randint(60, 600), self._retry, inv, plan.token, True)

    def _exhaust(self, inv: Invoice, token: int) -> None:
        plan = self.dunning.get(inv.n)
        if plan is None or plan.token != token or inv.st.status != "open":
            return
        self.automatic()
        del self.dunning[inv.n]
        prev = inv.st
        inv.st = prev._replace(status="uncollectible", marked_uncollectible_at=self.now,
                               next_payment_attempt=None, auto_advance=False)
        self.emit("invoice.marked_uncollectible", inv)
        sub = inv.sub
        if sub is None or sub.st.status not in ("past_due", "active", "trialing"):
            return
        action = (plan.script.on_exhausted if plan.script and plan.script.on_exhausted
                  else sub.on_exhausted)
        prev_sub = sub.st
        if action == "cancel":
            sub.st = prev_sub._replace(status="canceled", ended_at=self.now, canceled_at=self.now,
                                       cancel_reason="payment_failed", cancel_at_period_end=False,
                                       cancel_at=None)
            self.emit("customer.subscription.deleted", sub)
        else:
            sub.st = prev_sub._replace(status="unpaid")
            self.emit("customer.subscription.updated", sub, prev_sub)

    def _incomplete_course(self, inv: Invoice, decline: Decline) -> None:
        """A failed first payment: the customer has 23 hours to pay, else it expires."""
        plan = Dunning(decline, self.now, [], None)
        self.dunning[inv.n] = plan
        if self.rng.random() < 0.5:
            plan.card_update_at = self.now + self.rng.randint(HOUR, 20 * HOUR)
            self.schedule(plan.card_update_at, self._card_update, inv, plan.token)
        self.schedule(self.now + 23 * HOUR, self._expire_incomplete, inv)

    def _expire_incomplete(self, inv: Invoice) -> None:
        sub = inv.sub
        if sub is None or sub.st.status != "incomplete" or inv.st.status != "open":
            return
        self.automatic()
        self.dunning.pop(inv.n, None)
        prev_sub = sub.st
        sub.st = prev_sub._replace(status="incomplete_expired", ended_at=self.now)
        self.emit("customer.subscription.updated", sub, prev_sub)
        prev = inv.st
        inv.st = prev._replace(status="void", voided_at=self.now, next_payment_attempt=None,
                               auto_advance=False)
        self.emit("invoice.voided", inv)
        pi = prev.payment_intent
        if pi is not None:
            pi.st = pi.st._replace(status="canceled", canceled_at=self.now,
                                   cancellation_reason="void_invoice")
            self.emit("payment_intent.canceled", pi)
            if prev.payment is not None:
                prev.payment.st = prev.payment.st._replace(status="canceled",
                                                           canceled_at=self.now)
        cust = inv.customer
        if cust.st.delinquent and not any(i.n in self.dunning for i in cust.invoices):
            cust.st = cust.st._replace(delinquent=False)

    # -- renewals ------------------------------------------------------------------------------
    def _trial_will_end(self, sub: Subscription, trial_end: int) -> None:
        if sub.st.status != "trialing" or sub.st.trial_end != trial_end:
            return
        self.automatic()
        self.emit("customer.subscription.trial_will_end", sub)

    def _renew(self, sub: Subscription, period_end: int) -> None:
        st = sub.st
        if st.period_end != period_end or st.status in ("canceled", "incomplete_expired",
                                                        "incomplete"):
            return
        self.automatic()
        if st.cancel_at_period_end:
            self._end(sub)
            return
        plan = st.items[0].price.plan
        cycle = st.cycle + 1
        start = st.period_end
        end = add_months(st.anchor, period_months(plan) * cycle)
        discount = st.discount
        if discount is not None and discount.end is not None and discount.end <= start:
            discount = None
        status = "active" if st.status == "trialing" else st.status
        lines = self._cycle_lines(sub, start, end)
        sub.st = st._replace(period_start=start, period_end=end, cycle=cycle, status=status,
                             discount=discount)
        inv = self._build_invoice(sub, "subscription_cycle", lines, start, end)
        sub.st = sub.st._replace(latest_invoice=inv)
        if status == "unpaid":
            # Unpaid subscriptions keep invoicing, but the invoices stay drafts.
            inv.st = inv.st._replace(auto_advance=False)
        else:
            inv.st = inv.st._replace(next_payment_attempt=self.now + HOUR)
            self.schedule(self.now + HOUR, self._finalize_and_collect, inv)
        self.emit("customer.subscription.updated", sub, st)
        self.emit("invoice.created", inv)
        self.schedule(end, self._renew, sub, end)

    def _finalize_and_collect(self, inv: Invoice) -> None:
        if inv.st.status != "draft":
            return
        self.automatic()
        self._finalize(inv)
        if inv.st.status == "open":
            self._collect(inv)

    def _end(self, sub: Subscription) -> None:
        prev = sub.st
        sub.st = prev._replace(status="canceled", ended_at=self.now)
        self.emit("customer.subscription.deleted", sub)

    # -- changes requested by the customer --------------------------------------------------
    def _change_plan(self, sub: Subscription, upgrade: bool | None = None) -> bool:
        st = sub.st
        if st.status != "active" or st.cancel_at_period_end or sub.currency != "usd":
            return False
        rng = self.rng
        item = st.items[0]
        plan = item.price.plan
        if upgrade is None:
            upgrade = rng.random() < 0.65
        ledger = self.ledger
        if plan.per_seat:
            qty = item.quantity + rng.randint(1, 10) if upgrade else \
                max(1, item.quantity - rng.randint(1, 5))
            if qty == item.quantity:
                return False
            new_item = SubItem(item.n, item.price, qty, item.created)
        else:
            family = {"month": ("starter_monthly", "pro_monthly"),
                      "year": ("starter_yearly", "pro_yearly")}.get(plan.interval)
            if family is None or plan.key not in family:
                return False
            target = family[1] if upgrade else family[0]
            if target == plan.key:
                return False
            new_item = SubItem(self._next("subscription_item"), ledger.price_by_key[target], 1,
                               self.now)
        self.request()
        old_amount = plan.unit_amount * item.quantity
        new_plan = new_item.price.plan
        new_amount = new_plan.unit_amount * new_item.quantity
        prev = st
        sub.st = st._replace(items=(new_item,) + st.items[1:])
        if new_amount > old_amount:
            frac = (st.period_end - self.now) / max(1, st.period_end - st.period_start)
            when = _date_text(self.now)
            credit = self._line(item.price, item.quantity, -round(old_amount * frac), self.now,
                                st.period_end, True,
                                f"Unused time on {item.quantity} × {item.price.product.defn.name} "
                                f"after {when}", item.n)
            charge = self._line(new_item.price, new_item.quantity, round(new_amount * frac),
                                self.now, st.period_end, True,
                                f"Remaining time on {new_item.quantity} × "
                                f"{new_item.price.product.defn.name} after {when}", new_item.n)
            inv = self._build_invoice(sub, "subscription_update", (credit, charge), self.now,
                                      self.now)
            sub.st = sub.st._replace(latest_invoice=inv)
            self.emit("customer.subscription.updated", sub, prev)
            self.emit("invoice.created", inv)
            self._finalize(inv)
            if inv.st.status == "open":
                self._collect(inv)
        else:
            self.emit("customer.subscription.updated", sub, prev)
        return True

    def _request_cancel(self, sub: Subscription, immediately: bool | None = None) -> bool:
        st = sub.st
        if st.status not in ("active", "trialing", "past_due") or st.cancel_at_period_end:
            return False
        self.request()
        rng = self.rng
        if immediately is None:
            immediately = rng.random() < 0.3
        feedback = rng.choice(catalog.CANCEL_FEEDBACK) if rng.random() < 0.6 else None
        if immediately:
            sub.st = st._replace(status="canceled", ended_at=self.now, canceled_at=self.now,
                                 cancel_reason="cancellation_requested", cancel_feedback=feedback)
            self.emit("customer.subscription.deleted", sub)
            return True
        sub.st = st._replace(cancel_at_period_end=True, cancel_at=st.period_end,
                             canceled_at=self.now, cancel_reason="cancellation_requested",
                             cancel_feedback=feedback)
        self.emit("customer.subscription.updated", sub, st)
        if rng.random() < 0.2 and st.period_end - self.now > 2 * HOUR:
            self.schedule(self.now + rng.randint(HOUR, st.period_end - self.now - HOUR),
                          self._reactivate, sub)
        return True

    def _reactivate(self, sub: Subscription) -> None:
        st = sub.st
        if not st.cancel_at_period_end or st.status == "canceled":
            return
        self.request()
        sub.st = st._replace(cancel_at_period_end=False, cancel_at=None, canceled_at=None,
                             cancel_reason=None, cancel_feedback=None)
        self.emit("customer.subscription.updated", sub, st)

    def _refund(self, charge: Charge, amount: int | None = None) -> Refund | None:
        if not charge.succeeded or charge.st.amount_refunded >= charge.amount:
            return None
        self.request()
        rng = self.rng
        left = charge.amount - charge.st.amount_refunded
        if amount is None:
            amount = left if rng.random() < 0.6 else max(1, min(left, round(
                left * rng.uniform(0.1, 0.9) / 100) * 100))
        amount = min(amount, left)
        reason = _weighted(rng, [("requested_by_customer", 6), ("duplicate", 1), ("", 3)]) or None
        ledger = self.ledger
        arn = "".join(str(rng.randint(0, 9)) for _ in range(23))
        refund = Refund(len(ledger.refunds), charge, self.now, amount, reason, arn)
        ledger.refunds.append(refund)
        charge.customer.refunds.append(refund)
        prev = charge.st
        charge.st = prev._replace(amount_refunded=prev.amount_refunded + amount,
                                  refunds=(refund,) + prev.refunds)
        self.emit("charge.refunded", charge)
        self.emit("refund.created", refund)
        return refund

    # -- stories (test controls) ---------------------------------------------------------
    def start_dunning_story(self, sub: Subscription, script: Script, now: bool) -> StoryRun:
        """Force the course of a subscription's next renewal (or of one billed right now)."""
        run = StoryRun(sub, script, events_before=len(self.ledger.events))
        if not now:
            self.scripts[sub.n] = script
            return run
        # billing_cycle_anchor=now: Stripe closes the period and invoices at once.
        self.request()
        st = sub.st
        plan = st.items[0].price.plan
        end = add_months(self.now, period_months(plan))
        sub.st = st._replace(period_start=self.now, period_end=end, anchor=self.now, cycle=1,
                             status="active" if st.status == "trialing" else st.status,
                             trial_end=st.trial_end if st.status != "trialing" else self.now)
        inv = self._build_invoice(sub, "subscription_update",
                                  self._cycle_lines(sub, self.now, end), self.now, end)
        sub.st = sub.st._replace(latest_invoice=inv)
        self.emit("customer.subscription.updated", sub, st)
        self.emit("invoice.created", inv)
        self._finalize(inv)
        self._collect(inv, script)
        self.schedule(end, self._renew, sub, end)
        run.invoice = inv
        return run

    def emit_notification(self, type_: str, obj: Any) -> None:
        """Emit an event for an object's current state (a control for tests)."""
        self.automatic()
        ledger = self.ledger
        event = Event(len(ledger.events), self.now, type_, obj, obj.st,
                      obj.st if type_.endswith(".updated") else None, None, None,
                      self.version_at(self.now))
        ledger.append_event(event)  # recorded whatever the clock: tests asked for it
        self.emitted += 1

    # -- live activity -----------------------------------------------------------------------
    def live_activity(self) -> None:
        """One thing a real account does on its own: signups, changes, failures, refunds."""
        rng = self.rng
        ledger = self.ledger
        kind = _weighted(rng, [("signup", 30), ("billing", 30), ("card_update", 10),
                               ("change", 12), ("cancel", 8), ("refund", 6), ("profile", 4)])
        active = [s for s in ledger.subscriptions[-400:] if s.st.status == "active"]
        if kind == "signup" or not ledger.customers:
            self._signup()
            return
        monthly = [s for s in active if period_months(s.st.items[0].price.plan) == 1]
        if kind == "billing" and monthly:
            # A billing cycle reset on a monthly plan: a payment (and maybe dunning) right now.
            sub = rng.choice(monthly)
            decline = None
            if rng.random() < 0.35:
                decline = _weighted(rng, catalog.DECLINE_WEIGHTS)
            outcomes = [decline or OK]
            if decline is not None:
                outcomes += [decline] * rng.randint(0, 3) + ([OK] if rng.random() < 0.6 else [])
            self.start_dunning_story(sub, Script(outcomes), now=True)
            return
        if kind == "card_update" and self.dunning:
            inv_n = rng.choice(sorted(self.dunning))
            plan = self.dunning[inv_n]
            inv = ledger.invoices[inv_n]
            self._card_update(inv, plan.token)
            return
        if kind == "change" and active:
            self._change_plan(rng.choice(active))
            return
        if kind == "cancel" and active:
            self._request_cancel(rng.choice(active))
            return
        if kind == "refund" and ledger.charges:
            recent = [c for c in ledger.charges[-300:] if c.succeeded and not c.st.refunds]
            if recent:
                self._refund(rng.choice(recent))
                return
        self._update_profile(ledger.customers[rng.randrange(len(ledger.customers))])


def invoice_prefix(ledger: Ledger, cust: Customer) -> str:
    return ledger.codec.make("customer", cust.n)[4:12].upper()


def _ascii(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _weighted(rng: random.Random, pairs: Any) -> Any:
    total = sum(w for _v, w in pairs)
    x = rng.random() * total
    for value, weight in pairs:
        x -= weight
        if x < 0:
            return value
    return pairs[-1][0]
