"""The dashboard's health view in a real Chromium against ``tradetape serve --demo`` whose
audit checkpoints (a background task, every second) are to be signed with a key file that
is not there yet: each round fails with ``SIGNING_KEY_INVALID``. The Overview shows the task
amber with that code and since when, the overall light amber saying why, the other tasks
green with their last success and rounds, and this process's role and niceness, at a
desktop's and a phone's width. The operator then makes the key (``tradetape audit keygen``):
the next round succeeds and the page turns green without a reload. Last, a /health of a
split deployment (another process's tasks, a task on standby, keys this page does not know)
still shows every task."""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.e2e.conftest import TRADETAPE, graphql_faults, only_loopback, server_env
from tests.e2e.test_dashboard_browser import ADMIN, SCREENSHOTS, WAIT, log_in, shot

TASKS = '[data-testid="background-tasks"]'


def task_row(page, name: str, light: str):
    return page.locator(f'{TASKS} tr[data-task="{name}"][data-light="{light}"]')


def test_a_failing_background_task_shows_amber_with_its_code_until_it_succeeds(
        launch, chromium, tmp_path):
    key = tmp_path / "checkpoint-signing.pem"  # not made yet: every checkpoint fails
    server = launch(speed=None, demo=True, env={
        "TRADETAPE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
        "TRADETAPE_AUDIT_CHECKPOINT_SECONDS": "1",
        "TRADETAPE_AUDIT_CHECKPOINT_SIGNING_KEY": str(key)})
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    elsewhere, wrong = only_loopback(page), graphql_faults(page)
    faults: list[str] = []
    page.on("pageerror", lambda error: faults.append(str(error)))
    try:
        log_in(page, server.base_url)
        a_failing_task_is_amber(page, server)
        fits_a_phone(page)
        subprocess.run([str(TRADETAPE), "audit", "keygen", "--out", str(key)],
                       env=server_env(), check=True, capture_output=True, timeout=60)
        green_once_it_succeeds(page)
        a_deployment_of_several_processes(page, server.process.pid)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "health-failure.png", full_page=True)
        print("errors on the page:", faults)
        raise
    assert (wrong, elsewhere, faults) == ([], [], [])


def a_failing_task_is_amber(page, server) -> None:
    tasks = page.get_by_role("table", name="Background tasks")
    row = tasks.get_by_role("row", name=re.compile("audit-checkpoints"))
    task_row(page, "audit-checkpoints", "amber").wait_for(timeout=WAIT)
    cells = row.get_by_role("cell").all_inner_texts()
    assert cells[0] == "amber", cells  # (the task's name is the row's header)
    assert cells[1] == "never", cells  # no checkpoint has been signed yet
    assert re.fullmatch(r"SIGNING_KEY_INVALID \(adapters\.SigningKeyError\) since "
                        r"(just now|\d+ s ago), \d+ failed rounds? in a row", cells[3]), cells
    overall = page.get_by_role("status").filter(has_text="Overall")
    assert re.search(r"Overall:\s*amber", overall.inner_text())
    assert overall.get_by_text(re.compile(
        r"audit-checkpoints is failing with SIGNING_KEY_INVALID since \d{4}-\d\d-\d\d "
        r"\d\d:\d\d:\d\d UTC")).is_visible()
    wallet = tasks.get_by_role("row", name=re.compile("wallet-monitor"))
    cells = wallet.get_by_role("cell").all_inner_texts()
    assert cells[0] == "green" and re.fullmatch(r"just now|\d+ (s|min) ago", cells[1]), cells
    assert int(cells[2]) >= 1 and cells[3] == "—", cells
    process = page.get_by_role("definition").all_inner_texts()
    niceness = os.getpriority(os.PRIO_PROCESS, server.process.pid)  # (as this test's)
    # a user, not an administrator: the role and niceness, not where it runs (its pid)
    assert process[:2] == ["all", f"{niceness} (inherited)"], process
    terms = page.get_by_test_id("health-process").get_by_role("term").all_inner_texts()
    assert terms == ["Role", "Niceness"], terms
    shot(page, "health-amber")


def fits_a_phone(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_text(re.compile(r"Overall:\s*amber")).is_visible()
    code = page.get_by_test_id("task-code").bounding_box()  # not cut off by the screen's edge
    assert code is not None and code["x"] + code["width"] <= 390, code
    shot(page, "health-phone")
    page.set_viewport_size({"width": 1300, "height": 900})


def green_once_it_succeeds(page) -> None:
    task_row(page, "audit-checkpoints", "green").wait_for(timeout=WAIT)
    row = page.get_by_role("row", name=re.compile("audit-checkpoints"))
    cells = row.get_by_role("cell").all_inner_texts()
    assert re.fullmatch(r"just now|\d+ s ago", cells[1]) and cells[3] == "—", cells
    page.get_by_text(re.compile(r"Overall:\s*green")).wait_for(timeout=WAIT)
    assert page.get_by_text("SIGNING_KEY_INVALID").count() == 0
    shot(page, "health-green")


def a_deployment_of_several_processes(page, pid: int) -> None:
    """/health as a split deployment answers it (README, *One deployment's background
    tasks*): every live process's tasks under ``background.deployment``, this one's among
    them (shown once), one on standby, plus keys and parts this page has never heard of."""
    def answer(route):
        health = route.fetch().json()
        health["process"]["pid"] = pid  # as an administrator's answer says it
        health["background"]["deployment"] = {"error": None, "tasks": [
            {"task": "billing-sweep", "process": "engine-host1-4242-7f3a", "role": "engine",
             "host": "host1", "pid": 4242, "reported_at": health["engine_loop"]["last_step_at"],
             "standby": False, "status": "amber", "rounds": 3, "last_ok_at": None,
             "error": {"kind": "AttributeError", "code": None, "since": None,
                       "last_at": None, "failures": 1, "hint": "new"}},
            {"task": "billing-sweep", "process": f"all-here-{pid}-0001", "role": "all",
             "host": "here", "pid": pid, "standby": True, "status": "green", "rounds": 0,
             "last_ok_at": None, "error": None, "shard": [1, 2]},
            # two containers' processes with this one's pid and role: which is this one?
            *({"task": "wallet-monitor", "process": f"all-{host}-{pid}-0002", "role": "all",
               "host": host, "pid": pid, "standby": False, "status": "green", "rounds": 1,
               "last_ok_at": None, "error": None} for host in ("box1", "box2"))]}
        health["background"]["status"] = "amber"
        health["quantum"] = {"status": "green", "qubits": {"n": 3}}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(health))

    page.route("**/health", answer)
    page.reload()
    page.get_by_role("heading", name="Overview").wait_for(timeout=WAIT)
    elsewhere = page.get_by_role("row", name=re.compile("billing-sweep engine-host1-4242"))
    elsewhere.wait_for(timeout=WAIT)
    cells = elsewhere.get_by_role("cell").all_inner_texts()
    assert cells[0].startswith("engine-host1-4242-7f3a") and cells[1] == "amber", cells
    assert cells[4] == "AttributeError, 1 failed round in a row", cells
    here = page.get_by_role("row", name=re.compile(r"billing-sweep all-here"))
    assert here.get_by_role("cell").all_inner_texts()[:2] == [
        f"all-here-{pid}-0001 (this process)", "green standby"]
    assert page.get_by_text("billing-sweep on engine-host1-4242-7f3a is failing with "
                            "AttributeError").is_visible()
    assert task_row(page, "audit-checkpoints", "green").count() == 1  # still listed, once
    # neither container's row is taken for this process's: its own wallet monitor stays
    wallets = page.get_by_role("row", name=re.compile("^wallet-monitor")).all()
    assert [row.get_by_role("cell").first.inner_text() for row in wallets] == [
        "this process", f"all-box1-{pid}-0002", f"all-box2-{pid}-0002"]
    shot(page, "health-deployment")
    page.unroute("**/health")


ACCOUNT = "5b1c0f4e-2d7a-4c8e-9f10-3a2b1c0d9e8f"


def test_the_health_view_lists_exchange_accounts_to_an_administrator_only(launch, chromium):
    """/health names live exchange accounts only to an administrator (README, *Health and
    stuck projections*). The page asks it with the token of an administrator alone: the
    demo user's view counts an unreachable account, the administrator's names it. The
    server's own answer to each request decides (its X-Health-View); the account, which the
    demo has none of, is added to that answer in the shape the server gives each."""
    server = launch(speed=None, demo=True)
    subprocess.run([str(TRADETAPE), "users", "create", "--email", ADMIN[0], "--password",
                    ADMIN[1], "--role", "admin", "--verified", "--database",
                    server.database_url], env=server_env(), check=True, capture_output=True,
                   timeout=60)
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    elsewhere, wrong = only_loopback(page), graphql_faults(page)
    asked: list[tuple[str | None, str | None]] = []  # (the token sent, the server's view)

    def answer(route):
        real = route.fetch()
        view = real.headers.get("x-health-view")
        asked.append((route.request.headers.get("authorization"), view))
        health = real.json()
        health["exchanges"] = {"status": "amber", "response_ms": 0.1, **(
            {"accounts": {ACCOUNT: {"status": "unreachable", "error": "EXCHANGE_UNAVAILABLE",
                                    "checked_at": None, "drift": {}, "drift_unconfirmed": {},
                                    "strays_cancelled": 0}}} if view == "full" else
            {"accounts_by_status": {"unreachable": 1},
             "account_errors": {"EXCHANGE_UNAVAILABLE": 1}})}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(health))

    page.route("**/health", answer)
    try:
        log_in(page, server.base_url)
        overall = page.get_by_role("status").filter(has_text="Overall")
        overall.get_by_text("exchange accounts: 1 unreachable").wait_for(timeout=WAIT)
        assert ACCOUNT not in page.content()
        assert asked and set(asked) == {(None, "public")}, asked
        page.get_by_role("button", name="Log out").click()
        log_in(page, server.base_url, ADMIN)
        overall.get_by_text(f"exchange account {ACCOUNT} is unreachable "
                            "(EXCHANGE_UNAVAILABLE)").wait_for(timeout=WAIT)
        token, view = asked[-1]
        assert token is not None and token.startswith("Bearer at.") and view == "full", asked
        shot(page, "health-admin-accounts")
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "health-accounts-failure.png", full_page=True)
        raise
    finally:
        page.unroute("**/health")
    assert (wrong, elsewhere) == ([], [])
