"""Static data of the simulated account: plans, coupons, people, companies, cards, declines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """A recurring price of a product (Stripe Price with `recurring`)."""

    key: str
    product_key: str
    nickname: str
    unit_amount: int  # minor units
    currency: str
    interval: str
    interval_count: int
    per_seat: bool
    tier: int  # ordering for upgrades / downgrades


@dataclass(frozen=True)
class ProductDef:
    key: str
    name: str
    description: str
    unit_label: str | None


@dataclass(frozen=True)
class CouponDef:
    id: str
    name: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: str  # forever | once | repeating
    duration_in_months: int | None


@dataclass(frozen=True)
class Decline:
    """One issuer decline as Stripe reports it on the charge and the payment intent."""

    decline_code: str
    failure_code: str  # charge.failure_code == last_payment_error.code
    message: str  # customer-facing failure_message
    network_decline_code: str | None
    advice_code: str | None
    kind: str  # soft | card_update | hard | fraud
    blocked: bool = False  # Radar block instead of an issuer decline


PRODUCTS = (
    ProductDef("starter", "Starter", "For individuals getting started", None),
    ProductDef("pro", "Pro", "For growing teams", None),
    ProductDef("team", "Team", "Per-seat plan for larger teams", "seat"),
    ProductDef("enterprise", "Enterprise", "Annual contract, billed quarterly", None),
)

PLANS = (
    Plan("starter_monthly", "starter", "Starter monthly", 2900, "usd", "month", 1, False, 1),
    Plan("starter_yearly", "starter", "Starter yearly", 29000, "usd", "year", 1, False, 1),
    Plan("pro_monthly", "pro", "Pro monthly", 9900, "usd", "month", 1, False, 2),
    Plan("pro_yearly", "pro", "Pro yearly", 99000, "usd", "year", 1, False, 2),
    Plan("pro_monthly_eur", "pro", "Pro monthly (EUR)", 8900, "eur", "month", 1, False, 2),
    Plan("team_seat_monthly", "team", "Team seat monthly", 1200, "usd", "month", 1, True, 3),
    Plan("team_seat_yearly", "team", "Team seat yearly", 12000, "usd", "year", 1, True, 3),
    Plan("enterprise_quarterly", "enterprise", "Enterprise quarterly", 420000, "usd", "month", 3, False, 4),
)
PLAN_BY_KEY = {p.key: p for p in PLANS}

# Share of new subscriptions per plan (usd customers); eur customers take pro_monthly_eur
# or starter/pro equivalents in eur where there is one.
PLAN_WEIGHTS = (
    ("starter_monthly", 30),
    ("starter_yearly", 7),
    ("pro_monthly", 25),
    ("pro_yearly", 8),
    ("team_seat_monthly", 17),
    ("team_seat_yearly", 5),
    ("enterprise_quarterly", 4),
)

COUPONS = (
    CouponDef("LAUNCH20", "Launch 20% off", 20.0, None, None, "forever", None),
    CouponDef("SAVE10", "$10 off", None, 1000, "usd", "forever", None),
    CouponDef("HALFOFF3", "50% off for 3 months", 50.0, None, None, "repeating", 3),
)
COUPON_BY_ID = {c.id: c for c in COUPONS}

FIRST_NAMES = (
    "Olivia Liam Emma Noah Ava Elijah Sophia James Isabella Lucas Mia Mateo Amelia Levi "
    "Harper Ethan Evelyn Aiden Abigail Logan Emily Jackson Ella Sebastian Elizabeth Jack "
    "Camila Owen Luna Samuel Sofia Henry Avery Wyatt Mila Leo Aria Daniel Scarlett Michael "
    "Penelope Alexander Layla Benjamin Chloe Carter Victoria Gabriel Madison Julian Eleanor "
    "Grayson Grace Theodore Nora Isaac Riley Jayden Zoey Luke Hannah Anthony Hazel Dylan "
    "Lily Lincoln Ellie Thomas Violet Maverick Lillian Josiah Zoe Christopher Stella Andrew "
    "Aurora Joshua Natalie Nathan Emilia Caleb Everly Ryan Leah Adrian Aubrey Miles Willow "
    "Eli Addison Nolan Lucy Hunter Audrey Aaron Bella Priya Arjun Wei Mei Hiroshi Yuki "
    "Fatima Omar Ingrid Lars Sven Astrid Marta Pablo Lucia Diego Chiara Marco Giulia Aisha "
    "Kwame Amara Chidi Zara Nikolai Anya Dmitri Katya Sean Siobhan Connor Maeve"
).split()

LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart "
    "Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed "
    "Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
    "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Okafor Mensah Schmidt Mueller Schneider Fischer Weber Dubois Laurent Moreau Rossi Russo "
    "Bianchi Tanaka Suzuki Sato Chen Wang Zhang Liu Singh Kumar Sharma Ivanova Petrov "
    "Johansson Andersson Nilsson O'Brien O'Connor Byrne"
).split()

COMPANY_WORDS = (
    "Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay "
    "Pied Aperture Black Mesa Oscorp Gringotts Monarch Dunder Sterling Prestige Massive "
    "Northwind Contoso Fabrikam Tailspin Litware Proseware Adatum Woodgrove Lucerne Fourth "
    "Alpine Blue Yonder Coho Humongous Margie Trey Wingtip Relecloud Bluefin Quantum Vertex "
    "Apex Summit Beacon Harbor Lighthouse Redwood Cedar Maple Granite Cobalt Copper Silver "
    "Orbit Nimbus Zephyr Aurora Helix Vector Pixel Lumen Kinetic Tidal Ember Falcon Otter "
    "Heron Fox Badger Lynx Raven Sparrow"
).split()
COMPANY_SUFFIXES = ("Labs", "Systems", "Analytics", "Cloud", "Works", "Digital", "Health",
                    "Logistics", "Robotics", "Media", "Studio", "Software", "Bio", "Energy")
TLDS = ("com", "com", "com", "io", "co", "ai", "dev", "net", "co.uk", "de", "fr")

FREE_MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me",
                     "hotmail.com", "aol.com", "gmx.de")

COUNTRIES = (  # (country, currency, weight)
    ("US", "usd", 62),
    ("CA", "usd", 6),
    ("GB", "usd", 10),
    ("AU", "usd", 4),
    ("DE", "eur", 10),
    ("FR", "eur", 8),
)
CITIES = {
    "US": (("San Francisco", "CA", "94107"), ("New York", "NY", "10013"), ("Austin", "TX", "78701"),
           ("Chicago", "IL", "60607"), ("Seattle", "WA", "98101"), ("Denver", "CO", "80202")),
    "CA": (("Toronto", "ON", "M5V 2T6"), ("Vancouver", "BC", "V6B 1A1")),
    "GB": (("London", None, "EC1V 9HX"), ("Manchester", None, "M1 1AE")),
    "AU": (("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000")),
    "DE": (("Berlin", None, "10115"), ("Munich", None, "80331")),
    "FR": (("Paris", None, "75002"), ("Lyon", None, "69002")),
}
STREETS = ("Market St", "Main St", "Oak Ave", "Pine St", "Elm St", "High St", "King St",
           "Bahnhofstrasse", "Rue de Rivoli", "Mission St", "Broadway", "Queen St")

# Stripe test cards (brand, last4, funding, country).
CARDS = (
    ("visa", "4242", "credit", "US"),
    ("mastercard", "4444", "credit", "US"),
    ("amex", "8431", "credit", "US"),
    ("visa", "1881", "debit", "US"),
    ("discover", "1117", "credit", "US"),
    ("visa", "0077", "credit", "GB"),
    ("mastercard", "5100", "debit", "DE"),
)

DECLINES = (
    Decline("insufficient_funds", "card_declined", "Your card has insufficient funds.", "51",
            "try_again_later", "soft"),
    Decline("do_not_honor", "card_declined", "Your card was declined.", "05", "try_again_later",
            "soft"),
    Decline("generic_decline", "card_declined", "Your card was declined.", "05",
            "try_again_later", "soft"),
    Decline("card_velocity_exceeded", "card_declined",
            "Your card was declined for making repeated attempts too frequently or exceeding its "
            "amount limit.", "61", "try_again_later", "soft"),
    Decline("expired_card", "expired_card", "Your card has expired.", "54", "confirm_card_data",
            "card_update"),
    Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "N7",
            "confirm_card_data", "card_update"),
    Decline("card_declined", "card_declined", "Your card was declined.", "57",
            "do_not_try_again", "hard"),
    Decline("lost_card", "card_declined", "Your card was declined.", "41", "do_not_try_again",
            "hard"),
    Decline("stolen_card", "card_declined", "Your card was declined.", "43", "do_not_try_again",
            "hard"),
    Decline("fraudulent", "card_declined", "Your card was declined.", None, "do_not_try_again",
            "fraud", blocked=True),
)
DECLINE_BY_CODE = {d.decline_code: d for d in DECLINES}
DECLINE_WEIGHTS = (
    ("insufficient_funds", 34),
    ("do_not_honor", 14),
    ("generic_decline", 12),
    ("card_velocity_exceeded", 3),
    ("expired_card", 13),
    ("incorrect_cvc", 3),
    ("card_declined", 6),
    ("lost_card", 5),
    ("stolen_card", 3),
    ("fraudulent", 7),
)

CANCEL_FEEDBACK = ("too_expensive", "missing_features", "switched_service", "unused",
                   "customer_service", "too_complex", "low_quality", "other")

# Smart Retries: up to 8 attempts within 2 weeks (Stripe's recommended default). Offsets of
# the automatic retries after the first failure, in hours; each gets seeded jitter.
RETRY_OFFSETS_H = (22, 55, 98, 145, 194, 250, 322)
DUNNING_WINDOW_S = 14 * 86400
