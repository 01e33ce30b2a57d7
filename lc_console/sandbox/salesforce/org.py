"""The org: schema + records + users + permissions + usage + clock, behind one lock.

Every API surface (REST, collections, composite, Bulk API 2.0, Metadata API) goes through the
methods here, so they validate identically and report the same error codes.

Data (DML) methods take an `Access` (`org.access(user_id)`; `org.system` for the sandbox
itself) and return `SaveResult`s; request-level problems raise `ApiError`:

    acc = org.access(session.user_id)
    org.insert("Contact", {"LastName": "Ng"}, acc)               -> SaveResult
    org.update("Contact", "003...", {"Email": "a@b.co"}, acc)     -> SaveResult
    org.upsert("Contact", "LC_Id__c", "C-1", {...}, acc)          -> SaveResult(created=...)
    org.delete("003...", acc, sobject="Contact")                  -> SaveResult
    org.retrieve("Contact", "003...", acc, fields=None)           -> dict (REST JSON record)
    org.save_many("upsert", "Contact", rows, acc, all_or_none=False,
                  external_id_field="LC_Id__c")                   -> list[SaveResult] in order

Values may be JSON values or CSV strings ("true", "12.5", "2025-01-31"); `None` sets null.
A parent can be given by external id: {"Account": {"LC_Account_Id__c": "A-1"}} (the Bulk CSV
header `Account.LC_Account_Id__c` maps to that). Inserting into a platform event (X__e)
publishes it (kept in `org.events`, nothing stored).

Field-level security (see the reference, §4.7): custom fields (FieldDef.fls) are invisible to
a user — "No such column" / INVALID_FIELD — until a permission set granting them is assigned
(`PermissionSetAssignment`). Custom objects need object permissions unless the user has
Modify All Data. `org.system` sees and writes everything.

Metadata changes (Metadata API deploy) go through the `upsert_object`, `upsert_field`,
`remove_field`, `remove_object`, `upsert_business_process`, `upsert_record_type`,
`upsert_permission_set`, ... methods below, which keep records in step. Wrap a multi-component
deploy in `with org.lock:` to make it atomic; use `org.schema.clone()` to validate checkOnly.

Transactions: `with org.transaction() as tx: ...; tx.rollback()` undoes every record change
(and after-commit event publish) made inside the block by this thread.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lc_console.sandbox.salesforce import ids
from lc_console.sandbox.salesforce import schema as sch
from lc_console.sandbox.salesforce import values as vals
from lc_console.sandbox.salesforce.clock import EDITION_LIMITS, EDITION_NAMES, ApiUsage, Clock
from lc_console.sandbox.salesforce.errors import ROLLED_BACK, ApiError, SaveResult
from lc_console.sandbox.salesforce.schema import FieldDef, Schema, SObjectDef
from lc_console.sandbox.salesforce.sessions import SessionStore

STATE_VERSION = 1
SYSTEM_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")  # fmt: skip


# -- users and access ---------------------------------------------------------------------------


@dataclass(slots=True)
class UserAccount:
    """Login credentials of a User record (the record itself lives in the User table)."""

    id: str
    username: str
    password: str
    profile: str


@dataclass(slots=True)
class Access:
    """What one user may see and do, computed from assigned permission sets (incl. profile)."""

    user_id: str
    permissions: frozenset[str]  # "CustomizeApplication", "ModifyAllData", ...
    objects: dict[str, sch.ObjectPermission]  # lower-case object name
    fields: dict[str, sch.FieldPermission]  # "object.field" lower-case
    system: bool = False

    def has(self, permission: str) -> bool:
        return self.system or permission in self.permissions

    @property
    def modify_all(self) -> bool:
        return self.system or "ModifyAllData" in self.permissions


@dataclass(slots=True)
class PublishedEvent:
    sobject: str
    id: str
    uuid: str
    replay_id: int
    published_ms: int
    user_id: str
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"sobject": self.sobject, "id": self.id, "uuid": self.uuid,
                "replay_id": self.replay_id,
                "published_at": vals.format_datetime(self.published_ms),
                "user_id": self.user_id, "payload": self.payload}  # fmt: skip


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request the sandbox received (inspection API)."""

    time_ms: int
    method: str
    path: str
    status: int
    user_id: str | None
    api_calls: int  # how many API calls it counted (0 or 1)
    duration_ms: float
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"time": vals.format_datetime(self.time_ms), "method": self.method,
                "path": self.path, "status": self.status, "user_id": self.user_id,
                "api_calls": self.api_calls, "duration_ms": round(self.duration_ms, 2),
                "fault": self.fault}  # fmt: skip


# -- records ------------------------------------------------------------------------------------


class Table:
    """Records of one object, stored compactly: one list of values per record, positions given
    by `slots` (field name -> index). Indexes map a normalised value to an id (or a list of ids)
    for unique / external-id / idLookup fields."""

    __slots__ = ("name", "slots", "rows", "indexes", "next_slot", "schema_key")

    def __init__(self, name: str) -> None:
        self.name = name
        self.slots: dict[str, int] = {}
        self.rows: dict[str, list[Any]] = {}
        self.indexes: dict[str, dict[Any, Any]] = {}
        self.next_slot = 0
        self.schema_key: tuple[int, int] = (0, -1)  # (id(schema), version) it was synced with

    def slot(self, field_name: str) -> int:
        s = self.slots.get(field_name)
        if s is None:
            s = self.slots[field_name] = self.next_slot
            self.next_slot += 1
        return s

    def get(self, row: list[Any], field_name: str) -> Any:
        s = self.slots.get(field_name)
        return row[s] if s is not None and s < len(row) else None

    def index_add(self, field_name: str, key: Any, rid: str) -> None:
        idx = self.indexes[field_name]
        cur = idx.get(key)
        if cur is None:
            idx[key] = rid
        elif isinstance(cur, str):
            if cur != rid:
                idx[key] = [cur, rid]
        elif rid not in cur:
            cur.append(rid)

    def index_remove(self, field_name: str, key: Any, rid: str) -> None:
        idx = self.indexes[field_name]
        cur = idx.get(key)
        if cur is None:
            return
        if isinstance(cur, str):
            if cur == rid:
                del idx[key]
        else:
            if rid in cur:
                cur.remove(rid)
            if len(cur) == 1:
                idx[key] = cur[0]
            elif not cur:
                del idx[key]

    def index_lookup(self, field_name: str, key: Any) -> list[str]:
        cur = self.indexes[field_name].get(key)
        if cur is None:
            return []
        return [cur] if isinstance(cur, str) else list(cur)


@dataclass(slots=True)
class _Plan:
    required: list[str]
    defaults: dict[str, Any]
    unique: frozenset[str]
    has_owner: bool
    auto_number: FieldDef | None


class _Tx:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.undo: list[tuple[Any, ...]] = []
        self.rolled_back = False

    def rollback(self) -> None:
        self.org._rollback(self.undo)
        self.undo = []
        self.rolled_back = True


# -- the org --------------------------------------------------------------------------------------


class Org:
    """One Salesforce org. All public methods are thread-safe (they take `self.lock`)."""

    def __init__(
        self,
        edition: str = "enterprise",
        daily_api_limit: int | None = None,
        token_ttl_seconds: float = 7200.0,
        admin_username: str = "admin@lc-sandbox.example.com",
        admin_password: str | None = None,
        user_username: str = "user@lc-sandbox.example.com",
        user_password: str | None = None,
        org_name: str = "LostChurn Sandbox Org",
        is_sandbox: bool = False,
    ) -> None:
        if edition not in EDITION_LIMITS:
            raise ValueError(f"unknown edition {edition!r}: use one of {', '.join(EDITION_LIMITS)}")
        self.lock = threading.RLock()
        self.edition = edition
        self.clock = Clock()
        self.usage = ApiUsage(self.clock, daily_api_limit or EDITION_LIMITS[edition])
        self.schema: Schema = sch.standard_schema()
        self.tables: dict[str, Table] = {}
        self.users: dict[str, UserAccount] = {}
        self.events: list[PublishedEvent] = []
        self.requests: deque[RequestRecord] = deque(maxlen=20_000)
        self.org_id = ids.new_id("00D")
        self.sessions = SessionStore(self.clock, self.org_id, token_ttl_seconds)
        self.system = Access("", frozenset(), {}, {}, system=True)
        self._access_cache: dict[str, tuple[int, Access]] = {}
        self._access_epoch = 0
        self._tx_local = threading.local()
        self._plans: dict[str, tuple[tuple[int, int], _Plan]] = {}
        self._replay_id = 0
        self.admin_id = ""
        self.dirty = False
        for obj in self.schema.objects.values():
            self._table(obj)
        self._seed(org_name, is_sandbox, admin_username, admin_password, user_username,
                   user_password)  # fmt: skip

    # -- seed -------------------------------------------------------------------------------
    def _seed(self, org_name: str, is_sandbox: bool, admin_username: str,
              admin_password: str | None, user_username: str, user_password: str | None) -> None:  # fmt: skip
        now = self.clock.now_ms()
        org_row = {
            "Id": self.org_id, "Name": org_name, "Country": "US", "IsSandbox": is_sandbox,
            "OrganizationType": EDITION_NAMES[self.edition], "InstanceName": "NA1",
            "NamespacePrefix": None, "TrialExpirationDate": None, "LanguageLocaleKey": "en_US",
            "TimeZoneSidKey": "America/Los_Angeles", "DefaultLocaleSidKey": "en_US",
        }  # fmt: skip
        admin_profile = ids.new_id("00e")
        std_profile = ids.new_id("00e")
        admin_perms = {p: True for p in sch.USER_PERMISSIONS}
        std_perms = {p: p in ("ApiEnabled", "ViewSetup") for p in sch.USER_PERMISSIONS}
        self.admin_id = admin_id = ids.new_id("005")
        user_id = ids.new_id("005")
        audit = {"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                 "CreatedById": admin_id, "LastModifiedById": admin_id}  # fmt: skip
        self._raw_insert("Organization", {**org_row, **audit})
        for pid, name, perms in ((admin_profile, "System Administrator", admin_perms),
                                 (std_profile, "Standard User", std_perms)):  # fmt: skip
            self._raw_insert("Profile", {"Id": pid, "Name": name, "UserType": "Standard",
                                         **{f"Permissions{k}": v for k, v in perms.items()},
                                         **audit})  # fmt: skip
            ps_name = "X" + pid[:15]
            ps_id = ids.new_id("0PS")
            self.schema.permission_sets[ps_name] = sch.PermissionSetDef(
                ps_name, ps_name, user_permissions=dict(perms), owned_by_profile=name
            )
            self._raw_insert("PermissionSet", {
                "Id": ps_id, "Name": ps_name, "Label": ps_name, "IsOwnedByProfile": True,
                "ProfileId": pid, "Type": "Profile",
                **{f"Permissions{k}": v for k, v in perms.items()}, **audit})  # fmt: skip
        for uid, uname, pwd, pid, first, last in (
            (admin_id, admin_username, admin_password, admin_profile, "Ada", "Admin"),
            (user_id, user_username, user_password, std_profile, "Sam", "User"),
        ):
            self._raw_insert("User", {
                "Id": uid, "Username": uname, "FirstName": first, "LastName": last,
                "Name": f"{first} {last}", "Email": uname, "Alias": (first[0] + last)[:8].lower(),
                "CommunityNickname": first.lower(), "IsActive": True, "ProfileId": pid,
                "UserType": "Standard", "TimeZoneSidKey": "America/Los_Angeles",
                "LocaleSidKey": "en_US", "LanguageLocaleKey": "en_US",
                "EmailEncodingKey": "UTF-8", **audit})  # fmt: skip
            self.users[uid] = UserAccount(uid, uname, pwd or secrets.token_urlsafe(12),
                                          "System Administrator" if pid == admin_profile
                                          else "Standard User")  # fmt: skip
            ps_row = next(r for r in self.tables["PermissionSet"].rows.values()
                          if self._get(self.tables["PermissionSet"], r, "ProfileId") == pid)  # fmt: skip
            self._raw_insert("PermissionSetAssignment", {
                "Id": ids.new_id("0Pa"), "AssigneeId": uid, "PermissionSetId": ps_row[0],
                "SystemModstamp": now})  # fmt: skip
        self.dirty = False

    # -- users and permissions ----------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> UserAccount | None:
        """The active user with these credentials, or None."""
        with self.lock:
            for account in self.users.values():
                if account.username.lower() == username.lower() and secrets.compare_digest(
                    account.password.encode(), password.encode()
                ):
                    row = self.tables["User"].rows.get(account.id)
                    if row is not None and self._get(self.tables["User"], row, "IsActive"):
                        return account
            return None

    def user_record(self, user_id: str) -> dict[str, Any]:
        """The User record as a plain dict (stored values)."""
        with self.lock:
            table = self.tables["User"]
            row = table.rows[user_id]
            return {name: self._get(table, row, name) for name in table.slots}

    def admin(self) -> UserAccount:
        return self.users[self.admin_id]

    def standard_user(self) -> UserAccount:
        return next(u for u in self.users.values() if u.id != self.admin_id)

    def access(self, user_id: str) -> Access:
        """Effective permissions of a user (cached until permissions or schema change)."""
        with self.lock:
            epoch = (self._access_epoch, self.schema.version)
            cached = self._access_cache.get(user_id)
            if cached is not None and cached[0] == epoch:
                return cached[1]
            acc = self._compute_access(user_id)
            self._access_cache[user_id] = (epoch, acc)  # type: ignore[assignment]
            return acc

    def _compute_access(self, user_id: str) -> Access:
        psa = self.tables["PermissionSetAssignment"]
        ps_table = self.tables["PermissionSet"]
        perms: set[str] = set()
        objects: dict[str, sch.ObjectPermission] = {}
        fields: dict[str, sch.FieldPermission] = {}
        for row in psa.rows.values():
            if self._get(psa, row, "AssigneeId") != user_id:
                continue
            ps_row = ps_table.rows.get(self._get(psa, row, "PermissionSetId"))
            if ps_row is None:
                continue
            for p in sch.USER_PERMISSIONS:
                if self._get(ps_table, ps_row, f"Permissions{p}"):
                    perms.add(p)
            ps_def = self.schema.permission_set(self._get(ps_table, ps_row, "Name") or "")
            if ps_def is None:
                continue
            for obj_name, op in ps_def.object_permissions.items():
                cur = objects.setdefault(obj_name.lower(), sch.ObjectPermission())
                for attr in ("allow_create", "allow_read", "allow_edit", "allow_delete",
                             "view_all_records", "modify_all_records"):  # fmt: skip
                    if getattr(op, attr):
                        setattr(cur, attr, True)
            for key, fp in ps_def.field_permissions.items():
                cur_f = fields.setdefault(key.lower(), sch.FieldPermission())
                cur_f.readable = cur_f.readable or fp.readable or fp.editable
                cur_f.editable = cur_f.editable or fp.editable
        return Access(user_id, frozenset(perms), objects, fields)

    def has_permission(self, user_id: str, permission: str) -> bool:
        """e.g. has_permission(uid, "CustomizeApplication")."""
        return self.access(user_id).has(permission)

    def can_object(self, acc: Access, obj: SObjectDef, op: str) -> bool:
        """op: read | create | edit | delete."""
        if acc.system or "ModifyAllData" in acc.permissions:
            return True
        if op == "read" and "ViewAllData" in acc.permissions:
            return True
        if obj.name in ("PermissionSet", "Profile"):
            return op == "read" and bool(acc.permissions & {"ViewSetup", "ManageUsers",
                                                             "AssignPermissionSets"})  # fmt: skip
        if obj.name == "PermissionSetAssignment":
            if op == "read":
                return bool(acc.permissions & {"ViewSetup", "ManageUsers", "AssignPermissionSets"})
            return "AssignPermissionSets" in acc.permissions or "ManageUsers" in acc.permissions
        if obj.custom:
            op_perm = acc.objects.get(obj.name.lower())
            if op_perm is None:
                return False
            if op_perm.modify_all_records:
                return True
            return {
                "read": op_perm.allow_read or op_perm.view_all_records,
                "create": op_perm.allow_create,
                "edit": op_perm.allow_edit,
                "delete": op_perm.allow_delete,
            }[op]
        return True

    def field_visible(self, acc: Access, obj: SObjectDef, f: FieldDef) -> bool:
        if not f.fls or acc.system:
            return True
        fp = acc.fields.get(f"{obj.name}.{f.name}".lower())
        return fp is not None and fp.readable

    def field_editable(self, acc: Access, obj: SObjectDef, f: FieldDef) -> bool:
        if not f.fls or acc.system:
            return True
        fp = acc.fields.get(f"{obj.name}.{f.name}".lower())
        return fp is not None and fp.editable

    def visible_fields(self, acc: Access, obj: SObjectDef) -> dict[str, bool]:
        """Field name -> editable, for the fields this user can see."""
        return {f.name: self.field_editable(acc, obj, f)
                for f in obj.fields.values() if self.field_visible(acc, obj, f)}  # fmt: skip

    def sobject(self, name: str, acc: Access, op: str = "read") -> SObjectDef:
        """The object if it exists and the user may `op` it; else ApiError NOT_FOUND (404) for
        unknown or invisible objects and INSUFFICIENT_ACCESS_OR_READONLY for the operation."""
        obj = self.schema.get(name)
        if obj is None or not self.can_object(acc, obj, "create" if obj.platform_event else "read"):
            raise ApiError("NOT_FOUND", "The requested resource does not exist", status=404)
        if op != "read" and not self._object_allows(obj, op):
            verb = {"create": "inserted", "edit": "updated", "delete": "deleted"}[op]
            raise ApiError("INVALID_TYPE", f"entity type cannot be {verb}: {obj.label}")
        if op != "read" and not self.can_object(acc, obj, op):
            raise ApiError("INSUFFICIENT_ACCESS_OR_READONLY",
                           "insufficient access rights on object id")  # fmt: skip
        return obj

    @staticmethod
    def _object_allows(obj: SObjectDef, op: str) -> bool:
        return {"create": obj.createable, "edit": obj.updateable, "delete": obj.deletable}[op]

    def invalidate_access(self) -> None:
        with self.lock:
            self._access_epoch += 1

    # -- tables ---------------------------------------------------------------------------------
    def _table(self, obj: SObjectDef) -> Table:
        table = self.tables.get(obj.name)
        key = (id(self.schema), self.schema.version)
        if table is not None and table.schema_key == key:
            return table
        if table is None:
            table = self.tables[obj.name] = Table(obj.name)
            for f in obj.fields.values():
                table.slot(f.name)
        for f in obj.fields.values():
            if f.indexed and f.type not in ("id",) and f.name not in table.indexes:
                table.indexes[f.name] = {}
                s = table.slot(f.name)
                for rid, row in table.rows.items():
                    if s < len(row) and row[s] is not None and not self._deleted(table, row):
                        table.index_add(f.name, vals.index_key(f, row[s]), rid)
        table.schema_key = key
        return table

    def _plan(self, obj: SObjectDef) -> _Plan:
        """Per-object facts the DML hot path needs, cached until the schema changes."""
        key = (id(self.schema), self.schema.version)
        cached = self._plans.get(obj.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        defaults: dict[str, Any] = {}
        for f in obj.fields.values():
            if f.type == "boolean" and f.createable:
                defaults[f.name] = bool(f.default_value)
            elif f.type == "picklist" and f.createable:
                d = next((p.value for p in f.picklist_values if p.default and p.active), None)
                if d is not None:
                    defaults[f.name] = d
        name_field = obj.field("Name")
        plan = _Plan(
            required=[f.name for f in obj.fields.values() if f.required],
            defaults=defaults,
            unique=frozenset(f.name for f in obj.fields.values() if f.unique),
            has_owner=obj.field("OwnerId") is not None,
            auto_number=name_field if name_field is not None and name_field.auto_number else None,
        )
        self._plans[obj.name] = (key, plan)
        return plan

    def table(self, name: str) -> Table:
        """The record table of an object (read it under `org.lock`)."""
        obj = self.schema.get(name)
        if obj is None:
            raise KeyError(name)
        return self._table(obj)

    @staticmethod
    def _get(table: Table, row: list[Any], name: str) -> Any:
        s = table.slots.get(name)
        return row[s] if s is not None and s < len(row) else None

    def _deleted(self, table: Table, row: list[Any]) -> bool:
        s = table.slots.get("IsDeleted")
        return bool(s is not None and s < len(row) and row[s])

    def _raw_insert(self, name: str, data: dict[str, Any]) -> str:
        """Store a record with no validation (seed data, metadata-owned records)."""
        obj = self.schema.get(name)
        assert obj is not None
        table = self._table(obj)
        row: list[Any] = [None] * table.next_slot
        for key, value in data.items():
            f = obj.field(key)
            if f is None:
                continue
            s = table.slot(f.name)
            if s >= len(row):
                row.extend([None] * (s + 1 - len(row)))
            row[s] = value
        if "IsDeleted" in table.slots:
            row[table.slots["IsDeleted"]] = False
        rid = row[table.slots["Id"]]
        table.rows[rid] = row
        self._index_row(obj, table, rid, row)
        self._log_undo(("insert", table, rid))
        self.dirty = True
        return rid

    def _index_row(self, obj: SObjectDef, table: Table, rid: str, row: list[Any]) -> None:
        for fname in table.indexes:
            f = obj.fields.get(fname)
            if f is None:
                continue
            v = table.get(row, fname)
            if v is not None:
                table.index_add(fname, vals.index_key(f, v), rid)

    def _unindex_row(self, obj: SObjectDef, table: Table, rid: str, row: list[Any]) -> None:
        for fname in table.indexes:
            f = obj.fields.get(fname)
            if f is None:
                continue
            v = table.get(row, fname)
            if v is not None:
                table.index_remove(fname, vals.index_key(f, v), rid)

    # -- transactions -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """All-or-none scope: holds the org lock; `tx.rollback()` undoes the changes made so
        far. Nested transactions join the outer one's undo log."""
        with self.lock:
            outer = getattr(self._tx_local, "tx", None)
            tx = _Tx(self)
            self._tx_local.tx = tx
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            finally:
                self._tx_local.tx = outer
                if outer is not None and not tx.rolled_back:
                    outer.undo.extend(tx.undo)

    def _log_undo(self, entry: tuple[Any, ...]) -> None:
        tx = getattr(self._tx_local, "tx", None)
        if tx is not None:
            tx.undo.append(entry)

    def _rollback(self, undo: list[tuple[Any, ...]]) -> None:
        with self.lock:
            for entry in reversed(undo):
                kind = entry[0]
                if kind == "event":
                    try:
                        self.events.remove(entry[1])
                    except ValueError:
                        pass
                    continue
                table: Table = entry[1]
                rid: str = entry[2]
                obj = self.schema.get(table.name)
                current = table.rows.get(rid)
                if obj is not None and current is not None and not self._deleted(table, current):
                    self._unindex_row(obj, table, rid, current)
                if kind == "insert":
                    table.rows.pop(rid, None)
                else:  # "update" / "delete": restore the previous row
                    old = entry[3]
                    table.rows[rid] = old
                    if obj is not None and not self._deleted(table, old):
                        self._index_row(obj, table, rid, old)
            self._access_epoch += 1

    # -- DML ----------------------------------------------------------------------------------------
    def insert(self, sobject: str, data: dict[str, Any], acc: Access) -> SaveResult:
        with self.lock:
            obj = self.sobject(sobject, acc, "create")
            return self._insert(obj, data, acc)

    def update(self, sobject: str | None, record_id: str, data: dict[str, Any],
               acc: Access) -> SaveResult:  # fmt: skip
        """Update by id. `sobject=None` takes the object from the id's key prefix."""
        with self.lock:
            try:
                obj = self._object_for_id(sobject, record_id, acc, "edit")
            except ApiError as exc:
                return SaveResult.failed(exc, None)
            return self._update(obj, record_id, data, acc)

    def upsert(self, sobject: str, external_id_field: str, value: Any, data: dict[str, Any],
               acc: Access) -> SaveResult:  # fmt: skip
        """Insert or update by external id. Raises ApiError NOT_FOUND (404) when the field is
        not an external id (or Id) field the user can see."""
        with self.lock:
            obj = self.sobject(sobject, acc, "create")
            ext = self._external_id_field(obj, external_id_field, acc)
            return self._upsert(obj, ext, value, data, acc)

    def delete(self, record_id: str, acc: Access, sobject: str | None = None) -> SaveResult:
        with self.lock:
            try:
                obj = self._object_for_id(sobject, record_id, acc, "delete")
            except ApiError as exc:
                return SaveResult.failed(exc, None)
            return self._delete(obj, record_id, acc)

    def retrieve(self, sobject: str, record_id: str, acc: Access,
                 fields: Iterable[str] | None = None, version: str = "62.0") -> dict[str, Any]:  # fmt: skip
        """A record as REST JSON (with `attributes`). Raises ApiError: NOT_FOUND (404) for an
        unknown id, ENTITY_IS_DELETED (404) for a deleted one, INVALID_FIELD (400) for a field
        that does not exist or is not visible."""
        with self.lock:
            obj = self.sobject(sobject, acc, "read")
            if obj.platform_event:
                raise ApiError("NOT_FOUND", "The requested resource does not exist", status=404)
            rid = self._id_for_object(obj, record_id)
            table = self._table(obj)
            row = table.rows.get(rid)
            if row is None:
                raise ApiError("NOT_FOUND", "The requested resource does not exist", status=404)
            if self._deleted(table, row):
                raise ApiError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            if fields is None:
                chosen = [f for f in obj.fields.values() if self.field_visible(acc, obj, f)]
            else:
                chosen = []
                for name in fields:
                    f = obj.field(name.strip())
                    if f is None or not self.field_visible(acc, obj, f):
                        raise ApiError(
                            "INVALID_FIELD",
                            f"No such column '{name.strip()}' on entity '{obj.name}'. If you are "
                            "attempting to use a custom field, be sure to append the '__c' after "
                            "the custom field name. Please reference your WSDL or the describe "
                            "call for the appropriate names.",
                        )
                    chosen.append(f)
            return self.render_record(obj, table, rid, row, chosen, version)

    def render_record(self, obj: SObjectDef, table: Table, rid: str, row: list[Any],
                      fields: Iterable[FieldDef], version: str) -> dict[str, Any]:  # fmt: skip
        out: dict[str, Any] = {
            "attributes": {"type": obj.name,
                           "url": f"/services/data/v{version}/sobjects/{obj.name}/{rid}"}
        }  # fmt: skip
        slots = table.slots
        n = len(row)
        for f in fields:
            s = slots.get(f.name)
            v = row[s] if s is not None and s < n else None
            out[f.name] = vals.render(f, v) if v is not None else None
        return out

    def find_by_external_id(self, sobject: str, field_name: str, value: Any) -> list[str]:
        """Live record ids whose field equals value (index when available)."""
        with self.lock:
            obj = self.schema.get(sobject)
            if obj is None:
                return []
            f = obj.field(field_name)
            if f is None:
                return []
            return self._find(obj, self._table(obj), f, value)

    def save_many(
        self,
        operation: str,
        sobject: str | None,
        records: list[dict[str, Any]],
        acc: Access,
        all_or_none: bool = False,
        external_id_field: str | None = None,
    ) -> list[SaveResult]:
        """Run one operation over many records, results in input order (collections, bulk).

        operation: insert | update | upsert | delete. For update/delete each record carries
        its id in "Id" (or "id"); for upsert, its external id value in `external_id_field`.
        `sobject=None` (insert/update/delete) takes the type from each record's
        attributes.type (insert) or the id prefix. With all_or_none, a failure rolls back every
        change and the other records report ALL_OR_NONE_OPERATION_ROLLED_BACK.
        """
        with self.transaction() as tx:
            results: list[SaveResult] = []
            ext: FieldDef | None = None
            obj: SObjectDef | None = None
            dupes: set[Any] = set()
            if operation == "upsert":
                assert sobject and external_id_field
                obj = self.sobject(sobject, acc, "create")
                ext = self._external_id_field(obj, external_id_field, acc)
                seen: set[Any] = set()
                for rec in records:
                    v = _case_get(rec, ext.name)
                    if v in (None, ""):
                        continue
                    key = vals.index_key(ext, str(v))
                    if key in seen:
                        dupes.add(key)
                    seen.add(key)
            for rec in records:
                try:
                    if operation == "insert":
                        name = sobject or _record_type(rec)
                        if not name:
                            raise ApiError("INVALID_TYPE", "sObject type not specified in "
                                           "attributes", ["attributes"])  # fmt: skip
                        o = self.sobject(name, acc, "create")
                        results.append(self._insert(o, rec, acc))
                    elif operation == "update":
                        rid = _case_get(rec, "Id")
                        if not rid:
                            raise ApiError("MISSING_ARGUMENT", "Id not specified in an update call")
                        o = self._object_for_id(sobject, str(rid), acc, "edit")
                        results.append(self._update(o, str(rid), rec, acc))
                    elif operation == "delete":
                        rid = _case_get(rec, "Id")
                        o = self._object_for_id(sobject, str(rid or ""), acc, "delete")
                        results.append(self._delete(o, str(rid), acc))
                    elif operation == "upsert":
                        assert obj is not None and ext is not None
                        v = _case_get(rec, ext.name)
                        if v not in (None, "") and vals.index_key(ext, str(v)) in dupes:
                            raise ApiError("DUPLICATE_EXTERNAL_ID",
                                           f"Duplicate external id specified: {v}", [ext.name])  # fmt: skip
                        if v in (None, "") and ext.name != "Id":
                            raise ApiError("MISSING_ARGUMENT", f"{ext.name} not specified")
                        res = self._upsert(obj, ext, v, rec, acc)
                        if res.matches:
                            res.errors = [ApiError(
                                "DUPLICATE_EXTERNAL_ID",
                                f"{ext.name}: more than one record found for external id field: "
                                f"{res.matches}", [ext.name])]  # fmt: skip
                        results.append(res)
                    else:
                        raise ValueError(f"unknown operation {operation}")
                except ApiError as exc:
                    results.append(SaveResult.failed(exc))
            if all_or_none and any(not r.success for r in results):
                tx.rollback()
                results = [
                    r if not r.success else SaveResult(None, False, [ROLLED_BACK])
                    for r in results
                ]
                for r in results:
                    r.created = None
            return results

    # -- DML internals (lock held) ---------------------------------------------------------------
    def _object_for_id(self, sobject: str | None, record_id: str, acc: Access, op: str) -> SObjectDef:
        rid = ids.try_normalize(record_id)
        if rid is None:
            raise ApiError("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        if sobject:
            obj = self.sobject(sobject, acc, op)
            if rid[:3] != obj.key_prefix:
                raise ApiError("MALFORMED_ID",
                               f"{obj.label} ID: id value of incorrect type: {record_id}", ["Id"])  # fmt: skip
            return obj
        obj = self.schema.by_prefix(rid[:3])
        if obj is None:
            raise ApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return self.sobject(obj.name, acc, op)

    def _id_for_object(self, obj: SObjectDef, record_id: str) -> str:
        rid = ids.try_normalize(record_id)
        if rid is None:
            raise ApiError("NOT_FOUND",
                           f"Provided external ID field does not exist or is not accessible: "
                           f"{record_id}", status=404)  # fmt: skip
        if rid[:3] != obj.key_prefix:
            raise ApiError("MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {record_id}",
                           ["Id"])  # fmt: skip
        return rid

    def _external_id_field(self, obj: SObjectDef, name: str, acc: Access) -> FieldDef:
        f = obj.field(name)
        if (f is None or not self.field_visible(acc, obj, f)
                or not (f.external_id or f.type == "id" or (f.id_lookup and f.unique))):  # fmt: skip
            raise ApiError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
                status=404,
            )
        return f

    def _find(self, obj: SObjectDef, table: Table, f: FieldDef, value: Any) -> list[str]:
        try:
            stored = vals.coerce(f, value)
        except vals.FieldValueError:
            return []
        if stored is None:
            return []
        if f.type == "id":
            rid = ids.try_normalize(str(stored))
            row = table.rows.get(rid) if rid else None
            return [rid] if row is not None and not self._deleted(table, row) else []  # type: ignore[list-item]
        if f.name in table.indexes:
            return table.index_lookup(f.name, vals.index_key(f, stored))
        key = vals.index_key(f, stored)
        s = table.slots.get(f.name)
        if s is None:
            return []
        return [rid for rid, row in table.rows.items()
                if s < len(row) and row[s] is not None and vals.index_key(f, row[s]) == key
                and not self._deleted(table, row)]  # fmt: skip

    def _upsert(self, obj: SObjectDef, ext: FieldDef, value: Any, data: dict[str, Any],
                acc: Access) -> SaveResult:  # fmt: skip
        table = self._table(obj)
        body = dict(data)
        body_value = _case_pop(body, ext.name)
        if value is None:
            value = body_value
        if ext.type == "id":
            if value in (None, ""):
                return self._insert(obj, body, acc, created_flag=True)
            rid = ids.try_normalize(str(value))
            if rid is None or rid[:3] != obj.key_prefix or rid not in table.rows:
                return SaveResult.failed(ApiError("NOT_FOUND", "Provided Id not found", ["Id"]))
            res = self._update(obj, rid, body, acc)
            res.created = False
            return res
        matches = self._find(obj, table, ext, value)
        if len(matches) > 1:
            return SaveResult(None, False, [], created=None, matches=matches)
        if matches:
            res = self._update(obj, matches[0], body, acc)
            res.created = False
            return res
        body[ext.name] = value
        return self._insert(obj, body, acc, created_flag=True)

    def _insert(self, obj: SObjectDef, data: dict[str, Any], acc: Access,
                created_flag: bool = False) -> SaveResult:  # fmt: skip
        result = SaveResult(None, False, [], created=True if created_flag else None)
        try:
            stored = self._prepare(obj, data, acc, insert=True)
        except ApiError as exc:
            result.errors.append(exc)
            return result
        now = self.clock.now_ms()
        uid = acc.user_id or self.admin_id
        if obj.platform_event:
            return self._publish(obj, stored, uid, now, result)
        table = self._table(obj)
        self._defaults(obj, table, stored, uid, now)
        missing = [n for n in self._plan(obj).required if stored.get(n) is None]
        if missing:
            result.errors.append(ApiError("REQUIRED_FIELD_MISSING",
                                          f"Required fields are missing: [{', '.join(missing)}]",
                                          missing))  # fmt: skip
            return result
        rid = ids.new_id(obj.key_prefix)
        stored["Id"] = rid
        err = self._check_unique(obj, table, rid, stored)
        if err is not None:
            result.errors.append(err)
            return result
        err = self._check_special(obj, rid, stored, insert=True)
        if err is not None:
            result.errors.append(err)
            return result
        if obj.name.endswith("__c") and stored.get("Name") is None and obj.field("Name"):
            stored["Name"] = rid
        row: list[Any] = [None] * table.next_slot
        slots = table.slots
        for key, v in stored.items():
            s = slots.get(key)
            if s is None:
                s = table.slot(key)
                row.extend([None] * (s + 1 - len(row)))
            row[s] = v
        table.rows[rid] = row
        self._index_row(obj, table, rid, row)
        self._log_undo(("insert", table, rid))
        if obj.name in ("PermissionSetAssignment", "PermissionSet"):
            self._access_epoch += 1
        self.dirty = True
        result.id = rid
        result.success = True
        return result

    def _update(self, obj: SObjectDef, record_id: str, data: dict[str, Any],
                acc: Access) -> SaveResult:  # fmt: skip
        rid = ids.normalize(record_id)
        result = SaveResult(rid, False, [])
        table = self._table(obj)
        row = table.rows.get(rid)
        if row is None:
            result.errors.append(ApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            return result
        if self._deleted(table, row):
            result.errors.append(ApiError("ENTITY_IS_DELETED", "entity is deleted"))
            return result
        body = dict(data)
        given_id = _case_pop(body, "Id")
        if given_id not in (None, "") and ids.try_normalize(str(given_id)) != rid:
            result.errors.append(ApiError("INVALID_ID_FIELD", "Record ID: cannot specify Id in an "
                                          "insert call", ["Id"]))  # fmt: skip
            return result
        try:
            stored = self._prepare(obj, body, acc, insert=False)
        except ApiError as exc:
            result.errors.append(exc)
            return result
        for f_name, v in stored.items():
            f = obj.fields[f_name]
            if v is None and f.required:
                result.errors.append(ApiError("REQUIRED_FIELD_MISSING",
                                              f"Required fields are missing: [{f.name}]", [f.name]))  # fmt: skip
                return result
        merged = {name: table.get(row, name) for name in table.slots if table.get(row, name) is not None}
        merged.update(stored)
        err = self._check_unique(obj, table, rid, stored)
        if err is not None:
            result.errors.append(err)
            return result
        now = self.clock.now_ms()
        uid = acc.user_id or self.admin_id
        self._derived(obj, merged, stored)
        err = self._check_special(obj, rid, merged, insert=False)
        if err is not None:
            result.errors.append(err)
            return result
        stored.update({"LastModifiedDate": now, "SystemModstamp": now, "LastModifiedById": uid})
        old = list(row)
        self._unindex_row(obj, table, rid, row)
        for key, v in stored.items():
            if obj.fields.get(key) is None:
                continue
            s = table.slot(key)
            if s >= len(row):
                row.extend([None] * (s + 1 - len(row)))
            row[s] = v
        self._index_row(obj, table, rid, row)
        self._log_undo(("update", table, rid, old))
        self.dirty = True
        result.success = True
        return result

    def _delete(self, obj: SObjectDef, record_id: str, acc: Access) -> SaveResult:
        rid = ids.normalize(record_id)
        table = self._table(obj)
        row = table.rows.get(rid)
        if row is None:
            return SaveResult.failed(ApiError("INVALID_CROSS_REFERENCE_KEY",
                                              "invalid cross reference id"), rid)  # fmt: skip
        if self._deleted(table, row):
            return SaveResult.failed(ApiError("ENTITY_IS_DELETED", "entity is deleted"), rid)
        err = self._cascade({rid}, obj)
        if err is not None:
            return SaveResult.failed(err, rid)
        self._remove_row(obj, table, rid, row, acc.user_id or self.admin_id)
        return SaveResult(rid, True, [])

    def _remove_row(self, obj: SObjectDef, table: Table, rid: str, row: list[Any], uid: str) -> None:
        old = list(row)
        self._unindex_row(obj, table, rid, row)
        if "IsDeleted" in table.slots:
            now = self.clock.now_ms()
            for key, v in (("IsDeleted", True), ("SystemModstamp", now), ("LastModifiedById", uid),
                           ("LastModifiedDate", now)):  # fmt: skip
                if key in table.slots:
                    s = table.slots[key]
                    if s >= len(row):
                        row.extend([None] * (s + 1 - len(row)))
                    row[s] = v
            self._log_undo(("delete", table, rid, old))
        else:  # setup objects are hard-deleted
            del table.rows[rid]
            self._log_undo(("delete", table, rid, old))
        if obj.name in ("PermissionSetAssignment", "PermissionSet"):
            self._access_epoch += 1
        self.dirty = True

    def _cascade(self, parent_ids: set[str], parent: SObjectDef) -> ApiError | None:
        """Apply delete constraints of lookups pointing at the deleted parents."""
        for child, f in self.schema.child_relationships(parent.name):
            table = self.tables.get(child.name)
            if table is None or not table.rows:
                continue
            s = table.slots.get(f.name)
            if s is None:
                continue
            hits = [(rid, row) for rid, row in table.rows.items()
                    if s < len(row) and row[s] in parent_ids and not self._deleted(table, row)]  # fmt: skip
            if not hits:
                continue
            if f.delete_constraint == "Restrict":
                return ApiError("DELETE_FAILED",
                                f"Your attempt to delete {parent.label} could not be completed "
                                f"because it is associated with the following {child.label_plural}.: "
                                f"{hits[0][0]}")  # fmt: skip
            for rid, row in hits:
                if f.delete_constraint == "Cascade":
                    err = self._cascade({rid}, child)
                    if err is not None:
                        return err
                    self._remove_row(child, table, rid, row, self.admin_id)
                else:
                    old = list(row)
                    row[s] = None
                    self._log_undo(("update", table, rid, old))
        return None

    def _prepare(self, obj: SObjectDef, data: dict[str, Any], acc: Access,
                 insert: bool) -> dict[str, Any]:  # fmt: skip
        """Validate and coerce incoming values -> {canonical field name: stored value}."""
        out: dict[str, Any] = {}
        not_writable: list[str] = []
        for key, value in data.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None and isinstance(value, dict):
                ref = obj.field_by_relationship(key)
                if ref is not None and self.field_visible(acc, obj, ref):
                    out[ref.name] = self._resolve_parent(obj, ref, value, acc)
                    continue
            if f is None or not self.field_visible(acc, obj, f):
                raise ApiError("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}",
                               [key])  # fmt: skip
            if f.type == "id":
                if insert:
                    not_writable.append(f.name)
                continue
            writable = f.createable if insert else f.updateable
            if not writable or not self.field_editable(acc, obj, f):
                not_writable.append(f.name)
                continue
            try:
                v = vals.coerce(f, value)
            except vals.FieldValueError as exc:
                raise ApiError(exc.code, exc.message, [exc.field_name]) from None
            if v is not None and f.type == "reference":
                v = self._check_reference(f, v)
            out[f.name] = v
        if not_writable:
            raise ApiError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(not_writable)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                not_writable,
            )
        return out

    def _check_reference(self, f: FieldDef, value: str) -> str:
        for t in f.reference_to:  # fast path: an exact 18-char id of a live record
            obj = self.schema.get(t)
            table = self.tables.get(obj.name) if obj is not None else None
            if table is not None and value in table.rows:
                row = table.rows[value]
                if self._deleted(table, row):
                    raise ApiError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
                # return the parent's own id string: one object shared by every child record
                return row[table.slots["Id"]]  # type: ignore[no-any-return]
        rid = ids.try_normalize(value)
        if rid is None:
            raise ApiError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
        targets = [self.schema.get(t) for t in f.reference_to]
        target = next((t for t in targets if t is not None and t.key_prefix == rid[:3]), None)
        if target is None:
            raise ApiError("FIELD_INTEGRITY_EXCEPTION",
                           f"{f.label}: id value of incorrect type: {value}", [f.name])  # fmt: skip
        table = self._table(target)
        row = table.rows.get(rid)
        if row is None:
            raise ApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        if self._deleted(table, row):
            raise ApiError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        return rid

    def _resolve_parent(self, obj: SObjectDef, ref: FieldDef, value: dict[str, Any],
                        acc: Access) -> str | None:  # fmt: skip
        keys = [k for k in value if k != "attributes"]
        target_name = (value.get("attributes") or {}).get("type") or ref.reference_to[0]
        target = self.schema.get(target_name)
        if len(keys) != 1 or target is None:
            raise ApiError("INVALID_FIELD", f"Invalid foreign key relationship: {ref.relationship_name}",
                           [ref.name])  # fmt: skip
        ext = target.field(keys[0])
        if ext is None or not self.field_visible(acc, target, ext) or not (ext.external_id or ext.type == "id"):
            raise ApiError("INVALID_FIELD",
                           f"Field name provided, {keys[0]} is not an External ID or indexed field "
                           f"for {target.name}", [ref.name])  # fmt: skip
        raw = value[keys[0]]
        if raw in (None, ""):
            return None
        matches = self._find(target, self._table(target), ext, raw)
        if not matches:
            raise ApiError("INVALID_FIELD",
                           f"Foreign key external ID: {raw} not found for field {ext.name} in "
                           f"entity {target.name}", [ref.name])  # fmt: skip
        if len(matches) > 1:
            raise ApiError("INVALID_FIELD",
                           f"Foreign key external ID: {raw} matches more than one record for "
                           f"field {ext.name} in entity {target.name}", [ref.name])  # fmt: skip
        return matches[0]

    def _defaults(self, obj: SObjectDef, table: Table, stored: dict[str, Any], uid: str,
                  now: int) -> None:  # fmt: skip
        plan = self._plan(obj)
        for name, v in plan.defaults.items():
            if name not in stored:
                stored[name] = v
        if plan.has_owner and stored.get("OwnerId") is None:
            stored["OwnerId"] = uid
        for name, v in (("CreatedDate", now), ("LastModifiedDate", now), ("SystemModstamp", now),
                        ("CreatedById", uid), ("LastModifiedById", uid)):  # fmt: skip
            if name in table.slots:
                stored[name] = v
        if "IsDeleted" in table.slots:
            stored["IsDeleted"] = False
        name_field = plan.auto_number
        if name_field is not None:
            stored["Name"] = _auto_number(name_field.display_format or "{0}", obj.auto_number_next)
            obj.auto_number_next += 1
        self._derived(obj, stored, stored)

    def _derived(self, obj: SObjectDef, merged: dict[str, Any], target: dict[str, Any]) -> None:
        """Fields Salesforce computes: Contact/User Name, Opportunity stage facts, Task IsClosed."""
        if obj.name in ("Contact", "User"):
            target["Name"] = " ".join(
                p for p in (merged.get("FirstName"), merged.get("LastName")) if p
            ) or None
        elif obj.name == "Opportunity" and merged.get("StageName") and "StageName" in target:
            for value, probability, forecast, closed, won in sch.OPPORTUNITY_STAGES:
                if value == merged["StageName"]:
                    if "Probability" not in target or target is merged and merged.get("Probability") is None:
                        target["Probability"] = float(probability)
                    target.setdefault("ForecastCategoryName", forecast)
                    target["IsClosed"] = closed
                    target["IsWon"] = won
                    break
        elif obj.name == "Task" and "Status" in target:
            target["IsClosed"] = merged.get("Status") == "Completed"

    def _check_unique(self, obj: SObjectDef, table: Table, rid: str,
                      stored: dict[str, Any]) -> ApiError | None:  # fmt: skip
        unique = self._plan(obj).unique
        for name, v in stored.items():
            if name not in unique or v is None:
                continue
            f = obj.fields[name]
            for other in table.index_lookup(f.name, vals.index_key(f, v)):
                if other != rid:
                    return ApiError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {other}",
                        [f.name],
                    )
        return None

    # -- test control: validation rules (a minimal stand-in for the org's formula rules) ------
    def set_validation_rule(self, sobject: str, name: str, when: Any, message: str,
                            field: str | None = None) -> None:  # fmt: skip
        """Reject saves of `sobject` where when(record) is true, as an active validation rule
        does: FIELD_CUSTOM_VALIDATION_EXCEPTION with `message` (on `field` if given)."""
        rules = self.__dict__.setdefault("validation_rules", {})
        rules.setdefault(sobject, {})[name] = (when, message, field)

    def remove_validation_rule(self, sobject: str, name: str) -> bool:
        return self.__dict__.get("validation_rules", {}).get(sobject, {}).pop(name, None) is not None

    def _check_validation_rules(self, obj: SObjectDef, merged: dict[str, Any]) -> ApiError | None:
        for when, message, field in self.__dict__.get("validation_rules", {}).get(obj.name, {}).values():
            if when(merged):
                return ApiError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [field] if field else [])
        return None

    def _check_special(self, obj: SObjectDef, rid: str, merged: dict[str, Any],
                       insert: bool) -> ApiError | None:  # fmt: skip
        rule_error = self._check_validation_rules(obj, merged)
        if rule_error is not None:
            return rule_error
        if obj.name == "PermissionSetAssignment" and insert:
            table = self.tables["PermissionSetAssignment"]
            for row in table.rows.values():
                if (self._get(table, row, "AssigneeId") == merged.get("AssigneeId")
                        and self._get(table, row, "PermissionSetId") == merged.get("PermissionSetId")):  # fmt: skip
                    return ApiError(
                        "DUPLICATE_VALUE",
                        f"Duplicate PermissionSetAssignment. Assignee: {merged.get('AssigneeId')}; "
                        f"Permission Set: {merged.get('PermissionSetId')}",
                        ["AssigneeId"],
                    )
            ps = self.tables["PermissionSet"].rows.get(merged.get("PermissionSetId") or "")
            if ps is not None and self._get(self.tables["PermissionSet"], ps, "IsOwnedByProfile"):
                return ApiError("INVALID_CROSS_REFERENCE_KEY",
                                "You can't assign or unassign this permission set because it's "
                                "associated with a profile.", ["PermissionSetId"])  # fmt: skip
        rt_id = merged.get("RecordTypeId")
        if rt_id and obj.field("RecordTypeId") is not None:
            ok = any(rt.id == rt_id and rt.active for rt in obj.record_types.values())
            if not ok:
                return ApiError("INVALID_CROSS_REFERENCE_KEY",
                                f"Record Type ID: this ID value isn't valid for the user: {rt_id}",
                                ["RecordTypeId"])  # fmt: skip
        return None

    def _publish(self, obj: SObjectDef, stored: dict[str, Any], uid: str, now: int,
                 result: SaveResult) -> SaveResult:  # fmt: skip
        missing = [f.name for f in obj.fields.values() if f.required and stored.get(f.name) is None]
        if missing:
            result.errors.append(ApiError("REQUIRED_FIELD_MISSING",
                                          f"Required fields are missing: [{', '.join(missing)}]",
                                          missing))  # fmt: skip
            return result
        self._replay_id += 1
        event_uuid = str(uuid.uuid4())
        payload = {k: vals.render(obj.fields[k], v) for k, v in stored.items()}
        payload.update({"CreatedDate": vals.format_datetime(now), "CreatedById": uid,
                        "EventUuid": event_uuid, "ReplayId": str(self._replay_id)})  # fmt: skip
        event = PublishedEvent(obj.name, ids.new_id(obj.key_prefix), event_uuid, self._replay_id,
                               now, uid, payload)  # fmt: skip
        self.events.append(event)
        if (obj.publish_behavior or "PublishAfterCommit") == "PublishAfterCommit":
            self._log_undo(("event", event))
        result.id = event.id
        result.success = True
        result.event_uuid = event_uuid
        return result

    # -- metadata mutations (Metadata API deploy) ------------------------------------------------
    def upsert_object(self, obj: SObjectDef) -> bool:
        """Create a custom object (with its fields) or update its object-level attributes and
        add/replace the fields given. Returns True when created. Raises SchemaError."""
        with self.lock:
            existing = self.schema.get(obj.name)
            if existing is None:
                fields = [f for f in obj.fields.values()]
                obj.fields = {}
                obj._lower = {}
                created = self.schema.add_object(obj)
                for f in fields:
                    if created.field(f.name) is not None:
                        if f.name_field:
                            self.schema.update_object(created.name, name_field=f)
                        continue
                    self.schema.add_field(created.name, f)
                self._table(created)
                self._access_epoch += 1
                self.dirty = True
                return True
            attrs = {k: getattr(obj, k) for k in ("label", "label_plural", "description",
                                                  "sharing_model", "deployment_status")
                     if getattr(obj, k) is not None}  # fmt: skip
            self.schema.update_object(existing.name, **attrs)
            for f in obj.fields.values():
                if f.name_field and existing.name_field is not None and f.name.lower() == "name":
                    self.schema.update_object(existing.name, name_field=f)
                elif existing.field(f.name) is None:
                    self.upsert_field(existing.name, f)
                elif f.custom:
                    self.upsert_field(existing.name, f)
            self._table(existing)
            self.dirty = True
            return False

    def remove_object(self, name: str) -> SObjectDef:
        """Delete a custom object, its records, record types and permissions."""
        with self.lock:
            obj = self.schema.get(name)
            if obj is None:
                raise sch.SchemaError(f"No such object: {name}")
            for rt in list(obj.record_types.values()):
                self.remove_record_type(obj.name, rt.developer_name)
            removed = self.schema.remove_object(obj.name)
            self.tables.pop(removed.name, None)
            self._access_epoch += 1
            self.dirty = True
            return removed

    def upsert_field(self, object_name: str, f: FieldDef) -> bool:
        """Add or replace a custom field; returns True when created. Changing a field keeps
        values that still fit. Raises SchemaError."""
        with self.lock:
            obj = self.schema.get(object_name)
            if obj is None:
                raise sch.SchemaError(f"No such object: {object_name}")
            existing = obj.field(f.name)
            if existing is None:
                self.schema.add_field(obj.name, f)
                self._table(obj)
                self.dirty = True
                return True
            old, new = self.schema.update_field(obj.name, f)
            table = self._table(obj)
            if old.indexed and not new.indexed:
                table.indexes.pop(old.name, None)
            elif old.indexed and new.indexed and old.case_sensitive != new.case_sensitive:
                table.indexes.pop(old.name, None)
                self._table(obj)
            s = table.slots.get(new.name)
            if s is not None and (old.type != new.type or old.length != new.length):
                for row in table.rows.values():
                    if s < len(row) and row[s] is not None:
                        try:
                            row[s] = vals.coerce(new, vals.render(old, row[s]) if old.type != "datetime" else vals.format_datetime(row[s]))
                        except vals.FieldValueError:
                            row[s] = None
            self.dirty = True
            return False

    def remove_field(self, object_name: str, field_name: str) -> FieldDef:
        """Delete a custom field and clear its values. Raises SchemaError."""
        with self.lock:
            obj = self.schema.get(object_name)
            if obj is None:
                raise sch.SchemaError(f"No such object: {object_name}")
            f = self.schema.remove_field(obj.name, field_name)
            table = self._table(obj)
            s = table.slots.pop(f.name, None)
            table.indexes.pop(f.name, None)
            if s is not None:
                for row in table.rows.values():
                    if s < len(row):
                        row[s] = None
            self._access_epoch += 1
            self.dirty = True
            return f

    def upsert_business_process(self, object_name: str, bp: sch.BusinessProcessDef) -> bool:
        with self.lock:
            obj = self.schema.get(object_name)
            created = self.schema.upsert_business_process(object_name, bp)
            assert obj is not None
            audit = self._audit()
            table = self.tables["BusinessProcess"]
            existing = next((rid for rid, row in table.rows.items()
                             if self._get(table, row, "Name") == bp.name
                             and self._get(table, row, "TableEnumOrId") == obj.name), None)  # fmt: skip
            if existing is None:
                bp.id = self._raw_insert("BusinessProcess", {
                    "Id": ids.new_id("019"), "Name": bp.name, "TableEnumOrId": obj.name,
                    "IsActive": bp.active, "Description": bp.description, **audit})  # fmt: skip
            else:
                bp.id = existing
                self._set_fields("BusinessProcess", existing,
                                 {"IsActive": bp.active, "Description": bp.description})  # fmt: skip
            self.dirty = True
            return created

    def remove_business_process(self, object_name: str, name: str) -> sch.BusinessProcessDef:
        with self.lock:
            bp = self.schema.remove_business_process(object_name, name)
            if bp.id:
                self.tables["BusinessProcess"].rows.pop(bp.id, None)
            self.dirty = True
            return bp

    def upsert_record_type(self, object_name: str, rt: sch.RecordTypeDef) -> bool:
        with self.lock:
            obj = self.schema.get(object_name)
            created = self.schema.upsert_record_type(object_name, rt)
            assert obj is not None
            self._table(obj)
            bp = obj.business_process(rt.business_process) if rt.business_process else None
            table = self.tables["RecordType"]
            existing = next((rid for rid, row in table.rows.items()
                             if self._get(table, row, "DeveloperName") == rt.developer_name
                             and self._get(table, row, "SobjectType") == obj.name), None)  # fmt: skip
            fields = {"Name": rt.label, "DeveloperName": rt.developer_name,
                      "SobjectType": obj.name, "IsActive": rt.active,
                      "Description": rt.description,
                      "BusinessProcessId": bp.id if bp is not None else None}  # fmt: skip
            if existing is None:
                rt.id = self._raw_insert("RecordType",
                                         {"Id": ids.new_id("012"), **fields, **self._audit()})  # fmt: skip
            else:
                rt.id = existing
                self._set_fields("RecordType", existing, fields)
            self.dirty = True
            return created

    def remove_record_type(self, object_name: str, developer_name: str) -> sch.RecordTypeDef:
        with self.lock:
            rt = self.schema.remove_record_type(object_name, developer_name)
            if rt.id:
                self.tables["RecordType"].rows.pop(rt.id, None)
            self.dirty = True
            return rt

    def upsert_permission_set(self, ps: sch.PermissionSetDef) -> str:
        """Create or replace a permission set (definition + PermissionSet record, whose
        Permissions* fields follow `ps.user_permissions`). Returns the 0PS record id."""
        with self.lock:
            self.schema.upsert_permission_set(ps)
            table = self.tables["PermissionSet"]
            existing = next((rid for rid, row in table.rows.items()
                             if (self._get(table, row, "Name") or "").lower() == ps.name.lower()),
                            None)  # fmt: skip
            perms = {f"Permissions{p}": bool(ps.user_permissions.get(p)) for p in sch.USER_PERMISSIONS}
            fields = {"Name": ps.name, "Label": ps.label, "Description": ps.description, **perms}
            if existing is None:
                existing = self._raw_insert("PermissionSet", {
                    "Id": ids.new_id("0PS"), "IsOwnedByProfile": False, "Type": "Regular",
                    **fields, **self._audit()})  # fmt: skip
            else:
                self._set_fields("PermissionSet", existing, fields)
            self._access_epoch += 1
            self.dirty = True
            return existing

    def remove_permission_set(self, name: str) -> sch.PermissionSetDef:
        """Delete a permission set and its assignments."""
        with self.lock:
            ps = self.schema.remove_permission_set(name)
            table = self.tables["PermissionSet"]
            psa = self.tables["PermissionSetAssignment"]
            for rid in [rid for rid, row in table.rows.items()
                        if (self._get(table, row, "Name") or "").lower() == ps.name.lower()]:  # fmt: skip
                del table.rows[rid]
                for aid in [a for a, row in psa.rows.items()
                            if self._get(psa, row, "PermissionSetId") == rid]:  # fmt: skip
                    del psa.rows[aid]
            self._access_epoch += 1
            self.dirty = True
            return ps

    def permission_set_id(self, name: str) -> str | None:
        with self.lock:
            table = self.tables["PermissionSet"]
            return next((rid for rid, row in table.rows.items()
                         if (self._get(table, row, "Name") or "").lower() == name.lower()), None)  # fmt: skip

    def assign_permission_set(self, user_id: str, name: str) -> str:
        """Assign a permission set to a user (as a PermissionSetAssignment insert would)."""
        with self.lock:
            ps_id = self.permission_set_id(name)
            if ps_id is None:
                raise KeyError(name)
            res = self.insert("PermissionSetAssignment",
                              {"AssigneeId": user_id, "PermissionSetId": ps_id}, self.system)  # fmt: skip
            if not res.success:
                raise res.errors[0]
            return res.id  # type: ignore[return-value]

    def _audit(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        return {"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                "CreatedById": self.admin_id, "LastModifiedById": self.admin_id}  # fmt: skip

    def _set_fields(self, sobject: str, rid: str, data: dict[str, Any]) -> None:
        obj = self.schema.get(sobject)
        assert obj is not None
        table = self._table(obj)
        row = table.rows[rid]
        old = list(row)
        self._unindex_row(obj, table, rid, row)
        for key, v in {**data, "LastModifiedDate": self.clock.now_ms()}.items():
            s = table.slot(key)
            if s >= len(row):
                row.extend([None] * (s + 1 - len(row)))
            row[s] = v
        self._index_row(obj, table, rid, row)
        self._log_undo(("update", table, rid, old))

    # -- inspection ---------------------------------------------------------------------------------
    def records(self, sobject: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All records of an object as JSON-ready dicts (every field, no FLS)."""
        with self.lock:
            obj = self.schema.get(sobject)
            if obj is None:
                raise KeyError(sobject)
            table = self._table(obj)
            out = []
            for rid, row in table.rows.items():
                if not include_deleted and self._deleted(table, row):
                    continue
                rec = self.render_record(obj, table, rid, row, obj.fields.values(), "62.0")
                rec.pop("attributes")
                out.append(rec)
            return out

    def count(self, sobject: str, include_deleted: bool = False) -> int:
        with self.lock:
            obj = self.schema.get(sobject)
            if obj is None:
                raise KeyError(sobject)
            table = self._table(obj)
            if include_deleted or "IsDeleted" not in table.slots:
                return len(table.rows)
            return sum(1 for row in table.rows.values() if not self._deleted(table, row))

    def published_events(self, sobject: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e.as_dict() for e in self.events
                    if sobject is None or e.sobject.lower() == sobject.lower()]  # fmt: skip

    def log_request(self, record: RequestRecord) -> None:
        self.requests.append(record)

    # -- persistence -----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        with self.lock:
            tables = {}
            for name, table in self.tables.items():
                cols = sorted(table.slots.items(), key=lambda kv: kv[1])
                positions = [s for _, s in cols]
                width = len(positions)
                if positions == list(range(width)):  # no removed fields: copy rows as they are
                    rows = [row + [None] * (width - len(row)) if len(row) < width else row[:width]
                            for row in table.rows.values()]  # fmt: skip
                else:
                    rows = [[row[s] if s < len(row) else None for s in positions]
                            for row in table.rows.values()]  # fmt: skip
                tables[name] = {"columns": [c for c, _ in cols], "rows": rows}
            return {
                "state_version": STATE_VERSION,
                "org_id": self.org_id,
                "edition": self.edition,
                "admin_id": self.admin_id,
                "clock_offset": self.clock.offset_seconds,
                "usage": self.usage.dump(),
                "schema": sch.dump_schema(self.schema),
                "tables": tables,
                "users": [{"id": u.id, "username": u.username, "password": u.password,
                           "profile": u.profile} for u in self.users.values()],  # fmt: skip
                "events": [e.as_dict() for e in self.events[-10_000:]],
                "replay_id": self._replay_id,
                "sessions": self.sessions.dump(),
                "ttl": self.sessions.ttl_seconds,
            }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the org to a JSON state file atomically (temp file + rename, mode 0600: it
        holds the sandbox users' passwords and tokens)."""
        data = self.dump()
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, separators=(",", ":")))  # the C encoder: much faster
        os.replace(tmp, target)
        self.dirty = False

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> Org:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("state_version") != STATE_VERSION:
            raise ValueError(f"{path}: unsupported sandbox state version {data.get('state_version')}")
        org = cls.__new__(cls)
        org.lock = threading.RLock()
        org.edition = data["edition"]
        org.clock = Clock(data.get("clock_offset", 0.0))
        limit = kwargs.get("daily_api_limit") or data["usage"]["max"]
        org.usage = ApiUsage(org.clock, limit)
        org.usage.load(data["usage"])
        org.schema = sch.load_schema(data["schema"])
        org.tables = {}
        org.users = {u["id"]: UserAccount(u["id"], u["username"], u["password"], u["profile"])
                     for u in data["users"]}  # fmt: skip
        org.events = []
        org.requests = deque(maxlen=20_000)
        org.org_id = data["org_id"]
        ttl = kwargs.get("token_ttl_seconds") or data.get("ttl", 7200.0)
        org.sessions = SessionStore(org.clock, org.org_id, ttl)
        org.sessions.load(data.get("sessions", {}))
        org.system = Access("", frozenset(), {}, {}, system=True)
        org._access_cache = {}
        org._access_epoch = 0
        org._tx_local = threading.local()
        org._plans = {}
        org._replay_id = data.get("replay_id", 0)
        org.admin_id = data["admin_id"]
        org.dirty = False
        for e in data.get("events", []):
            ms = vals.parse_datetime_ms(e["published_at"]) or 0
            org.events.append(PublishedEvent(e["sobject"], e["id"], e["uuid"], e["replay_id"], ms,
                                             e["user_id"], e["payload"]))  # fmt: skip
        for name, tdata in data["tables"].items():
            obj = org.schema.get(name)
            if obj is None:
                continue
            table = Table(obj.name)
            cols = tdata["columns"]
            for c in cols:
                table.slot(c)
            for f in obj.fields.values():
                table.slot(f.name)
            id_slot = table.slots.get("Id")
            if id_slot is None:  # platform events (X__e) store no records and have no Id
                org.tables[obj.name] = table
                continue
            newest = ""
            for row in tdata["rows"]:
                rid = row[id_slot]
                table.rows[rid] = row
                if rid[3:5] == ids.POD and rid[:15] > newest[:15]:
                    newest = rid  # fixed-width base-62 counters: the largest id is the newest
            if newest:
                ids.bump_counter(newest)
            org.tables[obj.name] = table
            org._table(obj)
        for obj in org.schema.objects.values():
            org._table(obj)
        ids.bump_counter(org.org_id)
        for u in org.users:
            ids.bump_counter(u)
        return org


def _case_get(rec: dict[str, Any], name: str) -> Any:
    if name in rec:
        return rec[name]
    low = name.lower()
    for k, v in rec.items():
        if k.lower() == low:
            return v
    return None


def _case_pop(rec: dict[str, Any], name: str) -> Any:
    low = name.lower()
    for k in list(rec):
        if k.lower() == low:
            return rec.pop(k)
    return None


def _record_type(rec: dict[str, Any]) -> str | None:
    attrs = rec.get("attributes")
    if isinstance(attrs, dict):
        t = attrs.get("type")
        return str(t) if t else None
    return None


def _auto_number(display_format: str, n: int) -> str:
    import re

    m = re.search(r"\{(0+)\}", display_format)
    if not m:
        return f"{display_format}{n}"
    return display_format[: m.start()] + str(n).zfill(len(m.group(1))) + display_format[m.end():]
