"""The safe condition language of declarative workflows, and its interpreter.

An expression is parsed with Python's `ast` module and checked against a
whitelist once, when it is compiled (at load time); it is then evaluated by
the small interpreter below, never by `eval`. It can read two names,
`message` (the message being routed) and `state` (the sender's view of the
shared state), and use:

* literals: strings, numbers, `True`/`False`/`None`, lists, tuples, sets and dicts of them;
* attribute and key access: `message.order.total`, `message["tags"][0]`
  (an attribute of a mapping reads its key; a missing `state` key reads `None`);
* comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`, `is`, `is not`),
  `and`, `or`, `not`, unary minus and `a if cond else b`.

There are no calls, no lambdas, no comprehensions, no names but those two, and
no attribute that starts with `_` (so no dunder names) or that reaches into
frames and code objects. `Condition` and `Selector` wrap a compiled expression
as the predicate and selector the builder takes, so a Python builder can use
them too, and `Workflow.to_yaml()` writes their source back.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from .._edges import routing_state
from .._errors import GraphError, RoutingError
from .._state import StateView

__all__ = ["Condition", "Expression", "ExpressionError", "Selector"]

NAMES = ("message", "state")
MAX_LENGTH = 2000
MAX_DEPTH = 40
BLOCKED_PREFIXES = ("_", "gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "mro")

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_WHAT: Mapping[type[ast.AST], str] = {
    ast.Call: "a call",
    ast.Lambda: "a lambda",
    ast.NamedExpr: "an assignment (:=)",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.JoinedStr: "an f-string",
    ast.Starred: "a starred expression",
    ast.Slice: "a slice",
    ast.BinOp: "arithmetic",
}


class ExpressionError(GraphError):
    """An expression that is not in the condition language (raised when it is compiled)."""


class Expression:
    """A compiled expression of the condition language.

    Args:
        source: the expression, e.g. `message.score >= 0.8 and not state.closed`.

    Raises:
        ExpressionError: the source is not valid Python or uses anything outside the language.
    """

    __slots__ = ("reads_state", "source", "tree")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.strip():  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ExpressionError(f"an expression must be a non-empty string, got {source!r}")
        if len(source) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.source = source.strip()
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(
                f"expression {self.source!r} is not valid: {exc.msg} (column {exc.offset})"
            ) from None
        self.tree: ast.expr = tree.body
        names: set[str] = set()
        _check(self.tree, self.source, names, 0)
        self.reads_state = "state" in names

    def evaluate(self, message: Any, state: StateView | Mapping[str, Any] | None = None) -> Any:
        """The expression's value for `message` and `state` (None: an empty state).

        Raises:
            RoutingError: a missing attribute or key of the message, or an operation
                the values do not support (the sender's failure, like a predicate's error).
        """
        try:
            return _Eval(message, state).run(self.tree)
        except RoutingError:
            raise
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise RoutingError(
                f"expression {self.source!r} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def _check(node: ast.AST, source: str, names: set[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression {source!r} is nested too deeply")
    bad = _problem(node)
    if bad is not None:
        raise ExpressionError(f"expression {source!r}: {bad} is not allowed in conditions")
    if isinstance(node, ast.Name):
        names.add(node.id)
    for child in ast.iter_child_nodes(node):
        _check(child, source, names, depth + 1)


def _problem(node: ast.AST) -> str | None:
    """Why `node` is outside the language, or None when it is in."""
    for kind, what in _WHAT.items():
        if isinstance(node, kind):
            return what
    if isinstance(node, ast.Name):
        if node.id not in NAMES:
            return f"the name {node.id!r} (only {' and '.join(NAMES)} exist)"
        return None
    if isinstance(node, ast.Attribute):
        if node.attr.startswith(BLOCKED_PREFIXES):
            return f"the attribute {node.attr!r}"
        return None
    if isinstance(node, ast.Constant):
        ok = node.value is None or isinstance(node.value, str | int | float | bool)
        return None if ok else f"the literal {node.value!r}"
    if isinstance(node, ast.UnaryOp):
        return None if isinstance(node.op, ast.Not | ast.USub | ast.UAdd) else "that operator"
    allowed = (
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.Compare,
        ast.cmpop,
        ast.IfExp,
        ast.Subscript,
        ast.List,
        ast.Tuple,
        ast.Set,
        ast.Dict,
        ast.Load,
        ast.Not,
        ast.USub,
        ast.UAdd,
    )
    return None if isinstance(node, allowed) else f"{type(node).__name__} syntax"


class _Eval:
    """Evaluates a checked tree (only the node kinds `_check` lets through)."""

    __slots__ = ("message", "state")

    def __init__(self, message: Any, state: StateView | Mapping[str, Any] | None) -> None:
        self.message = message
        self.state = state

    def run(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.message if node.id == "message" else _STATE
        if isinstance(node, ast.Attribute):
            return self._get(self.run(node.value), node.attr, attribute=True)
        if isinstance(node, ast.Subscript):
            return self._get(self.run(node.value), self.run(node.slice), attribute=False)
        if isinstance(node, ast.BoolOp):
            value: Any = None
            for item in node.values:
                value = self.run(item)
                if isinstance(node.op, ast.And) != bool(value):
                    return value
            return value
        if isinstance(node, ast.UnaryOp):
            operand = self.run(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Compare):
            left = self.run(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.run(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.run(node.body) if self.run(node.test) else self.run(node.orelse)
        return self._literal(node)

    def _literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.List):
            return [self.run(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.run(e) for e in node.elts)
        if isinstance(node, ast.Set):
            return {self.run(e) for e in node.elts}
        if isinstance(node, ast.Dict):
            return {
                self.run(k): self.run(v)
                for k, v in zip(node.keys, node.values, strict=True)
                if k is not None
            }
        raise RoutingError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check

    def _get(self, obj: Any, key: Any, *, attribute: bool) -> Any:
        if obj is _STATE:
            return self._state_get(key)
        if attribute and isinstance(key, str) and key.startswith(BLOCKED_PREFIXES):
            raise RoutingError(f"attribute {key!r} is not readable in conditions")
        if isinstance(obj, Mapping):
            return cast(Mapping[Any, Any], obj)[key]
        if attribute:
            return getattr(obj, key)
        return obj[key]

    def _state_get(self, key: Any) -> Any:
        state = self.state
        if state is None:
            return None
        if not isinstance(key, str):
            raise RoutingError(f"state keys are strings, got {key!r}")
        return state.get(key)


_STATE = object()  # the `state` name: resolved key by key, so a missing key reads None


class Condition:
    """An edge condition written in the condition language: `Condition("message.ok")`.

    Callable as the builder's `when(message) -> bool`; the sender's view of the
    shared state is read as `state`. `Workflow.to_yaml()` writes its source.
    """

    __slots__ = ("__qualname__", "expression", "reads_state")

    def __init__(self, source: str | Expression) -> None:
        self.expression = source if isinstance(source, Expression) else Expression(source)
        self.reads_state = self.expression.reads_state
        # The graph signature names a predicate by its qualified name: the source names it.
        self.__qualname__ = f"when[{self.expression.source}]"

    @property
    def source(self) -> str:
        """The expression's text."""
        return self.expression.source

    def __call__(self, message: Any) -> bool:
        return bool(self.expression.evaluate(message, routing_state.get()))

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


class Selector:
    """A multi-select selector in the condition language, e.g. `"['a', 'b'] if message.x else 'c'"`.

    The expression evaluates to one target id or a list of them. Callable as
    the builder's `selector(message, target_ids) -> list[str]`.
    """

    __slots__ = ("__qualname__", "expression", "reads_state")

    def __init__(self, source: str | Expression) -> None:
        self.expression = source if isinstance(source, Expression) else Expression(source)
        self.reads_state = self.expression.reads_state
        self.__qualname__ = f"select[{self.expression.source}]"

    @property
    def source(self) -> str:
        """The expression's text."""
        return self.expression.source

    def __call__(self, message: Any, target_ids: Sequence[str]) -> list[str]:
        value = self.expression.evaluate(message, routing_state.get())
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple | set):
            items = cast(Sequence[Any], value)
            if all(isinstance(v, str) for v in items):
                if isinstance(value, set):  # no order of its own: the targets' order
                    return [t for t in target_ids if t in value] + sorted(
                        v for v in items if v not in target_ids
                    )
                return [str(v) for v in items]
        raise RoutingError(
            f"selector {self.source!r} returned {value!r}; it must give a target id or a "
            f"list of them (targets: {list(target_ids)})"
        )

    def __repr__(self) -> str:
        return f"Selector({self.source!r})"
