"""The app's login, hardened: a per-client rate limit, XSRF-checked forms, POST-only
logout and cookies that scripts and other sites cannot use.

Wired into Panel through its auth-provider API: :class:`GridflowAuthProvider` is Panel's
:class:`~panel.auth.BasicAuthProvider` (guests allowed with ``oauth_optional``, the
``user`` cookie signed with the cookie secret, ``pn.state.user``) with its own login and
logout handlers:

- ``GET /login`` shows the form (``templates/login.html``, nothing loaded from another
  host) with Tornado's XSRF token; ``POST /login`` without a matching token is refused
  (403), from a locked-out client refused (429, ``templates/locked.html``, a
  ``Retry-After`` header) before any password is looked at, and a wrong password is
  counted against the client's IP by :class:`LoginRateLimiter`.
- ``GET /logout`` only asks (``templates/logout.html``); ``POST /logout`` with the XSRF
  token signs out and goes back to the app (as a guest).
- Every cookie these handlers set (``user``, ``id_token``, ``_xsrf``) and the guest
  marker ``is_guest`` are ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when the request
  came over TLS.

Passwords are compared in constant time and never logged; a locked-out client is logged
with its IP.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import jinja2
from panel.auth import BasicAuthProvider, BasicLoginHandler
from panel.config import config
from pydantic import SecretStr
from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
SIGNED_COOKIES = ("user", "id_token", "access_token", "refresh_token", "oauth_expiry")
"""What Panel may have set for a signed-in user; all cleared on logout."""


# ---- the rate limiter (pure: no I/O, the clock is a parameter) ---------------------------
@dataclass
class _Client:
    failures: deque[float]      # times of the last failures in the window, s (bounded)
    strikes: int = 0            # lock-outs so far (the next one lasts twice as long)
    locked_until: float = 0.0
    last_failure: float = -math.inf


class LoginRateLimiter:
    """Failed logins per client in a sliding window, then an exponential lock-out.

    A client (an IP address) may fail ``max_failures`` times within ``window_s``
    seconds; the failure that reaches the limit locks it out for ``lockout_s`` (and at
    least until the oldest of those failures leaves the window), the next lock-out for
    twice as long, and so on up to ``max_lockout_s``. A client with no failure for
    ``forget_s`` seconds (after its lock-out) starts again from the first lock-out
    length. A successful login changes nothing: failures only age out, so a client
    knowing one password cannot reset its count to guess another.

    Parameters
    ----------
    max_failures : int
        Failures allowed in a window (>= 1).
    window_s, lockout_s, max_lockout_s, forget_s : float
        Seconds (> 0; ``max_lockout_s >= lockout_s``). ``forget_s`` defaults to
        ``max_lockout_s``.
    max_clients : int
        Clients tracked at most; beyond it idle clients are forgotten first, then
        unlocked ones, oldest last failure first.
    clock : callable
        Monotonic seconds (``time.monotonic``; a fake one in tests).

    Attributes
    ----------
    counts : dict
        ``failures`` (wrong passwords), ``lockouts`` (locks started) and ``refused``
        (attempts answered 429 while locked), since start.

    Raises
    ------
    ValueError
        On a non-positive limit or duration.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, lockout_s: float = 60.0,
                 max_lockout_s: float = 3600.0, forget_s: float | None = None,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        forget_s = max_lockout_s if forget_s is None else forget_s
        if max_failures < 1 or max_clients < 1 or min(window_s, lockout_s, forget_s) <= 0:
            raise ValueError("login rate limit: limits and durations must be positive")
        if max_lockout_s < lockout_s:
            raise ValueError("login rate limit: max_lockout_s must be >= lockout_s")
        self.max_failures, self.window_s = max_failures, window_s
        self.lockout_s, self.max_lockout_s, self.forget_s = lockout_s, max_lockout_s, forget_s
        self.max_clients, self.clock = max_clients, clock
        self.counts = {"failures": 0, "lockouts": 0, "refused": 0}
        self._clients: dict[str, _Client] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0.0: now). Does not count anything."""
        c = self._clients.get(client)
        return max(0.0, c.locked_until - self.clock()) if c else 0.0

    def check(self, client: str) -> float:
        """Like :meth:`retry_after`, counting a refused attempt when it is > 0."""
        wait = self.retry_after(client)
        if wait > 0:
            self.counts["refused"] += 1
        return wait

    def record_failure(self, client: str) -> float:
        """Count a wrong password of ``client``; the lock-out it starts in seconds (0.0:
        none, the client may try again)."""
        now = self.clock()
        c = self._clients.get(client)
        if c is None:
            if len(self._clients) >= self.max_clients:
                self._make_room(now)
            c = self._clients[client] = _Client(deque(maxlen=self.max_failures))
        if now - max(c.last_failure, c.locked_until) >= self.forget_s:
            c.strikes = 0
        c.last_failure = now
        while c.failures and c.failures[0] <= now - self.window_s:
            c.failures.popleft()
        c.failures.append(now)
        self.counts["failures"] += 1
        if len(c.failures) < self.max_failures:
            return 0.0
        c.strikes += 1
        lock = min(self.lockout_s * 2.0 ** (c.strikes - 1), self.max_lockout_s)
        c.locked_until = max(now + lock, c.failures[0] + self.window_s)
        self.counts["lockouts"] += 1
        return c.locked_until - now

    def __len__(self) -> int:
        """Clients tracked."""
        return len(self._clients)

    def _make_room(self, now: float) -> None:
        idle = [k for k, c in self._clients.items() if c.locked_until <= now
                and (not c.failures or c.failures[-1] <= now - self.window_s)]
        for k in idle:
            del self._clients[k]
        excess = len(self._clients) - self.max_clients + 1
        if excess > 0:
            def key(k: str) -> tuple[bool, float]:
                return self._clients[k].locked_until > now, self._clients[k].last_failure
            for k in sorted(self._clients, key=key)[:excess]:
                del self._clients[k]


# ---- handlers ----------------------------------------------------------------------------
def render(name: str, **context: Any) -> str:
    """The page ``templates/<name>`` rendered (autoescaped)."""
    return _ENV.get_template(name).render(**context)


def safe_next(url: str | None) -> str:
    """``url`` if it is a path on this server (``/...``, not ``//host``), else ``/``."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    parts = urllib.parse.urlsplit(url)
    return url if not (parts.scheme or parts.netloc) else "/"


class HardenedCookies(RequestHandler):
    """Every cookie set by this handler: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when
    the request came over TLS (explicit arguments win)."""

    def set_cookie(self, name: str, value: str | bytes, *args: Any, **kwargs: Any) -> None:
        for key, default in cookie_flags(self).items():
            kwargs.setdefault(key, default)
        super().set_cookie(name, value, *args, **kwargs)


def cookie_flags(handler: RequestHandler) -> dict[str, Any]:
    """``httponly``, ``samesite`` and ``secure`` for a cookie set in answer to
    ``handler``'s request."""
    return {"httponly": True, "samesite": "Lax", "secure": handler.request.protocol == "https"}


class LoginHandler(HardenedCookies, BasicLoginHandler):
    """``/login``: the form (GET) and the XSRF-checked, rate-limited check (POST).

    ``users`` and ``limiter`` are set on a per-provider subclass
    (:class:`GridflowAuthProvider`)."""

    users: ClassVar[dict[str, SecretStr]] = {}
    limiter: ClassVar[LoginRateLimiter] = LoginRateLimiter()

    def get(self) -> None:
        wait = self.limiter.retry_after(self.request.remote_ip or "?")
        self.write(render("login.html", xsrf=self.xsrf_token.decode(),
                          next=safe_next(self.get_argument("next", "/")),
                          error=self.get_argument("error", "") == "1",
                          retry_after=math.ceil(wait)))

    def post(self) -> None:
        self.check_xsrf_cookie()  # 403 without a matching token
        client = self.request.remote_ip or "?"
        if (wait := self.limiter.check(client)) > 0:
            return self._locked(wait)
        name = self.get_argument("username", "")
        if self._validate(name, self.get_argument("password", "")):
            self.set_current_user(name)
            return self.redirect(safe_next(self.get_argument("next", "/")))
        if (lock := self.limiter.record_failure(client)) > 0:
            log.warning("login: client %s locked out for %.0f s after %d failed attempts",
                        client, lock, self.limiter.max_failures)
            return self._locked(lock)
        nxt = urllib.parse.quote(safe_next(self.get_argument("next", "/")), safe="/")
        self.redirect(f"./login?error=1&next={nxt}")

    def _validate(self, username: str, password: str) -> bool:
        """Constant-time check against the configured users (unknown names too)."""
        secret = self.users.get(username)
        expected = secret.get_secret_value() if secret is not None else ""
        same = hmac.compare_digest(password.encode(), expected.encode())
        return secret is not None and same

    def _locked(self, wait: float) -> None:
        seconds = math.ceil(wait)
        self.set_status(429)
        self.set_header("Retry-After", str(seconds))
        self.write(render("locked.html", retry_after=seconds))


class LogoutHandler(HardenedCookies):
    """``/logout``: GET asks (a form), POST with the XSRF token signs out."""

    def get(self) -> None:
        self.write(render("logout.html", xsrf=self.xsrf_token.decode()))

    def post(self) -> None:
        self.check_xsrf_cookie()
        for name in (*SIGNED_COOKIES, "is_guest"):
            self.clear_cookie(name, path=config.cookie_path)
        self.redirect("/", status=303)


class GridflowAuthProvider(BasicAuthProvider):
    """Panel's basic-auth provider with the handlers of this module.

    Parameters
    ----------
    users : dict
        Name -> password (:func:`gridflow.control.app.auth.coerce_users`).
    limiter : LoginRateLimiter, optional
        Shared by this provider's login handler; a default one when None.
    """

    def __init__(self, users: dict[str, SecretStr], limiter: LoginRateLimiter | None = None
                 ) -> None:
        self.limiter = limiter or LoginRateLimiter()
        self._login = type("GridflowLoginHandler", (LoginHandler,),
                           {"users": dict(users), "limiter": self.limiter})
        super().__init__(login_endpoint="/login", logout_endpoint="/logout")  # validates

    @property
    def login_handler(self) -> type[RequestHandler]:
        return self._login

    @property
    def logout_handler(self) -> type[RequestHandler]:
        return LogoutHandler

    @property
    def get_user(self) -> Callable[[RequestHandler], str | None]:
        panel_get_user = super().get_user

        def get_user(handler: RequestHandler) -> str | None:
            user = panel_get_user(handler)
            if user == "guest" and not isinstance(handler, WebSocketHandler):
                # Panel just set the guest marker without flags: set it again with them
                handler.set_cookie("is_guest", "1", expires_days=config.oauth_expiry,
                                   path=config.cookie_path, **cookie_flags(handler))
            return user
        return get_user
