"""A small AST mutator: the mutation sites of a Python module and the source of any one mutant.

Operators (each a realistic slip in code that guards money or evidence):

* ``boundary`` — a comparison one step off: ``<`` ↔ ``<=``, ``>`` ↔ ``>=``;
* ``negate_compare`` — ``==`` ↔ ``!=``, ``in`` ↔ ``not in``, ``is`` ↔ ``is not``;
* ``arith`` — ``+`` ↔ ``-``;
* ``constant`` — an integer literal ± 1 (``0`` → ``1``, ``n`` → ``n + 1``);
* ``bool_op`` — ``and`` ↔ ``or``;
* ``drop_raise`` — a ``raise`` statement replaced by ``pass``;
* ``drop_if`` — the condition of an ``if`` whose body raises or returns replaced by ``False``;
* ``negate_return`` — ``return <comparison or boolean expression>`` → ``return not (…)``.

Sites are numbered in AST walk order, so a mutant is ``(module, index)`` and stays the same across runs
for the same source. Docstrings, ``if TYPE_CHECKING`` blocks and ``__all__``/logging calls are skipped.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

SWAP_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
NEGATE_COMPARE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                  ast.IsNot: ast.Is}  # fmt: skip


@dataclass(frozen=True)
class Site:
    index: int
    operator: str
    line: int
    description: str

    def as_dict(self) -> dict:
        return {"index": self.index, "operator": self.operator, "line": self.line, "description": self.description}


def _skipped(node: ast.AST) -> bool:
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return True  # docstrings
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in {"log", "logger", "logging"}:
            return True
    return False


def _leaves_early(body: list[ast.stmt]) -> bool:
    return any(isinstance(s, (ast.Raise, ast.Return, ast.Continue, ast.Break)) for s in body)


def _walk(tree: ast.AST):
    """Every node in a stable order, skipping subtrees that are never mutated."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _skipped(node):
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _candidates(node: ast.AST) -> list[tuple[str, str, object]]:
    """(operator, description, payload) for each mutant of ``node``."""
    out: list[tuple[str, str, object]] = []
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            if type(op) in SWAP_COMPARE:
                new = SWAP_COMPARE[type(op)]
                out.append(("boundary", f"{type(op).__name__} -> {new.__name__}", (position, new)))
            if type(op) in NEGATE_COMPARE:
                new = NEGATE_COMPARE[type(op)]
                out.append(("negate_compare", f"{type(op).__name__} -> {new.__name__}", (position, new)))
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        new = ast.Sub if isinstance(node.op, ast.Add) else ast.Add
        out.append(("arith", f"{type(node.op).__name__} -> {new.__name__}", new))
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        out.append(("constant", f"{node.value} -> {node.value + 1}", node.value + 1))
    elif isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        out.append(("bool_op", f"{type(node.op).__name__} -> {new.__name__}", new))
    elif isinstance(node, ast.Raise):
        out.append(("drop_raise", "raise -> pass", None))
    elif isinstance(node, ast.If) and _leaves_early(node.body):
        out.append(("drop_if", "if <cond> (raise/return) -> if False", None))
    elif isinstance(node, ast.Return) and isinstance(node.value, (ast.Compare, ast.BoolOp)):
        out.append(("negate_return", "return x -> return not x", None))
    return out


def sites(source: str) -> list[Site]:
    found: list[Site] = []
    for node in _walk(ast.parse(source)):
        for operator, description, _payload in _candidates(node):
            found.append(Site(len(found), operator, getattr(node, "lineno", 0), description))
    return found


class _Apply(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target
        self.counter = 0
        self.done: Site | None = None

    def visit(self, node):
        if _skipped(node):
            return node
        replacement = node
        for operator, description, payload in _candidates(node):
            if self.counter == self.target and self.done is None:
                self.done = Site(self.counter, operator, getattr(node, "lineno", 0), description)
                replacement = _mutate(node, operator, payload)
            self.counter += 1
        if replacement is not node:
            return replacement
        return self.generic_visit(node)


def _mutate(node: ast.AST, operator: str, payload) -> ast.AST:
    new = copy.deepcopy(node)
    if operator in ("boundary", "negate_compare"):
        position, op = payload
        new.ops[position] = op()
    elif operator == "arith" or operator == "bool_op":
        new.op = payload()
    elif operator == "constant":
        new.value = payload
    elif operator == "drop_raise":
        return ast.copy_location(ast.Pass(), node)
    elif operator == "drop_if":
        new.test = ast.copy_location(ast.Constant(False), node.test)
    elif operator == "negate_return":
        new.value = ast.copy_location(ast.UnaryOp(ast.Not(), new.value), node.value)
    return new


def mutant(source: str, index: int) -> tuple[ast.Module, Site]:
    """The AST of mutant ``index`` of ``source`` and the site it changed."""
    tree = ast.parse(source)
    applier = _Apply(index)
    tree = applier.visit(tree)
    if applier.done is None:
        raise IndexError(f"no mutation site {index} (the module has {applier.counter})")
    return ast.fix_missing_locations(tree), applier.done
