"""Checkpoint serialization: values <-> tagged JSON bytes, never pickle.

Module map:

* `_format`: the wire format (tag names, the ``"!"``/``"v"`` tagged object,
  the builtin type table, the nesting limit)
* `_registry`: `TypeRegistry` (the classes a workflow knows, closed over their
  field types) and the per-class storage plans
* `_encode`: `encode`, with the fast path for plain JSON values
* `_tagger`: the tagged path of `encode` (tags, cycle and depth checks, error paths)
* `_decode`: `decode`, which turns every malformed input into `CheckpointDecodeError`
* `_rebuild`: rebuilds tagged values, only builtin kinds and registered classes

```python
from stepgraph import serde

registry = serde.TypeRegistry([Order])  # build once, reuse
data = serde.encode({"order": Order(...), "seen": {1, 2}}, types=registry)
value = serde.decode(data, types=registry)
```
"""

from ._decode import decode
from ._encode import encode
from ._registry import TypeRegistry

__all__ = ["TypeRegistry", "decode", "encode"]
