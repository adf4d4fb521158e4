"""Assemble and serve the control app: one template, four tabs, Panel's basic auth.

Auth: with users configured (``GRIDFLOW_APP_USERS="alice:pw,bob:pw2"`` or ``users=``),
the server runs Panel's basic-auth provider with guests allowed (``oauth_optional``) and
gridflow's login and logout pages (:mod:`gridflow.control.app.security`: rate limited,
XSRF-checked, logout by POST): anyone can open the app read-only, the header links to
``/login`` and ``/logout`` (which asks before signing out), and
only a signed-in configured user gets enabled action buttons and a state whose action
methods work. Without users everyone is read-only; there is no default password.
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from html import escape
from typing import Any

import holoviews as hv
import panel as pn
from pydantic import SecretStr
from sqlalchemy import make_url

from gridflow.control.app import sweeps, views
from gridflow.control.app.auth import (
    authorized_user,
    coerce_users,
    cookie_secret,
    users_from_env,
)
from gridflow.control.app.state import ControlState

REFRESH_MS = 1000
TITLE = "gridflow control"


_IO = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gridflow-app-io")
"""Journal and file reads of every session's poll: never on the server's event loop."""


class Poller:
    """One session's periodic poll: :meth:`ControlState.fetch` on an I/O thread, then
    :meth:`ControlState.apply` on the event loop. A poll still reading when the next is
    due makes that one a no-op, so a slow journal delays the view, never the server."""

    def __init__(self, state: ControlState) -> None:
        self.state = state
        self.busy = False

    async def tick(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            snap = await asyncio.get_running_loop().run_in_executor(_IO, self.state.fetch)
            self.state.apply(snap)
        finally:
            self.busy = False


def _header(state: ControlState, users: dict[str, SecretStr]) -> pn.pane.HTML:
    if state.can_act:
        html = (f"Signed in as <b>{escape(state.user or '')}</b> · "
                '<a href="/logout" style="color:inherit">Log out</a>')
    elif users:
        html = 'Guest (read-only) · <a href="/login" style="color:inherit"><b>Log in</b></a>'
    else:
        html = "Read-only: no users configured (GRIDFLOW_APP_USERS)."
    return pn.pane.HTML(html, css_classes=["gf-user"], styles={"color": "white"})


def create_app(db_url: str, users: dict[str, str] | dict[str, SecretStr] | None = None,
               refresh_ms: int = REFRESH_MS) -> pn.template.FastListTemplate:
    """The app of one browser session.

    Parameters
    ----------
    db_url : str
        Journal URL (the engine's ``db_url``).
    users : dict, optional
        Name -> password of the users allowed to act; the session's user comes from
        the server's auth (``pn.state.user``). None or empty: read-only.
    refresh_ms : int
        Poll period of the journal in a server session (0: no periodic refresh).

    Returns
    -------
    panel.template.FastListTemplate
        With tabs Live, Backtest, Compare and Sweeps (read-only for everyone).
    """
    hv.extension("bokeh", logo=False)
    pn.extension()
    allowed = coerce_users(users)
    state = ControlState(db_url=db_url, user=authorized_user(pn.state.user, allowed))
    state.refresh()
    if refresh_ms and pn.state.curdoc is not None and pn.state.curdoc.session_context:
        pn.state.add_periodic_callback(Poller(state).tick, period=refresh_ms)
        pn.state.on_session_destroyed(lambda _ctx: state.close())
        doc = pn.state.curdoc  # an ack is shown as soon as the engine journals it
        state.ack_listener = lambda: doc.add_next_tick_callback(state.collect_ack)
    tabs = pn.Tabs(("Live", views.live_page(state)), ("Backtest", views.backtest_page(state)),
                   ("Compare", views.compare_page(state)),
                   ("Sweeps", sweeps.sweeps_page(state)), dynamic=True,
                   sizing_mode="stretch_width")
    main: list[Any] = [tabs]
    if not state.can_act:
        note = views.READ_ONLY_NOTE if allowed else "Read-only: no users are configured."
        main.insert(0, pn.pane.Alert(note, alert_type="secondary", css_classes=["gf-readonly"]))
    template = pn.template.FastListTemplate(title=TITLE, header=[_header(state, allowed)],
                                            main=main, theme_toggle=False)
    template.state = state  # for tests and notebooks: the session's store
    return template


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def serve(db_url: str, port: int = 5006, address: str = "127.0.0.1",
          users: dict[str, str] | dict[str, SecretStr] | None = None, show: bool = False,
          start: bool = True, **kwargs: Any):
    """Serve the app at ``http://{address}:{port}/`` (``https`` with ``ssl_certfile``).

    With users, logins go through :class:`~gridflow.control.app.security.GridflowAuthProvider`
    (rate limited, XSRF-checked, POST logout, hardened cookies); every asset is served by
    the server itself (:mod:`gridflow.control.app.offline`).

    Parameters
    ----------
    db_url : str
    port : int
        0 picks a free port (printed).
    address : str
        Interface to listen on; the default serves this machine only.
    users : dict, optional
        Defaults to ``GRIDFLOW_APP_USERS``; see :mod:`gridflow.control.app.auth`.
    show, start : bool
        Open a browser; run the server loop (blocks) or return the server unstarted.
    **kwargs
        Passed to :func:`panel.serve` (e.g. ``websocket_origin=["host.example:5006"]``
        when serving on another interface, ``ssl_certfile``/``ssl_keyfile`` (PEM paths)
        for TLS: cookies are then ``Secure``).

    Raises
    ------
    ValueError
        On a malformed user list.
    """
    from gridflow.control.app.offline import use_local_assets, without_web_fonts
    from gridflow.control.app.security import GridflowAuthProvider

    allowed = coerce_users(users) if users is not None else users_from_env()
    port = port or _free_port(address)
    opts: dict[str, Any] = dict(kwargs)
    if allowed:  # Panel's basic auth with our login/logout handlers (security.py)
        opts.update(auth_provider=GridflowAuthProvider(allowed), oauth_optional=True,
                    cookie_secret=cookie_secret())
    use_local_assets()
    local = address in ("127.0.0.1", "localhost")
    hosts = sorted({address, "localhost", "127.0.0.1"} if local else {address})
    opts.setdefault("websocket_origin", [f"{h}:{port}" for h in hosts])
    server = pn.serve(lambda: without_web_fonts(create_app(db_url, allowed)), port=port,
                      address=address, show=False, start=False, title=TITLE, verbose=False,
                      **opts)
    url = f"{'https' if opts.get('ssl_certfile') else 'http'}://{address}:{server.port}/"
    journal = make_url(db_url).render_as_string(hide_password=True)
    print(f"gridflow app: serving {url} (journal {journal}; "
          f"{'users: ' + ', '.join(sorted(allowed)) if allowed else 'read-only'})", flush=True)
    if show:
        server.io_loop.add_callback(server.show, "/")
    if not start:
        return server
    server.start()
    server.io_loop.start()
    return server
