"""The org's describe, reduced to what the sync checks payloads against.

`ObjectInfo.from_describe(body)` keeps, per field, its type, length, nillable / createable /
updateable / defaultedOnCreate, picklist values and whether the picklist is restricted, the
reference targets and relationship name, precision and scale; and the active record types by
developer name. `to_json` / `from_json` let the engine cache it in the store's meta table
(with a TTL: `DescribeCache`), so a batch costs no describe call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

DEFAULT_TTL_SECONDS = 3600.0
META_PREFIX = "describe:"


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    picklist: tuple[str, ...] = ()  # active values
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0
    external_id: bool = False
    calculated: bool = False

    @property
    def polymorphic(self) -> bool:
        return len(self.reference_to) > 1


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    fields: Mapping[str, FieldInfo]
    record_types: Mapping[str, str] = field(default_factory=dict)  # developer name -> Id
    fetched_at: float = 0.0

    def field(self, name: str) -> FieldInfo | None:
        found = self.fields.get(name)
        if found is not None:
            return found
        low = name.lower()
        return next((f for n, f in self.fields.items() if n.lower() == low), None)

    @classmethod
    def from_describe(cls, body: Mapping[str, Any], fetched_at: float = 0.0) -> ObjectInfo:
        fields = {}
        for f in body.get("fields") or []:
            fields[f["name"]] = FieldInfo(
                name=f["name"], type=str(f.get("type") or "string"),
                length=int(f.get("length") or 0), nillable=bool(f.get("nillable", True)),
                createable=bool(f.get("createable", True)),
                updateable=bool(f.get("updateable", True)),
                defaulted_on_create=bool(f.get("defaultedOnCreate", False)),
                picklist=tuple(p["value"] for p in f.get("picklistValues") or []
                               if p.get("active", True)),
                restricted=bool(f.get("restrictedPicklist", False)),
                reference_to=tuple(f.get("referenceTo") or ()),
                relationship_name=f.get("relationshipName"),
                precision=int(f.get("precision") or 0), scale=int(f.get("scale") or 0),
                external_id=bool(f.get("externalId", False)),
                calculated=bool(f.get("calculated", False)),
            )
        record_types = {rt["developerName"]: rt["recordTypeId"]
                        for rt in body.get("recordTypeInfos") or []
                        if rt.get("active", True) and rt.get("developerName")
                        and rt.get("recordTypeId")}
        return cls(str(body.get("name")), fields, record_types, fetched_at)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "fetched_at": self.fetched_at,
                "record_types": dict(self.record_types),
                "fields": [asdict(f) for f in self.fields.values()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectInfo:
        fields = {}
        for f in data.get("fields") or []:
            f = dict(f)
            f["picklist"] = tuple(f.get("picklist") or ())
            f["reference_to"] = tuple(f.get("reference_to") or ())
            fields[f["name"]] = FieldInfo(**f)
        return cls(str(data["name"]), fields, dict(data.get("record_types") or {}),
                   float(data.get("fetched_at") or 0.0))


class MetaStore(Protocol):
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...
    def delete_meta(self, key: str) -> bool: ...


class DescribeCache:
    """Describes per object, cached in the store's meta table for `ttl` seconds.

    `fetch(names)` is the I/O: it returns {name: describe body or None when the object does
    not exist}. Missing objects are cached too (as absent), so a half-installed org does not
    cost a describe per batch; `invalidate()` after an install or before a manual retry."""

    def __init__(self, store: MetaStore | None, fetch: Callable[[list[str]], Mapping[str, Any]],
                 clock: Callable[[], float], ttl: float = DEFAULT_TTL_SECONDS,
                 persist: bool = True) -> None:
        self.store = store
        self.fetch = fetch
        self.clock = clock
        self.ttl = ttl
        self.persist = persist
        self._memo: dict[str, ObjectInfo | None] = {}
        self._memo_at: dict[str, float] = {}
        self.calls = 0

    def get(self, names: Iterable[str]) -> dict[str, ObjectInfo | None]:
        now = self.clock()
        out: dict[str, ObjectInfo | None] = {}
        stale: list[str] = []
        for name in dict.fromkeys(names):
            if name in self._memo and now - self._memo_at[name] < self.ttl:
                out[name] = self._memo[name]
                continue
            cached = self.store.get_meta(META_PREFIX + name) if self.store else None
            if cached is not None and now - float(cached.get("at") or 0) < self.ttl:
                info = ObjectInfo.from_json(cached["info"]) if cached.get("info") else None
                self._remember(name, info, float(cached.get("at") or 0))
                out[name] = info
                continue
            stale.append(name)
        if stale:
            self.calls += 1
            bodies = self.fetch(stale)
            for name in stale:
                body = bodies.get(name)
                info = ObjectInfo.from_describe(body, now) if body else None
                self._remember(name, info, now)
                if self.store is not None and self.persist:
                    self.store.set_meta(META_PREFIX + name,
                                        {"at": now, "info": info.to_json() if info else None})
                out[name] = info
        return out

    def _remember(self, name: str, info: ObjectInfo | None, at: float) -> None:
        self._memo[name] = info
        self._memo_at[name] = at

    def invalidate(self, names: Iterable[str] | None = None) -> None:
        targets = list(names) if names is not None else list(self._memo)
        for name in targets:
            self._memo.pop(name, None)
            self._memo_at.pop(name, None)
            if self.store is not None and self.persist:
                self.store.delete_meta(META_PREFIX + name)
