"""Disconnect a profile: optionally remove the LostChurn metadata (and its data) from the org,
revoke the Salesforce tokens at Salesforce, delete every keyring secret of the profile, and
optionally the local state (cursor, journal, outbox, failures, audit log).

Order matters: removal needs the tokens, so it runs first, and a removal that fails stops
everything (the admin can retry with the connection intact). A revoke that Salesforce cannot
confirm does not keep the secrets on this machine: they are deleted anyway and the summary
says where to revoke the app's access by hand. The TUI and `lc-console disconnect` share it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lc_console import paths, secrets, settings
from lc_console.services import install

SETUP_OAUTH = "Setup > Connected Apps OAuth Usage (or your user's OAuth Connected Apps)"


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class DisconnectResult:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def lines(self) -> list[str]:
        return [f"{'✓' if s.ok else '✗'} {s.name}: {s.detail}" for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [s.__dict__ for s in self.steps]}


def org_name(profile: str) -> str:
    try:
        cfg = settings.load(profile)
    except settings.SettingsError:
        return ""
    return cfg.salesforce.org_name or cfg.salesforce.org_id


def preview(profile: str, target: install.Target | None = None) -> install.RemovePreview:
    """What removing the metadata deletes (records and populated values)."""
    return install.remove_preview(target or install.target_for_profile(profile))


def _remove_state(profile: str) -> str:
    folder = paths.data_dir(profile)
    if not folder.exists():
        return "there was no local state"
    shutil.rmtree(folder)
    home = str(Path.home())
    shown = "~" + str(folder)[len(home):] if str(folder).startswith(home + "/") else str(folder)
    return f"deleted {shown} (cursor, journal, outbox, failures, audit log)"


def disconnect(profile: str, *, remove_metadata: bool, keep_state: bool = True,
               target_factory: Callable[[], install.Target] | None = None,
               on_step: Callable[[Step], None] | None = None,
               poll: tuple[float, float] = (1.0, 5.0)) -> DisconnectResult:
    from lc_console.salesforce import tokens

    result = DisconnectResult()

    def done(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    if remove_metadata:
        try:
            target = (target_factory or (lambda: install.target_for_profile(profile)))()
            removed = install.remove(target, poll_interval=poll[0], max_poll_interval=poll[1])
        except Exception as exc:
            removed = install.RemoveResult(False, install.error_message(exc))
        done(Step("Remove LostChurn metadata", removed.ok, " ".join(removed.lines())))
        if not removed.ok:
            done(Step("Stopped", False, "Nothing else was changed: the connection is kept so "
                      "that removal can be retried."))
            return result
    else:
        done(Step("Keep LostChurn metadata", True, "the objects, fields and their data stay "
                  "in the org"))

    manager = tokens.manager_for(profile)
    try:
        revoked = manager.revoke()
        done(Step("Revoke Salesforce tokens", True,
                  "revoked at Salesforce" if revoked else "no Salesforce token was stored"))
    except Exception as exc:
        from lc_console.services.connect import describe_error

        done(Step("Revoke Salesforce tokens", False,
                  f"{describe_error(exc).text()} The tokens are deleted from this machine "
                  f"anyway; revoke the app's access in {SETUP_OAUTH}."))

    try:
        present = [k for k, stored in secrets.status(profile).items() if stored]
        manager.forget()
        secrets.delete_all(profile)
        kinds = ", ".join(k.value for k in present) or "there were none"
        done(Step("Delete keyring secrets", True, f"removed from the keyring ({kinds}); the "
                  "org's details are cleared from the settings"))
        cfg = settings.load(profile)
        cfg.stripe.account_id = cfg.stripe.account_name = ""
        cfg.ui.wizard_completed = []
        settings.save(profile, cfg)
    except secrets.KeyringUnavailable as exc:
        done(Step("Delete keyring secrets", False, str(exc)))
    except (settings.SettingsError, OSError) as exc:
        done(Step("Delete keyring secrets", False, str(exc)))
    tokens._managers.pop(profile, None)

    if keep_state:
        done(Step("Keep local state", True, "cursor, failures and audit log kept"))
    else:
        try:
            done(Step("Delete local state", True, _remove_state(profile)))
        except OSError as exc:
            done(Step("Delete local state", False, f"{exc}; delete the folder by hand"))
    return result
