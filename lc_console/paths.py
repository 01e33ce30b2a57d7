"""Where a profile's files live (platformdirs, so XDG variables are honoured)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from lc_console import APP_NAME

DEFAULT_PROFILE = "default"
PROFILE_ENV = "LC_CONSOLE_PROFILE"
_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProfileNameError(ValueError):
    pass


def resolve_profile(name: str | None = None) -> str:
    """The profile to use: the explicit name, else $LC_CONSOLE_PROFILE, else 'default'."""
    profile = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if not _PROFILE_RE.match(profile):
        raise ProfileNameError(
            f"Profile name {profile!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit)."
        )
    return profile


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def config_file(profile: str) -> Path:
    return config_dir() / f"{profile}.toml"


def data_dir(profile: str) -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / profile


def state_db(profile: str) -> Path:
    return data_dir(profile) / "state.db"


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


def log_file() -> Path:
    return log_dir() / "lc-console.log"
