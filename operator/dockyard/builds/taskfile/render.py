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

Functions: Go's builtins `and or not len index slice print printf println eq ne lt le gt ge html js
urlquery`, and the Sprig functions in `SPRIG_FUNCTIONS`. Other Sprig names (`now`, `env`, `uuidv4`,
`randAlphaNum`, `date`, …) exist in acr-builder but are not deterministic or not implemented here:
they are refused with a message naming them, never rendered as something else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote_plus

NO_VALUE: Final = "<no value>"


class RenderError(ValueError):
    """The template cannot be parsed or executed; the message says where and why (as Go does)."""


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


# ---------------------------------------------------------------------------------------- values


def go_type(value: Any) -> str:
    if value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def _go_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    digits_tuple = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    exponent = int(digits_tuple.exponent) + len(digits) - 1
    sign = "-" if digits_tuple.sign else ""
    if exponent < -4 or exponent >= 6:  # strconv %g, shortest: the decision uses precision 6
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + format(Decimal(repr(abs(value))).normalize(), "f")


def go_string(value: Any, nested: bool = False) -> str:
    """fmt.Sprint of a value (text/template's printValue)."""
    if value is None:
        return "<nil>" if nested else NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_string(k, True)}:{go_string(value[k], True)}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v, True) for v in value) + "]"
    return str(value)


def _strval(value: Any) -> str:
    """Sprig's strval: strings as they are, anything else as fmt.Sprintf("%v")."""
    return go_string(value, nested=True)


def is_true(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, Mapping)):
        return bool(value)
    return True


# ---------------------------------------------------------------------------------------- functions

_S = "string"
_I = "int"
_A = "any"


@dataclass(frozen=True)
class _Function:
    call: Callable[..., Any]
    params: tuple[str, ...]  # kinds of fixed parameters
    variadic: str | None = None


def _expect(kind: str, value: Any, name: str) -> Any:
    if kind == _A:
        return value
    if value is None:
        raise RenderError(f"error calling {name}: invalid value; expected {kind}")
    if kind == _S and not isinstance(value, str):
        raise RenderError(f"wrong type for value; expected string; got {go_type(value)}")
    if kind == _I:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RenderError(f"wrong type for value; expected int; got {go_type(value)}")
        return int(value)
    return value


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None:
            raise RenderError("error calling index: index of untyped nil")
        if isinstance(item, Mapping):
            item = item.get(key)
        elif isinstance(item, (list, tuple, str)):
            if isinstance(key, bool) or not isinstance(key, int):
                raise RenderError(f"error calling index: cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(item):
                raise RenderError(f"error calling index: index out of range: {key}")
            item = item[key] if not isinstance(item, str) else ord(item[key])
        else:
            raise RenderError(f"error calling index: can't index item of type {go_type(item)}")
    return item


def _length(item: Any) -> int:
    if isinstance(item, (str, list, tuple, Mapping)):
        return len(item)
    raise RenderError(f"error calling len: len of type {go_type(item)}")


def _comparable(a: Any, b: Any, name: str) -> tuple[Any, Any]:
    numbers = (int, float)
    if isinstance(a, bool) != isinstance(b, bool) or (isinstance(a, numbers) != isinstance(b, numbers)):
        raise RenderError(f"error calling {name}: incompatible types for comparison")
    if isinstance(a, str) != isinstance(b, str):
        raise RenderError(f"error calling {name}: incompatible types for comparison")
    return a, b


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise RenderError("error calling eq: missing argument for comparison")
    for other in others:
        if first is None or other is None:
            if first is None and other is None:
                return True
            continue
        a, b = _comparable(first, other, "eq")
        if a == b:
            return True
    return False


def _order(name: str, check: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None or isinstance(a, (Mapping, list, bool)) or isinstance(b, (Mapping, list, bool)):
            raise RenderError(f"error calling {name}: invalid type for comparison")
        return check(*_comparable(a, b, name))

    return compare


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(template: str, *args: Any) -> str:
    remaining = list(args)

    def substitute(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not remaining:
            return f"%!{verb}(MISSING)"
        value = remaining.pop(0)
        if verb in "sv":
            text = go_string(value, nested=True)
        elif verb == "q":
            text = json.dumps(_strval(value), ensure_ascii=False)
        elif verb == "d" and isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif verb in "xX" and isinstance(value, (int, str)) and not isinstance(value, bool):
            text = format(value, "x") if isinstance(value, int) else value.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "fFeEgG" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = format(float(value), f".{precision or 6}{verb.lower() if verb in 'fF' else verb}")
        elif verb == "t" and isinstance(value, bool):
            text = "true" if value else "false"
        else:
            return f"%!{verb}({go_type(value)}={go_string(value, nested=True)})"
        if precision is not None and verb in "sqv":
            text = text[: int(precision)]
        if width and width != "*":
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        return text

    out = _VERB.sub(substitute, template)
    if remaining:
        out += "%!(EXTRA " + ", ".join(f"{go_type(v)}={go_string(v, nested=True)}" for v in remaining) + ")"
    return out


def _print(*args: Any) -> str:
    # fmt.Sprint: spaces between operands when neither is a string
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg, nested=True)
    return out


def _empty(value: Any) -> bool:
    return not is_true(value)


def _default(fallback: Any, *given: Any) -> Any:
    return fallback if not given or _empty(given[0]) else given[0]


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if not _empty(v)), None)


def _b64enc(value: Any) -> str:
    # acr-builder's own b64enc: nil → "", any other non-string → reflect's "<T Value>"
    if value is None:
        return ""
    text = value if isinstance(value, str) else f"<{go_type(value)} Value>"
    return base64.b64encode(text.encode()).decode()


def _b64dec(value: str) -> str:
    try:
        return base64.b64decode(value.encode(), validate=True).decode("utf-8", "replace")
    except ValueError:
        return f"illegal base64 data at input byte {_first_bad_base64_byte(value)}"


def _first_bad_base64_byte(value: str) -> int:
    for i, char in enumerate(value):
        if not (char.isascii() and (char.isalnum() or char in "+/=")):
            return i
    return max(len(value) - len(value) % 4, 0)


def _strslice(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_strval(v) for v in value if v is not None]
    return [_strval(value)]


def _split_map(separator: str, text: str) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(text.split(separator))}


def _trunc(length: int, text: str) -> str:
    if length < 0:
        return text[max(len(text) + length, 0) :] if len(text) + length > 0 else text
    return text[:length]


def _substr(start: int, end: int, text: str) -> str:
    if start < 0:
        return text[:end]
    if end < 0 or end > len(text):
        return text[start:]
    return text[start:end]


def _indent(spaces: int, text: str) -> str:
    pad = " " * spaces
    return pad + text.replace("\n", "\n" + pad)


def _ternary(when_true: Any, when_false: Any, condition: Any) -> Any:
    return when_true if condition is True else when_false


def _dict(*pairs: Any) -> dict[str, Any]:
    items = list(pairs) + ([""] if len(pairs) % 2 else [])
    return {_strval(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(str(value).strip()) if value is not None else 0
    except ValueError:
        try:
            return int(float(str(value)))
        except ValueError:
            return 0


def _atoi(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise RenderError(f"error parsing regexp: {error}: `{pattern}`") from None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) and value else None


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, (list, tuple)) and value else None


def _slice(item: Any, *indexes: Any) -> Any:
    bounds = [int(i) for i in indexes]
    if not isinstance(item, (str, list, tuple)):
        raise RenderError(f"error calling slice: can't slice item of type {go_type(item)}")
    if len(bounds) > 2 or any(b < 0 or b > len(item) for b in bounds):
        raise RenderError("error calling slice: index out of range")
    return item[slice(*bounds)] if bounds else item


def _and(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if not is_true(value):
            return value
    return rest[-1] if rest else first


def _or(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if is_true(value):
            return value
    return rest[-1] if rest else first


def _html(*args: Any) -> str:
    text = _print(*args)
    for old, new in (("&", "&amp;"), ("'", "&#39;"), ('"', "&#34;"), ("<", "&lt;"), (">", "&gt;"), ("\0", "\ufffd")):
        text = text.replace(old, new)
    return text


def _js(*args: Any) -> str:
    text = _print(*args)
    out = []
    for char in text:
        if char in "\\'\"<>&=":
            out.append({"\\": "\\\\", "'": "\\'", '"': '\\"'}.get(char, f"\\u{ord(char):04X}"))
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


GO_BUILTINS: Final[dict[str, _Function]] = {
    "and": _Function(_and, (_A,), _A),
    "or": _Function(_or, (_A,), _A),
    "not": _Function(lambda v: not is_true(v), (_A,)),
    "len": _Function(_length, (_A,)),
    "index": _Function(_index, (_A,), _A),
    "slice": _Function(_slice, (_A,), _I),
    "print": _Function(_print, (), _A),
    "println": _Function(lambda *a: " ".join(go_string(v, True) for v in a) + "\n", (), _A),
    "printf": _Function(_printf, (_S,), _A),
    "eq": _Function(_eq, (_A,), _A),
    "ne": _Function(lambda a, b: not _eq(a, b), (_A, _A)),
    "lt": _Function(_order("lt", lambda a, b: a < b), (_A, _A)),
    "le": _Function(_order("le", lambda a, b: a <= b), (_A, _A)),
    "gt": _Function(_order("gt", lambda a, b: a > b), (_A, _A)),
    "ge": _Function(_order("ge", lambda a, b: a >= b), (_A, _A)),
    "html": _Function(_html, (), _A),
    "js": _Function(_js, (), _A),
    "urlquery": _Function(lambda *a: quote_plus(_print(*a)), (), _A),
}

SPRIG_FUNCTIONS: Final[dict[str, _Function]] = {
    # strings
    "lower": _Function(str.lower, (_S,)),
    "upper": _Function(str.upper, (_S,)),
    "title": _Function(lambda s: re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), s), (_S,)),
    "trim": _Function(lambda s: s.strip(" \t\n\r\v\f"), (_S,)),
    "trimAll": _Function(lambda cut, s: s.strip(cut), (_S, _S)),
    "trimPrefix": _Function(lambda p, s: s.removeprefix(p), (_S, _S)),
    "trimSuffix": _Function(lambda p, s: s.removesuffix(p), (_S, _S)),
    "trunc": _Function(_trunc, (_I, _S)),
    "substr": _Function(_substr, (_I, _I, _S)),
    "replace": _Function(lambda old, new, s: s.replace(old, new), (_S, _S, _S)),
    "repeat": _Function(lambda n, s: s * max(n, 0), (_I, _S)),
    "contains": _Function(lambda sub, s: sub in s, (_S, _S)),
    "hasPrefix": _Function(lambda p, s: s.startswith(p), (_S, _S)),
    "hasSuffix": _Function(lambda p, s: s.endswith(p), (_S, _S)),
    "nospace": _Function(lambda s: re.sub(r"\s", "", s), (_S,)),
    "indent": _Function(_indent, (_I, _S)),
    "nindent": _Function(lambda n, s: "\n" + _indent(n, s), (_I, _S)),
    "quote": _Function(
        lambda *v: " ".join(json.dumps(_strval(x), ensure_ascii=False) for x in v if x is not None), (), _A
    ),
    "squote": _Function(lambda *v: " ".join(f"'{_strval(x)}'" for x in v if x is not None), (), _A),
    "cat": _Function(lambda *v: " ".join(_strval(x) for x in v if x is not None), (), _A),
    "toString": _Function(_strval, (_A,)),
    "b64enc": _Function(_b64enc, (_A,)),
    "b64dec": _Function(_b64dec, (_S,)),
    "sha256sum": _Function(lambda s: hashlib.sha256(s.encode()).hexdigest(), (_S,)),
    "regexMatch": _Function(lambda p, s: _go_regex(p).search(s) is not None, (_S, _S)),
    "regexReplaceAll": _Function(
        lambda p, s, r: _go_regex(p).sub(re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", r), s), (_S, _S, _S)
    ),
    # lists and dicts
    "join": _Function(lambda sep, v: sep.join(_strslice(v)), (_S, _A)),
    "split": _Function(_split_map, (_S, _S)),
    "splitList": _Function(lambda sep, s: s.split(sep), (_S, _S)),
    "list": _Function(lambda *v: list(v), (), _A),
    "first": _Function(_first, (_A,)),
    "last": _Function(_last, (_A,)),
    "dict": _Function(_dict, (), _A),
    "toJson": _Function(_to_json, (_A,)),
    # defaults and logic
    "default": _Function(_default, (_A,), _A),
    "empty": _Function(_empty, (_A,)),
    "coalesce": _Function(_coalesce, (), _A),
    "ternary": _Function(_ternary, (_A, _A, _A)),
    # numbers
    "atoi": _Function(_atoi, (_S,)),
    "int": _Function(_to_int, (_A,)),
    "int64": _Function(_to_int, (_A,)),
    "add": _Function(lambda *v: sum(_to_int(x) for x in v), (), _A),
    "sub": _Function(lambda a, b: _to_int(a) - _to_int(b), (_A, _A)),
    "mul": _Function(lambda *v: _product([_to_int(x) for x in v]), (_A,), _A),
}

UNSUPPORTED_SPRIG: Final = frozenset(
    {
        "now",
        "date",
        "dateInZone",
        "date_in_zone",
        "dateModify",
        "date_modify",
        "ago",
        "toDate",
        "unixEpoch",
        "htmlDate",
        "htmlDateInZone",
        "duration",
        "durationRound",
        "env",
        "expandenv",
        "uuidv4",
        "randAlpha",
        "randAlphaNum",
        "randAscii",
        "randNumeric",
        "randInt",
        "genPrivateKey",
        "genCA",
        "genSelfSignedCert",
        "genSignedCert",
        "derivePassword",
        "encryptAES",
        "decryptAES",
        "getHostByName",
        "abbrev",
        "abbrevboth",
        "initials",
        "wrap",
        "wrapWith",
        "plural",
        "snakecase",
        "camelcase",
        "kebabcase",
        "swapcase",
        "shuffle",
        "untitle",
        "sha1sum",
        "adler32sum",
        "b32enc",
        "b32dec",
        "toStrings",
        "fromJson",
        "toPrettyJson",
        "toRawJson",
        "mustToJson",
        "semver",
        "semverCompare",
        "regexFind",
        "regexFindAll",
        "regexSplit",
        "regexReplaceAllLiteral",
        "splitn",
        "until",
        "untilStep",
        "seq",
        "div",
        "mod",
        "max",
        "min",
        "floor",
        "ceil",
        "round",
        "float64",
        "append",
        "push",
        "prepend",
        "concat",
        "rest",
        "initial",
        "reverse",
        "uniq",
        "without",
        "has",
        "compact",
        "sortAlpha",
        "set",
        "unset",
        "hasKey",
        "pluck",
        "keys",
        "values",
        "pick",
        "omit",
        "merge",
        "mergeOverwrite",
        "deepCopy",
        "dig",
        "get",
        "kindOf",
        "kindIs",
        "typeOf",
        "typeIs",
        "typeIsLike",
        "deepEqual",
        "fail",
        "required",
        "tuple",
        "osBase",
        "osDir",
        "osExt",
        "osClean",
        "osIsAbs",
        "base",
        "dir",
        "ext",
        "clean",
        "isAbs",
        "urlParse",
        "urlJoin",
        "bcrypt",
        "htpasswd",
        "biggest",
    }
)


def _product(values: Sequence[int]) -> int:
    out = 1
    for value in values:
        out *= value
    return out


FUNCTIONS: Final[dict[str, _Function]] = GO_BUILTINS | SPRIG_FUNCTIONS


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
    def __init__(self, data: Any) -> None:
        self.scope = _Scope(data)
        self.out: list[str] = []

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
        if isinstance(head, _Token) and head.kind == "ident" and head.text in FUNCTIONS:
            args = [self.operand(arg, dot, pipe) for arg in command.args[1:]]
            if final is not _Missing:
                args.append(final)
            return self.call(head.text, args, pipe.line)
        if len(command.args) > 1 or final is not _Missing:
            shown = head.text if isinstance(head, _Token) else "(…)"
            raise RenderError(f"template: line {pipe.line}: can't give argument to non-function {shown}")
        return self.operand(head, dot, pipe)

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
        function = FUNCTIONS[name]
        fixed = len(function.params)
        if len(args) < fixed or (function.variadic is None and len(args) != fixed):
            expected = f"at least {fixed}" if function.variadic else str(fixed)
            raise RenderError(
                f"template: line {line}: wrong number of args for {name}: want {expected} got {len(args)}"
            )
        try:
            checked = [_expect(kind, value, name) for kind, value in zip(function.params, args, strict=False)]
            checked += [_expect(function.variadic or _A, value, name) for value in args[fixed:]]
            return function.call(*checked)
        except RenderError as error:
            message = str(error)
            if message.startswith("template:"):
                raise
            raise RenderError(f"template: line {line}: executing {name!r}: {message}") from None


def parse(text: str) -> list[Any]:
    """The parsed template (raises RenderError for what Go's parser refuses)."""
    return _parse(text)


def render(text: str, data: Mapping[str, Any]) -> str:
    """Render like acr-builder: missingkey=zero, then every `<no value>` removed."""
    tree = _parse(text)
    renderer = _Renderer(data)
    renderer.run(tree, data)
    return "".join(renderer.out).replace(NO_VALUE, "")


def iter_function_names() -> Iterator[str]:
    yield from sorted(FUNCTIONS)
