"""Valid rules and the exact AST each must give (shared by the grammar tests)."""

from __future__ import annotations

from grammar import ast as a
from tests.grammar.builders import (
    AND,
    NEVER,
    NOT,
    OR,
    agg,
    cmp,
    count,
    date,
    dur,
    ev,
    rec,
    seg,
    sel,
    text,
)

A1, B2, C3 = cmp("a", "EQ", 1), cmp("b", "EQ", 2), cmp("c", "EQ", 3)

VALID: list[tuple[str, a.Condition]] = [
    # ---- every sentence of RULES.md ----
    (
        "opened email within 7 days and not purchased within 90 days",
        AND(ev("email_opened", window=dur(7)), NOT(ev("purchased", window=dur(90)))),
    ),
    (
        'visited page where url contains "/pricing" at least 3 times within 30 days',
        ev(
            "page_viewed",
            count("AT_LEAST", 3),
            dur(30),
            where=text("url", "CONTAINS", "/pricing"),
        ),
    ),
    (
        'clicked email within 14 days or submitted form "demo-request" within 30 days',
        OR(
            ev("email_clicked", window=dur(14)),
            ev("form_submitted", window=dur(30), where=cmp("form", "EQ", "demo-request")),
        ),
    ),
    (
        "purchased where amount > 100 at least 2 times within 90 days",
        ev("purchased", count("AT_LEAST", 2), dur(90), where=cmp("amount", "GT", 100)),
    ),
    ("has never purchased", ev("purchased", NEVER)),
    ("not opened email within 30 days", NOT(ev("email_opened", window=dur(30)))),
    (
        "total amount of purchased within 90 days >= 500",
        agg("TOTAL", "amount", sel("purchased"), dur(90), "GE", 500),
    ),
    (
        "average amount of purchased >= 40",
        agg("AVERAGE", "amount", sel("purchased"), None, "GE", 40),
    ),
    (
        "last purchased more than 30 days ago",
        rec("LAST", sel("purchased"), "MORE_THAN_AGO", dur(30)),
    ),
    ("last activity more than 60 days ago", rec("LAST", sel(None), "MORE_THAN_AGO", dur(60))),
    ("first purchased within 7 days", rec("FIRST", sel("purchased"), "WITHIN", dur(7))),
    ('performed "trial_started" within 14 days', ev("trial_started", window=dur(14))),
    ('performed "webinar_attended" exactly 2 times', ev("webinar_attended", count("EXACTLY", 2))),
    (
        'country is "DE" and age between 18 and 34',
        AND(cmp("country", "EQ", "DE"), a.Between("age", 18, 34)),
    ),
    (
        'lifecycle_stage in ("lead", "mql") and lead_score >= 50',
        AND(a.InList("lifecycle_stage", ("lead", "mql")), cmp("lead_score", "GE", 50)),
    ),
    ('email ends with "@acme.com"', text("email", "ENDS_WITH", "@acme.com")),
    ("city is unknown", a.Known("city", False)),
    ('device_type is not "mobile"', cmp("device_type", "NE", "mobile")),
    (
        "signed_up_at after 2026-01-01",
        a.DateCompare("signed_up_at", a.DateOp.AFTER, date(2026, 1, 1)),
    ),
    ("signed_up_at more than 30 days ago", a.Ago("signed_up_at", a.AgoOp.MORE_THAN, dur(30))),
    (
        'in segment "engaged" and not in segment "customers"',
        AND(seg("engaged"), NOT(seg("customers"))),
    ),
    (
        "(opened email within 7 days or clicked email within 7 days)"
        ' and country in ("DE", "AT", "CH")',
        AND(
            OR(ev("email_opened", window=dur(7)), ev("email_clicked", window=dur(7))),
            a.InList("country", ("DE", "AT", "CH")),
        ),
    ),
    # ---- keywords, verbs and units in any case ----
    ("OPENED EMAIL WITHIN 7 DAYS", ev("email_opened", window=dur(7))),
    ("Opened  Email In The Last 7 Days", ev("email_opened", window=dur(7))),
    ('Country IS "DE"', cmp("Country", "EQ", "DE")),
    ("HAS NEVER Purchased", ev("purchased", NEVER)),
    ("Signed Up within 1 Week", ev("signed_up", window=dur(1, "weeks"))),
    # ---- windows ----
    ("opened email in the last 7 days", ev("email_opened", window=dur(7))),
    ("opened email less than 7 days ago", ev("email_opened", window=dur(7))),
    ("purchased within 1 second", ev("purchased", window=dur(1, "seconds"))),
    ("purchased within 90 minutes", ev("purchased", window=dur(90, "minutes"))),
    ("purchased within 48 hours", ev("purchased", window=dur(48, "hours"))),
    ("purchased within 1 hour", ev("purchased", window=dur(1, "hours"))),
    ("purchased within 2 weeks", ev("purchased", window=dur(2, "weeks"))),
    ("purchased within 3650 days", ev("purchased", window=dur(3650))),
    # ---- counts ----
    ("purchased at least 3 times", ev("purchased", count("AT_LEAST", 3))),
    ("purchased at most 3 times", ev("purchased", count("AT_MOST", 3))),
    ("purchased exactly 1 time", ev("purchased", count("EXACTLY", 1))),
    ("purchased more than 2 times", ev("purchased", count("MORE_THAN", 2))),
    ("purchased fewer than 5 times", ev("purchased", count("FEWER_THAN", 5))),
    ("purchased less than 5 times", ev("purchased", count("FEWER_THAN", 5))),
    ("purchased exactly 0 times", ev("purchased", NEVER)),
    ("purchased at most 0 times", ev("purchased", count("AT_MOST", 0))),
    ("purchased more than 0 times", ev("purchased", count("MORE_THAN", 0))),
    ("purchased at least 1 time", ev("purchased")),
    ("purchased exactly 2 TIMES", ev("purchased", count("EXACTLY", 2))),
    (
        "purchased within 30 days at least 2 times",
        ev("purchased", count("AT_LEAST", 2), dur(30)),
    ),
    ("never purchased within 30 days", ev("purchased", NEVER, dur(30))),
    (
        'has never opened email "welcome" within 30 days',
        ev("email_opened", NEVER, dur(30), where=cmp("campaign", "EQ", "welcome")),
    ),
    ("not has never purchased", NOT(ev("purchased", NEVER))),
    # ---- verbs and event types ----
    ("clicked email", ev("email_clicked")),
    ("visited page", ev("page_viewed")),
    ("submitted form", ev("form_submitted")),
    ("signed up", ev("signed_up")),
    ("unsubscribed", ev("unsubscribed")),
    ('performed "email_opened"', ev("email_opened")),
    ('performed "app.login:v2"', ev("app.login:v2")),
    ('opened email "welcome"', ev("email_opened", where=cmp("campaign", "EQ", "welcome"))),
    ('visited page "/pricing"', ev("page_viewed", where=cmp("url", "EQ", "/pricing"))),
    (
        'clicked email "promo" where link contains "buy"',
        ev(
            "email_clicked",
            where=AND(cmp("campaign", "EQ", "promo"), text("link", "CONTAINS", "buy")),
        ),
    ),
    (
        'submitted form where form is "demo-request"',
        ev("form_submitted", where=cmp("form", "EQ", "demo-request")),
    ),
    # ---- event filters ----
    (
        'purchased where (amount > 100 and currency is "EUR") within 30 days',
        ev(
            "purchased",
            window=dur(30),
            where=AND(cmp("amount", "GT", 100), cmp("currency", "EQ", "EUR")),
        ),
    ),
    (
        'purchased where (amount > 100 or currency is "EUR")',
        ev("purchased", where=OR(cmp("amount", "GT", 100), cmp("currency", "EQ", "EUR"))),
    ),
    (
        'purchased where not currency is "EUR"',
        ev("purchased", where=NOT(cmp("currency", "EQ", "EUR"))),
    ),
    (
        'purchased where (not currency is "EUR" and amount >= 10)',
        ev("purchased", where=AND(NOT(cmp("currency", "EQ", "EUR")), cmp("amount", "GE", 10))),
    ),
    (
        "purchased where amount between 10 and 20",
        ev("purchased", where=a.Between("amount", 10, 20)),
    ),
    (
        'purchased where currency in ("EUR", "USD") at least 2 times',
        ev("purchased", count("AT_LEAST", 2), where=a.InList("currency", ("EUR", "USD"))),
    ),
    ("purchased where coupon is known", ev("purchased", where=a.Known("coupon", True))),
    (
        'visited page where url starts with "/blog" and country is "DE"',
        AND(
            ev("page_viewed", where=text("url", "STARTS_WITH", "/blog")),
            cmp("country", "EQ", "DE"),
        ),
    ),
    (
        "purchased where ((a is 1 and b is 2) and c is 3)",
        ev("purchased", where=AND(AND(A1, B2), C3)),
    ),
    (
        'purchased where plan is "pro" and not purchased where plan is "free"',
        AND(
            ev("purchased", where=cmp("plan", "EQ", "pro")),
            NOT(ev("purchased", where=cmp("plan", "EQ", "free"))),
        ),
    ),
    # ---- aggregates ----
    (
        "total amount of purchased >= 500",
        agg("TOTAL", "amount", sel("purchased"), None, "GE", 500),
    ),
    (
        "average amount of purchased within 30 days > 40.5",
        agg("AVERAGE", "amount", sel("purchased"), dur(30), "GT", 40.5),
    ),
    (
        "minimum amount of purchased < 10",
        agg("MINIMUM", "amount", sel("purchased"), None, "LT", 10),
    ),
    (
        "maximum amount of purchased <= 1000",
        agg("MAXIMUM", "amount", sel("purchased"), None, "LE", 1000),
    ),
    ("total amount of purchased is 0", agg("TOTAL", "amount", sel("purchased"), None, "EQ", 0)),
    (
        "total amount of purchased is not 0",
        agg("TOTAL", "amount", sel("purchased"), None, "NE", 0),
    ),
    (
        'total amount of purchased where currency is "EUR" within 90 days >= 500',
        agg(
            "TOTAL",
            "amount",
            sel("purchased", cmp("currency", "EQ", "EUR")),
            dur(90),
            "GE",
            500,
        ),
    ),
    (
        'maximum price of performed "order_placed" = 99.99',
        agg("MAXIMUM", "price", sel("order_placed"), None, "EQ", 99.99),
    ),
    (
        "total amount of purchased in the last 90 days != -5",
        agg("TOTAL", "amount", sel("purchased"), dur(90), "NE", -5),
    ),
    # ---- recency ----
    ("last purchased less than 7 days ago", rec("LAST", sel("purchased"), "WITHIN", dur(7))),
    ("last purchased within 7 days", rec("LAST", sel("purchased"), "WITHIN", dur(7))),
    ("last purchased in the last 7 days", rec("LAST", sel("purchased"), "WITHIN", dur(7))),
    (
        "first purchased more than 30 days ago",
        rec("FIRST", sel("purchased"), "MORE_THAN_AGO", dur(30)),
    ),
    ("first purchased less than 30 days ago", rec("FIRST", sel("purchased"), "WITHIN", dur(30))),
    (
        'last opened email "welcome" more than 3 days ago',
        rec(
            "LAST",
            sel("email_opened", cmp("campaign", "EQ", "welcome")),
            "MORE_THAN_AGO",
            dur(3),
        ),
    ),
    (
        'last activity where channel is "web" within 1 day',
        rec("LAST", sel(None, cmp("channel", "EQ", "web")), "WITHIN", dur(1)),
    ),
    ("first activity within 2 weeks", rec("FIRST", sel(None), "WITHIN", dur(2, "weeks"))),
    # ---- property operators ----
    ('country = "DE"', cmp("country", "EQ", "DE")),
    ('country != "DE"', cmp("country", "NE", "DE")),
    ("lead_score > 50", cmp("lead_score", "GT", 50)),
    ("lead_score >= 50", cmp("lead_score", "GE", 50)),
    ("lead_score < 50", cmp("lead_score", "LT", 50)),
    ("lead_score <= 50", cmp("lead_score", "LE", 50)),
    ("lead_score > -5", cmp("lead_score", "GT", -5)),
    ("lead_score > 2.5", cmp("lead_score", "GT", 2.5)),
    ("temperature < -0.5", cmp("temperature", "LT", -0.5)),
    ("revenue >= 1e6", cmp("revenue", "GE", 1_000_000.0)),
    ("age between 18.5 and 34", a.Between("age", 18.5, 34)),
    ('country not in ("DE", "AT")', a.InList("country", ("DE", "AT"), negated=True)),
    ('score in (1, 2.5, true, "x",)', a.InList("score", (1, 2.5, True, "x"))),
    ('email contains "@"', text("email", "CONTAINS", "@")),
    ('email starts with "sales"', text("email", "STARTS_WITH", "sales")),
    ("city is known", a.Known("city", True)),
    ("city is not known", a.Known("city", False)),
    ("city is not unknown", a.Known("city", True)),
    (
        "signed_up_at before 2026-01-01",
        a.DateCompare("signed_up_at", a.DateOp.BEFORE, date(2026, 1, 1)),
    ),
    ("is_customer is true", cmp("is_customer", "EQ", True)),
    ("is_customer is FALSE", cmp("is_customer", "EQ", False)),
    (
        "signed_up_at less than 2 hours ago",
        a.Ago("signed_up_at", a.AgoOp.LESS_THAN, dur(2, "hours")),
    ),
    ("signed_up_at is 2026-01-01", cmp("signed_up_at", "EQ", date(2026, 1, 1))),
    ("signed_up_at > 2026-01-01T09:00:00Z", cmp("signed_up_at", "GT", date(2026, 1, 1, 9))),
    (
        "signed_up_at between 2026-01-01 and 2026-12-31",
        a.Between("signed_up_at", date(2026, 1, 1), date(2026, 12, 31)),
    ),
    # ---- dates and instants ----
    ("x after 2026-01-01T09:00:00Z", a.DateCompare("x", a.DateOp.AFTER, date(2026, 1, 1, 9))),
    (
        "x after 2026-01-01T09:00:00.250Z",
        a.DateCompare("x", a.DateOp.AFTER, date(2026, 1, 1, 9, ms=250)),
    ),
    (
        "x after 2026-01-01T11:00:00+02:00",
        a.DateCompare("x", a.DateOp.AFTER, date(2026, 1, 1, 9)),
    ),
    ("x after 2026-01-01T09:00", a.DateCompare("x", a.DateOp.AFTER, date(2026, 1, 1, 9))),
    (
        "x before 1999-12-31T23:59:59.999-05:00",
        a.DateCompare("x", a.DateOp.BEFORE, date(2000, 1, 1, 4, 59, 59, ms=999)),
    ),
    ("x after 2026-01-01t09:00:00z", a.DateCompare("x", a.DateOp.AFTER, date(2026, 1, 1, 9))),
    # ---- quoted text and escapes ----
    (r'name is "say \"hi\""', cmp("name", "EQ", 'say "hi"')),
    (r'path is "C:\\temp"', cmp("path", "EQ", "C:\\temp")),
    ("name is 'single'", cmp("name", "EQ", "single")),
    (r"name is 'it\'s'", cmp("name", "EQ", "it's")),
    (r'note contains "a\nb"', text("note", "CONTAINS", "a\nb")),
    (r'path is "C:\path"', cmp("path", "EQ", "C:\\path")),
    ('city is "Köln"', cmp("city", "EQ", "Köln")),
    ('name is ""', cmp("name", "EQ", "")),
    # ---- segments ----
    ('in segment "Engaged leads"', seg("Engaged leads")),
    ("in segment engaged-leads", seg("engaged-leads")),
    ('not in segment "x"', NOT(seg("x"))),
    ('IN SEGMENT "VIP"', seg("VIP")),
    # ---- precedence and parentheses ----
    ("a is 1 or b is 2 and c is 3", OR(A1, AND(B2, C3))),
    ("a is 1 and b is 2 or c is 3", OR(AND(A1, B2), C3)),
    ("not a is 1 and b is 2", AND(NOT(A1), B2)),
    ("not (a is 1 and b is 2)", NOT(AND(A1, B2))),
    ("(a is 1 and b is 2) and c is 3", AND(AND(A1, B2), C3)),
    ("a is 1 and (b is 2 and c is 3)", AND(A1, AND(B2, C3))),
    ("a is 1 and b is 2 and c is 3", AND(A1, B2, C3)),
    ("a is 1 or b is 2 or c is 3", OR(A1, B2, C3)),
    ("(a is 1 or b is 2) or c is 3", OR(OR(A1, B2), C3)),
    ("((a is 1))", A1),
    ("not not a is 1", NOT(NOT(A1))),
    ("(a is 1 or b is 2) and not (c is 3 or a is 1)", AND(OR(A1, B2), NOT(OR(C3, A1)))),
    ('not in segment "a" or in segment "b"', OR(NOT(seg("a")), seg("b"))),
    # ---- lines and spaces ----
    (
        'opened email\n  within 7 days\nand country is "DE"',
        AND(ev("email_opened", window=dur(7)), cmp("country", "EQ", "DE")),
    ),
    ("  purchased   within   7   days  ", ev("purchased", window=dur(7))),
    ("purchased\twithin\t7\tdays", ev("purchased", window=dur(7))),
    # ---- words that are keywords elsewhere, used as property names ----
    ('segment is "x"', cmp("segment", "EQ", "x")),
    ("within > 3", cmp("within", "GT", 3)),
    ("days is 3", cmp("days", "EQ", 3)),
    (
        "total total of purchased > 1",
        agg("TOTAL", "total", sel("purchased"), None, "GT", 1),
    ),
    (
        "purchased_at after 2026-01-01",
        a.DateCompare("purchased_at", a.DateOp.AFTER, date(2026, 1, 1)),
    ),
]
