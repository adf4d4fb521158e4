"""The control app's login hardening, offline assets and the replay child's imports.

Units first (the rate limiter on a fake clock, the templates, the TLS options), then the
real server on 127.0.0.1: a crafted HTTP client (requests) for exact status codes and
cookie attributes, Chromium through Playwright for whole sessions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("panel")
pytest.importorskip("playwright.sync_api")

import app_harness
from app_harness import app_server, chromium, log_in, needs_browser
from playwright.sync_api import expect

from gridflow.control.app.cli import main as app_main
from gridflow.control.app.cli import tls_options
from gridflow.control.app.security import TEMPLATES, LoginRateLimiter, render, safe_next
from gridflow.control.client import GridflowClient, replay_command

USERS = "alice:pw-alice"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ---- the rate limiter ------------------------------------------------------------------
def test_five_failures_a_minute_then_a_lockout_that_doubles() -> None:
    clock = FakeClock()
    lim = LoginRateLimiter(clock=clock)  # 5 per 60 s, 60 s lock, doubling, at most 1 h
    for _ in range(4):
        assert lim.check("1.2.3.4") == 0.0
        assert lim.record_failure("1.2.3.4") == 0.0
    assert lim.record_failure("1.2.3.4") == 60.0
    assert lim.check("1.2.3.4") == 60.0 and lim.check("5.6.7.8") == 0.0  # per client
    clock.t += 59.5
    assert lim.retry_after("1.2.3.4") == pytest.approx(0.5)
    clock.t += 0.5
    assert lim.check("1.2.3.4") == 0.0
    locks = []
    for _ in range(8):  # every 5 failures in a row: the next lock-out is twice as long
        for _ in range(4):
            assert lim.record_failure("1.2.3.4") == 0.0
        locks.append(lim.record_failure("1.2.3.4"))
        clock.t += locks[-1]
    assert locks == [120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert lim.counts == {"failures": 45, "lockouts": 9, "refused": 1}
    clock.t += 3600  # quiet for forget_s after the lock-out: back to the first length
    for _ in range(4):
        lim.record_failure("1.2.3.4")
    assert lim.record_failure("1.2.3.4") == 60.0


def test_failures_slide_out_of_the_window() -> None:
    clock = FakeClock()
    lim = LoginRateLimiter(max_failures=3, window_s=10.0, lockout_s=2.0, clock=clock)
    lim.record_failure("c")
    clock.t += 5.0
    lim.record_failure("c")
    clock.t += 5.0  # the first one is out of the window
    assert lim.record_failure("c") == 0.0
    clock.t += 1.0  # the third in 10 s: locked until the oldest of them ages out
    assert lim.record_failure("c") == 4.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 200.0), st.booleans()), max_size=120),
       st.integers(1, 6), st.floats(1.0, 120.0))
def test_no_client_gets_more_than_max_failures_per_window(events, max_failures,
                                                          lockout_s) -> None:
    """A client trying whenever allowed (wrong passwords, sometimes a right one: no
    reset) never has more than ``max_failures`` wrong passwords checked within any
    window, whatever the lock-out length."""
    clock = FakeClock()
    lim = LoginRateLimiter(max_failures=max_failures, window_s=60.0, lockout_s=lockout_s,
                           max_lockout_s=max(lockout_s, 600.0), clock=clock)
    checked, refused = [], 0
    for gap, right in events:
        clock.t += gap
        if lim.check("c") > 0:
            refused += 1
        elif not right:
            checked.append(clock.t)
            assert 0 <= lim.record_failure("c") <= max(lim.max_lockout_s, 60.0) + 1e-6
    for t in checked:
        assert sum(t - 60.0 < u <= t for u in checked) <= max_failures
    assert lim.counts["refused"] == refused and lim.counts["failures"] == len(checked)


def test_tracked_clients_are_bounded_and_a_flood_does_not_unlock_anyone() -> None:
    clock = FakeClock()
    lim = LoginRateLimiter(max_failures=2, max_clients=3, clock=clock)
    lim.record_failure("locked")
    assert lim.record_failure("locked") == 60.0
    for i in range(50):  # one failure each from 50 other addresses
        clock.t += 1.0
        lim.record_failure(f"ip{i}")
        assert len(lim) <= 3
    assert lim.retry_after("locked") == 10.0
    with pytest.raises(ValueError, match="positive"):
        LoginRateLimiter(max_failures=0)
    with pytest.raises(ValueError, match="max_lockout_s"):
        LoginRateLimiter(lockout_s=60.0, max_lockout_s=10.0)


# ---- pages and options -----------------------------------------------------------------
@pytest.mark.parametrize("url, expected", [
    ("/", "/"), ("/?theme=dark", "/?theme=dark"), ("", "/"), (None, "/"),
    ("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("relative", "/"),
])
def test_after_login_only_paths_of_this_server(url, expected) -> None:
    assert safe_next(url) == expected


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("[!_]*.html")))
def test_login_pages_load_nothing_from_another_host(name: str) -> None:
    html = render(name, xsrf="tok<en>", next="/", error=True, retry_after=60)
    assert "tok<en>" not in html and ("tok&lt;en&gt;" in html) == ("<form" in html)
    refs = re.findall(r'(?:src|href|action)="([^"]*)"', html)
    assert refs and all(r.startswith("./") for r in refs), refs
    assert "http" not in html and "//" not in html and "url(" not in html


def test_tls_options_need_both_files(tmp_path: Path, capsys) -> None:
    cert, key = app_harness.self_signed_cert(tmp_path)
    assert tls_options(None, None) == {}
    assert tls_options(str(cert), str(key)) == {"ssl_certfile": str(cert),
                                                "ssl_keyfile": str(key)}
    (tmp_path / "junk.pem").write_text("junk\n")
    for argv, msg in ((["--ssl-certfile", str(cert)], "go together"),
                      (["--ssl-certfile", str(cert), "--ssl-keyfile", "nope.pem"],
                       "--ssl-keyfile: no such file: nope.pem"),
                      (["--ssl-certfile", str(cert), "--ssl-keyfile", str(tmp_path / "junk.pem")],
                       "not a PEM certificate and its key")):
        assert app_main(["--db", f"sqlite:///{tmp_path / 'j.db'}", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err


# ---- the replay child --------------------------------------------------------------------
def shadowing_stubs(d: Path) -> None:
    """Packages ``gridflow`` and ``dataflows`` in ``d`` that fail when imported."""
    for stub in ("gridflow", "dataflows"):
        (d / stub).mkdir()
        (d / stub / "__init__.py").write_text(f"raise ImportError('stub {stub}')\n")


def test_replay_child_ignores_a_shadowing_working_directory(tmp_path: Path,
                                                            monkeypatch) -> None:
    """Started from a folder holding a ``gridflow/`` package and a ``dataflows/`` folder
    (what the Backtest button's replay used to import), the replay still runs."""
    shadowing_stubs(tmp_path)
    monkeypatch.chdir(tmp_path)
    old = subprocess.run([sys.executable, "-c", "import gridflow"], capture_output=True,
                         text=True, check=False)
    assert "stub gridflow" in old.stderr  # the folder does shadow the package here
    cmd = replay_command("x.json")
    assert cmd[1] == "-P" and Path(cmd[-1].partition(":")[0]).is_file()
    client = GridflowClient("sqlite:///journal.db")  # relative: the caller's folder
    job = client.launch_replay(None, start_ms="2024-01-01", end_ms="2024-01-04")
    report = job.result(timeout_s=120)
    assert report["candles"] > 0 and (tmp_path / "journal.db").is_file()


# ---- the server: a crafted client --------------------------------------------------------
def _xsrf(html: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


def _set_cookies(resp: requests.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in resp.raw.headers.getlist("Set-Cookie")}


def test_login_and_logout_need_the_xsrf_token_and_cookies_are_hardened(tmp_path: Path
                                                                        ) -> None:
    with app_server(f"sqlite:///{tmp_path / 'j.db'}", users=USERS) as url:
        s = requests.Session()
        form = s.get(url + "login")
        assert form.status_code == 200
        cookie = _set_cookies(form)["_xsrf"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        good = {"username": "alice", "password": "pw-alice"}
        for data in (good, {**good, "_xsrf": "2|00|00|1"}):  # missing, forged token
            r = s.post(url + "login", data=data, allow_redirects=False)
            assert r.status_code == 403 and "user" not in _set_cookies(r)
        r = requests.post(url + "login", data={**good, "_xsrf": _xsrf(form.text)},
                          allow_redirects=False)  # a token without its cookie
        assert r.status_code == 403
        r = s.post(url + "login", data={**good, "_xsrf": _xsrf(form.text), "next": "//x.io"},
                   allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == "/"
        for name in ("user", "id_token"):
            c = _set_cookies(r)[name]
            assert "HttpOnly" in c and "SameSite=Lax" in c, c
        user_cookie = s.cookies.get("user")
        ask = s.get(url + "logout")  # a GET only asks
        assert ask.status_code == 200 and 'method="post"' in ask.text
        assert "user" not in _set_cookies(ask) and s.cookies.get("user") == user_cookie
        r = s.post(url + "logout", allow_redirects=False)
        assert r.status_code == 403 and s.cookies.get("user") == user_cookie
        r = s.post(url + "logout", data={"_xsrf": _xsrf(ask.text)}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/"
        assert s.cookies.get("user") is None
        guest = _set_cookies(s.get(url))["is_guest"]
        assert "HttpOnly" in guest and "SameSite=Lax" in guest


# ---- the server: Chromium ----------------------------------------------------------------
@needs_browser
def test_login_locks_out_after_five_wrong_passwords(tmp_path: Path) -> None:
    with app_server(f"sqlite:///{tmp_path / 'j.db'}", users=USERS) as url, \
            chromium() as browser:
        page = browser.new_page()
        page.goto(url + "login")

        def attempt(password: str):
            page.locator("input[name=username]").fill("alice")
            page.locator("input[name=password]").fill(password)
            with page.expect_response(lambda r: r.request.method == "POST") as resp:
                page.get_by_role("button", name="Log in").click()
            return resp.value

        for _ in range(4):
            assert attempt("wrong").status == 302
            expect(page.locator(".gf-login-error")).to_have_text(
                "Invalid username or password.")
        locked = attempt("wrong")
        assert locked.status == 429 and locked.headers["retry-after"] == "60"
        expect(page.locator(".gf-locked")).to_contain_text("Try again in 60 s")
        page.goto(url + "login")  # the form says so too, and the right password is refused
        expect(page.locator(".gf-locked")).to_contain_text("Too many failed attempts")
        assert attempt("pw-alice").status == 429
        page.goto(url)
        expect(page.get_by_role("link", name="Log in")).to_be_visible(timeout=30_000)
        assert not [c for c in page.context.cookies() if c["name"] == "user"]


@needs_browser
def test_a_whole_session_loads_nothing_from_another_host(tmp_path: Path) -> None:
    """Guest, a forged login form, login, every tab, logout's question, logout; the app
    started from a folder that would shadow the package. Every request stays on
    127.0.0.1."""
    shadowing_stubs(tmp_path)
    with app_server(f"sqlite:///{tmp_path / 'j.db'}", users=USERS, cwd=tmp_path) as url, \
            chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.goto(url + "login")
        page.locator("input[name=_xsrf]").evaluate("e => e.value = '2|00|00|1'")
        page.locator("input[name=username]").fill("alice")
        page.locator("input[name=password]").fill("pw-alice")
        with page.expect_response(lambda r: r.request.method == "POST") as forged:
            page.get_by_role("button", name="Log in").click()
        assert forged.value.status == 403
        log_in(page, url, "alice", "pw-alice")
        cookies = {c["name"]: c for c in page.context.cookies()}
        for name in ("user", "id_token", "_xsrf"):
            assert cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Lax"
            assert not cookies[name]["secure"]  # plain HTTP here
        for tab in ("Backtest", "Compare", "Sweeps", "Live"):
            page.locator(".bk-tab", has_text=tab).click()
            expect(page.locator(".bk-tab.bk-active")).to_have_text(tab)
        page.get_by_role("link", name="Log out").click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        page.goto(url)  # the question alone changed nothing
        expect(page.get_by_text("Signed in as alice")).to_be_visible(timeout=30_000)
        page.goto(url + "logout")
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("link", name="Log in")).to_be_visible(timeout=30_000)
        page.wait_for_load_state("networkidle")
    assert len(urls) > 20 and app_harness.foreign_requests(urls) == []


@needs_browser
def test_over_tls_every_cookie_is_secure(tmp_path: Path) -> None:
    cert, key = app_harness.self_signed_cert(tmp_path)
    with app_server(f"sqlite:///{tmp_path / 'j.db'}", users=USERS,
                    args=("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))) as url, \
            chromium() as browser:
        assert url.startswith("https://127.0.0.1:")
        page = browser.new_context(ignore_https_errors=True).new_page()
        log_in(page, url, "alice", "pw-alice")
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert {"user", "id_token", "_xsrf"} <= set(cookies)
        for c in cookies.values():
            assert c["secure"] and c["httpOnly"] and c["sameSite"] == "Lax", c
