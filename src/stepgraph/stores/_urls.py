"""Store URLs: the one grammar of `stepgraph run --store`, `stepgraph serve` and `open_store`.

```
sqlite:///abs/runs.db   sqlite:///./rel/runs.db   sqlite://rel/runs.db   rel/runs.db
file:///abs/dir         file:///./rel/dir         file://rel/dir
memory:                 (also memory:// and memory)
postgresql://user@host:5432/db?schema=name&sslmode=...   (or postgres://)
```

A string without `://` whose first path segment has no `:` is a SQLite file
path, taken as written (no percent-decoding); `~` is expanded everywhere. In
a URL the path is percent-decoded, `sqlite:////abs/x.db` (SQLAlchemy's
spelling) is absolute, and `sqlite:///./x.db` relative. A `postgresql://`
URL keeps every query parameter for libpq except `schema` (default
`public`). Parsing never touches the disk or the network.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

from .._store import CheckpointStore
from .file import FileCheckpointStore
from .memory import MemoryCheckpointStore
from .sqlite import SqliteCheckpointStore

__all__ = ["StoreKind", "StoreURL", "open_store", "postgres_dsn"]

StoreKind = Literal["sqlite", "file", "memory", "postgresql"]

_FORMS = (
    "use sqlite:///abs/path.db, sqlite:///./relative.db (or a plain path), "
    "file:///abs/dir, memory: or postgresql://user@host/db?schema=name"
)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL: which store, and where.

    Attributes:
        kind: `"sqlite"`, `"file"`, `"memory"` or `"postgresql"`.
        location: the file or directory path as written (sqlite, file), the
            URL itself (postgresql), or `""` (memory).
    """

    kind: StoreKind
    location: str

    @classmethod
    def parse(cls, url: str | os.PathLike[str]) -> StoreURL:
        """Parse a store URL or a plain SQLite path (the forms `open_store` takes).

        Raises:
            ValueError: an empty URL, an unknown scheme, a URL naming no path,
                or a `postgresql://` URL with an empty or repeated `schema`.
        """
        text = os.fspath(url).strip()
        if not text:
            raise ValueError(f"empty store URL: {_FORMS}")
        if text in ("memory:", "memory://", "memory"):
            return cls("memory", "")
        scheme, sep, rest = text.partition("://")
        if not sep:
            if ":" in text.split("/", 1)[0]:  # `sqlite:x.db`, `redis:...`: a typo, not a file
                scheme = text.split(":", 1)[0]
                problem = (
                    f"write {scheme.lower()}:// before the path"
                    if scheme.lower() in ("sqlite", "file", "postgresql", "postgres")
                    else f"unknown store URL scheme {scheme!r}"
                )
                raise ValueError(f"bad store URL {text!r}: {problem}; {_FORMS}")
            return cls("sqlite", os.path.expanduser(text))  # a plain path
        scheme = scheme.lower()
        if scheme in ("postgresql", "postgres"):
            postgres_dsn(text)  # a bad `schema=` fails here, before anything is opened
            return cls("postgresql", text)
        if scheme not in ("sqlite", "file"):
            raise ValueError(
                f"bad store URL {text!r}: unknown store URL scheme {scheme!r}; {_FORMS}"
            )
        while rest.startswith("//"):  # sqlite:////abs/x.db (SQLAlchemy's spelling) is absolute
            rest = rest[1:]
        if rest.startswith(("/./", "/../")):  # sqlite:///./x.db is relative
            rest = rest[1:]
        path = unquote(rest)
        if path in ("", "/"):
            raise ValueError(f"bad store URL {text!r}: it names no path; {_FORMS}")
        return cls(scheme, os.path.expanduser(path))

    @property
    def url(self) -> str:
        """The URL again; `StoreURL.parse(u.url) == u`."""
        match self.kind:
            case "sqlite" | "file":
                return f"{self.kind}://{quote(self.location)}"
            case "memory":
                return "memory:"
            case "postgresql":
                return self.location

    def absolute(self) -> StoreURL:
        """The same store with an absolute path (safe to hand to a process with another cwd)."""
        if self.kind in ("sqlite", "file"):
            return dataclasses.replace(self, location=os.path.abspath(self.location))
        return self


def open_store(url: str | os.PathLike[str] | StoreURL) -> CheckpointStore:
    """Open the checkpoint store a URL names; what `stepgraph run --store` and the server use.

    Accepted forms: `sqlite:///abs/path.db`, `sqlite:///./relative.db` (or
    `sqlite://relative.db`, or a plain path), `file:///abs/dir` (or
    `file://relative/dir`), `memory:`, and
    `postgresql://user@host:5432/db?schema=name` (or `postgres://`; `schema`
    defaults to `public`, other parameters go to libpq). The parent directory
    of a SQLite file, and a file store's directory, are created; no
    connection is made until the store is first used.

    Args:
        url: a store URL, a plain SQLite path, or a `StoreURL`.

    Raises:
        ValueError: the URL is not one of the forms above, or names a
            PostgreSQL store while the `postgres` extra is not installed.
    """
    spec = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    match spec.kind:
        case "sqlite":
            Path(spec.location).parent.mkdir(parents=True, exist_ok=True)
            return SqliteCheckpointStore(spec.location)
        case "file":
            Path(spec.location).mkdir(parents=True, exist_ok=True)
            return FileCheckpointStore(spec.location)
        case "memory":
            return MemoryCheckpointStore()
        case "postgresql":
            scheme = spec.location.split("://", 1)[0]
            try:
                module = importlib.import_module("stepgraph.stores.postgres")
            except ImportError as exc:
                raise ValueError(
                    f"{scheme}:// needs the PostgreSQL store: "
                    f"pip install 'stepgraph[postgres]' ({exc})"
                ) from exc
            dsn, schema = postgres_dsn(spec.location)
            store: CheckpointStore = module.PostgresCheckpointStore(dsn, schema=schema)
            return store


def postgres_dsn(url: str) -> tuple[str, str]:
    """A `postgresql://` URL's DSN without the `schema` query parameter, and that schema
    (default `public`); every other parameter goes to libpq as it is.

    Raises:
        ValueError: `schema` is given empty or more than once.
    """
    base, _, query = url.partition("?")
    kept: list[str] = []
    schemas: list[str] = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        if unquote(key) == "schema":
            schemas.append(unquote(value))
        else:
            kept.append(item)  # verbatim: libpq decodes it
    if len(schemas) > 1 or (schemas and not schemas[0]):
        raise ValueError(f"store URL {url!r}: give one non-empty schema=name")
    dsn = (base + ("?" + "&".join(kept) if kept else "")) if schemas else url
    return dsn, schemas[0] if schemas else "public"
