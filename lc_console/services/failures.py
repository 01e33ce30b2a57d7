"""Retry and discard failed records (the Failures screen and `lc-console failures` share it).

Retry re-derives a record of the live sync from the CURRENT Stripe state: the event behind
the failure (kept in the local journal) gets its object as Stripe holds it now, is dated now,
and goes through the sync's normal path (context, lookups, conflicts, pre-check, write; the
describe cache is refreshed first, since the admin may just have changed the org). So a cause
fixed in Stripe or in Salesforce makes the retry pass. This needs the profile (a runner from
`runner_for_profile` carries it). Failures without such an event (backfill rows) have their
kept payload written again, with the same REST collections the sync uses.

Either way the admin sees the outcome at once: a record Salesforce accepts is resolved (and
audited); one it refuses again stays open with Salesforce's new answer and one more attempt.
Nothing is ever dropped. Discard needs a reason, which is kept on the row and in the audit log.

How a row is addressed follows its operation: `upsert` by the external-id field of the
payload whose value is the failure's key, `update` by the payload's Id, `insert`/`publish`
creates the payload again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce import Salesforce

from lc_console.salesforce import writer
from lc_console.store import ACTIVE_FAILURE_STATUSES, Failure, FailureFilter, Store

Runner = Callable[[Callable[[Salesforce], Any]], Any]
BATCH = writer.COLLECTION_LIMIT


@dataclass
class RetryResult:
    resolved: int = 0
    failed: int = 0
    skipped: int = 0
    # One line per record that still fails or could not be tried, for the notification.
    problems: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return self.resolved + self.failed

    def summary(self) -> str:
        parts = [f"{self.resolved:,} resolved"]
        if self.failed:
            parts.append(f"{self.failed:,} failed again")
        if self.skipped:
            parts.append(f"{self.skipped:,} not retried")
        text = "Retry: " + ", ".join(parts) + "."
        if self.problems:
            text += " " + self.problems[0]
            if len(self.problems) > 1:
                text += f" (+{len(self.problems) - 1:,} more in the table)"
        return text


class ProfileRunner:
    """fn(client) with the profile's token manager (refreshes an expired session once); it
    also names the profile, so that `retry` can re-derive records from Stripe."""

    def __init__(self, profile: str) -> None:
        from lc_console.salesforce import tokens

        self.profile = profile
        self._manager = tokens.manager_for(profile)
        self._client: Salesforce | None = None

    def __call__(self, fn: Callable[[Salesforce], Any]) -> Any:
        if self._client is None:
            self._client = self._manager.salesforce()
        return self._manager.call(fn, self._client)


def runner_for_profile(profile: str) -> Runner:
    return ProfileRunner(profile)


def external_field(f: Failure) -> str | None:
    """The payload field holding the upsert key (its value is the failure's key)."""
    for name, value in f.payload.items():
        if name != "attributes" and isinstance(value, str) and value == f.key:
            return name
    return None


def _group(rows: Iterable[Failure], result: RetryResult) -> dict[tuple[str, str, str], list[Failure]]:
    groups: dict[tuple[str, str, str], list[Failure]] = {}
    for f in rows:
        if f.status not in ACTIVE_FAILURE_STATUSES:
            result.skipped += 1
            result.problems.append(f"{f.object} {f.key}: already {f.status}.")
            continue
        how = ""
        if f.operation == "upsert":
            how = external_field(f) or ""
            if not how:
                result.skipped += 1
                result.problems.append(f"{f.object} {f.key}: the payload has no field holding "
                                       "the key, so it cannot be upserted; discard it with a "
                                       "reason and let the next sync derive it again.")
                continue
        elif f.operation == "update":
            if not f.payload.get("Id"):
                result.skipped += 1
                result.problems.append(f"{f.object} {f.key}: the payload has no Id to update.")
                continue
        elif f.operation not in ("insert", "publish"):
            result.skipped += 1
            result.problems.append(f"{f.object} {f.key}: {f.operation} cannot be retried here.")
            continue
        groups.setdefault((f.object, f.operation, how), []).append(f)
    return groups


def _write(sf: Salesforce, obj: str, operation: str, how: str,
           rows: Sequence[dict[str, Any]]) -> list[writer.RecordResult]:
    if operation == "upsert":
        return writer.upsert(sf, obj, how, rows)
    if operation == "update":
        return writer.update(sf, obj, rows)
    return writer.create(sf, obj, rows)


def retry(store: Store, ids: Sequence[int], run: Runner, *,
          profile: str | None = None) -> RetryResult:
    """Retry the failures `ids`; see the module docstring for what happens to each."""
    result = RetryResult()
    rows = [f for f in (store.get_failure(i) for i in ids) if f is not None]
    profile = profile or getattr(run, "profile", None)
    if profile:
        from lc_console.services import failure_retry

        rows = failure_retry.rederive(profile, store, rows, result)
    for (obj, operation, how), group in _group(rows, result).items():
        for start in range(0, len(group), BATCH):
            chunk = group[start:start + BATCH]
            payloads = [{k: v for k, v in f.payload.items() if k != "attributes"} for f in chunk]
            store.set_failure_status([f.id for f in chunk], "retrying")
            try:
                answers = run(lambda sf, o=obj, op=operation, h=how, p=payloads:
                              _write(sf, o, op, h, p))
            except writer.WriteError as exc:
                # The whole call failed (limit, outage): the rows stay as they were.
                store.set_failure_status([f.id for f in chunk], "open")
                result.failed += len(chunk)
                result.problems.append(f"Salesforce did not take the request: {exc.code}: "
                                       f"{exc.message}")
                continue
            except writer.SessionExpired:
                store.set_failure_status([f.id for f in chunk], "open")
                result.failed += len(chunk)
                result.problems.append("The Salesforce session expired and could not be "
                                       "renewed: reconnect Salesforce (home, c), then retry.")
                break
            except Exception:
                store.set_failure_status([f.id for f in chunk], "open")
                raise
            for f, answer in zip(chunk, answers, strict=False):
                _settle(store, f, answer, result)
    return result


def _settle(store: Store, f: Failure, answer: writer.RecordResult, result: RetryResult) -> None:
    if answer.ok:
        store.set_failure_status([f.id], "resolved")
        store.audit(object=f.object, action=f"retry {f.operation}", outcome="ok",
                    stripe_event_id=f.source_event_id, external_key=f.key,
                    salesforce_id=answer.sf_id,
                    detail="created" if answer.created else "written on manual retry")
        result.resolved += 1
        return
    store.record_failure(object=f.object, key=f.key, operation=f.operation, payload=f.payload,
                         error_code=answer.code or "UNKNOWN_ERROR", message=answer.message,
                         fields=answer.fields, source_event_id=f.source_event_id,
                         salesforce_response=answer.raw or None)
    store.audit(object=f.object, action=f"retry {f.operation}", outcome="failed",
                stripe_event_id=f.source_event_id, external_key=f.key,
                detail=f"{answer.code}: {answer.message}")
    result.failed += 1
    result.problems.append(f"{f.object} {f.key}: {answer.code}: {answer.message}")


def discard(store: Store, ids: Sequence[int], reason: str) -> int:
    """Mark failures discarded with a reason (required); returns how many changed."""
    reason = reason.strip()
    if not reason:
        raise ValueError("Say why these records are discarded: the reason is kept in the "
                         "audit log.")
    changed = 0
    for f in (store.get_failure(i) for i in ids):
        if f is None or f.status not in ACTIVE_FAILURE_STATUSES:
            continue
        changed += store.set_failure_status([f.id], "discarded", discard_reason=reason)
        store.audit(object=f.object, action=f"discard {f.operation}", outcome="discarded",
                    stripe_event_id=f.source_event_id, external_key=f.key, detail=reason)
    return changed


def active_ids(store: Store, *, error_code: str | None = None, object: str | None = None,
               page: int = 1000) -> list[int]:
    """Ids of every open/retrying failure with this code (and object), newest first."""
    flt = FailureFilter(status=list(ACTIVE_FAILURE_STATUSES), error_code=error_code,
                        object=object)
    ids: list[int] = []
    before: int | None = None
    while True:
        got = store.list_failures(flt, limit=page, before_id=before)
        ids += [f.id for f in got.rows]
        if got.next_before_id is None:
            return ids
        before = got.next_before_id
