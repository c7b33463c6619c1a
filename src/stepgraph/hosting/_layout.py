"""A layered layout of the workflow graph for the dev UI's SVG (computed here, drawn in JS).

Ranks are breadth-first distances from the start executor (cycles fall back
to the rank already given); executors that cannot be reached go below.
Within a rank, nodes are ordered by declaration, then by two barycenter
sweeps to reduce crossings. Fan-in edges meet at a small join node, as in
`Workflow.to_mermaid()`. The result is deterministic.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["graph_layout"]

NODE_W, NODE_H, JOIN_W = 160, 40, 16
GAP_X, GAP_Y = 40, 70


def _short(name: Any) -> str:
    return str(name).rsplit(".", 1)[-1] if name else ""


def _edges(desc: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    joins: list[str] = []
    edges: list[dict[str, Any]] = []

    def add(src: str, dst: str, label: str = "", style: str = "solid") -> None:
        edges.append({"from": src, "to": dst, "label": label, "style": style})

    for n, g in enumerate(desc["edges"]):
        kind, sources, targets = g["kind"], g["sources"], g["targets"]
        conds: list[Any] = g.get("conditions") or [None] * len(targets)
        if kind in ("direct", "fan_out"):
            for t, c in zip(targets, conds, strict=False):
                add(sources[0], t, f"when {_short(c)}" if c else "", "dashed" if c else "solid")
        elif kind == "switch":
            cases = len(targets) - (1 if "default" in g else 0)
            for i, t in enumerate(targets[:cases]):
                c = conds[i] if i < len(conds) else None
                add(sources[0], t, f"case {i + 1}: {_short(c)}")
            if "default" in g:
                add(sources[0], targets[-1], "default", "dashed")
        elif kind == "multi_select":
            for t in targets:
                add(sources[0], t, f"select {_short(g.get('selector'))}", "dashed")
        elif kind == "map":
            add(sources[0], targets[0], "map: each item", "bold")
            for t in targets[1:2]:
                add(targets[0], t, "collect: list", "bold")
        else:
            join = f"__join{n}"
            joins.append(join)
            for s in sources:
                add(s, join)
            add(join, targets[0], "list", "bold")
    return joins, edges


def graph_layout(desc: dict[str, Any]) -> dict[str, Any]:
    """Positions for the nodes and the edge list of `Workflow.describe()` output.

    Returns:
        `{"width", "height", "nodes": [{id, kind, x, y, w, h}], "edges": [{from, to,
        label, style}]}` with `kind` one of start, executor, join.
    """
    ids: list[str] = [e["id"] for e in desc["executors"]]
    joins, edges = _edges(desc)
    order = ids + joins
    succ: dict[str, list[str]] = {n: [] for n in order}
    pred: dict[str, list[str]] = {n: [] for n in order}
    for e in edges:
        succ[e["from"]].append(e["to"])
        pred[e["to"]].append(e["from"])
    rank: dict[str, int] = {desc["start"]: 0}
    todo = deque([desc["start"]])
    while todo:
        n = todo.popleft()
        for m in succ[n]:
            if m not in rank:
                rank[m] = rank[n] + 1
                todo.append(m)
    bottom = max(rank.values(), default=0) + 1
    for n in order:
        rank.setdefault(n, bottom)
    layers: dict[int, list[str]] = {}
    for n in order:
        layers.setdefault(rank[n], []).append(n)
    pos = {n: float(i) for layer in layers.values() for i, n in enumerate(layer)}
    for sweep in range(2):
        for r in sorted(layers):
            near = pred if sweep == 0 else succ
            layer = layers[r]

            def center(n: str, near: dict[str, list[str]] = near) -> float:
                ns = [pos[m] for m in near[n] if rank[m] != rank[n]]
                return sum(ns) / len(ns) if ns else pos[n]

            layer.sort(key=lambda n: (center(n), order.index(n)))
            for i, n in enumerate(layer):
                pos[n] = float(i)
    widest = max((len(layer) for layer in layers.values()), default=1)
    width = widest * (NODE_W + GAP_X) + GAP_X
    nodes: list[dict[str, Any]] = []
    for r in sorted(layers):
        layer = layers[r]
        offset = (width - len(layer) * (NODE_W + GAP_X) + GAP_X) / 2
        for i, n in enumerate(layer):
            is_join = n in joins
            w = JOIN_W if is_join else NODE_W
            h = JOIN_W if is_join else NODE_H
            x = offset + i * (NODE_W + GAP_X) + (NODE_W - w) / 2
            y = GAP_Y / 2 + r * (NODE_H + GAP_Y) + (NODE_H - h) / 2
            kind = "join" if is_join else ("start" if n == desc["start"] else "executor")
            nodes.append({"id": n, "kind": kind, "x": x, "y": y, "w": w, "h": h})
    height = GAP_Y / 2 + (max(layers) + 1) * (NODE_H + GAP_Y)
    return {"width": width, "height": height, "nodes": nodes, "edges": edges}
