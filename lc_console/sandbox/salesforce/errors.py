"""Salesforce errors and DML results, shared by REST, Bulk and SOAP renderers.

`ApiError` is both an exception (request-level failures: raise it from a route handler and
the server renders the REST error array with its HTTP status) and the per-record error inside
a `SaveResult`. Renderers:
- `rest()`        -> {"message", "errorCode", "fields"}  (top-level REST error arrays)
- `item()`        -> {"statusCode", "message", "fields"} (collections / composite items)
- `bulk()`        -> "CODE:message:Field1,Field2 --"    (Bulk API 2.0 sf__Error column)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = list(fields or [])
        self.status = status

    def rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def item(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def bulk(self) -> str:
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.fields!r}, {self.status})"


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError("NOT_FOUND", message, status=404)


ROLLED_BACK = ApiError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)


@dataclass(slots=True)
class SaveResult:
    """Outcome of one record operation.

    `created` is set for upserts (True = inserted). `matches` lists the ids an upsert's
    external id matched when there were several (REST answers 300 with their URLs; other
    APIs report the error in `errors`). `event_uuid` is set for platform event publishes.
    """

    id: str | None
    success: bool
    errors: list[ApiError] = field(default_factory=list)
    created: bool | None = None
    matches: list[str] | None = None
    event_uuid: str | None = None

    @classmethod
    def failed(cls, error: ApiError, record_id: str | None = None) -> SaveResult:
        return cls(id=record_id, success=False, errors=[error])

    def item(self, upsert: bool = False) -> dict[str, Any]:
        """Collections / composite result item."""
        out: dict[str, Any] = {"id": self.id, "success": self.success}
        out["errors"] = [e.item() for e in self.errors]
        if self.event_uuid is not None and self.success:
            out["errors"] = [
                {"statusCode": "OPERATION_ENQUEUED", "message": self.event_uuid, "fields": []}
            ]
        if upsert:
            out["created"] = bool(self.created) if self.success else False
        if not self.success and self.id is None:
            out.pop("id")
        return out
