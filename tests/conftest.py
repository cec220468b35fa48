"""Shared fixtures: a fresh database per test (never :memory:, worker threads could not see it), on SQLite
always and also on PostgreSQL when PAXDESK_TEST_POSTGRES_URL names a server database to create test
databases from (e.g. postgresql://postgres@127.0.0.1:5432/test)."""

from __future__ import annotations

import hashlib
import inspect
import os
import secrets
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PAXDESK_USER", "tester")

from models import schema  # noqa: E402
from models.db import open_database  # noqa: E402
from models.seeding import seed_database  # noqa: E402

POSTGRES_URL = os.environ.get("PAXDESK_TEST_POSTGRES_URL", "")


# --- Engines: every test that uses `db` or `seeded_db` runs on SQLite, and on PostgreSQL when configured.

def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "sqlite_only: run a database test on SQLite alone")
    config.addinivalue_line("markers", "postgresql_only: run a database test on PostgreSQL alone (when configured)")


def pytest_generate_tests(metafunc) -> None:
    if "engine" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgresql_only"):
        # Without a configured server pytest reports the test as skipped for an empty parameter set.
        metafunc.parametrize("engine", ["postgresql"] if POSTGRES_URL else [], indirect=True)
        return
    engines = ["sqlite"]
    own_arguments = inspect.signature(metafunc.function).parameters
    # GUI tests (qtbot) and tests that reach for the SQLite file itself (db_path) stay on SQLite.
    if POSTGRES_URL and not (metafunc.definition.get_closest_marker("sqlite_only")
                             or "qtbot" in metafunc.fixturenames or "db_path" in own_arguments):
        engines.append("postgresql")
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture
def engine(request) -> str:
    """'sqlite' or 'postgresql': the engine the `db` and `seeded_db` of this test run on."""
    return getattr(request, "param", "sqlite")


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


class PostgresTestServer:
    """Databases for one test session on a PostgreSQL server: two templates (empty, seeded), copied per test
    with CREATE DATABASE ... TEMPLATE, all named paxdesk_test_<pid>_<host>_<random>_... and dropped afterwards."""

    def __init__(self, admin_url: str):
        import psycopg2

        self.admin_url = admin_url
        self.prefix = f"paxdesk_test_{os.getpid()}_{_HOST}_{secrets.token_hex(3)}"
        self.admin = psycopg2.connect(admin_url)
        self.admin.autocommit = True
        self.count = 0
        self._drop_abandoned()
        self.empty = self._template("empty", seeded=False)
        self.seeded = ""  # seeded on first use: 5 s that a run of empty-database tests need not pay

    def url(self, name: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def _execute(self, sql: str) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(sql)

    def _template(self, kind: str, seeded: bool) -> str:
        name = f"{self.prefix}_{kind}"
        self._execute(f"CREATE DATABASE {name}")
        database = open_database(self.url(name))
        if seeded:
            seed_database()
        database.close()
        return name

    def create(self, seeded: bool) -> str:
        """A new database copied from a template; its URL."""
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        if seeded and not self.seeded:
            self.seeded = self._template("seeded", seeded=True)
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self.seeded if seeded else self.empty}")
        return self.url(name)

    def drop(self, url: str) -> None:
        # FORCE: connections a test's worker threads left open must not keep the database alive.
        self._execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path.lstrip('/')} WITH (FORCE)")

    def _drop_abandoned(self) -> None:
        """Databases of earlier runs on this machine (same host name: a container sharing the server has its
        own process ids) whose process died before cleaning up."""
        import psutil

        if urlsplit(self.admin_url).hostname not in (None, "", "localhost", "127.0.0.1", "::1"):
            return  # another machine's runs may be alive; leave them
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'paxdesk\\_test\\_%'")
            names = [row[0] for row in cursor.fetchall()]
        for name in names:
            parts = name.split("_")
            if len(parts) > 4 and parts[3] == _HOST and parts[2].isdigit() and not psutil.pid_exists(int(parts[2])):
                self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        for name in filter(None, (self.empty, self.seeded)):
            self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.close()


@pytest.fixture(scope="session")
def postgres_server():
    if not POSTGRES_URL:
        pytest.fail("PAXDESK_TEST_POSTGRES_URL is not set")
    server = PostgresTestServer(POSTGRES_URL)
    yield server
    server.close()


def _open_for_test(request, target: str, server: PostgresTestServer | None = None):
    request.node.paxdesk_target = target
    database = open_database(target)
    yield database
    database.close()
    if server is not None:
        server.drop(target)


def _open_copy(request, seeded: bool):
    server = request.getfixturevalue("postgres_server")
    return _open_for_test(request, server.create(seeded=seeded), server)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "paxdesk.sqlite3"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A folder of its own for exported files (the database lives in tmp_path)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.fixture
def db(engine: str, db_path: Path, request):
    """An empty PaxDesk database bound to the models."""
    if engine == "postgresql":
        yield from _open_copy(request, seeded=False)
    else:
        yield from _open_for_test(request, str(db_path))


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """Seeded once per test session; each test gets its own copy."""
    path = tmp_path_factory.mktemp("template") / "seeded.sqlite3"
    database = open_database(path)
    seed_database()
    database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    return path


@pytest.fixture
def seeded_db(engine: str, db_path: Path, request):
    """A database holding the reference data and the founding case."""
    if engine == "postgresql":
        yield from _open_copy(request, seeded=True)
    else:
        shutil.copy(request.getfixturevalue("seeded_template"), db_path)
        yield from _open_for_test(request, str(db_path))


@pytest.fixture
def db_target(request) -> str:
    """What --db would name for this test's database (a file path or a postgresql:// URL); request it
    after `db` or `seeded_db`, e.g. to run the command line or a second process on the same data."""
    for name in ("seeded_db", "db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            return request.node.paxdesk_target
    raise pytest.UsageError("db_target needs the db or seeded_db fixture")


def latest_change_set() -> schema.ChangeSet:
    return schema.ChangeSet.select().order_by(schema.ChangeSet.id.desc()).first()
