"""The binary layout durable stores write: one record per checkpoint.

```
b"SGC1" | u32 header length | header JSON (UTF-8) | for each part: u32 length | bytes
```

The header holds the `CheckpointInfo`, graph signature, status, the names of
the stored parts (in order), and for a delta the deleted state keys and its
depth. The graph description is written only in full records (zlib-compressed,
base64, key `graphz`; version-1 records had it plain under `graph`); a delta
takes its base's. A record may carry its checkpoint's `trace` (plain JSON, key
`trace`; `Checkpoint.trace`). Any malformation raises `CheckpointDecodeError`.

Decoding is linear in the record's size: the graph description unpacks to at
most `MAX_GRAPH` bytes (a record past it is refused; `pack` refuses to write
one), so a small record cannot unpack to gigabytes.
"""

from __future__ import annotations

import base64
import json
import struct
import types
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from .. import _chunks
from .._checkpoint import FORMAT_VERSION, Checkpoint, CheckpointInfo, apply_delta
from .._errors import CheckpointDecodeError, CheckpointError

__all__ = [
    "MAGIC",
    "MAX_GRAPH",
    "attach",
    "info",
    "mentioned",
    "pack",
    "record_id",
    "resolve",
    "unpack",
]

MAGIC = b"SGC1"
MAX_GRAPH = 16 * 1024 * 1024
"""Largest graph description (UTF-8 bytes) a record holds; graphs take KiBs."""
_LEN = struct.Struct(">I")
_T = TypeVar("_T")


def pack(cp: Checkpoint) -> bytes:
    """Encode what a store must persist of `cp` (all parts, or only the changed ones)."""
    stored = cp.stored_parts()
    names = list(stored)
    info = cp.info
    header: dict[str, Any] = {
        "v": cp.version,
        "id": info.id,
        "parent": info.parent_id,
        "session": info.session_id,
        "superstep": info.superstep,
        "at": info.created_at.isoformat(),
        "sig": cp.graph_signature,
        "status": cp.status,
        "parts": names,
    }
    if cp.changed is None:  # the graph description (often KiBs of JSON) rides compressed
        graph = cp.graph.encode()
        if len(graph) > MAX_GRAPH:
            raise CheckpointError(
                f"checkpoint {info.id!r} was not saved: its graph description takes "
                f"{len(graph)} bytes, more than the {MAX_GRAPH} a record may hold"
            )
        header["graphz"] = base64.b64encode(zlib.compress(graph, 6)).decode()
    else:
        header["deleted"] = sorted(cp.deleted)
        header["depth"] = cp.depth
    if cp.trace is not None:
        header["trace"] = cp.trace
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    chunks = [MAGIC, _LEN.pack(len(head)), head]
    for name in names:
        data = stored[name]
        chunks.append(_LEN.pack(len(data)))
        chunks.append(data)
    return b"".join(chunks)


def unpack(blob: bytes) -> Checkpoint:
    """Decode one record; a delta comes back with only its stored parts (see `resolve`)."""
    return _decoding(_unpack, blob)


def _decoding(fn: Callable[[Any], _T], record: Any) -> _T:
    """`fn(record)`, any error but `CheckpointDecodeError` turned into one."""
    try:
        return fn(record)
    except CheckpointDecodeError:
        raise
    except Exception as exc:
        raise CheckpointDecodeError(
            f"malformed checkpoint record: {type(exc).__name__}: {exc}"
        ) from None


def _header(view: memoryview) -> tuple[dict[str, Any], int]:
    """A record's header and where its parts start."""
    if bytes(view[:4]) != MAGIC:
        raise CheckpointDecodeError("not a stepgraph checkpoint record (bad magic)")
    (hlen,) = _LEN.unpack_from(view, 4)
    header = json.loads(bytes(view[8 : 8 + hlen]).decode())
    if not isinstance(header, dict):
        raise CheckpointDecodeError("checkpoint record header is not an object")
    return header, 8 + hlen  # pyright: ignore[reportUnknownVariableType]


def _info(h: dict[str, Any]) -> CheckpointInfo:
    return CheckpointInfo(
        id=str(h["id"]),
        parent_id=None if h["parent"] is None else str(h["parent"]),
        session_id=str(h["session"]),
        superstep=int(h["superstep"]),
        created_at=datetime.fromisoformat(h["at"]),
    )


def info(record: bytes | memoryview) -> CheckpointInfo:
    """The `CheckpointInfo` of one record, reading its header only (for indexing a log).

    `pack` writes the info's keys first, so only the header up to `"sig"` is parsed
    (not the parts list, nor a full record's compressed graph description).
    """
    return _decoding(_info_of, memoryview(record))


def _info_of(view: memoryview) -> CheckpointInfo:
    if bytes(view[:4]) == MAGIC:
        (hlen,) = _LEN.unpack_from(view, 4)
        head = bytes(view[8 : 8 + hlen])
        cut = head.find(b',"sig":')
        if cut > 0:
            h = json.loads(head[:cut] + b"}")
            if isinstance(h, dict):
                return _info(h)  # pyright: ignore[reportUnknownArgumentType]
    return _info(_header(view)[0])


_ID_AT = b',"id":'
_STRINGS = json.JSONDecoder()


def record_id(record: bytes | memoryview) -> str:
    """The checkpoint id of one record, read from the start of its header (`pack` puts
    it second), without parsing the rest: indexing a long log costs little per record.
    """
    view = memoryview(record)
    if bytes(view[:4]) == MAGIC:
        (hlen,) = _LEN.unpack_from(view, 4)
        head = bytes(view[8 : 8 + min(hlen, 512)]).decode("utf-8", "replace")
        at = head.find(',"id":', 0, 24)
        if at > 0:
            try:
                value, _ = _STRINGS.raw_decode(head, at + len(_ID_AT))
            except ValueError:
                value = None
            if isinstance(value, str):
                return value
    return info(record).id


def _unpack(blob: bytes) -> Checkpoint:
    view = memoryview(blob)
    h, pos = _header(view)
    parts: dict[str, bytes] = {}
    for name in h["parts"]:
        (n,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + n > len(view):
            raise CheckpointDecodeError("checkpoint record is truncated")
        parts[str(name)] = bytes(view[pos : pos + n])
        pos += n
    if pos != len(view):
        raise CheckpointDecodeError("checkpoint record has trailing bytes")
    found = _info(h)
    version = int(h["v"])
    if version > FORMAT_VERSION:
        raise CheckpointDecodeError(
            f"checkpoint record has format version {version}; this stepgraph reads up to "
            f"{FORMAT_VERSION}: open it with a newer stepgraph"
        )
    trace = h.get("trace")
    if trace is not None and not isinstance(trace, dict):
        raise CheckpointDecodeError("checkpoint record header: trace is not an object")
    full = "graph" in h or "graphz" in h
    if "graphz" in h:
        h["graph"] = _inflate(h["graphz"])
    return Checkpoint(
        info=found,
        graph_signature=str(h["sig"]),
        graph=str(h["graph"]) if full else "",
        status=str(h["status"]),
        parts=types.MappingProxyType(parts),
        changed=None if full else frozenset(parts),
        deleted=frozenset(str(k) for k in h.get("deleted", [])),
        depth=int(h.get("depth", 0)),
        version=version,
        trace=trace,  # pyright: ignore[reportUnknownArgumentType]
    )


def _inflate(packed: object) -> str:
    """The graph description of a `graphz` header, at most `MAX_GRAPH` bytes unpacked."""
    if not isinstance(packed, str):
        raise CheckpointDecodeError("checkpoint record header: graphz is not a string")
    inflater = zlib.decompressobj()
    graph = inflater.decompress(base64.b64decode(packed), MAX_GRAPH + 1)
    if len(graph) > MAX_GRAPH:
        raise CheckpointDecodeError(
            f"checkpoint record header: the graph description unpacks to more than "
            f"{MAX_GRAPH} bytes (a record never holds one that large)"
        )
    if not inflater.eof:
        raise CheckpointDecodeError("checkpoint record header: graphz is truncated")
    return graph.decode()


def resolve(chain: Sequence[Checkpoint]) -> Checkpoint:
    """Rebuild a whole checkpoint from its records, newest first, ending at a full one."""
    if not chain or chain[-1].changed is not None:
        raise CheckpointDecodeError("checkpoint chain does not end at a full checkpoint")
    whole = chain[-1]
    for delta in reversed(chain[:-1]):
        whole = apply_delta(whole, delta)
        whole = Checkpoint(
            info=whole.info,
            graph_signature=whole.graph_signature,
            graph=chain[-1].graph,
            status=whole.status,
            parts=whole.parts,
            # The whole content, but still `depth` deltas from the last full record:
            # a session that adopts it keeps counting towards the next full save.
            depth=delta.depth,
            version=whole.version,
            trace=delta.trace,
        )
    return whole


def mentioned(cp: Checkpoint) -> set[str]:
    """Ids of the chunks the record of `cp` names (what keeps them alive in a store).

    Every chunk a stored checkpoint needs is named by its own record or by a
    record of its chain, which a store keeps (`prune` re-saves a kept delta
    whole before deleting its base), so a chunk no record names can go.
    """
    return {i for data in cp.stored_parts().values() for i in _chunks.mentioned(data)}


def attach(cp: Checkpoint, found: Mapping[str, bytes]) -> Checkpoint:
    """`cp` (whole) carrying the chunks its parts reference, taken from `found`.

    Raises:
        CheckpointDecodeError: a referenced chunk is missing.
    """
    needed = cp.chunk_ids()
    if not needed:
        return cp
    missing = needed - found.keys()
    if missing:
        raise CheckpointDecodeError(
            f"checkpoint {cp.info.id!r} of session {cp.info.session_id!r} references "
            f"{len(missing)} chunk(s) the store does not hold (e.g. {min(missing)!r})"
        )
    return replace(cp, chunks=types.MappingProxyType({i: found[i] for i in needed}))
