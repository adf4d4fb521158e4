"""Who may act in the control app: the user list and the one authorization check.

No Panel import: the server wiring (:mod:`gridflow.control.app.app`) hands the list to
:class:`gridflow.control.app.security.GridflowAuthProvider` (Panel's basic-auth provider
with rate-limited, XSRF-checked login pages) with guests allowed (``oauth_optional``);
Panel then reports ``"guest"`` for anonymous visitors and the login name for signed-in
users. Only a name of the configured list counts as logged in: guests, unknown names and
"no users configured" all give a read-only app.
"""

from __future__ import annotations

import os
import secrets

from pydantic import SecretStr

USERS_ENV = "GRIDFLOW_APP_USERS"
"""``"alice:pw,bob:pw2"``: the users allowed to act (comma or whitespace separated)."""
COOKIE_SECRET_ENV = "GRIDFLOW_APP_COOKIE_SECRET"
"""Secret that signs the login cookie; random per process when unset (sessions then
end with the process)."""
GUEST = "guest"
"""The name Panel gives anonymous visitors when guests are allowed; never a user."""


def parse_users(text: str) -> dict[str, SecretStr]:
    """Parse ``"alice:pw,bob:pw2"`` into ``{"alice": SecretStr("pw"), ...}``.

    Entries are separated by commas or whitespace; a password may contain ``:``
    (only the first one splits).

    Raises
    ------
    ValueError
        On an entry without ``:``, an empty name or password, a name used twice, or
        the reserved name ``guest``. The message names the user, never a password.
    """
    users: dict[str, SecretStr] = {}
    for entry in text.replace(",", " ").split():
        name, sep, pw = entry.partition(":")
        if not sep or not name or not pw:
            raise ValueError(
                f"{USERS_ENV}: entry for {name or '?'!r} must be NAME:PASSWORD, both non-empty"
            )
        if name == GUEST:
            raise ValueError(f"{USERS_ENV}: {GUEST!r} is reserved for anonymous visitors")
        if name in users:
            raise ValueError(f"{USERS_ENV}: user {name!r} given twice")
        users[name] = SecretStr(pw)
    return users


def users_from_env(environ: dict[str, str] | None = None) -> dict[str, SecretStr]:
    """Users of ``GRIDFLOW_APP_USERS`` (empty when unset: read-only for everyone)."""
    env = os.environ if environ is None else environ
    return parse_users(env.get(USERS_ENV, ""))


def coerce_users(users: dict[str, str] | dict[str, SecretStr] | None
                 ) -> dict[str, SecretStr]:
    """``users`` as name -> SecretStr, checked like :func:`parse_users`."""
    out: dict[str, SecretStr] = {}
    for name, pw in (users or {}).items():
        secret = pw if isinstance(pw, SecretStr) else SecretStr(str(pw))
        if not name or not secret.get_secret_value() or name == GUEST or ":" in name:
            raise ValueError(f"app users: invalid entry for user {name!r} (empty, ':' or "
                             f"reserved name {GUEST!r})")
        out[name] = secret
    return out


def authorized_user(session_user: str | None, users: dict[str, SecretStr]) -> str | None:
    """The name allowed to act, or None (read-only).

    Parameters
    ----------
    session_user : str or None
        What the server authenticated (Panel's ``pn.state.user``): None without an
        auth provider, ``"guest"`` for an anonymous visitor.
    users : dict
        The configured users; empty means nobody may act.
    """
    if not users or not session_user or session_user == GUEST:
        return None
    return session_user if session_user in users else None


def cookie_secret(environ: dict[str, str] | None = None) -> str:
    """``GRIDFLOW_APP_COOKIE_SECRET`` or a fresh random secret."""
    env = os.environ if environ is None else environ
    return env.get(COOKIE_SECRET_ENV) or secrets.token_urlsafe(32)
