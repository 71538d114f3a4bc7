"""The functions a task file's templates can call, and Go's way of printing and testing values.

Go's builtins: `and or not len index slice print printf println eq ne lt le gt ge html js urlquery`.
Sprig (acr-builder passes `sprig.TxtFuncMap()`, with its own `b64enc`): `lower upper title trim
trimAll trimPrefix trimSuffix trunc substr replace repeat contains hasPrefix hasSuffix nospace indent
nindent quote squote cat toString b64enc b64dec sha256sum regexMatch regexReplaceAll join split
splitList list first last dict toJson default empty coalesce ternary atoi int int64 add sub mul`,
and `now`/`date` with `now` = the run's start time (`.Run.Date`; acr-builder renders at the start).
The other Sprig names (`env`, `uuidv4`, `randAlphaNum`, `semver`, …: in `UNSUPPORTED_SPRIG`) exist
in acr-builder but are refused by name here — environment-dependent, random, or not implemented —
rather than rendered as something else.

Values are Python data; `None` is Go's nil interface (a missing map key under `missingkey=zero`).
Argument kinds follow the Go signatures: a string parameter refuses a missing value ("invalid
value; expected string") and a non-string ("wrong type for value"), as Go's reflection does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote_plus

NO_VALUE: Final = "<no value>"


class RenderError(ValueError):
    """The template cannot be parsed or executed; the message says where and why (as Go does)."""


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
    if isinstance(value, datetime):
        return "time.Time"
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
    if isinstance(value, datetime):
        return go_time_format("2006-01-02 15:04:05.000000 -0700 MST", value.astimezone(UTC))
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


STRING = "string"
INT = "int"
BOOL = "bool"
ANY = "any"


@dataclass(frozen=True)
class Function:
    call: Callable[..., Any]
    params: tuple[str, ...]  # kinds of fixed parameters
    variadic: str | None = None


def check_argument(kind: str, value: Any, name: str) -> Any:
    if kind == ANY:
        return value
    if value is None:
        raise RenderError(f"error calling {name}: invalid value; expected {kind}")
    if kind == STRING and not isinstance(value, str):
        raise RenderError(f"wrong type for value; expected string; got {go_type(value)}")
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise RenderError(f"wrong type for value; expected int; got {go_type(value)}")
        return int(value)
    if kind == BOOL and not isinstance(value, bool):
        raise RenderError(f"expected bool; found {go_string(value, nested=True)}")
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


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string" if isinstance(value, str) else "other"


def _comparable(a: Any, b: Any, name: str) -> tuple[Any, Any]:
    # Go compares only values of one basic kind: int with float64 is an error too
    if _kind(a) != _kind(b):
        raise RenderError(f"error calling {name}: incompatible types for comparison: {go_type(a)} and {go_type(b)}")
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
        if verb == "v" or (verb == "s" and isinstance(value, str)):
            text = go_string(value, nested=True)
        elif verb == "s" and isinstance(value, (list, tuple)):
            text = "[" + " ".join(_printf("%s", item) for item in value) + "]"
        elif verb == "q" and isinstance(value, str):
            text = json.dumps(value, ensure_ascii=False)
        elif verb == "d" and isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif verb in "xX" and isinstance(value, (int, str)) and not isinstance(value, bool):
            text = format(value, "x") if isinstance(value, int) else value.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "fFeEgG" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = format(float(value), f".{precision or 6}{verb.lower() if verb in 'fF' else verb}")
        elif verb == "t" and isinstance(value, bool):
            text = "true" if value else "false"
        else:  # Go's bad-verb form
            return "%!" + verb + ("(<nil>)" if value is None else f"({go_type(value)}={go_string(value, nested=True)})")
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


def _bounds(low: int, high: int, size: int) -> None:
    """Go's slice expression panics out of range (sprig v2.22 does not guard)."""
    if not 0 <= low <= high <= size:
        raise RenderError(f"runtime error: slice bounds out of range [{low}:{high}]")


def _trunc(length: int, text: str) -> str:
    if len(text) <= length:
        return text
    _bounds(0, length, len(text))
    return text[:length]


def _substr(start: int, end: int, text: str) -> str:
    if start < 0:
        _bounds(0, end, len(text))
        return text[:end]
    if end < 0 or end > len(text):
        _bounds(start, len(text), len(text))
        return text[start:]
    _bounds(start, end, len(text))
    return text[start:end]


def _indent(spaces: int, text: str) -> str:
    pad = " " * spaces
    return pad + text.replace("\n", "\n" + pad)


def _ternary(when_true: Any, when_false: Any, condition: bool) -> Any:
    return when_true if condition else when_false


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


def _a_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise RenderError(f"{what} on type {go_type(value)}")
    return list(value)


def _first(value: Any) -> Any:
    items = _a_list(value, "Cannot find first")
    return items[0] if items else None


def _last(value: Any) -> Any:
    items = _a_list(value, "Cannot find last")
    return items[-1] if items else None


def _slice(item: Any, *indexes: Any) -> Any:
    """Sprig's `slice` (it replaces Go's builtin in acr-builder): lists only."""
    if not isinstance(item, (list, tuple)):
        raise RenderError(f"list should be type of slice or array but {go_type(item)}")
    items = list(item)
    if not items:
        return None
    bounds = [_to_int(i) for i in indexes[:2]]
    low = bounds[0] if bounds else 0
    high = bounds[1] if len(bounds) > 1 else len(items)
    _bounds(low, high, len(items))
    return items[low:high]


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
    """Go's json.Marshal: sorted keys, compact, `<`, `>`, `&` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_GO_LAYOUT: Final = re.compile(
    r"January|Jan|Monday|Mon|2006|06|01|_2|02|15|03|04|05|PM|pm|MST|Z07:00|-07:00|-0700|Z0700|\.000000|\.000|1|2|3|4|5"
)
_LAYOUT_PARTS: Final[dict[str, str]] = {
    "January": "%B", "Jan": "%b", "Monday": "%A", "Mon": "%a", "2006": "%Y", "06": "%y", "01": "%m", "02": "%d",
    "_2": "%e", "15": "%H", "03": "%I", "04": "%M", "05": "%S", "PM": "%p", "MST": "UTC", "Z07:00": "Z",
    "-07:00": "+00:00", "-0700": "+0000", "Z0700": "Z", ".000": ".%f3", ".000000": ".%f",
}  # fmt: skip


def go_time_format(layout: str, moment: datetime) -> str:
    """Go's Time.Format for the common layout elements (UTC times)."""

    def element(match: re.Match[str]) -> str:
        part = match.group(0)
        if part in {"1", "2", "3", "4", "5"}:
            return str(
                {
                    "1": moment.month,
                    "2": moment.day,
                    "3": moment.hour % 12 or 12,
                    "4": moment.minute,
                    "5": moment.second,
                }[part]
            )
        if part == "pm":
            return moment.strftime("%p").lower()
        code = _LAYOUT_PARTS[part]
        if code == ".%f3":
            return "." + moment.strftime("%f")[:3]
        if code == "%e":
            return f"{moment.day:>2}"
        return moment.strftime(code) if "%" in code else code

    return _GO_LAYOUT.sub(element, layout)


def _date(layout: str, moment: Any) -> str:
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        moment = datetime.fromtimestamp(moment, UTC)
    if not isinstance(moment, datetime):
        raise RenderError(f"error calling date: expected a time, got {go_type(moment)}")
    return go_time_format(layout, moment.astimezone(UTC))


def _product(values: Sequence[int]) -> int:
    out = 1
    for value in values:
        out *= value
    return out


GO_BUILTINS: Final[dict[str, Function]] = {
    "and": Function(_and, (ANY,), ANY),
    "or": Function(_or, (ANY,), ANY),
    "not": Function(lambda v: not is_true(v), (ANY,)),
    "len": Function(_length, (ANY,)),
    "index": Function(_index, (ANY,), ANY),
    "print": Function(_print, (), ANY),
    "println": Function(lambda *a: " ".join(go_string(v, True) for v in a) + "\n", (), ANY),
    "printf": Function(_printf, (STRING,), ANY),
    "eq": Function(_eq, (ANY,), ANY),
    "ne": Function(lambda a, b: not _eq(a, b), (ANY, ANY)),
    "lt": Function(_order("lt", lambda a, b: a < b), (ANY, ANY)),
    "le": Function(_order("le", lambda a, b: a <= b), (ANY, ANY)),
    "gt": Function(_order("gt", lambda a, b: a > b), (ANY, ANY)),
    "ge": Function(_order("ge", lambda a, b: a >= b), (ANY, ANY)),
    "html": Function(_html, (), ANY),
    "js": Function(_js, (), ANY),
    "urlquery": Function(lambda *a: quote_plus(_print(*a)), (), ANY),
}

SPRIG_FUNCTIONS: Final[dict[str, Function]] = {
    # strings
    "lower": Function(str.lower, (STRING,)),
    "upper": Function(str.upper, (STRING,)),
    "title": Function(lambda s: re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), s), (STRING,)),
    "trim": Function(lambda s: s.strip(" \t\n\r\v\f"), (STRING,)),
    "trimall": Function(lambda cut, s: s.strip(cut), (STRING, STRING)),
    "hello": Function(lambda: "Hello!", ()),
    "trimAll": Function(lambda cut, s: s.strip(cut), (STRING, STRING)),
    "trimPrefix": Function(lambda p, s: s.removeprefix(p), (STRING, STRING)),
    "trimSuffix": Function(lambda p, s: s.removesuffix(p), (STRING, STRING)),
    "trunc": Function(_trunc, (INT, STRING)),
    "substr": Function(_substr, (INT, INT, STRING)),
    "replace": Function(lambda old, new, s: s.replace(old, new), (STRING, STRING, STRING)),
    "repeat": Function(lambda n, s: s * max(n, 0), (INT, STRING)),
    "contains": Function(lambda sub, s: sub in s, (STRING, STRING)),
    "hasPrefix": Function(lambda p, s: s.startswith(p), (STRING, STRING)),
    "hasSuffix": Function(lambda p, s: s.endswith(p), (STRING, STRING)),
    "nospace": Function(lambda s: re.sub(r"\s", "", s), (STRING,)),
    "indent": Function(_indent, (INT, STRING)),
    "nindent": Function(lambda n, s: "\n" + _indent(n, s), (INT, STRING)),
    "quote": Function(
        lambda *v: " ".join(json.dumps(_strval(x), ensure_ascii=False) for x in v if x is not None), (), ANY
    ),
    "squote": Function(lambda *v: " ".join(f"'{_strval(x)}'" for x in v if x is not None), (), ANY),
    "cat": Function(lambda *v: " ".join(_strval(x) for x in v if x is not None), (), ANY),
    "toString": Function(_strval, (ANY,)),
    "b64enc": Function(_b64enc, (ANY,)),
    "b64dec": Function(_b64dec, (STRING,)),
    "sha256sum": Function(lambda s: hashlib.sha256(s.encode()).hexdigest(), (STRING,)),
    "regexMatch": Function(lambda p, s: _go_regex(p).search(s) is not None, (STRING, STRING)),
    "regexReplaceAll": Function(
        lambda p, s, r: _go_regex(p).sub(re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", r), s), (STRING, STRING, STRING)
    ),
    # lists and dicts
    "join": Function(lambda sep, v: sep.join(_strslice(v)), (STRING, ANY)),
    "split": Function(_split_map, (STRING, STRING)),
    "splitList": Function(lambda sep, s: s.split(sep), (STRING, STRING)),
    "list": Function(lambda *v: list(v), (), ANY),
    "first": Function(_first, (ANY,)),
    "slice": Function(_slice, (ANY,), ANY),
    "last": Function(_last, (ANY,)),
    "dict": Function(_dict, (), ANY),
    "toJson": Function(_to_json, (ANY,)),
    # defaults and logic
    "default": Function(_default, (ANY,), ANY),
    "empty": Function(_empty, (ANY,)),
    "coalesce": Function(_coalesce, (), ANY),
    "ternary": Function(_ternary, (ANY, ANY, BOOL)),
    # numbers
    "atoi": Function(_atoi, (STRING,)),
    "int": Function(_to_int, (ANY,)),
    "int64": Function(_to_int, (ANY,)),
    "add1": Function(lambda v: _to_int(v) + 1, (ANY,)),
    "add": Function(lambda *v: sum(_to_int(x) for x in v), (), ANY),
    "sub": Function(lambda a, b: _to_int(a) - _to_int(b), (ANY, ANY)),
    "mul": Function(lambda *v: _product([_to_int(x) for x in v]), (ANY,), ANY),
    # dates: `now` is supplied by the renderer (the run's start time)
    "date": Function(_date, (STRING, ANY)),
    "now": Function(lambda: None, ()),
}

UNSUPPORTED_SPRIG: Final = frozenset(
    [
        "abbrev",
        "abbrevboth",
        "adler32sum",
        "ago",
        "append",
        "b32dec",
        "b32enc",
        "base",
        "biggest",
        "buildCustomCert",
        "camelcase",
        "ceil",
        "clean",
        "compact",
        "concat",
        "dateInZone",
        "dateModify",
        "date_in_zone",
        "date_modify",
        "decryptAES",
        "deepCopy",
        "deepEqual",
        "derivePassword",
        "dir",
        "div",
        "encryptAES",
        "env",
        "expandenv",
        "ext",
        "fail",
        "float64",
        "floor",
        "genCA",
        "genPrivateKey",
        "genSelfSignedCert",
        "genSignedCert",
        "getHostByName",
        "has",
        "hasKey",
        "htmlDate",
        "htmlDateInZone",
        "initial",
        "initials",
        "isAbs",
        "kebabcase",
        "keys",
        "kindIs",
        "kindOf",
        "max",
        "merge",
        "mergeOverwrite",
        "min",
        "mod",
        "omit",
        "pick",
        "pluck",
        "plural",
        "prepend",
        "randAlpha",
        "randAlphaNum",
        "randAscii",
        "randNumeric",
        "regexFind",
        "regexFindAll",
        "regexReplaceAllLiteral",
        "regexSplit",
        "rest",
        "reverse",
        "round",
        "semver",
        "semverCompare",
        "set",
        "sha1sum",
        "shuffle",
        "snakecase",
        "sortAlpha",
        "splitn",
        "swapcase",
        "toDate",
        "toDecimal",
        "toPrettyJson",
        "toStrings",
        "tuple",
        "typeIs",
        "typeIsLike",
        "typeOf",
        "uniq",
        "unixEpoch",
        "unset",
        "until",
        "untilStep",
        "untitle",
        "urlJoin",
        "urlParse",
        "uuidv4",
        "values",
        "without",
        "wrap",
        "wrapWith",
    ]
)


FUNCTIONS: Final[dict[str, Function]] = GO_BUILTINS | SPRIG_FUNCTIONS
