"""The segment rule language: text to a typed AST, canonical text, JSON, friendly errors.

    parse(text) -> Condition          raises RuleError(problems)
    format_rule(ast) -> str           parse(format_rule(ast)) == ast
    notes(ast, text) -> [Problem]     readings of a valid rule that may not be the ones meant
    to_json(ast) / from_json(data)    from_json(to_json(ast)) == ast

Pure: nothing here reads or writes anything but ``segment.lark``, loaded on first use.
Modules: ``segment.lark`` (the grammar), ``vocabulary`` (the verb table), ``parser``
(text to AST), ``checks`` (meaning and limits), ``diagnose`` (syntax errors in plain
words), ``formatter``, ``serialize``, ``literals`` (text, numbers, dates), ``errors``.

Language notes (what RULES.md leaves open, decided here)
--------------------------------------------------------
- Keywords, verbs and units are case-insensitive; property names, segment names, event
  types and quoted text keep their case (text comparisons ignore case when evaluated).
- Keywords are reserved only where the parser could take them. A condition cannot start
  with a property named like a word that starts a condition there (`not`, `has`, `never`,
  `last`, `first`, `total`, `average`, `minimum`, `maximum`, `in`, `performed`,
  `activity`, and the one-word verbs `purchased` and `unsubscribed`); anywhere else, such
  as `segment is "x"` or after `total`, the word is a property name.
- `property "<name>"` names any property where a bare name may stand: one that is not a
  word (`property "lead score" >= 50`, `total property "order value" of purchased > 9`)
  or is a keyword there (`property "total" > 1`). The canonical text writes a name bare
  wherever the parser reads it as a name, quoted elsewhere; `property` alone is a property
  named property. A name with `"` or `\\` cannot be named (SQLite's JSON paths cannot
  spell it); control characters and names over 200 characters are refused as at ingest.
- Event clauses: `<event> ["text"] [where ...] [count] [window]`, the count and the window
  in either order. Windows: `within N units`, `in the last N units`, `less than N units
  ago`. Counts: `at least|at most|exactly|more than|fewer than K time(s)`; `less than K
  times` is read as `fewer than K times`; `once` and `twice` are not counts (the error
  says what to write). `never X` and `has never X` are `exactly 0 times`, with an optional
  window: `has never opened email within 30 days` means none in the last 30 days. `has`
  is only accepted before `never`.
- `where` takes one property condition, `not` and one, or a group in parentheses; an
  `and`/`or` after it belongs to the rule (`notes` points such a place out, with the
  parentheses that would put it in the filter). The shorthand text and a `where` combine as
  And(shorthand, filter). A shorthand on a verb without a shorthand property
  (`purchased "x"`) is an error. `<prop> ... ago` is refused inside `where`.
- `performed "X"` for a type of the verb table is the same AST as the verb, and the
  formatter writes the verb. `activity` is only allowed in `last activity` and
  `first activity` (with or without `where`).
- Recency: `last|first <event>` with `more than N units ago`, or with a window (`within`,
  `in the last`, `less than N units ago`), which are all RecencyOp.WITHIN.
- Properties take `more than|less than N units ago` but not `within`, so that a misspelt
  verb (`purchsed within 7 days`) is an error rather than a condition on a property.
  `is not known` means `is unknown`, `is not unknown` means `is known`. `is`/`=` with a
  date is an equality on the instant; the orderings take numbers or dates.
- Literals: text in double or single quotes, on one line, with the escapes `\\"`, `\\'`,
  `\\\\`, `\\n`, `\\r`, `\\t` (any other backslash is kept as written, so a pasted `C:\\temp`
  means what it shows); integers and decimals, negative allowed, an exponent allowed
  (`1e6` is a decimal); `true`, `false`; dates `2026-01-01` (midnight UTC) and instants
  `2026-01-01T09:00`, `...:00Z`, `...:00.250Z`, `...:00+02:00`, as UTC milliseconds (no
  zone means UTC; more than 3 decimals of a second is an error). Counts and amounts of
  time are whole numbers.
- `in segment "name"`, or without quotes for names made of letters, digits, `_` and `-`
  (`in segment engaged-leads`). `not in segment "x"` is Not(InSegment).
- A chain `a and b and c` is one And of three; parentheses that put an And inside an And
  (or an Or inside an Or) are kept as written, and the formatter writes them back.
- Limits (grammar.checks): 4,000 characters; parentheses and `not` nested 10 deep (the
  parentheses of `where (...)` count); 50 conditions, counting those inside `where` and
  each shorthand text; windows and durations from 1 unit to 3,650 days.
- Canonical text: lower-case keywords; `is`/`is not` for = and !=; symbols for the
  orderings; `within` for every window; the unit and `time` in the singular when the
  number is 1; counts left out when they are `at least 1`; `has never` for zero times;
  text in double quotes; dates as `2026-01-01` at midnight UTC, otherwise instants in UTC
  with `Z` (and `.250` when there are milliseconds).
- Errors: every syntax problem is reported (up to 20), each with its line and column,
  what could have come there and, where one helps, a hint; a problem right after another,
  with nothing read in between, is left out as the same mistake seen twice. Problems of
  meaning are reported together once the rule parses.
"""

from grammar.ast import contact_properties, event_types, longest_window, segment_refs
from grammar.errors import Problem, RuleError
from grammar.formatter import format_rule
from grammar.notes import notes
from grammar.parser import parse
from grammar.serialize import from_json, to_json

__all__ = [
    "Problem",
    "RuleError",
    "contact_properties",
    "event_types",
    "format_rule",
    "from_json",
    "longest_window",
    "notes",
    "parse",
    "segment_refs",
    "to_json",
]
