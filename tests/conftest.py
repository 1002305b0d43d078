"""Shared fixtures: stores on memory, SQLite and PostgreSQL, each test in its own place.

Outside CI a missing PostgreSQL skips its tests with one line; under ``CI=true`` it fails
the run, so CI can never go green without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "TRADETAPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_pg_state: dict[str, str | None] = {}
# Parsed candle files a test run keeps go to a directory of the tests', not the user's
# cache (adapters/marketdata/candle_cache.py; shared by runs: keyed by content, written
# whole); a test that asks for the cache names its own.
os.environ.setdefault("TRADETAPE_CANDLE_CACHE", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "tradetape-test-candles"))


def _postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (asked once per session)."""
    if "problem" not in _pg_state:
        try:
            import psycopg

            from application.settings import _connect_kwargs, parse_database_url

            env = parse_database_url(POSTGRES_URL).env
            with psycopg.connect(**_connect_kwargs(env), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["problem"] = None
        except Exception as error:  # any failure to connect means "not available"
            _pg_state["problem"] = f"{type(error).__name__}: {error}".splitlines()[0]
    return _pg_state["problem"]


def require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose schema is this test's own, dropped afterwards."""
    require_postgres()
    import psycopg

    from application.settings import _connect_kwargs, parse_database_url

    # (a run sharing the database names its schemas: TRADETAPE_TEST_SCHEMA_PREFIX)
    schema = f"{os.environ.get('TRADETAPE_TEST_SCHEMA_PREFIX', 't_')}{uuid.uuid4().hex[:16]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    env = parse_database_url(POSTGRES_URL).env
    with psycopg.connect(**_connect_kwargs(env), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    # The schema's key files (var/keys unless TRADETAPE_KEY_DIR says otherwise) go with it.
    key_dir = Path(os.environ.get("TRADETAPE_KEY_DIR") or Path("var") / "keys")
    for key_file in key_dir.glob(f"*-{schema}.*"):
        key_file.unlink(missing_ok=True)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same test on every backend a user can choose."""
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgres"])
def persistent_store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A store another connection (or process) can follow: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def _decimal_context_per_test() -> Iterator[None]:
    """Each test computes in its own copy of the thread's decimal context. Tests that drive
    a ccxt client directly (the simulator's) let ccxt set ROUND_HALF_UP on the thread's
    context; without this, Decimal sums in later tests on the same worker would differ in
    the 28th digit. Product code isolates ccxt itself (ccxt_client.isolated_decimals)."""
    import decimal

    with decimal.localcontext():
        yield


# Where the suite's time goes, on a shared machine: wall-clock durations grow with the load
# of everything else, processor time does not. With TRADETAPE_TEST_CPU_LOG=FILE every test
# appends "wall s, processor s of its worker, of the processes it waited for (servers, CLI),
# load average, node id" to FILE-<worker>.tsv as it ends (README "Tests and benchmarks").
_CPU_LOG = os.environ.get("TRADETAPE_TEST_CPU_LOG")


def _processor_seconds() -> tuple[float, float]:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, waited.ru_utime + waited.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not _CPU_LOG:
        yield
        return
    import time

    began, (own, waited) = time.perf_counter(), _processor_seconds()
    yield
    wall, (own_now, waited_now) = time.perf_counter() - began, _processor_seconds()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{_CPU_LOG}-{worker}.tsv", "a", encoding="utf-8") as log:
        log.write(f"{wall:.3f}\t{own_now - own:.3f}\t{waited_now - waited:.3f}\t"
                  f"{os.getloadavg()[0]:.1f}\t{item.nodeid}\n")
