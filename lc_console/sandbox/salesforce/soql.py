"""SOQL: parse, check against the schema and the user's field-level security, run.

Supported: SELECT fields / relationship fields one level up (Account.Name) / COUNT() /
COUNT(field); FROM one object; WHERE with = != <> < > <= >= IN NOT IN LIKE INCLUDES EXCLUDES,
AND / OR / NOT and parentheses (mixing AND and OR without parentheses is an error, as in
Salesforce), NULL, TRUE / FALSE, numbers, strings, date and datetime literals, TODAY /
YESTERDAY / TOMORROW / LAST_N_DAYS:n / NEXT_N_DAYS:n / THIS_MONTH / LAST_MONTH / THIS_YEAR;
ORDER BY with ASC / DESC and NULLS FIRST / LAST; LIMIT; OFFSET.
Errors are ApiError MALFORMED_QUERY / INVALID_FIELD / INVALID_TYPE with Salesforce's message
layout (query line, caret, "ERROR at Row:r:Column:c", text).
Equality on text is case-insensitive, as in Salesforce. Top-level `=` / `IN` conditions on Id,
unique, external-id and idLookup fields (Email) use the table indexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lc_console.sandbox.salesforce import ids
from lc_console.sandbox.salesforce import values as vals
from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.schema import FieldDef, SObjectDef

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.org import Access, Org

KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "NULL", "TRUE", "FALSE",
    "ORDER", "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "INCLUDES",
    "EXCLUDES", "GROUP", "HAVING", "WITH", "FOR", "USING",
}  # fmt: skip
DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "THIS_MONTH", "LAST_MONTH", "NEXT_MONTH",
                 "THIS_YEAR", "LAST_YEAR", "THIS_WEEK", "LAST_WEEK"}  # fmt: skip
N_DATE_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS"}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)
_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\",
             "%": "\\%", "_": "\\_"}  # fmt: skip

NO_SUCH_COLUMN = (
    "No such column '{name}' on entity '{obj}'. If you are attempting to use a custom field, be "
    "sure to append the '__c' after the custom field name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)
BAD_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a "
    "custom relationship, be sure to append the '__r' after the custom relationship name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
NO_SUCH_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
    "call for the appropriate names."
)


@dataclass(slots=True)
class Token:
    kind: str  # string | date | datetime | number | op | punct | ident | end
    text: str
    pos: int
    value: Any = None

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise _malformed(text, pos, f"unexpected token: '{text[pos]}'")
        kind = m.lastgroup or ""
        tok_text = m.group(0)
        if kind != "ws":
            tok = Token(kind, tok_text, pos)
            if kind == "string":
                tok.value = re.sub(r"\\(.)", lambda mm: _UNESCAPE.get(mm.group(1), mm.group(1)),
                                   tok_text[1:-1])  # fmt: skip
            out.append(tok)
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


def _location(text: str, pos: int) -> tuple[str, int, int]:
    before = text[:pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    return line, row, pos - line_start + 1


def _error(code: str, text: str, pos: int, message: str) -> ApiError:
    line, row, col = _location(text, pos)
    return ApiError(code, f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}")


def _malformed(text: str, pos: int, message: str) -> ApiError:
    return _error("MALFORMED_QUERY", text, pos, message)


# -- AST ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FieldRef:
    path: str  # as written
    pos: int
    relationship: FieldDef | None = None  # the lookup when the path goes one level up
    targets: list[SObjectDef] = field(default_factory=list)  # parent objects (polymorphic: >1)
    field: FieldDef | None = None  # the field (on the object, or on targets[0])
    output_name: str = ""  # key in the record JSON (relationship name or field name)


@dataclass(slots=True)
class Cond:
    kind: str  # and | or | not | cmp
    children: list[Cond] = field(default_factory=list)
    ref: FieldRef | None = None
    op: str = ""
    value: Any = None  # literal (or list for IN), already coerced
    pos: int = 0


@dataclass(slots=True)
class Query:
    text: str
    sobject: SObjectDef
    fields: list[FieldRef]
    count_only: bool = False
    count_field: FieldRef | None = None
    where: Cond | None = None
    order: list[tuple[FieldRef, bool, bool]] = field(default_factory=list)  # ref, desc, nulls_last
    limit: int | None = None
    offset: int = 0


# -- parser ----------------------------------------------------------------------------------------


class Parser:
    def __init__(self, text: str, org: Org, acc: Access, now_ms: int) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.org = org
        self.acc = acc
        self.now_ms = now_ms
        self.obj: SObjectDef | None = None

    # token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.upper in words

    def expect_kw(self, word: str) -> Token:
        if not self.at_kw(word):
            raise self.unexpected()
        return self.next()

    def expect_punct(self, p: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != p:
            raise self.unexpected()
        return self.next()

    def unexpected(self, tok: Token | None = None) -> ApiError:
        t = tok or self.tok
        if t.kind == "end":
            return _malformed(self.text, max(0, t.pos - 1), "unexpected token: <EOF>")
        return _malformed(self.text, t.pos, f"unexpected token: {t.text}")

    # grammar
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        select_start = self.i
        # find FROM first: field checks need the object
        depth = 0
        j = self.i
        while self.toks[j].kind != "end":
            t = self.toks[j]
            if t.kind == "punct" and t.text == "(":
                depth += 1
            elif t.kind == "punct" and t.text == ")":
                depth -= 1
            elif depth == 0 and t.kind == "ident" and t.upper == "FROM":
                break
            j += 1
        if self.toks[j].kind == "end":
            k = select_start
            while self.toks[k].kind == "ident":
                k += 1
                if self.toks[k].kind == "punct" and self.toks[k].text in ",()":
                    k += 1
                    continue
                break
            raise self.unexpected(self.toks[k])
        obj_tok = self.toks[j + 1]
        if obj_tok.kind != "ident" or "." in obj_tok.text:
            raise self.unexpected(obj_tok)
        obj = self.org.schema.get(obj_tok.text)
        if obj is None or obj.platform_event or not obj.queryable or not self.org.can_object(self.acc, obj, "read"):
            raise _error("INVALID_TYPE", self.text, obj_tok.pos, NO_SUCH_TYPE.format(name=obj_tok.text))
        self.obj = obj
        q = Query(self.text, obj, [])
        if self.at_kw("COUNT") and self.toks[self.i + 1].text == "(":
            self.next()
            self.expect_punct("(")
            if self.tok.kind == "punct" and self.tok.text == ")":
                q.count_only = True
            else:
                q.count_field = self.field_ref(self.next())
            self.expect_punct(")")
        else:
            while True:
                t = self.next()
                if t.kind != "ident" or t.upper in KEYWORDS - {"FIRST", "LAST"}:
                    raise self.unexpected(t)
                if self.tok.kind == "punct" and self.tok.text == "(":
                    raise _malformed(self.text, t.pos, f"unexpected token: {t.text}"
                                     if t.upper != "SELECT" else "nested queries are not supported")  # fmt: skip
                ref = self.field_ref(t)
                if not any(r.path.lower() == ref.path.lower() for r in q.fields):
                    q.fields.append(ref)
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.next()
                    continue
                break
        if not self.at_kw("FROM"):
            raise self.unexpected()
        self.next()
        self.next()  # object name
        if self.tok.kind == "ident" and self.tok.upper not in KEYWORDS:
            self.next()  # alias
        if self.at_kw("USING"):
            raise self.unexpected()
        if self.at_kw("WHERE"):
            self.next()
            q.where = self.condition()
        if self.at_kw("WITH"):
            raise self.unexpected()
        if self.at_kw("GROUP"):
            raise _malformed(self.text, self.tok.pos, "GROUP BY is not supported by this sandbox")
        if self.at_kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            while True:
                t = self.next()
                if t.kind != "ident":
                    raise self.unexpected(t)
                ref = self.field_ref(t)
                desc = False
                if self.at_kw("ASC", "DESC"):
                    desc = self.next().upper == "DESC"
                nulls_last = desc
                if self.at_kw("NULLS"):
                    self.next()
                    if not self.at_kw("FIRST", "LAST"):
                        raise self.unexpected()
                    nulls_last = self.next().upper == "LAST"
                q.order.append((ref, desc, nulls_last))
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.next()
                    continue
                break
        if self.at_kw("LIMIT"):
            self.next()
            t = self.next()
            if t.kind != "number" or not t.text.isdigit():
                raise self.unexpected(t)
            q.limit = int(t.text)
        if self.at_kw("OFFSET"):
            self.next()
            t = self.next()
            if t.kind != "number" or not t.text.isdigit():
                raise self.unexpected(t)
            q.offset = int(t.text)
            if q.offset > 2000:
                raise ApiError("NUMBER_OUTSIDE_VALID_RANGE",
                               f"Maximum SOQL offset allowed is 2000")  # noqa: F541
        if self.at_kw("FOR"):
            self.next()
            if not self.at_kw("VIEW", "REFERENCE", "UPDATE"):
                raise self.unexpected()
            self.next()
        if self.tok.kind != "end":
            raise self.unexpected()
        return q

    def field_ref(self, t: Token) -> FieldRef:
        assert self.obj is not None
        obj = self.obj
        parts = t.text.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.name.lower() and obj.field_by_relationship(parts[0]) is None:
            parts = parts[1:]
        ref = FieldRef(t.text, t.pos)
        if len(parts) == 1:
            f = obj.field(parts[0])
            if f is None or not self.org.field_visible(self.acc, obj, f):
                raise _error("INVALID_FIELD", self.text, t.pos,
                             NO_SUCH_COLUMN.format(name=parts[0], obj=obj.name))  # fmt: skip
            ref.field = f
            ref.output_name = f.name
            return ref
        if len(parts) > 2:
            raise _malformed(self.text, t.pos,
                             "This sandbox supports relationship fields one level up only")  # fmt: skip
        rel = obj.field_by_relationship(parts[0])
        if rel is None or not self.org.field_visible(self.acc, obj, rel):
            raise _error("INVALID_FIELD", self.text, t.pos, BAD_RELATIONSHIP.format(name=parts[0]))
        targets = [o for o in (self.org.schema.get(n) for n in rel.reference_to) if o is not None]
        found: FieldDef | None = None
        for target in targets:
            f = target.field(parts[1])
            if f is not None and self.org.field_visible(self.acc, target, f):
                found = f
                break
        if found is None:
            shown = targets[0].name if len(targets) == 1 else "Name"
            raise _error("INVALID_FIELD", self.text, t.pos,
                         NO_SUCH_COLUMN.format(name=parts[1], obj=shown))  # fmt: skip
        ref.relationship = rel
        ref.targets = targets
        ref.field = found
        ref.output_name = rel.relationship_name or parts[0]
        return ref

    def condition(self) -> Cond:
        left = self.conjunction()
        if self.at_kw("OR"):
            if left.kind == "and":
                raise self.unexpected()
            parts = [left]
            while self.at_kw("OR"):
                self.next()
                nxt = self.unary()
                parts.append(nxt)
                if self.at_kw("AND"):
                    raise self.unexpected()
            return Cond("or", parts)
        return left

    def conjunction(self) -> Cond:
        first = self.unary()
        if not self.at_kw("AND"):
            return first
        parts = [first]
        while self.at_kw("AND"):
            self.next()
            parts.append(self.unary())
        if self.at_kw("OR"):
            raise self.unexpected()
        return Cond("and", parts)

    def unary(self) -> Cond:
        if self.at_kw("NOT"):
            self.next()
            return Cond("not", [self.unary()])
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Cond:
        t = self.next()
        if t.kind != "ident" or t.upper in KEYWORDS:
            raise self.unexpected(t)
        ref = self.field_ref(t)
        f = ref.field
        assert f is not None
        if self.at_kw("NOT"):
            self.next()
            if not self.at_kw("IN"):
                raise self.unexpected()
            self.next()
            return Cond("cmp", ref=ref, op="not in", value=self.value_list(f), pos=t.pos)
        if self.at_kw("IN"):
            self.next()
            return Cond("cmp", ref=ref, op="in", value=self.value_list(f), pos=t.pos)
        if self.at_kw("INCLUDES", "EXCLUDES"):
            op = self.next().upper.lower()
            if f.type != "multipicklist":
                raise _malformed(self.text, t.pos, f"{op} can only be used with multi-select picklists")
            vals_ = self.value_list(f)
            return Cond("cmp", ref=ref, op=op, value=[str(v) for v in vals_], pos=t.pos)
        if self.at_kw("LIKE"):
            self.next()
            lt = self.next()
            if lt.kind != "string":
                raise _malformed(self.text, lt.pos, f"unexpected token: {lt.text}")
            if f.type not in vals.TEXT_TYPES and f.type not in ("id", "reference"):
                raise _error("INVALID_FIELD", self.text, t.pos,
                             f"invalid operator on {f.type} field: LIKE")  # fmt: skip
            return Cond("cmp", ref=ref, op="like", value=_like_regex(lt.value), pos=t.pos)
        if self.tok.kind != "op":
            raise self.unexpected()
        op = self.next().text
        op = "!=" if op == "<>" else op
        value = self.literal(f, ref)
        if value is None and op not in ("=", "!="):
            raise _malformed(self.text, self.toks[self.i - 1].pos, "unexpected token: null")
        return Cond("cmp", ref=ref, op=op, value=value, pos=t.pos)

    def value_list(self, f: FieldDef) -> list[Any]:
        self.expect_punct("(")
        out = []
        if self.at_kw("SELECT"):
            raise _malformed(self.text, self.tok.pos, "semi-join subqueries are not supported by this sandbox")
        while True:
            out.append(self.literal(f, None))
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.next()
                continue
            break
        self.expect_punct(")")
        return out

    def literal(self, f: FieldDef, ref: FieldRef | None) -> Any:
        t = self.next()
        ftype = f.type
        if t.kind == "ident":
            word = t.upper
            if word == "NULL":
                return None
            if word in ("TRUE", "FALSE"):
                if ftype != "boolean":
                    raise self._type_error(t, f)
                return word == "TRUE"
            if word in DATE_LITERALS or word in N_DATE_LITERALS:
                if ftype not in ("date", "datetime"):
                    raise self._type_error(t, f)
                n = 0
                if word in N_DATE_LITERALS:
                    self.expect_punct(":")
                    nt = self.next()
                    if nt.kind != "number" or not nt.text.isdigit():
                        raise self.unexpected(nt)
                    n = int(nt.text)
                return DateRange.of(word, n, self.now_ms, ftype)
            raise self.unexpected(t)
        if t.kind == "string":
            if ftype in ("boolean", "int", "double", "currency", "percent", "date", "datetime"):
                raise self._type_error(t, f, quoted=True)
            if ftype in ("id", "reference"):
                rid = ids.try_normalize(t.value)
                if rid is None and t.value != "":
                    raise _error("INVALID_QUERY_FILTER_OPERATOR", self.text, t.pos,
                                 f"invalid ID field: {t.value}")  # fmt: skip
                return rid
            return t.value
        if t.kind == "number":
            if ftype not in ("int", "double", "currency", "percent"):
                raise self._type_error(t, f)
            return float(t.text) if "." in t.text or ftype != "int" else int(t.text)
        if t.kind == "date":
            if ftype == "date":
                return t.text
            if ftype == "datetime":
                raise self._type_error(t, f)
            raise self._type_error(t, f)
        if t.kind == "datetime":
            if ftype != "datetime":
                raise self._type_error(t, f)
            return vals.parse_datetime_ms(t.text)
        raise self.unexpected(t)

    def _type_error(self, t: Token, f: FieldDef, quoted: bool = False) -> ApiError:
        soap = {"datetime": "dateTime", "int": "integer", "currency": "double", "percent": "double",
                "reference": "id"}.get(f.type, f.type)  # fmt: skip
        tail = " and should not be enclosed in quotes" if quoted or f.type in ("boolean", "int", "double", "currency", "percent", "date", "datetime") else ""
        if f.type in vals.TEXT_TYPES or f.type in ("id", "reference"):
            tail = " and should be enclosed in quotes"
        return _error("INVALID_FIELD", self.text, t.pos,
                      f"value of filter criterion for field '{f.name}' must be of type {soap}{tail}")  # fmt: skip


@dataclass(slots=True)
class DateRange:
    """A relative date literal: [start, end) in the field's stored form."""

    start: Any
    end: Any

    @classmethod
    def of(cls, word: str, n: int, now_ms: int, ftype: str) -> DateRange:
        today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
        if word == "TODAY":
            a, b = today, today + timedelta(days=1)
        elif word == "YESTERDAY":
            a, b = today - timedelta(days=1), today
        elif word == "TOMORROW":
            a, b = today + timedelta(days=1), today + timedelta(days=2)
        elif word == "LAST_N_DAYS":
            a, b = today - timedelta(days=n), today + timedelta(days=1)
        elif word == "NEXT_N_DAYS":
            a, b = today + timedelta(days=1), today + timedelta(days=n + 1)
        elif word == "THIS_WEEK":
            a = today - timedelta(days=(today.weekday() + 1) % 7)
            b = a + timedelta(days=7)
        elif word == "LAST_WEEK":
            b = today - timedelta(days=(today.weekday() + 1) % 7)
            a = b - timedelta(days=7)
        elif word in ("THIS_MONTH", "LAST_MONTH", "NEXT_MONTH"):
            first = today.replace(day=1)
            if word == "LAST_MONTH":
                first = (first - timedelta(days=1)).replace(day=1)
            elif word == "NEXT_MONTH":
                first = (first + timedelta(days=32)).replace(day=1)
            a, b = first, (first + timedelta(days=32)).replace(day=1)
        else:  # THIS_YEAR / LAST_YEAR
            year = today.year - (1 if word == "LAST_YEAR" else 0)
            a, b = date(year, 1, 1), date(year + 1, 1, 1)
        if ftype == "date":
            return cls(a.isoformat(), b.isoformat())
        to_ms = lambda d: int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)  # noqa: E731
        return cls(to_ms(a), to_ms(b))


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


# -- execution ------------------------------------------------------------------------------------


def _fold(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class Executor:
    """Runs a parsed Query against the org (caller holds org.lock)."""

    def __init__(self, org: Org, q: Query, include_deleted: bool) -> None:
        self.org = org
        self.q = q
        self.include_deleted = include_deleted
        self.table = org._table(q.sobject)

    def getter(self, ref: FieldRef) -> Callable[[str, list[Any]], Any]:
        """(id, row) -> stored value of the field path."""
        f = ref.field
        assert f is not None
        if ref.relationship is None:
            if f.type == "id":
                return lambda rid, row: rid
            s = self.table.slots.get(f.name)
            if s is None:
                return lambda rid, row: None
            return lambda rid, row: row[s] if s < len(row) else None
        rs = self.table.slots.get(ref.relationship.name)
        targets = {t.key_prefix: (self.org._table(t), t) for t in ref.targets}
        fname = f.name

        def get(rid: str, row: list[Any]) -> Any:
            if rs is None or rs >= len(row) or row[rs] is None:
                return None
            pid = row[rs]
            hit = targets.get(pid[:3])
            if hit is None:
                return None
            ptable, pobj = hit
            prow = ptable.rows.get(pid)
            if prow is None:
                return None
            if fname == "Id":
                return pid
            pf = pobj.field(fname)
            if pf is None:
                return None
            s2 = ptable.slots.get(pf.name)
            return prow[s2] if s2 is not None and s2 < len(prow) else None

        return get

    def predicate(self, c: Cond) -> Callable[[str, list[Any]], bool]:
        if c.kind == "and":
            preds = [self.predicate(x) for x in c.children]
            return lambda rid, row: all(p(rid, row) for p in preds)
        if c.kind == "or":
            preds = [self.predicate(x) for x in c.children]
            return lambda rid, row: any(p(rid, row) for p in preds)
        if c.kind == "not":
            inner = self.predicate(c.children[0])
            return lambda rid, row: not inner(rid, row)
        assert c.ref is not None and c.ref.field is not None
        get = self.getter(c.ref)
        op, value = c.op, c.value
        text = c.ref.field.type in vals.TEXT_TYPES
        if isinstance(value, DateRange):
            lo, hi = value.start, value.end
            ops: dict[str, Callable[[Any], bool]] = {
                "=": lambda v: v is not None and lo <= v < hi,
                "!=": lambda v: v is None or not lo <= v < hi,
                "<": lambda v: v is not None and v < lo,
                "<=": lambda v: v is not None and v < hi,
                ">": lambda v: v is not None and v >= hi,
                ">=": lambda v: v is not None and v >= lo,
            }
            fn = ops[op]
            return lambda rid, row: fn(get(rid, row))
        if op in ("in", "not in"):
            members = {_fold(v) if text else v for v in value}
            has_null = None in members
            if op == "in":
                return lambda rid, row: (lambda v: v in members if v is not None else has_null)(
                    _fold(get(rid, row)) if text else get(rid, row))
            return lambda rid, row: (lambda v: v not in members if v is not None else not has_null)(
                _fold(get(rid, row)) if text else get(rid, row))
        if op == "like":
            rx: re.Pattern[str] = value
            return lambda rid, row: (lambda v: v is not None and rx.fullmatch(str(v)) is not None)(get(rid, row))
        if op in ("includes", "excludes"):
            wanted = [set(p.strip().lower() for p in v.split(";")) for v in value]

            def inc(rid: str, row: list[Any]) -> bool:
                v = get(rid, row)
                have = set(p.lower() for p in v.split(";")) if v else set()
                hit = any(w <= have for w in wanted)
                return hit if op == "includes" else not hit

            return inc
        if value is None:
            if op == "=":
                return lambda rid, row: get(rid, row) is None
            return lambda rid, row: get(rid, row) is not None
        target = _fold(value) if text else value
        cmp: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: v == target,
            "!=": lambda v: v != target,
            "<": lambda v: v is not None and v < target,
            "<=": lambda v: v is not None and v <= target,
            ">": lambda v: v is not None and v > target,
            ">=": lambda v: v is not None and v >= target,
        }
        fn2 = cmp[op]
        if op == "!=":
            return lambda rid, row: fn2(_fold(get(rid, row)) if text else get(rid, row))
        return lambda rid, row: (lambda v: v is not None and fn2(v))(_fold(get(rid, row)) if text else get(rid, row))

    def candidates(self) -> list[tuple[str, list[Any]]]:
        """Rows to test: narrowed by an index when a top-level condition allows it."""
        table = self.table
        conds = []
        w = self.q.where
        if w is not None:
            conds = w.children if w.kind == "and" else [w]
        if not self.include_deleted:
            for c in conds:
                ids_ = self._index_ids(c)
                if ids_ is not None:
                    out = []
                    seen = set()
                    for rid in ids_:
                        if rid in seen:
                            continue
                        seen.add(rid)
                        row = table.rows.get(rid)
                        if row is not None:
                            out.append((rid, row))
                    # keep insertion order, as a table scan would
                    return out
        return list(table.rows.items())

    def _index_ids(self, c: Cond) -> list[str] | None:
        if c.kind != "cmp" or c.ref is None or c.ref.relationship is not None or c.op not in ("=", "in"):
            return None
        f = c.ref.field
        assert f is not None
        values = c.value if c.op == "in" else [c.value]
        if any(v is None or isinstance(v, DateRange) for v in values):
            return None
        if f.type == "id":
            return [v for v in values if v in self.table.rows]
        if f.name not in self.table.indexes:
            return None
        out: list[str] = []
        for v in values:
            try:
                stored = vals.coerce(f, v) if not isinstance(v, int | float) or f.type in vals.NUMBER_TYPES else v
            except vals.FieldValueError:
                continue
            if stored is None:
                continue
            out.extend(self.table.index_lookup(f.name, vals.index_key(f, stored)))
        if len(out) > 1:
            out.sort()  # ids grow with creation: id order is insertion order, as a scan gives
        return out

    def run(self) -> list[tuple[str, list[Any]]]:
        q = self.q
        deleted_slot = self.table.slots.get("IsDeleted")
        pred = self.predicate(q.where) if q.where is not None else None
        rows = []
        for rid, row in self.candidates():
            if not self.include_deleted and deleted_slot is not None and deleted_slot < len(row) and row[deleted_slot]:
                continue
            if pred is not None and not pred(rid, row):
                continue
            rows.append((rid, row))
        for ref, desc, nulls_last in reversed(q.order):
            get = self.getter(ref)
            text = ref.field is not None and ref.field.type in vals.TEXT_TYPES
            present = [(r, get(*r)) for r in rows]
            nulls = [r for r, v in present if v is None]
            filled = [(r, v) for r, v in present if v is not None]
            filled.sort(key=lambda x: _fold(x[1]) if text else x[1], reverse=desc)
            ordered = [r for r, _ in filled]
            rows = ordered + nulls if nulls_last else nulls + ordered
        if q.offset:
            rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        return rows

    def render(self, rid: str, row: list[Any], version: str) -> dict[str, Any]:
        obj = self.q.sobject
        out: dict[str, Any] = {"attributes": {"type": obj.name,
                                              "url": f"/services/data/v{version}/sobjects/{obj.name}/{rid}"}}  # fmt: skip
        for ref in self.q.fields:
            f = ref.field
            assert f is not None
            if ref.relationship is None:
                out[f.name] = rid if f.type == "id" else vals.render(f, self.getter(ref)(rid, row))
                continue
            rs = self.table.slots.get(ref.relationship.name)
            pid = row[rs] if rs is not None and rs < len(row) else None
            key = ref.output_name
            if pid is None:
                out.setdefault(key, None)
                continue
            target = next((t for t in ref.targets if t.key_prefix == pid[:3]), None)
            if target is None:
                out.setdefault(key, None)
                continue
            ptable = self.org._table(target)
            if pid not in ptable.rows:
                out.setdefault(key, None)
                continue
            nested = out.get(key)
            if not isinstance(nested, dict):
                nested = out[key] = {"attributes": {"type": target.name,
                                                    "url": f"/services/data/v{version}/sobjects/{target.name}/{pid}"}}  # fmt: skip
            pf = target.field(f.name)
            if pf is None:
                continue
            prow = ptable.rows[pid]
            s = ptable.slots.get(pf.name)
            v = pid if pf.type == "id" else (prow[s] if s is not None and s < len(prow) else None)
            nested[pf.name] = vals.render(pf, v)
        return out


def parse(org: Org, acc: Access, text: str) -> Query:
    if not text or not text.strip():
        raise ApiError("MALFORMED_QUERY", "A query string has to be specified")
    return Parser(text, org, acc, org.clock.now_ms()).parse()
