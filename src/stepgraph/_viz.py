"""Graph pictures: Mermaid and Graphviz DOT text, every edge kind drawn distinctly."""

from __future__ import annotations

from collections.abc import Sequence

from ._edges import EdgeGroup, qualname

__all__ = ["to_dot", "to_mermaid"]


def _short(func: object) -> str:
    name = qualname(func) or "?"
    return name.rsplit(".", 1)[-1]


def _labelled(groups: Sequence[EdgeGroup]) -> list[tuple[str, str, str, str]]:
    """Flatten groups into (src, dst, label, style) with style in solid|dashed|bold."""
    out: list[tuple[str, str, str, str]] = []
    for n, g in enumerate(groups):
        src = g.sources[0]
        if g.kind in ("direct", "fan_out"):
            conds = g.conditions or (None,) * len(g.targets)
            for t, c in zip(g.targets, conds, strict=True):
                out.append((src, t, f"when {_short(c)}" if c else "", "dashed" if c else "solid"))
        elif g.kind == "switch":
            n_cases = len(g.conditions)
            for i, (t, c) in enumerate(zip(g.targets[:n_cases], g.conditions, strict=True)):
                out.append((src, t, f"case {i + 1}: {_short(c)}", "solid"))
            if g.has_default:
                out.append((src, g.targets[-1], "default", "dashed"))
        elif g.kind == "multi_select":
            for t in g.targets:
                out.append((src, t, f"select {_short(g.selector)}", "dashed"))
        elif g.kind == "map":
            out.append((src, g.targets[0], "map: each item", "bold"))
            if len(g.targets) > 1:
                out.append((g.targets[0], g.targets[1], "collect: list", "bold"))
        else:
            join = f"__join{n}"
            for s in g.sources:
                out.append((s, join, "", "solid"))
            out.append((join, g.targets[0], "list", "bold"))
    return out


def _mid(name: str) -> str:
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in name)


def to_mermaid(start: str, ids: Sequence[str], groups: Sequence[EdgeGroup]) -> str:
    """A Mermaid `flowchart TD` of the graph (fan-in joins drawn as small circles)."""
    lines = ["flowchart TD"]
    for eid in ids:
        shape = f'(["{eid}"])' if eid == start else f'["{eid}"]'
        lines.append(f"  {_mid(eid)}{shape}")
    joins = [f"__join{n}" for n, g in enumerate(groups) if g.kind == "fan_in"]
    for j in joins:
        lines.append(f"  {_mid(j)}((join))")
    arrows = {"solid": "-->", "dashed": "-.->", "bold": "==>"}
    for src, dst, label, style in _labelled(groups):
        text = f'|"{label}"|' if label else ""
        lines.append(f"  {_mid(src)} {arrows[style]}{text} {_mid(dst)}")
    return "\n".join(lines) + "\n"


def to_dot(name: str, start: str, ids: Sequence[str], groups: Sequence[EdgeGroup]) -> str:
    """A Graphviz DOT digraph of the graph."""
    lines = [f'digraph "{name}" {{', "  rankdir=TB;", "  node [shape=box];"]
    for eid in ids:
        extra = ", style=bold, peripheries=2" if eid == start else ""
        lines.append(f'  "{eid}" [label="{eid}"{extra}];')
    for n, g in enumerate(groups):
        if g.kind == "fan_in":
            lines.append(f'  "__join{n}" [shape=circle, label="join", width=0.3];')
    for src, dst, label, style in _labelled(groups):
        attrs = [f"style={style}"] + ([f'label="{label}"'] if label else [])
        lines.append(f'  "{src}" -> "{dst}" [{", ".join(attrs)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
