"""Shared fixtures: a fresh database file per test (never :memory:, worker threads could not see it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PAXDESK_USER", "tester")

from models import schema  # noqa: E402
from models.db import open_database  # noqa: E402
from models.seeding import seed_database  # noqa: E402


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "paxdesk.sqlite3"


@pytest.fixture
def db(db_path: Path):
    """An empty PaxDesk database bound to the models."""
    database = open_database(db_path)
    yield database
    database.close()


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
def seeded_db(seeded_template: Path, db_path: Path):
    """A database holding the reference data and the founding case."""
    shutil.copy(seeded_template, db_path)
    database = open_database(db_path)
    yield database
    database.close()


def latest_change_set() -> schema.ChangeSet:
    return schema.ChangeSet.select().order_by(schema.ChangeSet.id.desc()).first()
