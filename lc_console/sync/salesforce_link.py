"""The engine's one Salesforce client: counted calls, usage, and a session refresh.

The token manager's transport adapter already renews an expired access token and sends the
request again; `SessionExpired` reaches this layer only when that did not help, and then the
link refreshes once more and repeats the call. When the refresh token itself is refused,
`tokens.ConnectionExpired` propagates: the engine pauses in the "expired" state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from simple_salesforce import Salesforce

from lc_console.salesforce import writer
from lc_console.salesforce.writer import SessionExpired, Subrequest, SubResponse

T = TypeVar("T")


class SalesforceLink:
    def __init__(self, client_factory: Callable[[], Salesforce],
                 refresh: Callable[[Salesforce], None] | None = None) -> None:
        self._factory = client_factory
        self._refresh = refresh
        self._client: Salesforce | None = None
        self.calls = 0  # API calls made through this link
        self.usage: tuple[int, int] | None = None  # (used, max) from the last answer

    def client(self) -> Salesforce:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def reset(self) -> None:
        """Forget the client (after a reconnect: the next call builds a fresh one)."""
        self._client = None

    def _run(self, fn: Callable[[Salesforce], T], calls: int = 1) -> T:
        client = self.client()
        try:
            result = fn(client)
        except SessionExpired:
            if self._refresh is None:
                raise
            self._refresh(client)
            result = fn(client)
        finally:
            self.calls += calls
            self.usage = writer.usage(client) or self.usage
        return result

    def composite(self, subrequests: Sequence[Subrequest]) -> list[SubResponse]:
        return self._run(lambda sf: writer.composite(sf, subrequests))

    def query_rows(self, response: SubResponse) -> list[dict[str, Any]]:
        body = response.body if isinstance(response.body, Mapping) else {}
        if response.ok and body.get("done", True):
            return writer.query_rows(self.client(), response)  # no call: all rows are here
        client = self.client()
        before = self.calls
        try:
            return writer.query_rows(client, response)
        finally:
            # One call per further page; count them from the records fetched.
            total = int(body.get("totalSize") or 0)
            first = len(body.get("records") or [])
            self.calls = before + max(0, -(-(total - first) // 2000))
            self.usage = writer.usage(client) or self.usage

    def limits(self) -> tuple[int, int]:
        used_max = self._run(writer.limits)
        self.usage = used_max
        return used_max

    def describe(self, names: Sequence[str]) -> dict[str, Any]:
        """Describe bodies by object name (None for an object the org does not have), all in
        one composite call."""
        if not names:
            return {}
        out: dict[str, Any] = {}
        for group in writer.pack([writer.describe_request(n) for n in names]):
            answers = self.composite(group)
            for sub, answer in zip(group, answers, strict=True):
                name = sub.path.split("/")[1]
                if answer.ok:
                    out[name] = answer.body
                elif answer.status == 404:
                    out[name] = None
                else:
                    raise answer.error()
        return out
