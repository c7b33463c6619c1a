"""Store URL helpers shared by the CLI and the server (no optional dependency)."""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["postgres_dsn"]


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
