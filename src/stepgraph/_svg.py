"""Graph pictures as SVG, drawn here: no system Graphviz needed (the dev UI uses it too).

`to_svg(description)` is a pure function over `Workflow.describe()`. Layout
(Sugiyama, kept simple): back edges (a DFS from the start) are reversed; layers
are the longest path from the start; long edges get a virtual node per layer;
barycenter sweeps order the layers (fewest crossings wins); sweeps place each
layer near its neighbours. Edge kinds look distinct (`EDGE_STYLES`): `when`
dashed and labelled, switch cases amber and labelled, the default dotted,
multi-select dash-dotted, fan-in sources meeting at a small circle before one
bold edge. The start is highlighted, sub-workflows have a double border.
Nodes are `<g class="node" data-id>`, edges `<g class="edge KIND" data-source
data-target>`, for pages to style or script.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["EDGE_STYLES", "to_svg"]

EDGE_STYLES: Mapping[str, tuple[str, str, float]] = {
    "direct": ("#4b5563", "", 1.4), "fan-out": ("#4b5563", "", 1.4),
    "conditional": ("#4b5563", "6 4", 1.4),
    "case": ("#b45309", "", 1.4), "default": ("#b45309", "2 3", 1.4),
    "select": ("#7c3aed", "8 3 2 3", 1.4),
    "fan-in": ("#0f766e", "", 1.4), "joined": ("#0f766e", "", 2.6),
}  # fmt: skip
"""Edge class -> (stroke colour, dash pattern, stroke width)."""

_NODE_H, _JOIN_R = 36.0, 6.0
_CHAR_W, _LABEL_CHAR_W = 7.4, 6.3  # average advance of the 13 px and the 11 px font
_GAP_X, _MARGIN, _TOP = 32.0, 24.0, 40.0  # _TOP leaves room for the start marker
_BLUE = "#1d4ed8"
_BOX = {"rx": 6, "fill": "#f9fafb", "stroke": "#374151", "stroke_width": 1.2}
_START = {"rx": 6, "fill": "#dbeafe", "stroke": _BLUE, "stroke_width": 2.4}
_JOIN = {"r": _JOIN_R, "fill": "#ccfbf1", "stroke": "#0f766e", "stroke_width": 1.6}
_NAME = {"text_anchor": "middle", "font_size": 13, "fill": "#111827"}
_LABEL_BG = {"class_": "label-bg", "rx": 3, "fill": "#ffffff", "fill_opacity": 0.9}
_ARROW = {"viewBox": "0 0 10 10", "refX": 9, "refY": 5, "markerWidth": 9, "markerHeight": 9}
_TEXT = {"font_family": "ui-sans-serif, system-ui, Segoe UI, Helvetica, Arial, sans-serif"}
_NS = "http://www.w3.org/2000/svg"


@dataclass
class _Edge:
    src: str
    dst: str
    kind: str
    label: str = ""
    back: bool = False
    points: list[tuple[float, float]] = field(default_factory=list[tuple[float, float]])


@dataclass
class _Node:
    id: str
    width: float
    join: bool = False
    virtual: bool = False
    sub: bool = False
    layer: int = 0
    x: float = 0.0  # centre


def _box_width(text: str) -> float:
    return max(64.0, len(text) * _CHAR_W + 28)


def _short(name: object) -> str:
    return str(name).rsplit(".", 1)[-1] if name else "?"


def _edges(description: Mapping[str, Any]) -> list[_Edge]:
    """The drawn edges; fan-in sources go to a join node `__join<n>`."""
    out: list[_Edge] = []
    for n, group in enumerate(description.get("edges", [])):
        kind = group.get("kind")
        sources, targets = list[str](group.get("sources", [])), list[str](group.get("targets", []))
        conds: list[Any] = list(group.get("conditions") or [None] * len(targets))
        if kind == "fan_in":
            join = f"__join{n}"
            out += [_Edge(s, join, "fan-in") for s in sources]
            out += [_Edge(join, t, "joined", "list") for t in targets[:1]]
        elif kind == "switch":
            cases = targets[: len(conds)] if "default" not in group else targets[:-1]
            for i, (t, c) in enumerate(zip(cases, conds, strict=False)):
                out.append(_Edge(sources[0], t, "case", f"case {i + 1}: {_short(c)}"))
            if "default" in group:
                out.append(_Edge(sources[0], group["default"], "default", "default"))
        elif kind == "multi_select":
            label = f"select {_short(group.get('selector'))}"
            out += [_Edge(sources[0], t, "select", label) for t in targets]
        elif kind == "map":
            out.append(_Edge(sources[0], targets[0], "joined", "map: each item"))
            out += [_Edge(targets[0], t, "joined", "collect: list") for t in targets[1:2]]
        else:
            plain = "fan-out" if kind == "fan_out" else "direct"
            for t, c in zip(targets, conds + [None] * len(targets), strict=False):
                drawn, label = ("conditional", f"when {_short(c)}") if c else (plain, "")
                out.append(_Edge(sources[0], t, drawn, label))
    return out


def _dfs(order: list[str], start: str, edges: list[_Edge]) -> tuple[list[str], list[str]]:
    """Flag back edges; return a topological order of the rest and the discovery order."""
    succ = {n: [e for e in edges if e.src == n] for n in order}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    post: list[str] = []
    for root in [start, *order]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                post.append(node)
                stack.pop()
            elif nxt.dst == start or state.get(nxt.dst) == 1:
                nxt.back = True
            elif nxt.dst not in state:
                state[nxt.dst] = 1
                stack.append((nxt.dst, iter(succ[nxt.dst])))
    return post[::-1], list(state)


def _pava(desired: list[float], gaps: list[float]) -> list[float]:
    """Positions in order, at least `gaps[i]` apart, closest (least squares) to `desired`."""
    offsets = [0.0, *itertools.accumulate(gaps)]
    blocks: list[list[float]] = []  # [sum, count]
    for d, o in zip(desired, offsets, strict=True):
        blocks.append([d - o, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            blocks[-2:] = [[blocks[-2][0] + blocks[-1][0], blocks[-2][1] + blocks[-1][1]]]
    ys = [s / c for s, c in blocks for _ in range(int(c))]
    return [y + o for y, o in zip(ys, offsets, strict=True)]


class _Layout:
    """Layers, order and coordinates of every node, and the points of every edge."""

    def __init__(self, description: Mapping[str, Any]) -> None:
        self.start = str(description.get("start", ""))
        self.edges = _edges(description)
        self.nodes: dict[str, _Node] = {}
        for ex in description.get("executors", []):
            eid = str(ex["id"])
            self.nodes[eid] = _Node(eid, _box_width(eid), sub="SubWorkflow" in str(ex.get("type")))
        for n in (n for e in self.edges for n in (e.src, e.dst)):  # joins (and undeclared ids)
            join = n.startswith("__join")
            self.nodes.setdefault(n, _Node(n, 2 * _JOIN_R if join else _box_width(n), join=join))
        if self.start not in self.nodes and self.nodes:
            self.start = next(iter(self.nodes))
        topo, seen = _dfs(list(self.nodes), self.start, self.edges)
        for n in topo:
            preds = [self.nodes[e.src].layer + 1 for e in self.edges if e.dst == n and not e.back]
            self.nodes[n].layer = max(preds, default=0)
        self._split({n: float(i) for i, n in enumerate(seen)})
        self._order()
        self._place()

    def _split(self, rank: dict[str, float]) -> None:
        """Virtual nodes for long edges (back edges reversed); `links`: hops between layers."""
        self.links: list[tuple[str, str]] = []
        self.chains: dict[int, list[str]] = {}
        for k, e in enumerate(self.edges):
            a, b = (e.dst, e.src) if e.back else (e.src, e.dst)  # a back edge runs upwards
            if self.nodes[a].layer >= self.nodes[b].layer:
                continue  # a self-loop (or a back edge within a layer)
            chain = [a]
            for layer in range(self.nodes[a].layer + 1, self.nodes[b].layer):
                v = f"__v{k}_{layer}"
                self.nodes[v] = _Node(v, 0.0, virtual=True, layer=layer)
                rank[v] = rank[a] + 0.5
                chain.append(v)
            chain.append(b)
            self.chains[k] = chain
            self.links += list(itertools.pairwise(chain))
        self.up = {n: [a for a, b in self.links if b == n] for n in self.nodes}
        self.down = {n: [b for a, b in self.links if a == n] for n in self.nodes}
        depth = max((n.layer for n in self.nodes.values()), default=0)
        self.layers: list[list[str]] = [[] for _ in range(depth + 1)]
        for n in sorted(self.nodes, key=lambda n: rank.get(n, len(rank))):
            self.layers[self.nodes[n].layer].append(n)

    def _sweeps(self) -> Iterator[tuple[int, bool]]:
        """(layer, downward) for 4 sweeps down and 4 up; a sweep ends with `(-1, ...)`."""
        n = len(self.layers)
        for sweep in range(8):
            down = sweep % 2 == 0
            yield from ((i, down) for i in (range(1, n) if down else range(n - 2, -1, -1)))
            yield -1, down

    def _crossings(self) -> int:
        pos = {n: p for layer in self.layers for p, n in enumerate(layer)}
        pairs = itertools.combinations([(pos[a], pos[b]) for a, b in self.links], 2)
        return sum(1 for (a1, b1), (a2, b2) in pairs if (a1 - a2) * (b1 - b2) < 0)

    def _order(self) -> None:
        """Barycenter sweeps down and up; the order with the fewest crossings wins."""
        best, fewest = [list(layer) for layer in self.layers], self._crossings()
        for i, downward in self._sweeps():
            if i < 0:  # a sweep ended
                if (count := self._crossings()) < fewest:
                    best, fewest = [list(layer) for layer in self.layers], count
                continue
            pos = {n: p for p, n in enumerate(self.layers[i - 1 if downward else i + 1])}
            near = self.up if downward else self.down
            keys: dict[str, float] = {}
            for p, n in enumerate(self.layers[i]):
                ns = [pos[m] for m in near[n] if m in pos]
                keys[n] = sum(ns) / len(ns) if ns else float(p)
            self.layers[i].sort(key=keys.__getitem__)
        self.layers = best

    def _place(self) -> None:
        def gap(a: str, b: str) -> float:
            na, nb = self.nodes[a], self.nodes[b]
            return na.width / 2 + (12.0 if na.virtual or nb.virtual else _GAP_X) + nb.width / 2

        for layer in self.layers:  # packed, left to right
            for a, b in itertools.pairwise(layer):
                self.nodes[b].x = self.nodes[a].x + gap(a, b)
        for i, downward in self._sweeps():
            if i < 0:
                continue
            layer, near = self.layers[i], self.up if downward else self.down
            desired: list[float] = []
            for n in layer:
                xs = [self.nodes[m].x for m in near[n]]
                desired.append(sum(xs) / len(xs) if xs else self.nodes[n].x)
            gaps = [gap(a, b) for a, b in itertools.pairwise(layer)]
            for n, x in zip(layer, _pava(desired, gaps), strict=True):
                self.nodes[n].x = x
        left = min((n.x - n.width / 2 for n in self.nodes.values()), default=0.0)
        for n in self.nodes.values():
            n.x += _MARGIN - left

    def y(self, layer: int) -> float:
        """Top of a layer's row (rows further apart when edges carry labels)."""
        return _TOP + layer * (_NODE_H + (64.0 if any(e.label for e in self.edges) else 44.0))


def _fmt(v: object) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _el(tag: str, body: str = "", /, **attrs: object) -> str:
    """An SVG element; `stroke_width=` becomes `stroke-width`, `class_=` becomes `class`."""
    pairs = ((k.rstrip("_").replace("_", "-"), v) for k, v in attrs.items() if v not in (None, ""))
    text = " ".join(f"{k}={quoteattr(_fmt(v))}" for k, v in pairs)
    return f"<{tag} {text}>{body}</{tag}>" if body else f"<{tag} {text}/>"


def _curve(p0: tuple[float, float], p3: tuple[float, float], t: float) -> tuple[float, float]:
    """A point of the vertical-tangent curve `_path` draws from p0 to p3."""
    (x0, y0), (x3, y3) = p0, p3
    u = 1 - t
    return (u * u * (u + 3 * t) * x0 + t * t * (3 * u + t) * x3, y0 + (y3 - y0) * t)


def _path(points: list[tuple[float, float]]) -> str:
    (x, y), *rest = points
    d = [f"M{_fmt(x)},{_fmt(y)}"]
    for nx, ny in rest:
        my, end = _fmt((y + ny) / 2), f"{_fmt(nx)},{_fmt(ny)}"
        d.append(f"L{end}" if nx == x else f"C{_fmt(x)},{my} {_fmt(nx)},{my} {end}")
        x, y = nx, ny
    return " ".join(d)


class _Drawing:
    """Turns a `_Layout` into SVG elements."""

    def __init__(self, lay: _Layout) -> None:
        self.lay = lay
        self.boxes = [  # taken: x0, y0, x1, y1
            (n.x - n.width / 2, self.top(n), n.x + n.width / 2, self.bottom(n))
            for n in lay.nodes.values()
            if not n.virtual
        ]
        self.right = max((b[2] for b in self.boxes), default=0.0)
        self._route()

    def top(self, n: _Node) -> float:
        return self.lay.y(n.layer) + (_NODE_H / 2 - _JOIN_R if n.join else 0.0)

    def bottom(self, n: _Node) -> float:
        return self.top(n) + (2 * _JOIN_R if n.join else _NODE_H)

    def _route(self) -> None:
        """Points of every edge: spread along box edges, through virtual nodes."""
        lay = self.lay
        hops: tuple[dict[str, list[tuple[float, int]]], ...] = ({}, {})  # out of, into a node
        for k, chain in lay.chains.items():
            hops[0].setdefault(chain[0], []).append((lay.nodes[chain[1]].x, k))
            hops[1].setdefault(chain[-1], []).append((lay.nodes[chain[-2]].x, k))
        where: dict[tuple[int, int], float] = {}
        for side, table in enumerate(hops):
            for nid, found in table.items():
                node = lay.nodes[nid]
                span = 0.0 if node.join else node.width * 0.8
                for i, (_, k) in enumerate(sorted(found)):
                    where[(k, side)] = node.x - span / 2 + span * (i + 1) / (len(found) + 1)
        for k, e in enumerate(lay.edges):
            if k not in lay.chains:  # a self-loop loops out of the right side; or side by side
                n, m = lay.nodes[e.src], lay.nodes[e.dst]
                x, y = n.x + n.width / 2, (self.top(n) + self.bottom(n)) / 2
                e.points = [(x, y - 8), (x + 40, y - 8), (x + 40, y + 8), (x, y + 8)]
                if n is not m:
                    e.points = [(x, y), (m.x - m.width / 2 if m.x > n.x else m.x + m.width / 2, y)]
                self.right = max(self.right, x + 34)
                continue
            chain = lay.chains[k]
            first, last = lay.nodes[chain[0]], lay.nodes[chain[-1]]
            pts = [(where[(k, 0)], self.bottom(first))]
            for v in (lay.nodes[v] for v in chain[1:-1]):
                pts += [(v.x, lay.y(v.layer)), (v.x, lay.y(v.layer) + _NODE_H)]
            pts.append((where[(k, 1)], self.top(last)))
            e.points = pts[::-1] if e.back else pts

    def _free(self, box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        return all(x1 <= b[0] or x0 >= b[2] or y1 <= b[1] or y0 >= b[3] for b in self.boxes)

    def label(self, e: _Edge, color: str) -> str:
        """The edge's label on a white pad, at the first free spot along its first hop."""
        w, h, p = len(e.label) * _LABEL_CHAR_W + 8, 15.0, e.points
        spots = [_curve(p[0], p[1], t) for t in (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85)]
        boxes = [(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for x, y in spots]
        box = next((b for b in boxes if self._free(b)), boxes[0])
        self.boxes.append(box)
        self.right = max(self.right, box[2])
        pad = _el("rect", x=box[0], y=box[1], width=w, height=h, **_LABEL_BG)
        x, y = (box[0] + box[2]) / 2, box[1] + h / 2 + 4
        text = escape(e.label)
        return pad + _el(
            "text", text, class_="label", x=x, y=y, **_NAME | {"fill": color, "font_size": 11}
        )

    def edge(self, e: _Edge, marker: str) -> str:
        color, dash, width = EDGE_STYLES[e.kind]
        end = None if self.lay.nodes[e.dst].join else f"url(#{marker})"
        stroke = {"stroke": color, "stroke_width": width, "stroke_dasharray": dash}
        path = _el("path", d=_path(e.points), fill="none", marker_end=end, **stroke)
        cls = f"edge {e.kind}" + (" back" if e.back else "")
        return _el("g", path, class_=cls, data_source=e.src, data_target=e.dst, data_kind=e.kind)

    def node(self, n: _Node, start: bool) -> str:
        top = self.top(n)
        if n.join:
            return _el("g", _el("circle", cx=n.x, cy=top + _JOIN_R, **_JOIN), class_="join")
        x0, style = n.x - n.width / 2, _START if start else _BOX
        body = _el("rect", x=x0, y=top, width=n.width, height=_NODE_H, **style)
        if n.sub:  # a double border
            inner = {"width": n.width - 6, "height": _NODE_H - 6, "rx": 4}
            body += _el("rect", x=x0 + 3, y=top + 3, fill="none", stroke=style["stroke"], **inner)
        y, bold = top + _NODE_H / 2 + 4.5, "bold" if start else None
        body += _el("text", escape(n.id), x=n.x, y=y, font_weight=bold, **_NAME)
        cls = "node" + (" start" if start else "") + (" subworkflow" if n.sub else "")
        return _el("g", body, class_=cls, data_id=n.id)


def to_svg(description: Mapping[str, Any], *, title: str = "", id_prefix: str = "sg") -> str:
    """Draw a workflow graph (the dict `Workflow.describe()` returns) as an SVG document.

    `title` becomes the `<title>`; `id_prefix` keeps the arrow markers' ids
    unique when several drawings share one HTML page.
    """
    lay = _Layout(description)
    drawing = _Drawing(lay)
    colors = list(dict.fromkeys([_BLUE] + [c for c, _, _ in EDGE_STYLES.values()]))
    markers = {c: f"{id_prefix}-arrow-{i}" for i, c in enumerate(colors)}
    tip = {"markerUnits": "userSpaceOnUse", "orient": "auto-start-reverse"}
    defs = "".join(
        _el("marker", _el("path", d="M0,0 L10,5 L0,10 z", fill=c), id=markers[c], **_ARROW | tip)
        for c in colors
    )
    parts = [f"<title>{escape(title)}</title>" if title else "", f"<defs>{defs}</defs>"]
    if (start := lay.nodes.get(lay.start)) is not None:  # the initial-state dot
        top, end = drawing.top(start), f"url(#{markers[_BLUE]})"
        dot = _el("circle", cx=start.x, cy=top - 24, r=5, fill=_BLUE)
        d = f"M{start.x:.1f},{top - 19:.1f} L{start.x:.1f},{top - 1:.1f}"
        arrow = _el("path", d=d, stroke=_BLUE, stroke_width=1.6, marker_end=end)
        parts.append(_el("g", dot + arrow, class_="entry"))
    parts += [drawing.edge(e, markers[EDGE_STYLES[e.kind][0]]) for e in lay.edges]
    parts += [drawing.node(n, n.id == lay.start) for n in lay.nodes.values() if not n.virtual]
    parts += [drawing.label(e, EDGE_STYLES[e.kind][0]) for e in lay.edges if e.label]
    depth = max((n.layer for n in lay.nodes.values()), default=0)
    width, height = drawing.right + _MARGIN, lay.y(depth) + _NODE_H + _MARGIN
    size = {"width": width, "height": height, "viewBox": f"0 0 {_fmt(width)} {_fmt(height)}"}
    body = "\n" + "\n".join(p for p in parts if p) + "\n"
    return _el("svg", body, xmlns=_NS, class_="stepgraph-graph", role="img", **_TEXT | size) + "\n"
