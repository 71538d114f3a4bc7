"""A Go `text/template` engine for task files, as acr-builder renders them (templating/engine.go):
`missingkey=zero`, Sprig functions, then every `<no value>` removed from the output.

Supported syntax: text; actions with trim markers `{{- … -}}`; comments `{{/* … */}}`; pipelines
`a | f x`; fields `.Run.ID`, `.Values.a.b`, `$`, `$x.y`, `(pipeline).field`; string (`"…"`,
`` `…` ``), number, `true`/`false`/`nil` literals; `$x := …` / `$x = …`; `if`/`else if`/`else`,
`range` (lists, maps in key order, integers; `$i, $v :=`), `with`, `end`, `break`, `continue`.
`define`/`template`/`block` are refused.

Values are Python data: `None` is Go's nil interface (a missing key or YAML null). The Go rules that
change what a task file renders are kept: a missing key prints nothing but a field of it is an error
("nil pointer evaluating interface {}.y"), a missing value piped into a string function is an error
("invalid value; expected string"), `eq` with a missing value is false, `b64enc` of a missing value
is "" (acr-builder's override).

The functions (Go's builtins and the Sprig subset, `now` being the run's start time) and Go's value
printing are in `functions`; a Sprig name not implemented there is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dockyard.builds.taskfile.functions import (
    ANY,
    FUNCTIONS,
    NO_VALUE,
    UNSUPPORTED_SPRIG,
    RenderError,
    check_argument,
    go_string,
    go_type,
    is_true,
)

__all__ = ["FUNCTIONS", "UNSUPPORTED_SPRIG", "RenderError", "parse", "render"]


# ---------------------------------------------------------------------------------------- lexing

_LEFT_TRIM = re.compile(r"\{\{- ")
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class _Token:
    kind: str  # field, var, ident, string, number, char, lparen, rparen, pipe, declare, assign, comma
    text: str
    value: Any = None


@dataclass
class _Action:
    tokens: list[_Token]
    line: int
    source: str


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _split(text: str) -> list[str | _Action]:
    """Text pieces and actions, with trim markers applied and comments dropped."""
    pieces: list[str | _Action] = []
    position = 0
    trim_next = False
    while True:
        start = text.find("{{", position)
        if start < 0:
            tail = text[position:]
            pieces.append(tail.lstrip(_SPACE) if trim_next else tail)
            return pieces
        chunk = text[position:start]
        if trim_next:
            chunk = chunk.lstrip(_SPACE)
        inner_start = start + 2
        if text.startswith("-", inner_start) and inner_start + 1 < len(text) and text[inner_start + 1] in _SPACE:
            chunk = chunk.rstrip(_SPACE)
            inner_start += 2
        pieces.append(chunk)
        line = _line_of(text, start)
        rest = text[inner_start:].lstrip(_SPACE)
        if rest.startswith("/*"):
            close = text.find("*/", inner_start)
            if close < 0:
                raise RenderError(f"template: line {line}: unclosed comment")
            after = text[close + 2 :]
            stripped = after.lstrip(_SPACE)
            if stripped.startswith("-}}") and after[:1] in _SPACE:
                end, trim_next = len(text) - len(stripped) + 3, True
            elif after.startswith("}}"):
                end, trim_next = close + 4, False
            else:
                raise RenderError(f"template: line {line}: comment ends before closing delimiter")
            position = end
            continue
        tokens, end, trim_next = _lex_action(text, inner_start, line)
        pieces.append(_Action(tokens, line, text[start:end]))
        position = end


_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


def _lex_action(text: str, position: int, line: int) -> tuple[list[_Token], int, bool]:
    tokens: list[_Token] = []
    i = position
    while True:
        if i >= len(text):
            raise RenderError(f"template: line {line}: unclosed action")
        c = text[i]
        if c in _SPACE:
            j = i
            while j < len(text) and text[j] in _SPACE:
                j += 1
            if text.startswith("-}}", j):
                return tokens, j + 3, True
            i = j
            continue
        if text.startswith("}}", i):
            return tokens, i + 2, False
        if c == '"':
            value, i = _lex_string(text, i, line)
            tokens.append(_Token("string", value, value))
        elif c == "`":
            close = text.find("`", i + 1)
            if close < 0:
                raise RenderError(f"template: line {line}: unterminated raw quoted string")
            tokens.append(_Token("string", text[i : close + 1], text[i + 1 : close]))
            i = close + 1
        elif c == "'":
            close = text.find("'", i + 1)
            if close < 0:
                raise RenderError(f"template: line {line}: unterminated character constant")
            body = text[i + 1 : close]
            char = _STRING_ESCAPES.get(body[1:], body[1:]) if body.startswith("\\") else body
            tokens.append(_Token("number", text[i : close + 1], ord(char[:1] or "\0")))
            i = close + 1
        elif c == "(":
            tokens.append(_Token("lparen", c))
            i += 1
        elif c == ")":
            tokens.append(_Token("rparen", c))
            i += 1
        elif c == "|":
            tokens.append(_Token("pipe", c))
            i += 1
        elif c == ",":
            tokens.append(_Token("comma", c))
            i += 1
        elif text.startswith(":=", i):
            tokens.append(_Token("declare", ":="))
            i += 2
        elif c == "=":
            tokens.append(_Token("assign", "="))
            i += 1
        elif c == "." and (i + 1 >= len(text) or not text[i + 1].isdigit()):
            names, i = _lex_chain(text, i)
            tokens.append(_Token("field", "." + ".".join(names), tuple(names)))
        elif c == "$":
            name_match = _IDENT.match(text, i + 1)
            name = "$" + (name_match.group(0) if name_match else "")
            i += len(name)
            names, i = _lex_chain(text, i) if text.startswith(".", i) else ([], i)
            tokens.append(_Token("var", name, (name, tuple(names))))
        elif c.isdigit() or (c in "+-." and i + 1 < len(text) and text[i + 1].isdigit()):
            match = _NUMBER.match(text, i)
            assert match is not None
            tokens.append(_Token("number", match.group(0), _number(match.group(0), line)))
            i = match.end()
        elif (ident := _IDENT.match(text, i)) is not None:
            tokens.append(_Token("ident", ident.group(0)))
            i = ident.end()
            if text.startswith(".", i) and i + 1 < len(text) and _IDENT.match(text, i + 1):
                raise RenderError(f"template: line {line}: unexpected . after term {ident.group(0)!r}")
        else:
            raise RenderError(f"template: line {line}: unexpected {c!r} in command")
        # a field chain directly after a closing paren: (pipeline).Field
        if tokens and tokens[-1].kind == "rparen" and text.startswith(".", i) and _IDENT.match(text, i + 1):
            names, i = _lex_chain(text, i)
            tokens.append(_Token("chain", "." + ".".join(names), tuple(names)))


def _lex_chain(text: str, i: int) -> tuple[list[str], int]:
    names: list[str] = []
    while text.startswith(".", i):
        match = _IDENT.match(text, i + 1)
        if match is None:
            if not names:  # a lone dot
                return names, i + 1
            break
        names.append(match.group(0))
        i = match.end()
    return names, i


def _lex_string(text: str, i: int, line: int) -> tuple[str, int]:
    out: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == '"':
            return "".join(out), j + 1
        if c == "\n":
            break
        if c == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            if nxt in _STRING_ESCAPES:
                out.append(_STRING_ESCAPES[nxt])
                j += 2
                continue
            if nxt in "xuU":
                size = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(text[j + 2 : j + 2 + size], 16)))
                j += 2 + size
                continue
            raise RenderError(f"template: line {line}: unknown escape sequence \\{nxt} in string")
        out.append(c)
        j += 1
    raise RenderError(f"template: line {line}: unterminated quoted string")


def _number(text: str, line: int) -> int | float:
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xXbBoO].*", clean) or re.fullmatch(r"[+-]?\d+", clean):
            if re.fullmatch(r"[+-]?0[0-7]+", clean):
                return int(clean.replace("0", "0o", 1), 8)
            return int(clean, 0)
        return float(clean)
    except ValueError:
        raise RenderError(f"template: line {line}: bad number syntax: {text!r}") from None


# ---------------------------------------------------------------------------------------- parsing


@dataclass
class _Command:
    args: list[Any]  # operands: _Token or _Pipeline (parenthesised, with an optional chain)


@dataclass
class _Pipeline:
    declare: list[str]
    assign: bool
    commands: list[_Command]
    line: int
    chain: tuple[str, ...] = ()


@dataclass
class _ActionNode:
    pipeline: _Pipeline


@dataclass
class _Control:
    keyword: str  # if, range, with
    pipeline: _Pipeline
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


@dataclass
class _LoopJump:
    keyword: str  # break, continue
    line: int


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_KEYWORDS: Final = frozenset({"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"})


def _parse(text: str) -> list[Any]:
    pieces = _split(text)
    root: list[Any] = []
    # (the open control, the list being filled, the line it opened on, whether it opened a range)
    stack: list[tuple[_Control | None, list[Any], int, bool]] = [(None, root, 0, False)]
    loops = 0

    def current() -> list[Any]:
        return stack[-1][1]

    for piece in pieces:
        if isinstance(piece, str):
            if piece:
                current().append(piece)
            continue
        tokens = piece.tokens
        if not tokens:
            raise RenderError(f"template: line {piece.line}: missing value for command")
        first = tokens[0]
        keyword = first.text if first.kind == "ident" and first.text in _KEYWORDS else None
        if keyword is None:
            current().append(_ActionNode(_parse_pipeline(tokens, piece.line)))
        elif keyword in {"if", "range", "with"}:
            node = _Control(keyword, _parse_pipeline(tokens[1:], piece.line, keyword=keyword))
            current().append(node)
            stack.append((node, node.body, piece.line, keyword == "range"))
            loops += keyword == "range"
        elif keyword == "else":
            control, filling, opened, is_range = stack[-1]
            if control is None or filling is control.otherwise:
                raise RenderError(f"template: line {piece.line}: unexpected {{{{else}}}}")
            stack[-1] = (control, control.otherwise, opened, is_range)
            if len(tokens) > 1:  # else if … / else with …: a nested control closed by the same end
                nested_keyword = tokens[1].text
                if nested_keyword not in {"if", "with"} or tokens[1].kind != "ident":
                    raise RenderError(f"template: line {piece.line}: unexpected {tokens[1].text!r} in else")
                nested = _Control(nested_keyword, _parse_pipeline(tokens[2:], piece.line, keyword=nested_keyword))
                control.otherwise.append(nested)
                stack[-1] = (nested, nested.body, opened, is_range)
        elif keyword == "end":
            if len(tokens) > 1:
                raise RenderError(f"template: line {piece.line}: unexpected {tokens[1].text!r} in end")
            if stack[-1][0] is None:
                raise RenderError(f"template: line {piece.line}: unexpected {{{{end}}}}")
            loops -= stack.pop()[3]
        elif keyword in {"break", "continue"}:
            if loops == 0:
                raise RenderError(f"template: line {piece.line}: {{{{{keyword}}}}} outside {{{{range}}}}")
            current().append(_LoopJump(keyword, piece.line))
        else:
            raise RenderError(
                f"template: line {piece.line}: {{{{{keyword}}}}} is not supported by Dockyard's planner "
                "(task files use no named templates)"
            )
    if len(stack) > 1:
        control = stack[-1][0]
        assert control is not None
        raise RenderError(
            f"template: line {stack[-1][2]}: unexpected EOF (an {{{{{control.keyword}}}}} has no {{{{end}}}})"
        )
    return root


def _parse_pipeline(tokens: list[_Token], line: int, keyword: str | None = None) -> _Pipeline:
    declare: list[str] = []
    assign = False
    # declarations: $x := / $x = / $i, $v :=
    for size in (3, 1):
        if len(tokens) > size and tokens[size].kind in {"declare", "assign"}:
            names = tokens[:size]
            if size == 3 and (names[1].kind != "comma" or keyword != "range"):
                continue
            variables = [names[0], names[2]] if size == 3 else [names[0]]
            if all(v.kind == "var" and not v.value[1] for v in variables):
                declare = [v.text for v in variables]
                assign = tokens[size].kind == "assign"
                tokens = tokens[size + 1 :]
                break
    commands: list[_Command] = []
    position = 0
    args: list[Any] = []
    while position < len(tokens):
        token = tokens[position]
        if token.kind == "pipe":
            if not args:
                raise RenderError(f"template: line {line}: missing command before |")
            commands.append(_Command(args))
            args = []
            position += 1
            continue
        if token.kind == "lparen":
            depth, end = 1, position + 1
            while end < len(tokens) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(tokens[end].kind, 0)
                end += 1
            if depth:
                raise RenderError(f"template: line {line}: unclosed left paren")
            inner = _parse_pipeline(tokens[position + 1 : end - 1], line)
            if end < len(tokens) and tokens[end].kind == "chain":
                inner.chain = tokens[end].value
                end += 1
            args.append(inner)
            position = end
            continue
        if token.kind in {"rparen", "comma", "declare", "assign", "chain"}:
            raise RenderError(f"template: line {line}: unexpected {token.text!r} in operand")
        if token.kind == "ident" and token.text in _KEYWORDS:
            raise RenderError(f"template: line {line}: unexpected {token.text!r} in operand")
        if token.kind == "ident" and token.text not in {"true", "false", "nil"} and token.text not in FUNCTIONS:
            if token.text in UNSUPPORTED_SPRIG:
                raise RenderError(
                    f"template: line {line}: function {token.text!r} exists in acr-builder (Sprig) but is not "
                    "supported by Dockyard's planner"
                )
            raise RenderError(f'template: line {line}: function "{token.text}" not defined')
        args.append(token)
        position += 1
    if args:
        commands.append(_Command(args))
    if not commands:
        raise RenderError(f"template: line {line}: missing value for {keyword or 'command'}")
    for index, command in enumerate(commands):
        head = command.args[0]
        if isinstance(head, _Token) and head.kind == "ident" and head.text == "nil" and index == 0:
            raise RenderError(f"template: line {line}: nil is not a command")
    return _Pipeline(declare, assign, commands, line)


# ---------------------------------------------------------------------------------------- execution


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def push(self) -> None:
        self.frames.append({})

    def pop(self) -> None:
        self.frames.pop()

    def declare(self, name: str, value: Any) -> None:
        self.frames[-1][name] = value

    def assign(self, name: str, value: Any, line: int) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise RenderError(f"template: line {line}: undefined variable: {name}")

    def lookup(self, name: str, line: int) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise RenderError(f"template: line {line}: undefined variable: {name}")


class _Missing:
    """A missing map key under missingkey=zero: Go's zero interface (prints as <no value>)."""


def _field(receiver: Any, names: Sequence[str], line: int, source: str) -> Any:
    value = receiver
    for name in names:
        if value is None:
            raise RenderError(
                f"template: line {line}: executing {source!r}: nil pointer evaluating interface {{}}.{name}"
            )
        if isinstance(value, Mapping):
            value = value.get(name)
        else:
            raise RenderError(
                f"template: line {line}: executing {source!r}: can't evaluate field {name} in type {go_type(value)}"
            )
    return value


class _Renderer:
    def __init__(self, data: Any, now: datetime | None) -> None:
        self.scope = _Scope(data)
        self.out: list[str] = []
        self.now = now

    def run(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.out.append(node)
            elif isinstance(node, _ActionNode):
                value = self.pipeline(node.pipeline, dot)
                if not node.pipeline.declare:
                    self.out.append(go_string(value))
            elif isinstance(node, _Control):
                self.control(node, dot)
            else:
                raise _Break() if node.keyword == "break" else _Continue()

    def control(self, node: _Control, dot: Any) -> None:
        self.scope.push()
        try:
            value = self.pipeline(node.pipeline, dot)
            if node.keyword == "if":
                self.run(node.body if is_true(value) else node.otherwise, dot)
            elif node.keyword == "with":
                if is_true(value):
                    self.run(node.body, value)
                else:
                    self.run(node.otherwise, dot)
            else:
                self.range(node, value, dot)
        finally:
            self.scope.pop()

    def range(self, node: _Control, value: Any, dot: Any) -> None:
        items: list[tuple[Any, Any]]
        if value is None:
            items = []
        elif isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise RenderError(f"template: line {node.pipeline.line}: range can't iterate over {go_string(value)}")
        if not items:
            self.run(node.otherwise, dot)
            return
        names = node.pipeline.declare
        for key, element in items:
            if len(names) == 1:
                self.scope.declare(names[0], element)
            elif len(names) == 2:
                self.scope.declare(names[0], key)
                self.scope.declare(names[1], element)
            try:
                self.run(node.body, element)
            except _Break:
                break
            except _Continue:
                continue

    def pipeline(self, pipe: _Pipeline, dot: Any) -> Any:
        value: Any = _Missing
        for command in pipe.commands:
            value = self.command(command, dot, value, pipe)
        if value is _Missing:
            value = None
        if pipe.declare:
            if pipe.assign:
                self.scope.assign(pipe.declare[0], value, pipe.line)
            else:
                self.scope.declare(pipe.declare[-1], value)
        return value

    def command(self, command: _Command, dot: Any, final: Any, pipe: _Pipeline) -> Any:
        head = command.args[0]
        if isinstance(head, _Token) and head.kind == "ident" and head.text in {"and", "or"}:
            return self.logic(head.text, command, dot, final, pipe)
        if isinstance(head, _Token) and head.kind == "ident" and head.text in FUNCTIONS:
            args = [self.operand(arg, dot, pipe) for arg in command.args[1:]]
            if final is not _Missing:
                args.append(final)
            return self.call(head.text, args, pipe.line)
        if len(command.args) > 1 or final is not _Missing:
            shown = head.text if isinstance(head, _Token) else "(…)"
            raise RenderError(f"template: line {pipe.line}: can't give argument to non-function {shown}")
        return self.operand(head, dot, pipe)

    def logic(self, name: str, command: _Command, dot: Any, final: Any, pipe: _Pipeline) -> Any:
        """`and`/`or` stop at the first argument that decides (Go ≥ 1.18), so `and .a .a.b` does
        not evaluate `.a.b` when `.a` is missing."""
        if len(command.args) < 2 and final is _Missing:
            raise RenderError(f"template: line {pipe.line}: wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for arg in command.args[1:]:
            value = self.operand(arg, dot, pipe)
            if is_true(value) == (name == "or"):
                return value
        return final if final is not _Missing else value

    def operand(self, arg: Any, dot: Any, pipe: _Pipeline) -> Any:
        if isinstance(arg, _Pipeline):
            value = self.pipeline(arg, dot)
            return _field(value, arg.chain, pipe.line, "(…)") if arg.chain else value
        token: _Token = arg
        if token.kind == "field":
            return _field(dot, token.value, pipe.line, token.text)
        if token.kind == "var":
            name, chain = token.value
            return _field(self.scope.lookup(name, pipe.line), chain, pipe.line, token.text)
        if token.kind in {"string", "number"}:
            return token.value
        if token.text in {"true", "false"}:
            return token.text == "true"
        if token.text == "nil":
            raise RenderError(f"template: line {pipe.line}: nil is not a command")
        # a function used as an argument without parentheses is called with no arguments
        return self.call(token.text, [], pipe.line)

    def call(self, name: str, args: list[Any], line: int) -> Any:
        if name == "now":
            if args:
                raise RenderError(f"template: line {line}: wrong number of args for now: want 0 got {len(args)}")
            if self.now is None:
                raise RenderError(f"template: line {line}: now: the run's start time is not known to this render")
            return self.now
        function = FUNCTIONS[name]
        fixed = len(function.params)
        if len(args) < fixed or (function.variadic is None and len(args) != fixed):
            expected = f"at least {fixed}" if function.variadic else str(fixed)
            raise RenderError(
                f"template: line {line}: wrong number of args for {name}: want {expected} got {len(args)}"
            )
        try:
            checked = [check_argument(kind, value, name) for kind, value in zip(function.params, args, strict=False)]
            checked += [check_argument(function.variadic or ANY, value, name) for value in args[fixed:]]
            return function.call(*checked)
        except RenderError as error:
            message = str(error)
            if message.startswith("template:"):
                raise
            raise RenderError(f"template: line {line}: executing {name!r}: {message}") from None


def parse(text: str) -> list[Any]:
    """The parsed template (raises RenderError for what Go's parser refuses)."""
    return _parse(text)


def render(text: str, data: Mapping[str, Any], now: datetime | None = None) -> str:
    """Render like acr-builder: missingkey=zero, then every `<no value>` removed. `now` is what
    Sprig's `now` returns (the run's start time)."""
    tree = _parse(text)
    renderer = _Renderer(data, now)
    renderer.run(tree, data)
    return "".join(renderer.out).replace(NO_VALUE, "")
