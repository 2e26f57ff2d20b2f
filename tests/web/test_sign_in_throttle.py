"""Failed console sign-ins are limited per address and per username (429 with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from floorbridge.adapters.web.throttle import FailureThrottle

from .test_console_http import PASSWORD, form_token, open_site


def test_failures_are_counted_in_a_sliding_window() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("ip:a") == 0
        throttle.failed("ip:a", "user:chair")
    assert throttle.retry_after("ip:a") == 60
    assert throttle.retry_after("ip:b", "user:chair") == 60  # the username is locked from anywhere
    assert throttle.retry_after("ip:b", "user:clerk") == 0
    now[0] = 61
    assert throttle.retry_after("ip:a", "user:chair") == 0


async def test_guessing_a_password_is_stopped_then_the_right_one_still_needs_the_wait(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        b = site.browser()
        for n in range(10):
            form = await b.get("/console/login")
            r = await b.post("/console/login", data={"csrf": form_token(await form.text()), "username": "chair",
                                                     "password": f"guess {n}"})
            assert r.status == 401
        form = await b.get("/console/login")
        r = await b.post("/console/login", data={"csrf": form_token(await form.text()), "username": "chair",
                                                 "password": PASSWORD})
        assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        assert "Too many failed sign-ins" in await r.text()
        # Another account from the same address is also held: the address made the failures.
        form = await b.get("/console/login")
        r = await b.post("/console/login", data={"csrf": form_token(await form.text()), "username": "clerk",
                                                 "password": PASSWORD})
        assert r.status == 429
