"""Store URLs: one grammar for the CLI, the server and `stepgraph.stores.open_store`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stepgraph.stores import (
    FileCheckpointStore,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
    StoreURL,
    open_store,
)
from stepgraph.stores._urls import postgres_dsn


@pytest.mark.parametrize(
    ("url", "kind", "location"),
    [
        ("memory:", "memory", ""),
        ("memory://", "memory", ""),
        (" memory ", "memory", ""),
        ("sqlite:///abs/x.db", "sqlite", "/abs/x.db"),
        ("SQLITE:///abs/x.db", "sqlite", "/abs/x.db"),
        ("sqlite:////abs/x.db", "sqlite", "/abs/x.db"),
        ("sqlite:///./rel/x.db", "sqlite", "./rel/x.db"),
        ("sqlite:///../x.db", "sqlite", "../x.db"),
        ("sqlite://rel/x.db", "sqlite", "rel/x.db"),
        ("sqlite:///a%20b.db", "sqlite", "/a b.db"),
        ("rel/x.db", "sqlite", "rel/x.db"),
        ("./a:b.db", "sqlite", "./a:b.db"),
        ("a%20b.db", "sqlite", "a%20b.db"),  # a plain path is taken as written
        ("file:///abs/dir", "file", "/abs/dir"),
        ("file://rel/dir", "file", "rel/dir"),
        ("postgresql://db/app?schema=x", "postgresql", "postgresql://db/app?schema=x"),
        ("postgres://db/app", "postgresql", "postgres://db/app"),
    ],
)
def test_parse_accepts_every_form(url: str, kind: str, location: str) -> None:
    spec = StoreURL.parse(url)
    assert (spec.kind, spec.location) == (kind, location)
    assert StoreURL.parse(spec.url) == spec


def test_home_is_expanded_and_relative_paths_can_be_made_absolute(tmp_path: Path) -> None:
    assert StoreURL.parse("~/x.db").location == os.path.expanduser("~/x.db")
    spec = StoreURL.parse("sqlite:///./rel/x.db").absolute()
    assert spec.location == os.path.abspath("rel/x.db")
    assert spec.url == "sqlite://" + os.path.abspath("rel/x.db")
    assert StoreURL.parse("memory:").absolute() == StoreURL("memory", "")
    assert StoreURL.parse(tmp_path / "x.db").location == str(tmp_path / "x.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty store URL: use sqlite:///"),
        ("   ", "empty store URL"),
        ("http://x", "bad store URL 'http://x': unknown store URL scheme 'http'; use sqlite:///"),
        ("redis:localhost", "unknown store URL scheme 'redis'"),
        ("sqlite:runs.db", "bad store URL 'sqlite:runs.db': write sqlite:// before the path"),
        ("sqlite://", "bad store URL 'sqlite://': it names no path"),
        ("sqlite:///", "names no path"),
        ("file://", "names no path"),
        ("postgresql://db/app?schema=", "give one non-empty schema=name"),
        ("postgresql://db/app?schema=a&schema=b", "give one non-empty schema=name"),
    ],
)
def test_parse_errors_say_what_is_accepted(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        StoreURL.parse(url)
    with pytest.raises(ValueError, match=re.escape(message)):
        open_store(url)


def test_open_store_opens_and_creates_directories(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:"), MemoryCheckpointStore)
    db = open_store(tmp_path / "a" / "b.db")
    assert isinstance(db, SqliteCheckpointStore)
    assert db.path == str(tmp_path / "a" / "b.db")
    assert (tmp_path / "a").is_dir()
    files = open_store(StoreURL("file", str(tmp_path / "logs")))
    assert isinstance(files, FileCheckpointStore)
    assert (tmp_path / "logs").is_dir()


def test_postgres_dsn_splits_off_the_schema() -> None:
    url = "postgresql://u:p%40ss@db:5433/app?connect_timeout=3&schema=desk&sslmode=disable"
    assert postgres_dsn(url) == (
        "postgresql://u:p%40ss@db:5433/app?connect_timeout=3&sslmode=disable",
        "desk",
    )
    assert postgres_dsn("postgres://db/app") == ("postgres://db/app", "public")
    opts = "postgresql:///app?host=%2Ftmp&options=-c%20x%3D1&schema=s%20p"
    assert postgres_dsn(opts) == ("postgresql:///app?host=%2Ftmp&options=-c%20x%3D1", "s p")
