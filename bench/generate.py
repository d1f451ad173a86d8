"""Seeded, streaming generator of realistic marketing event streams, and segment rules for them.

Shared by the benchmarks and the tests. The same seed gives the same events on every run and
every machine (one `random.Random(seed)`, no global state, no wall clock); memory is
O(contacts), so millions of events can be streamed.

    python bench/generate.py --seed 1 --contacts 1000 --events 10000 [--late 0.01] > events.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from eventstore.interface import NewEvent

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: Twenty segments a marketing team might keep, in the language of RULES.md. The last two
#: refer to earlier ones by name (no cycles); windows fit a 180-day stream.
MIXED_SEGMENTS: list[tuple[str, str]] = [
    (
        "Engaged",
        "opened email within 14 days or clicked email within 14 days"
        " or visited page at least 3 times within 7 days",
    ),
    ("Customers", 'lifecycle_stage is "customer" or purchased within 90 days'),
    ("Recent buyers", "purchased within 30 days"),
    (
        "Pricing researchers",
        'visited page where url contains "/pricing" at least 3 times within 30 days',
    ),
    ("Lapsed buyers", "last purchased more than 30 days ago"),
    ("Dormant", "last activity more than 60 days ago"),
    ("New customers", "first purchased within 7 days"),
    ("High spenders", "total amount of purchased within 90 days >= 500"),
    ("Solid baskets", "average amount of purchased >= 40"),
    ("Never bought", "has never purchased and signed_up_at more than 30 days ago"),
    ("DACH leads", 'country in ("DE", "AT", "CH") and lifecycle_stage in ("lead", "mql")'),
    ("Hot leads", 'lead_score >= 70 and lifecycle_stage in ("mql", "sql")'),
    ("Acme staff", 'email ends with "@acme.com"'),
    ("Missing city", "city is unknown"),
    (
        "Desktop readers",
        'device_type is not "mobile" and opened email at least 3 times within 30 days',
    ),
    (
        "Demo requesters",
        'submitted form "demo-request" within 30 days and not purchased within 90 days',
    ),
    (
        "Stalled trials",
        'performed "trial_started" within 14 days and not performed "app_login" within 7 days',
    ),
    (
        "Young German clickers",
        'country is "DE" and age between 18 and 34 and clicked email within 30 days',
    ),
    ("Engaged prospects", 'in segment "Engaged" and not in segment "Customers"'),
    (
        "Win-back",
        'in segment "Lapsed buyers"'
        " and (opened email within 7 days or clicked email within 7 days)",
    ),
]

# ---- the vocabulary of the simulated business ----

COUNTRIES: list[tuple[str, float, list[str]]] = [
    ("DE", 22, ["Berlin", "Hamburg", "Munich", "Cologne", "Leipzig"]),
    ("US", 20, ["New York", "San Francisco", "Austin", "Chicago", "Seattle"]),
    ("GB", 10, ["London", "Manchester", "Edinburgh", "Bristol"]),
    ("FR", 9, ["Paris", "Lyon", "Marseille", "Toulouse"]),
    ("AT", 5, ["Vienna", "Graz", "Salzburg"]),
    ("CH", 5, ["Zürich", "Geneva", "Basel"]),
    ("NL", 6, ["Amsterdam", "Rotterdam", "Utrecht"]),
    ("ES", 6, ["Madrid", "Barcelona", "Valencia"]),
    ("IT", 5, ["Milan", "Rome", "Turin"]),
    ("PL", 4, ["Warsaw", "Kraków", "Wrocław"]),
    ("SE", 3, ["Stockholm", "Gothenburg"]),
    ("BR", 3, ["São Paulo", "Rio de Janeiro"]),
    ("IN", 2, ["Bangalore", "Mumbai", "Pune"]),
]
STAGES = ["subscriber", "lead", "mql", "sql", "customer"]
STAGE_WEIGHTS = [50, 30, 12, 5, 3]
DEVICES = ["mobile", "desktop", "tablet"]
DEVICE_WEIGHTS = [55, 38, 7]
FIRST_NAMES = [
    "anna", "ben", "clara", "david", "emma", "felix", "greta", "hugo", "ida", "jonas",
    "katrin", "leon", "maria", "noah", "olivia", "paul", "quinn", "rosa", "sam", "tara",
    "umut", "vera", "wen", "xavier", "yusuf", "zoe", "lucía", "björn", "chloé", "matteo",
]  # fmt: skip
LAST_NAMES = [
    "mueller", "schmidt", "smith", "johnson", "martin", "bernard", "rossi", "garcia", "novak",
    "jansen", "nielsen", "kowalski", "silva", "patel", "weber", "fischer", "brown", "dubois",
    "ferrari", "lopez",
]  # fmt: skip
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "web.de", "gmx.de", "proton.me", "acme.com"]
DOMAIN_WEIGHTS = [35, 18, 10, 10, 8, 6, 5]
BLOG = [
    "segmentation-101", "email-deliverability", "lead-scoring-guide", "black-friday-playbook",
    "gdpr-checklist", "ab-testing-myths", "welcome-series", "churn-signals", "rfm-analysis",
    "customer-journeys", "webinar-recap-q1", "product-update-march", "pricing-explained",
]  # fmt: skip
DOCS = [
    "getting-started", "api", "webhooks", "segments", "rules", "imports", "integrations",
    "sso", "billing", "limits",
]  # fmt: skip
FORMS = ["demo-request", "newsletter", "contact-sales", "webinar-signup"]
FORM_WEIGHTS = [35, 35, 15, 15]
PRODUCTS = ["starter", "pro", "team", "addon-seats", "addon-storage", "enterprise"]
PRODUCT_WEIGHTS = [35, 30, 15, 10, 7, 3]
SOURCES = ["organic", "ads", "referral", "import", "event"]

# The mix of events other than each contact's introduction (contact_updated + signed_up).
ACTIVITY_TYPES = [
    "page_viewed",
    "email_opened",
    "email_clicked",
    "contact_updated",
    "form_submitted",
    "purchased",
    "trial_started",
    "webinar_attended",
    "app_login",
    "unsubscribed",
]
ACTIVITY_WEIGHTS = [40, 25, 10, 10, 4, 4, 1.5, 1, 2.5, 1]

#: Activity weights are Pareto(ALPHA) (80/20 for ALPHA near 1.16), capped so that no single
#: contact (a bot, say) takes over a small stream.
PARETO_ALPHA = 1.2
MAX_WEIGHT = 2_000.0


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class _Picker:
    """Weighted choice by bisecting cumulative weights: faster than `rng.choices` per call."""

    def __init__(self, rng: random.Random, items: list[Any], weights: list[float]) -> None:
        self._rng = rng
        self._items = items
        self._cum = _cumulative(weights)
        self._total = self._cum[-1]

    def __call__(self) -> Any:
        return self._items[bisect.bisect_right(self._cum, self._rng.random() * self._total)]


class _Calendar:
    """Maps a fraction of all events to an instant: more traffic by day than by night, on
    weekdays than at weekends, and a business that grows by half over the period.

    The map is monotone, so events that are spread evenly over [0, 1) come out in order.
    """

    def __init__(self, start: int, days: float) -> None:
        self.start = start
        self.span = int(days * DAY_MS)
        hours = max(1, math.ceil(self.span / HOUR_MS))
        cum = [0.0]
        for h in range(hours):
            instant = datetime.fromtimestamp((start + h * HOUR_MS) / 1000, UTC)
            daily = 0.25 + math.exp(-(((instant.hour - 14) / 5.0) ** 2))
            weekly = 0.6 if instant.weekday() >= 5 else 1.0
            growth = 1.0 + 0.5 * h / hours
            cum.append(cum[-1] + daily * weekly * growth)
        self._cum = cum
        self._hours = hours

    def instant(self, fraction: float) -> int:
        target = fraction * self._cum[-1]
        h = min(bisect.bisect_right(self._cum, target) - 1, self._hours - 1)
        within = (target - self._cum[h]) / (self._cum[h + 1] - self._cum[h])
        return min(self.start + int((h + min(within, 1.0)) * HOUR_MS), self.start + self.span)


def iso(ms: int) -> str:
    """UTC milliseconds as ISO-8601 with a `Z`, milliseconds kept."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def generate_events(
    seed: int,
    contacts: int,
    events: int,
    *,
    start: int = 1_767_225_600_000,
    days: float = 180.0,
    late_fraction: float = 0.0,
) -> Iterator[dict]:
    """Yield `events` producer-shaped events for up to `contacts` contacts, in occurred_at order.

    Each contact starts with a `contact_updated` that sets its properties, then `signed_up`
    soon after; contacts arrive over the period (more early on), and their activity weights
    are heavy-tailed. About `late_fraction` of the other events are late arrivals: yielded
    where they were received, with an occurred_at minutes to hours earlier (never before
    the contact's first event). Only `events // 3` contacts fit when `events < 3 * contacts`.
    """
    if contacts < 1 or events < 0 or days <= 0 or not 0.0 <= late_fraction <= 1.0:
        raise ValueError("need contacts >= 1, events >= 0, days > 0, 0 <= late_fraction <= 1")
    rng = random.Random(seed)
    calendar = _Calendar(start, days)
    n = min(contacts, max(1, events // 3))

    # Per contact, in order of arrival: O(contacts) memory in all.
    cum_weight: list[float] = []
    introduced_at: list[int] = []
    lead_score = bytearray()
    stage = bytearray()
    unsubscribed = bytearray()
    total_weight = 0.0

    country = _Picker(rng, COUNTRIES, [c[1] for c in COUNTRIES])
    stage0 = _Picker(rng, list(range(len(STAGES))), STAGE_WEIGHTS)
    device = _Picker(rng, DEVICES, DEVICE_WEIGHTS)
    domain = _Picker(rng, DOMAINS, DOMAIN_WEIGHTS)
    activity = _Picker(rng, ACTIVITY_TYPES, ACTIVITY_WEIGHTS)
    form = _Picker(rng, FORMS, FORM_WEIGHTS)
    product = _Picker(rng, PRODUCTS, PRODUCT_WEIGHTS)

    def arrival_slot(i: int) -> int:
        # Front-loaded: a base of contacts early, then steady sign-ups, none in the last 5%.
        return int(events * 0.95 * (i / n) ** 1.3)

    def event_id() -> str:
        # UUIDv4-shaped; formatted by hand because uuid.UUID costs a third of the run.
        h = f"{rng.getrandbits(124):031x}"
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{'89ab'[int(h[15], 16) & 3]}{h[16:19]}-{h[19:]}"

    def campaign(t: int) -> str:
        r = rng.random()
        if r < 0.15:
            return "welcome"
        if r < 0.7:
            return f"newsletter-{1 + (t - start) // (7 * DAY_MS)}"
        return f"promo-{1 + (t - start) // (30 * DAY_MS)}"

    def page() -> str:
        r = rng.random()
        if r < 0.25:
            return "/"
        if r < 0.40:
            return "/pricing"
        if r < 0.55:
            return "/features"
        if r < 0.80:
            return f"/blog/{rng.choice(BLOG)}"
        if r < 0.95:
            return f"/docs/{rng.choice(DOCS)}"
        return "/contact"

    def introduce(i: int, t: int) -> dict:
        nonlocal total_weight
        weight = min(rng.paretovariate(PARETO_ALPHA), MAX_WEIGHT)
        total_weight += weight
        cum_weight.append(total_weight)
        introduced_at.append(t)
        score = min(100, int(rng.expovariate(1 / 25)))
        lead_score.append(score)
        s = stage0()
        stage.append(s)
        unsubscribed.append(0)
        code, _, cities = country()
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        properties: dict[str, Any] = {
            "country": code,
            "lead_score": score,
            "lifecycle_stage": STAGES[s],
            "age": int(rng.triangular(18, 70, 32)),
            "email": f"{first}.{last}{rng.randint(1, 999)}@{domain()}",
            "device_type": device(),
            "signed_up_at": iso(t),
        }
        if rng.random() >= 0.06:  # some never tell us their city: it stays unknown
            properties["city"] = rng.choice(cities)
        return properties

    def update(c: int) -> dict:
        properties: dict[str, Any] = {}
        r = rng.random()
        if r < 0.5:
            score = max(0, min(100, lead_score[c] + rng.choice((-1, 1)) * rng.randint(1, 15)))
            lead_score[c] = score
            properties["lead_score"] = score
        if r > 0.3 and stage[c] < len(STAGES) - 1 and rng.random() < 0.5:
            stage[c] += 1  # stages only progress
            properties["lifecycle_stage"] = STAGES[stage[c]]
        if rng.random() < 0.1:
            properties[rng.choice(("city", "device_type", "age"))] = None  # unset: unknown again
        elif rng.random() < 0.15:
            properties["device_type"] = device()
        if not properties:
            properties["lead_score"] = lead_score[c]
        return properties

    def act(c: int, t: int) -> tuple[str, dict]:
        kind = activity()
        if kind == "unsubscribed" and unsubscribed[c]:
            # Once is enough. (Mail already received may still be opened, and an active
            # contact who unsubscribes must not tilt the whole stream's mix.)
            kind = "page_viewed"
        if kind == "page_viewed":
            return kind, {"url": page()}
        if kind == "email_opened":
            return kind, {"campaign": campaign(t)}
        if kind == "email_clicked":
            return kind, {"campaign": campaign(t), "url": page()}
        if kind == "contact_updated":
            return kind, update(c)
        if kind == "form_submitted":
            return kind, {"form": form()}
        if kind == "purchased":
            amount = round(rng.lognormvariate(math.log(60), 0.7), 2)
            currency = "USD" if rng.random() < 0.3 else "EUR"
            return kind, {"amount": amount, "currency": currency, "product": product()}
        if kind == "trial_started":
            return kind, {"plan": rng.choice(("pro", "team"))}
        if kind == "webinar_attended":
            return kind, {"webinar": f"webinar-{1 + (t - start) // (14 * DAY_MS)}"}
        if kind == "app_login":
            return kind, {"platform": rng.choice(("web", "ios", "android"))}
        unsubscribed[c] = 1
        return kind, {}

    signups: deque[tuple[int, int]] = deque()  # (due slot, contact) of introduced contacts
    arrived = 0
    next_arrival = arrival_slot(0)
    for k in range(events):
        t = calendar.instant((k + rng.random()) / events)
        if signups and signups[0][0] <= k:
            _, c = signups.popleft()
            kind, properties = "signed_up", {"source": rng.choice(SOURCES)}
        elif arrived < n and next_arrival <= k:
            c = arrived
            arrived += 1
            next_arrival = arrival_slot(arrived) if arrived < n else events
            kind, properties = "contact_updated", introduce(c, t)
            signups.append((k + rng.randint(1, 3), c))
        else:
            c = bisect.bisect_right(cum_weight, rng.random() * total_weight)
            c = min(c, arrived - 1)
            kind, properties = act(c, t)
            if late_fraction and rng.random() < late_fraction:
                # Received now, happened minutes to hours ago (log-uniform 1 min .. 12 h).
                delay = int(60_000 * math.exp(rng.random() * math.log(720)))
                if t - delay > introduced_at[c]:  # never before the contact's first event
                    t -= delay
        yield {
            "event_id": event_id(),
            "contact_id": f"c-{c + 1}",
            "type": kind,
            "occurred_at": t,
            "properties": properties,
        }


def to_new_event(event: dict) -> NewEvent:
    """A generated event as the store takes it: one stream per contact."""
    return NewEvent(
        event_id=event["event_id"],
        stream="contact:" + event["contact_id"],
        type=event["type"],
        data=event["properties"],
        occurred_at=event["occurred_at"],
    )


def main(argv: list[str] | None = None) -> None:
    """Write generated events to stdout as JSON lines."""
    parser = argparse.ArgumentParser(description="Generate a realistic marketing event stream.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=180.0)
    parser.add_argument("--late", type=float, default=0.0, help="fraction of late arrivals")
    args = parser.parse_args(argv)
    write = sys.stdout.write
    for event in generate_events(
        args.seed, args.contacts, args.events, days=args.days, late_fraction=args.late
    ):
        write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
