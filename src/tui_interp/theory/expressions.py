"""Expressions: Python expression syntax, parsed by `ast`, kept only where allowed.

`parse_expression` scans the text first (string literals, stray characters), then hands it
to `ast.parse(mode="eval")`, then converts the Python tree to our frozen nodes by an
allow-list keyed by node type; every other construct is refused with a message saying what
to write instead. Columns of the result point into the original line (see ColumnMap).

Allowed: int/str/bool literals, names, `+ - * // % ** << >> & | ^`, unary `- + ~ not`,
comparisons (chained, `in`, `not in`), `and`/`or`, `x if c else y`, indexing and slicing,
list and tuple literals (tuples are lists), calls of the built-in functions with positional
arguments, and list comprehensions / generator expressions with simple `for name in` clauses.
"""

from __future__ import annotations

import ast
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any

from tui_interp.theory.lexer import ColumnMap, Problem, Token, tokenize
from tui_interp.theory.limits import MAX_EXPR_DEPTH, MAX_INT_BITS
from tui_interp.theory.nodes import (
    Binary,
    BinaryOp,
    BoolLit,
    BoolOp,
    Call,
    Compare,
    Comprehension,
    Expr,
    Generator,
    IfElse,
    Index,
    IntLit,
    ListLit,
    LogicOp,
    Name,
    SliceOf,
    Span,
    StrLit,
    Unary,
    UnaryOp,
)


class ExprError(Exception):
    """A syntax problem in an expression, at a span of the file."""

    def __init__(self, message: str, span: Span) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


_BINARY: dict[type, BinaryOp] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}
_REFUSED_BINARY = {
    ast.Div: "`/` is not supported: there are no floats; use `//` for integer division",
    ast.MatMult: "`@` is not supported",
}
_UNARY: dict[type, UnaryOp] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not", ast.Invert: "~"}
_COMPARE = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_REFUSED = {
    ast.Attribute: 'attribute access (`x.y`) is not allowed; use the built-in functions, e.g. len(x) or join(xs, " ")',
    ast.Lambda: "`lambda` is not allowed: theories cannot define functions",
    ast.NamedExpr: "`:=` is not allowed: theories cannot assign",
    ast.Dict: "dicts are not supported",
    ast.DictComp: "dicts are not supported",
    ast.Set: "sets are not supported",
    ast.SetComp: "sets are not supported",
    ast.JoinedStr: "f-strings are not supported; use + and str(), or a `prompt` template",
    ast.FormattedValue: "f-strings are not supported",
    ast.Starred: "`*` unpacking is not supported",
    ast.Await: "`await` is not allowed",
    ast.Yield: "`yield` is not allowed",
    ast.YieldFrom: "`yield` is not allowed",
}
_NOISE = re.compile(r"\s*\((?:detected at line \d+|<unknown>, line \d+)\)")
_PARSE_LOCK = threading.Lock()  # warnings.catch_warnings changes process-wide state


def parse_expression(text: str, cmap: ColumnMap) -> Expr:
    """Parse one expression; `cmap` maps character indices of `text` to the file line."""
    lead = len(text) - len(text.lstrip(" \t"))
    body = text[lead:].rstrip(" \t")
    if not body:
        raise ExprError("missing expression", cmap.span(lead))
    _prescan(body, cmap, lead)
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nothing a theory contains may reach stderr
            tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        raise _syntax_error(e, body, cmap, lead) from None
    except (RecursionError, MemoryError, OverflowError, ValueError):
        raise ExprError("expression is too complex", cmap.span(lead, lead + len(body))) from None
    return _Converter(body, cmap, lead).convert(tree.body, 0)


def _prescan(text: str, cmap: ColumnMap, shift: int) -> None:
    """Refuse what `ast` would accept differently or print warnings about: string prefixes,
    escapes we do not accept, malformed or oversized numbers, `#`, and non-ASCII outside strings."""
    prev: Token | None = None
    try:
        for tok in tokenize(text):
            if tok.kind == "string" and prev is not None and prev.end == tok.start and prev.kind in ("name", "int", "number"):
                raise Problem(
                    f"unexpected {prev.text!r} before a string "
                    '(string prefixes such as f"" or r"" are not supported)',
                    prev.start,
                    tok.start,
                )
            if tok.kind == "bad":
                raise Problem(str(tok.value), tok.start, tok.end)
            if tok.text == "#":
                raise Problem("`#` is not allowed in an expression", tok.start)
            prev = tok
    except Problem as p:
        raise ExprError(p.message, cmap.span(shift + p.start, shift + p.end)) from None


def _syntax_error(e: SyntaxError, text: str, cmap: ColumnMap, shift: int) -> ExprError:
    message = _NOISE.sub("", e.msg or "invalid syntax")
    offset = e.offset or 0
    if offset < 1 or offset > len(text):
        if message == "invalid syntax":
            message = "incomplete expression"
        return ExprError(message, cmap.span(shift + len(text)))
    start = offset - 1
    end = (e.end_offset or 0) - 1
    if end <= start or end > len(text):
        end = start + 1
    if message == "invalid syntax":
        if text.startswith("=", start) and not text.startswith("==", start):
            message = "`=` is not allowed here; to compare use `==`"
        elif text.startswith(":", start):
            message = "unexpected `:` (format specs and annotations are not supported)"
    return ExprError(message, cmap.span(shift + start, shift + end))


class _Converter:
    """Python ast -> frozen nodes, by an allow-list keyed by node type."""

    def __init__(self, text: str, cmap: ColumnMap, shift: int) -> None:
        self.cmap = cmap
        self.shift = shift
        self.byte_to_char: list[int] | None = None
        if not text.isascii():
            table: list[int] = []
            for i, ch in enumerate(text):
                table.extend([i] * len(ch.encode("utf-8")))
            table.append(len(text))
            self.byte_to_char = table
        self.handlers: dict[type, Callable[[Any, Span, int], Expr]] = {
            ast.Constant: self._constant,
            ast.Name: self._name,
            ast.UnaryOp: self._unary,
            ast.BinOp: self._binary,
            ast.BoolOp: self._boolop,
            ast.Compare: self._compare,
            ast.IfExp: self._ifexp,
            ast.Subscript: self._subscript,
            ast.List: self._list,
            ast.Tuple: self._list,
            ast.Call: self._call,
            ast.ListComp: self._comprehension,
            ast.GeneratorExp: self._comprehension,
        }

    def _char(self, byte_offset: int) -> int:
        if self.byte_to_char is None:
            return byte_offset
        return self.byte_to_char[min(max(byte_offset, 0), len(self.byte_to_char) - 1)]

    def span(self, node: ast.AST) -> Span:
        start = self._char(getattr(node, "col_offset", 0))
        end_offset = getattr(node, "end_col_offset", None)
        end = self._char(end_offset) if end_offset is not None else start + 1
        return self.cmap.span(self.shift + start, self.shift + end)

    def convert(self, node: ast.AST, depth: int) -> Expr:
        span = self.span(node)
        if depth > MAX_EXPR_DEPTH:
            raise ExprError(f"expression is nested too deeply (more than {MAX_EXPR_DEPTH} levels)", span)
        handler = self.handlers.get(type(node))
        if handler is None:
            message = _REFUSED.get(type(node), f"this kind of expression ({type(node).__name__}) is not supported")
            raise ExprError(message, span)
        return handler(node, span, depth + 1)

    def _constant(self, node: ast.Constant, span: Span, depth: int) -> Expr:
        value = node.value
        if isinstance(value, bool):
            return BoolLit(span, value)
        if isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                raise ExprError(f"integer literal is too large (ints are limited to {MAX_INT_BITS:,} bits)", span)
            return IntLit(span, value)
        if isinstance(value, str):
            return StrLit(span, value)
        if isinstance(value, float):
            raise ExprError("floats are not supported: only whole numbers (use // and % for division)", span)
        if isinstance(value, complex):
            raise ExprError("complex numbers are not supported", span)
        if value is None:
            raise ExprError("None is not a value in theories", span)
        if isinstance(value, bytes):
            raise ExprError("bytes literals are not supported; use a str", span)
        raise ExprError(f"{value!r} is not a value in theories", span)

    def _name(self, node: ast.Name, span: Span, depth: int) -> Expr:
        return Name(span, node.id)

    def _unary(self, node: ast.UnaryOp, span: Span, depth: int) -> Expr:
        op = _UNARY[type(node.op)]
        return Unary(span, op, self.convert(node.operand, depth))

    def _binary(self, node: ast.BinOp, span: Span, depth: int) -> Expr:
        op_type = type(node.op)
        if op_type in _REFUSED_BINARY:
            raise ExprError(_REFUSED_BINARY[op_type], span)
        left = self.convert(node.left, depth)
        right = self.convert(node.right, depth)
        return Binary(span, _BINARY[op_type], left, right)

    def _boolop(self, node: ast.BoolOp, span: Span, depth: int) -> Expr:
        op: LogicOp = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(span, op, tuple(self.convert(v, depth) for v in node.values))

    def _compare(self, node: ast.Compare, span: Span, depth: int) -> Expr:
        ops = []
        for op in node.ops:
            if isinstance(op, (ast.Is, ast.IsNot)):
                raise ExprError("`is` is not supported: use `==` or `!=`", span)
            ops.append(_COMPARE[type(op)])
        operands = [self.convert(node.left, depth)]
        operands.extend(self.convert(c, depth) for c in node.comparators)
        return Compare(span, tuple(operands), tuple(ops))

    def _ifexp(self, node: ast.IfExp, span: Span, depth: int) -> Expr:
        return IfElse(
            span,
            self.convert(node.test, depth),
            self.convert(node.body, depth),
            self.convert(node.orelse, depth),
        )

    def _subscript(self, node: ast.Subscript, span: Span, depth: int) -> Expr:
        value = self.convert(node.value, depth)
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = [None if p is None else self.convert(p, depth) for p in (index.lower, index.upper, index.step)]
            return SliceOf(span, value, parts[0], parts[1], parts[2])
        if isinstance(index, ast.Tuple):
            raise ExprError("indexing with a comma (x[i, j]) is not supported; index twice: x[i][j]", self.span(index))
        return Index(span, value, self.convert(index, depth))

    def _list(self, node: ast.List | ast.Tuple, span: Span, depth: int) -> Expr:
        return ListLit(span, tuple(self.convert(e, depth) for e in node.elts))

    def _call(self, node: ast.Call, span: Span, depth: int) -> Expr:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise ExprError(_REFUSED[ast.Attribute], self.span(func))
        if not isinstance(func, ast.Name):
            raise ExprError("only the built-in functions can be called, by name: e.g. len(x)", self.span(func))
        keywords = node.keywords
        if keywords:
            raise ExprError("keyword arguments are not supported; pass arguments by position", self.span(keywords[0]))
        args = tuple(self.convert(a, depth) for a in node.args)
        return Call(span, func.id, self.span(func), args)

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp, span: Span, depth: int) -> Expr:
        generators = []
        for gen in node.generators:
            if gen.is_async:
                raise ExprError("`async for` is not allowed", span)
            if not isinstance(gen.target, ast.Name):
                raise ExprError("only a single name can follow `for` (no unpacking)", self.span(gen.target))
            generators.append(
                Generator(
                    gen.target.id,
                    self.span(gen.target),
                    self.convert(gen.iter, depth),
                    tuple(self.convert(c, depth) for c in gen.ifs),
                )
            )
        return Comprehension(span, self.convert(node.elt, depth), tuple(generators))
