"""The data of one account in one mode (test or live): objects, the event log and its indexes.

Objects of each kind live in a list indexed by their number (ids decode to it, see ids.py),
created in time order, so lists are already sorted by `created`. The event log is a list of
positions (oldest first) into the events; a position can be a tombstone (-1) when a control
moved an event, and an event can sit at two positions when a control delivered it twice.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any

from .ids import IdCodec
from .model import (
    Card,
    Charge,
    Coupon,
    Customer,
    Discount,
    Event,
    Invoice,
    InvoicePayment,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Subscription,
)

RETENTION_S = 30 * 86400

LIST_KINDS = ("customer", "subscription", "invoice", "charge", "refund", "payment_intent",
              "invoice_payment", "event")


class Ledger:
    def __init__(self, codec: IdCodec, livemode: bool) -> None:
        self.codec = codec
        self.livemode = livemode
        self.now = 0
        self.account_created = 0
        self.products: list[Product] = []
        self.prices: list[Price] = []
        self.price_by_key: dict[str, Price] = {}
        self.coupons: dict[str, Coupon] = {}
        self.cards: list[Card] = []
        self.customers: list[Customer] = []
        self.subscriptions: list[Subscription] = []
        self.invoices: list[Invoice] = []
        self.invoice_payments: list[InvoicePayment] = []
        self.payment_intents: list[PaymentIntent] = []
        self.charges: list[Charge] = []
        self.refunds: list[Refund] = []
        self.discounts: list[Discount] = []
        self.counters = {"subscription_item": 0, "line_item": 0, "request": 0,
                         "balance_transaction": 0}
        self.email_index: dict[str, list[Customer]] = {}
        self.events: list[Event] = []
        self.order = array("q")  # position -> event number, -1 = moved away
        self.order_created = array("q")  # position -> created (for bisect when monotonic)
        self.latest_pos = array("q")  # event number -> its newest position
        self.type_positions: dict[str, array[int]] = {}
        self.monotonic = True  # positions sorted by created: bisect instead of scanning

    # -- objects -------------------------------------------------------------------------
    def objects(self, kind: str) -> list[Any]:
        return {
            "customer": self.customers,
            "subscription": self.subscriptions,
            "invoice": self.invoices,
            "invoice_payment": self.invoice_payments,
            "payment_intent": self.payment_intents,
            "charge": self.charges,
            "refund": self.refunds,
            "event": self.events,
        }[kind]

    def next_number(self, kind: str) -> int:
        n = self.counters[kind]
        self.counters[kind] = n + 1
        return n

    def id_of(self, kind: str, n: int) -> str:
        return self.codec.make(kind, n)

    def lookup(self, kind: str, object_id: str) -> Any | None:
        n = self.codec.decode(kind, object_id)
        if n is None:
            return None
        items = self.objects(kind)
        if n >= len(items):
            return None
        obj = items[n]
        if kind == "event" and not self.event_visible(obj):
            return None
        return obj

    # -- events --------------------------------------------------------------------------
    def retention_floor(self) -> int:
        return self.now - RETENTION_S

    def event_visible(self, event: Event) -> bool:
        return event.created >= self.retention_floor()

    def append_event(self, event: Event) -> None:
        self.events.append(event)
        self.latest_pos.append(-1)
        self._place(event)

    def _place(self, event: Event) -> None:
        pos = len(self.order)
        if self.order_created and event.created < self.order_created[-1]:
            self.monotonic = False
        self.order.append(event.n)
        self.order_created.append(event.created)
        self.latest_pos[event.n] = pos
        positions = self.type_positions.get(event.type)
        if positions is None:
            positions = self.type_positions[event.type] = array("q")
        positions.append(pos)

    def relist(self, event: Event, move: bool) -> None:
        """List an event again at the newest end: delivered twice, or moved (out of order)."""
        if move:
            self.order[self.latest_pos[event.n]] = -1
        self._place(event)

    def position_of(self, event: Event) -> int:
        return self.latest_pos[event.n]

    def first_visible_position(self) -> int:
        """Lowest position that can hold a visible event (0 when the log is out of order)."""
        if not self.monotonic:
            return 0
        return bisect_left(self.order_created, self.retention_floor())
