"""The dashboard in headless Chromium against a real `longrun serve`: live bars, detail, cancel."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server


def _until(page: Any, expression: str, arg: Any = None, timeout: float = 15.0) -> Any:
    """Poll a page expression until it is truthy (wait_for_function would need the page's CSP
    to allow eval, and the dashboard's does not)."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression, arg)):
        assert time.monotonic() < deadline, f"{expression} did not hold within {timeout}s"
        page.wait_for_timeout(30)
    return value


def _live(page: Any, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    page.locator("#live[data-state=live]").wait_for()
    page.evaluate("window.__notReloaded = true")


def _bar(op_id: str) -> str:
    return f'#ops tr[data-id="{op_id}"] [role=progressbar]'


def _percent(page: Any, op_id: str) -> float:
    return float(page.get_attribute(_bar(op_id), "aria-valuenow"))


def test_bar_advances_without_reload(page: Any, server: Server) -> None:
    _live(page, server)
    op = server.submit("demo.sleep", {"seconds": 3, "steps": 30})
    page.wait_for_selector(_bar(op["id"]))
    _until(
        page,
        "s => Number(document.querySelector(s)?.getAttribute('aria-valuenow')) > 0",
        _bar(op["id"]),
    )
    first = _percent(page, op["id"])
    width = page.locator(_bar(op["id"]) + " .fill").bounding_box()["width"]
    _until(
        page,
        "([s, v]) => Number(document.querySelector(s)?.getAttribute('aria-valuenow')) > v",
        [_bar(op["id"]), first],
    )
    assert page.locator(_bar(op["id"]) + " .fill").bounding_box()["width"] > width
    row = page.locator(f'#ops tr[data-id="{op["id"]}"]')
    assert "items" in row.locator(".ptext").inner_text()
    row.locator(".status", has_text="SUCCEEDED").wait_for(timeout=15_000)
    assert _percent(page, op["id"]) == 100
    full = page.locator(_bar(op["id"])).bounding_box()["width"]
    assert abs(page.locator(_bar(op["id"]) + " .fill").bounding_box()["width"] - full) < 2
    assert page.evaluate("window.__notReloaded") is True


def test_detail_then_cancel_from_the_page(page: Any, server: Server) -> None:
    op = server.submit("demo.sleep", {"seconds": 60, "steps": 600})
    _live(page, server)
    page.locator(f'#ops tr[data-id="{op["id"]}"] .status', has_text="IN_PROGRESS").wait_for()
    page.get_by_role("link", name=op["id"]).click()
    heading = page.locator("#detail-title")
    heading.wait_for()
    assert op["id"] in heading.inner_text()
    _until(page, "document.activeElement.id === 'detail-title'")  # focus follows the page
    detail = page.locator("#detail-view")
    detail.locator(".timeline li", has_text="IN_PROGRESS").wait_for()
    detail.locator("td", has_text="sleeping 60s in 600 steps").wait_for()
    page.get_by_role("button", name=f"Cancel {op['id']}").click()
    detail.locator(".summary .status", has_text="CANCELED").wait_for()
    detail.locator(".timeline li", has_text="CANCELED").wait_for()
    assert server.get(op["id"])["status"] == "CANCELED"
    assert page.get_by_role("button", name=f"Cancel {op['id']}").count() == 0
    page.get_by_role("link", name="All operations").click()
    page.locator(f'#ops tr[data-id="{op["id"]}"] .status', has_text="CANCELED").wait_for()


def test_list_follows_submissions_elsewhere_and_filters(
    page: Any, server: Server, tmp_path: Path
) -> None:
    _live(page, server)
    page.get_by_label("Type").select_option("demo.hash")
    _until(page, "document.querySelector('#f-type').value === 'demo.hash'")
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 200_000)
    other = server.submit("demo.sleep", {"seconds": 0.1, "steps": 1})
    hashed = server.submit(
        "demo.hash", {"path": str(data), "chunk_size": 8192, "throttle_bytes_per_second": 400_000}
    )
    row = page.locator(f'#ops tr[data-id="{hashed["id"]}"]')
    row.wait_for()
    row.locator(".ptext", has_text="KB").wait_for()  # bytes done of bytes total
    row.locator(".status", has_text="SUCCEEDED").wait_for()
    deadline = time.monotonic() + 10
    while server.get(other["id"])["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline, "demo.sleep did not finish"
        page.wait_for_timeout(50)
    assert page.locator(f'#ops tr[data-id="{other["id"]}"]').count() == 0
    page.get_by_label("Id contains").fill(hashed["id"][-6:])
    _until(page, "document.querySelectorAll('#ops tbody tr').length === 1")
    page.get_by_label("Type").select_option("")
    page.get_by_label("Id contains").fill("")
    page.locator(f'#ops tr[data-id="{other["id"]}"]').wait_for()
    assert page.evaluate("window.__notReloaded") is True


def test_hold_and_release_at_phone_width(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        future = "2099-01-01T00:00:00Z"
        op = server.submit("demo.sleep", {"seconds": 1}, notBefore=future)
        _live(page, server)
        row = page.locator(f'#ops tr[data-id="{op["id"]}"]')
        row.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        hold = page.get_by_role("button", name=f"Hold {op['id']}")
        hold.focus()
        page.keyboard.press("Enter")
        row.locator(".status", has_text="ON_HOLD").wait_for()
        page.get_by_role("button", name=f"Release {op['id']}").click()
        row.locator(".status", has_text="ACCEPTED").wait_for()
        assert server.get(op["id"])["status"] == "ACCEPTED"
        for label in ("Status", "Type", "Compartment", "Id contains"):
            assert page.get_by_label(label).is_visible()
    finally:
        context.close()


def test_server_stops_promptly_with_the_page_streaming(page: Any, server: Server) -> None:
    _live(page, server)
    started = time.monotonic()
    assert server.stop(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert time.monotonic() - started < 10
    assert "Application shutdown complete" in server.output()
    page.locator("#live[data-state=down]").wait_for()


def test_detail_shows_the_tree_of_sub_operations_live(page: Any, server: Server) -> None:
    parent = server.submit("demo.sleep", {"seconds": 30, "steps": 300})
    child = server.submit("demo.sleep", {"seconds": 3, "steps": 30}, parentId=parent["id"])
    _live(page, server, f"/#/operations/{parent['id']}")
    item = page.locator(f'#detail-view [role=treeitem][data-id="{child["id"]}"]')
    item.wait_for()
    bar = f'#detail-view [role=treeitem][data-id="{child["id"]}"] [role=progressbar]'
    _until(page, "s => Number(document.querySelector(s)?.getAttribute('aria-valuenow')) > 0", bar)
    item.locator(".status", has_text="SUCCEEDED").wait_for()
    item.get_by_role("link").click()
    page.locator("#detail-view dd a", has_text=parent["id"]).wait_for()  # the parent link
    server.http.post(f"/v1/operations/{parent['id']}:cancel")
