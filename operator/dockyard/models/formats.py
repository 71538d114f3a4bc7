"""Value formats the API server checks at admission, and the same checks in Python.

Every format here is one annotated type used by the models. It carries
- `Rule`s: `x-kubernetes-validations` entries (CEL) that `dockyard.crdgen` writes into the CRDs, so
  that `kubectl apply` refuses the value with a message naming the field;
- a Python check (`AfterValidator`) doing the same on parse, so a resource stored before a rule
  existed (the API server ratchets unchanged fields) is refused by the operator with the same words.

Regular expressions are written once for both engines: RE2 (CEL's `matches`, unanchored, hence the
explicit `^…$`) and Python's `re` in ASCII mode (`fullmatch`, so a trailing newline never slips
through `$`). Only constructs both read alike are used: no lookarounds, no `\\p{…}`, no `\\z`.

CEL cost: the API server refuses a CRD whose rules could cost too much for the largest object the
schema allows, so every string with a rule has a `maxLength` and every list or map a bound.
The CEL libraries used (quantity, ip/cidr, url, strings, optionals) exist in Kubernetes 1.31+.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

RULES_KEY = "x-dockyard-rules"
"""Where `Rule`s collect in pydantic's JSON schema until crdgen writes them as validations."""


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry on the annotated field. `message` is what the person
    applying reads after `<field path>: Invalid value: …:`; `message_expression` (CEL, a string)
    may name the offending part; `field_path` points below the annotated node (e.g. `.size`);
    `reason` is one of FieldValueInvalid (default), FieldValueForbidden, FieldValueRequired,
    FieldValueDuplicate."""

    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None
    message_expression: str | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.message_expression:
            entry["messageExpression"] = self.message_expression
        if self.field_path:
            entry["fieldPath"] = self.field_path
        if self.reason:
            entry["reason"] = self.reason
        return entry

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # Kept apart from `x-kubernetes-validations` (crdgen joins them): a field's own
        # `json_schema_extra={"x-kubernetes-validations": …}` replaces that key, and would drop these.
        schema = handler(core_schema)
        rules = schema.setdefault(RULES_KEY, [])
        if self.entry() not in rules:
            rules.append(self.entry())
        return schema


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def _cel_regex(pattern: str) -> str:
    """A pattern as a CEL raw string literal (no quote inside: CEL raw strings have no escapes)."""
    assert "'" not in pattern, pattern
    return f"r'{pattern}'"


def cel_string(text: str) -> str:
    """Text as a CEL string literal (double-quoted; JSON's escapes are CEL's)."""
    return json.dumps(text, ensure_ascii=False)


def matches(pattern: str, message: str, **rule: Any) -> Rule:
    return Rule(f"self.matches({_cel_regex(pattern)})", message, **rule)


def checked(check: Callable[[Any], str | None]) -> AfterValidator:
    """A Python check returning the problem (None when fine) as a pydantic validator."""

    def validate(value: Any) -> Any:
        problem = check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


def pattern_check(pattern: str, message: str) -> Callable[[str], str | None]:
    compiled = _regex(pattern)
    return lambda value: None if compiled.fullmatch(value) else message


# --- Kubernetes names ---------------------------------------------------------------------------

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SUBDOMAIN_PART = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
QUALIFIED_NAME = rf"^([a-z0-9][-a-z0-9.]*/)?{_LABEL_NAME}$"
"""A label or annotation key: `[prefix/]name`, name at most 63 characters. The prefix is checked
loosely (a DNS subdomain's characters): map keys have no maxLength, so the CEL cost of the regex
grows with its length and Kubernetes' full one does not fit the budget."""
LABEL_VALUE = rf"^({_LABEL_NAME})?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"

DNS_LABEL_MESSAGE = (
    "must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending alphanumeric"
)
DNS_SUBDOMAIN_MESSAGE = (
    "must be a lowercase DNS name (RFC 1123 subdomain): letters, digits, '-' and '.', starting and ending "
    "alphanumeric, e.g. my-name"
)

DnsLabel = Annotated[
    str,
    Field(min_length=1, max_length=63),
    Rule(f"self.matches({_cel_regex(DNS_LABEL)})", DNS_LABEL_MESSAGE),
    checked(pattern_check(DNS_LABEL, DNS_LABEL_MESSAGE)),
]
DnsSubdomain = Annotated[
    str,
    Field(min_length=1, max_length=253),
    matches(DNS_SUBDOMAIN, DNS_SUBDOMAIN_MESSAGE),
    checked(pattern_check(DNS_SUBDOMAIN, DNS_SUBDOMAIN_MESSAGE)),
]
HOST_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$"
HOST_NAME_MESSAGE = (
    "must be a fully qualified lowercase host name such as registry.example.com: dot-separated labels of "
    "at most 63 letters, digits and '-'"
)
HostName = Annotated[
    str,
    Field(min_length=1, max_length=253),
    matches(HOST_NAME, HOST_NAME_MESSAGE),
    checked(pattern_check(HOST_NAME, HOST_NAME_MESSAGE)),
]
SECRET_KEY_MESSAGE = "must be a Secret key: letters, digits, '-', '_' and '.'"
SecretKey = Annotated[
    str,
    Field(min_length=1, max_length=253),
    matches(SECRET_KEY, SECRET_KEY_MESSAGE),
    checked(pattern_check(SECRET_KEY, SECRET_KEY_MESSAGE)),
]


def _map_keys_rule(pattern: str, what: str, message: str) -> Rule:
    """Keys of a map matching `pattern`; the message names the first offending key."""
    regex = _cel_regex(pattern)
    return Rule(
        f"self.all(k, k.matches({regex}))",
        message,
        message_expression=f"{cel_string(what + ' ')} + self.filter(k, !k.matches({regex}))[0] + {cel_string(' ' + message)}",
    )


LABEL_KEY_MESSAGE = (
    "is not a valid label key: an optional DNS-subdomain prefix and '/', then at most 63 letters, digits, "
    "'-', '_' and '.', starting and ending alphanumeric (e.g. topology.kubernetes.io/region)"
)
LABEL_VALUE_MESSAGE = (
    "must be a label value: at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric, or empty"
)


def node_selector_problem(selector: Mapping[str, str]) -> str | None:
    keys, values = _regex(QUALIFIED_NAME), _regex(LABEL_VALUE)
    for key, value in selector.items():
        if not keys.fullmatch(key) or len(key) > 317:
            return f"nodeSelector key {key} {LABEL_KEY_MESSAGE}"
        if not values.fullmatch(value):
            return f"nodeSelector value {value!r} of {key} {LABEL_VALUE_MESSAGE}"
    return None


NodeSelectorValue = Annotated[
    str,
    Field(max_length=63),
    matches(LABEL_VALUE, LABEL_VALUE_MESSAGE),
]
NODE_SELECTOR_RULES = (_map_keys_rule(QUALIFIED_NAME, "nodeSelector key", LABEL_KEY_MESSAGE),)

ANNOTATION_KEY_RULE = _map_keys_rule(QUALIFIED_NAME, "annotation key", LABEL_KEY_MESSAGE.replace("label", "annotation"))


def annotations_problem(annotations: Mapping[str, str]) -> str | None:
    keys = _regex(QUALIFIED_NAME)
    for key in annotations:
        if not keys.fullmatch(key):
            return f"annotation key {key} {LABEL_KEY_MESSAGE.replace('label', 'annotation')}"
    return None


# --- Image references (the OCI distribution reference grammar) ----------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_PORT = r"(?::[0-9]{1,5})"
# A first component is a registry host, as docker and the operator decide (`definition.is_qualified`),
# when it has a dot or a port, or is localhost: `team/app` is a repository in the run's registry.
_DOMAIN = (
    rf"(?:(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})+|localhost|\[[a-fA-F0-9:]+\]){_PORT}?"
    rf"|{_DOMAIN_COMPONENT}{_PORT})"
)
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

IMAGE_REFERENCE = rf"^(?:{_DOMAIN}/)?{_PATH}(?::{_TAG})?(?:@{_DIGEST})?$"
"""What a pod or Kaniko pulls: `[host[:port]/]repository[:tag][@digest]`, lowercase repository."""
REPOSITORY = rf"^(?:{_DOMAIN}/)?{_PATH}$"
"""A repository, with an optional registry host: no tag, no digest."""
REPOSITORY_PATH = rf"^{_PATH}$"
"""A repository inside a known registry."""

# Run variables in pushed image names, as `builds.template` renders them: {{.Run.X}}, {{.Build.X}},
# {{.Values.x}}, optionally with Go's whitespace trimming. Each stands where a letter may stand.
TEMPLATE = r"\{\{-?[ ]*\.(?:Run|Build|Values)\.[A-Za-z_][A-Za-z0-9_]*[ ]*-?\}\}"
_T_ALNUM = rf"(?:[a-z0-9]|{TEMPLATE})+"
_T_PATH_COMPONENT = rf"{_T_ALNUM}(?:{_SEPARATOR}{_T_ALNUM})*"
_T_PATH = rf"{_T_PATH_COMPONENT}(?:/{_T_PATH_COMPONENT})*"
_T_TAG = rf"(?:[A-Za-z0-9_]|{TEMPLATE})(?:[A-Za-z0-9_.-]|{TEMPLATE})*"
PUSH_IMAGE = rf"^(?:{_DOMAIN}/|{TEMPLATE}/)?{_T_PATH}(?::{_T_TAG})?$"
"""A name to push: `[host[:port]/]repository[:tag]`, no digest; run variables allowed."""

IMAGE_REFERENCE_MESSAGE = (
    "must be an image reference [host[:port]/]repository[:tag][@digest] with a lowercase repository "
    "(letters, digits and the separators '.', '_', '__', '-' between them), a tag of at most 128 "
    "letters, digits, '_', '.' and '-', and nothing else (no spaces, no flags), e.g. registry:3 or "
    "ghcr.io/org/kaniko:v1.24.0"
)
PUSH_IMAGE_MESSAGE = (
    "must be an image name to push, [host[:port]/]repository[:tag], with a lowercase repository and a tag "
    "of letters, digits, '_', '.' and '-' (no digest: a push names a tag); run variables such as "
    "{{.Run.ID}} or {{.Values.tag}} may stand in the repository or the tag, e.g. app:{{.Run.ID}}"
)
REPOSITORY_MESSAGE = (
    "must be a repository, [host[:port]/]path, lowercase letters and digits with '.', '_', '__', '-' "
    "between them and '/' between path components; no tag or digest, e.g. team/app/cache"
)


def image_reference_problem(value: str) -> str | None:
    if not _regex(IMAGE_REFERENCE).fullmatch(value):
        return IMAGE_REFERENCE_MESSAGE
    return None


ImageReference = Annotated[
    str,
    Field(min_length=1, max_length=512),
    matches(IMAGE_REFERENCE, IMAGE_REFERENCE_MESSAGE),
    checked(image_reference_problem),
]
PushImage = Annotated[
    str,
    Field(min_length=1, max_length=512),
    matches(PUSH_IMAGE, PUSH_IMAGE_MESSAGE),
    checked(pattern_check(PUSH_IMAGE, PUSH_IMAGE_MESSAGE)),
]
Repository = Annotated[
    str,
    Field(min_length=1, max_length=512),
    matches(REPOSITORY, REPOSITORY_MESSAGE),
    checked(pattern_check(REPOSITORY, REPOSITORY_MESSAGE)),
]
RepositoryPath = Annotated[
    str,
    Field(min_length=1, max_length=255),
    matches(REPOSITORY_PATH, REPOSITORY_MESSAGE),
    checked(pattern_check(REPOSITORY_PATH, REPOSITORY_MESSAGE)),
]

STAGE_NAME = r"^[A-Za-z][A-Za-z0-9_.-]*$"
STAGE_MESSAGE = (
    "must be the name of a stage of the Dockerfile (FROM … AS <name>): a letter, then letters, digits, '_', '.' and '-'"
)
StageName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    matches(STAGE_NAME, STAGE_MESSAGE),
    checked(pattern_check(STAGE_NAME, STAGE_MESSAGE)),
]

PLATFORM = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"
PLATFORM_MESSAGE = "must be os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8"
Platform = Annotated[
    str,
    Field(min_length=1, max_length=64),
    matches(PLATFORM, PLATFORM_MESSAGE),
    checked(pattern_check(PLATFORM, PLATFORM_MESSAGE)),
]

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
IDENTIFIER_MESSAGE = "must be an identifier: a letter or '_', then letters, digits and '_'"
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128),
    matches(IDENTIFIER, IDENTIFIER_MESSAGE),
    checked(pattern_check(IDENTIFIER, IDENTIFIER_MESSAGE)),
]


# --- Paths inside the build context -------------------------------------------------------------

_ESCAPE = r"(^|/)\.\.(/|$)"
_CONTROL = r"[\x00-\x1f\x7f]"
CONTEXT_PATH_MESSAGE = (
    "must be a relative path inside the build context: no leading '/', no '..' segment, no spaces at the "
    "ends, no control characters"
)


def context_path_problem(value: str) -> str | None:
    if (
        value.startswith("/")
        or re.search(_ESCAPE, value)
        or value != value.strip()
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    ):
        return CONTEXT_PATH_MESSAGE
    return None


ContextPath = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    Rule(
        f"!self.startsWith('/') && !self.matches({_cel_regex(_ESCAPE)}) && self == self.trim()"
        f" && !self.matches({_cel_regex(_CONTROL)})",
        CONTEXT_PATH_MESSAGE,
    ),
    checked(context_path_problem),
]


# --- Git ----------------------------------------------------------------------------------------

# git check-ref-format, in short: no space or control character, none of ~ ^ : ? * [ \, no '..',
# no '@{', no component starting with '.', not ending in '/', '.' or '.lock'.
_REVISION_CHARS = r"^[^\x00-\x20\x7f~^:?*\[\\]+$"
_REVISION_BAD = r"\.\.|@\{|(^|/)\.|/$|\.$|\.lock$|//"
REVISION_MESSAGE = (
    "must be a branch, a tag or a full commit SHA as git names them: no spaces or any of ~ ^ : ? * [ \\, "
    "no '..' or '@{', not ending in '/', '.' or '.lock'"
)


def revision_problem(value: str) -> str | None:
    if not _regex(_REVISION_CHARS).fullmatch(value) or re.search(_REVISION_BAD, value):
        return REVISION_MESSAGE
    if re.fullmatch(r"[0-9a-f]{7,39}", value):
        return SHORT_SHA_MESSAGE
    return None


SHORT_SHA_MESSAGE = (
    "revision: an abbreviated commit SHA is ambiguous; give the full 40-character SHA, a branch or a tag"
)
Revision = Annotated[
    str,
    Field(min_length=1, max_length=255),
    Rule(
        f"self.matches({_cel_regex(_REVISION_CHARS)}) && !self.matches({_cel_regex(_REVISION_BAD)})", REVISION_MESSAGE
    ),
    Rule("!self.matches('^[0-9a-f]{7,39}$')", SHORT_SHA_MESSAGE),
    checked(revision_problem),
]


# --- URLs ---------------------------------------------------------------------------------------

_PRINTABLE = r"^[!-~]+$"


HTTP_URL_MESSAGE = (
    "must be an absolute http:// or https:// URL with a host, an optional port 1-65535 and no spaces or "
    "control characters (percent-encode them), e.g. https://hooks.example.com:8443/path"
)
_PORT_EXPRESSION = "url(self).getPort()"
HTTP_URL_RULE = Rule(
    f"self.matches({_cel_regex(_PRINTABLE)}) && isURL(self)"
    " && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''"
    # url() has checked that a port is digits; size() first keeps int() from overflowing.
    f" && ({_PORT_EXPRESSION} == '' || (size({_PORT_EXPRESSION}) <= 5"
    f" && int({_PORT_EXPRESSION}) >= 1 && int({_PORT_EXPRESSION}) <= 65535))",
    HTTP_URL_MESSAGE,
)


def http_url_problem(value: str) -> str | None:
    if not _regex(_PRINTABLE).fullmatch(value):
        return HTTP_URL_MESSAGE
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return HTTP_URL_MESSAGE
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return HTTP_URL_MESSAGE
    return None


HttpUrl = Annotated[str, Field(min_length=1, max_length=2048), HTTP_URL_RULE, checked(http_url_problem)]


# --- HTTP headers -------------------------------------------------------------------------------

HEADER_NAME = r"^[A-Za-z0-9!#$%&*+.^_`|~-]+$"
RESERVED_HEADERS = ("content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection")
RESERVED_HEADER_PREFIX = "x-dockyard-"
HEADER_NAME_MESSAGE = "must be an HTTP header name (letters, digits and !#$%&*+.^_`|~-)"
RESERVED_HEADER_MESSAGE = (
    "is set by Dockyard on every delivery and cannot be replaced: Content-Type, Content-Length, Host, "
    "User-Agent, Transfer-Encoding, Connection and X-Dockyard-*"
)


def header_name_problem(value: str) -> str | None:
    if not _regex(HEADER_NAME).fullmatch(value):
        return HEADER_NAME_MESSAGE
    lowered = value.lower()
    if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIX):
        return f"header {value} {RESERVED_HEADER_MESSAGE}"
    return None


_RESERVED_LIST = ", ".join(f"'{name}'" for name in RESERVED_HEADERS)
HeaderName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    Rule(f"self.matches(r'{HEADER_NAME}')", HEADER_NAME_MESSAGE),
    Rule(
        f"!(self.lowerAscii() in [{_RESERVED_LIST}]) && !self.lowerAscii().startsWith('{RESERVED_HEADER_PREFIX}')",
        RESERVED_HEADER_MESSAGE,
        message_expression=f"'header ' + self + {cel_string(' ' + RESERVED_HEADER_MESSAGE)}",
    ),
    checked(header_name_problem),
]

HEADER_VALUE = r"^[\t -~]*$"
HEADER_VALUE_MESSAGE = (
    "a header value may hold printable ASCII, spaces and tabs only: CR, LF and other control characters "
    "would split the request (header injection), non-ASCII cannot be sent"
)
HeaderValue = Annotated[
    str,
    Field(max_length=4096),
    matches(HEADER_VALUE, HEADER_VALUE_MESSAGE),
    checked(pattern_check(HEADER_VALUE, HEADER_VALUE_MESSAGE)),
]


# --- Quantities and resources -------------------------------------------------------------------

QUANTITY = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
"""Kubernetes' quantity grammar without a sign: a negative request or limit is refused."""
_QUANTITY_VALUE = _regex(QUANTITY)


def quantity_problem(value: int | str) -> str | None:
    if isinstance(value, int):
        return None if value >= 0 else "a quantity cannot be negative"
    if not _QUANTITY_VALUE.fullmatch(value):
        return f"{value!r} is not a Kubernetes quantity such as 500m, 2, 128Mi or 1Gi"
    return None


QUANTITY_MESSAGE = "must be a non-negative Kubernetes quantity such as 500m, 2, 128Mi or 1Gi"
QUANTITY_RULE = Rule(
    "type(self) == int ? int(self) >= 0"
    " : (isQuantity(string(self)) && !quantity(string(self)).isLessThan(quantity('0')))",
    QUANTITY_MESSAGE,
)

RESOURCE_NAME = rf"^(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z.]+|{_SUBDOMAIN_PART}/{_LABEL_NAME})$"
RESOURCE_NAME_MESSAGE = (
    "is not a container resource: cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed "
    "extended resource such as nvidia.com/gpu"
)
RESOURCE_NAMES_RULE = _map_keys_rule(RESOURCE_NAME, "resource", RESOURCE_NAME_MESSAGE)
REQUESTS_WITHIN_LIMITS_RULE = Rule(
    "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
    " || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
    "requests must not exceed limits",
    message_expression="'requests.' + self.requests.filter(k, k in self.limits"
    " && quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) > 0)[0]"
    " + ' must not exceed limits.' + self.requests.filter(k, k in self.limits"
    " && quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) > 0)[0]",
)


_NOT_OVERCOMMITTED = "(k.startsWith('hugepages-') || k.contains('/'))"
NOT_OVERCOMMITTED_MESSAGE = (
    "hugepages-* and extended resources (vendor.com/x) cannot be overcommitted: an extended resource "
    "needs a limit, and a request must equal its limit"
)
NOT_OVERCOMMITTED_RULE = Rule(
    "(!has(self.requests) || self.requests.all(k, !k.contains('/') || (has(self.limits) && k in self.limits)))"
    " && (!has(self.requests) || !has(self.limits) || self.requests.all(k, !" + _NOT_OVERCOMMITTED + ""
    " || !(k in self.limits) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) == 0))",
    NOT_OVERCOMMITTED_MESSAGE,
)


def resources_problem(requests: Mapping[str, int | str] | None, limits: Mapping[str, int | str] | None) -> str | None:
    names = _regex(RESOURCE_NAME)
    for section in (requests or {}), (limits or {}):
        for name, value in section.items():
            if not names.fullmatch(name):
                return f"resource {name} {RESOURCE_NAME_MESSAGE}"
            problem = quantity_problem(value)
            if problem:
                return f"{name}: {problem}"
    for name, request in (requests or {}).items():
        limit = (limits or {}).get(name)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            return f"requests.{name} must not exceed limits.{name}"
        extended = "/" in name
        if (extended and limit is None) or (
            (extended or name.startswith("hugepages-"))
            and limit is not None
            and parse_quantity(request) != parse_quantity(limit)
        ):
            return f"{name}: {NOT_OVERCOMMITTED_MESSAGE}"
    return None


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 10**-9,
    "u": 10**-6,
    "m": 10**-3,
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def parse_quantity(value: int | str) -> float:
    """The approximate value of a quantity (for comparisons; exactness is the API server's)."""
    if isinstance(value, int):
        return float(value)
    match = re.fullmatch(r"([0-9.]+)([eE][-+]?[0-9.]+|[KMGTPE]i|[numkMGTPE])?", value)
    if match is None:
        raise ValueError(f"{value!r} is not a quantity")
    number, suffix = match.groups()
    if suffix and suffix[0] in "eE":
        return float(number + suffix)
    return float(number) * _SUFFIXES[suffix or ""]


STORAGE_SIZE = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
STORAGE_SIZE_MESSAGE = "must be a volume size greater than zero, e.g. 10Gi, 500Gi or 1Ti"


def storage_size_problem(value: str) -> str | None:
    if not _regex(STORAGE_SIZE).fullmatch(value) or parse_quantity(value) <= 0:
        return STORAGE_SIZE_MESSAGE
    return None


StorageSize = Annotated[
    str,
    Field(min_length=1, max_length=32),
    Rule(
        f"self.matches({_cel_regex(STORAGE_SIZE)}) && isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
        STORAGE_SIZE_MESSAGE,
    ),
    checked(storage_size_problem),
]


# --- Object-store names -------------------------------------------------------------------------

_IPV4_LIKE = r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"
S3_BUCKET_MESSAGE = (
    "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
    "letter or digit, no '..', not an IP address, not starting with xn-- or sthree- and not ending in "
    "-s3alias or --ol-s3"
)
_S3_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_S3_BAD = r"\.\.|^xn--|^sthree-|-s3alias$|--ol-s3$|\.mrap$|--x-s3$"


def s3_bucket_problem(value: str) -> str | None:
    if not _regex(_S3_BUCKET).fullmatch(value) or re.search(_S3_BAD, value) or _regex(_IPV4_LIKE).fullmatch(value):
        return S3_BUCKET_MESSAGE
    return None


S3Bucket = Annotated[
    str,
    Field(min_length=3, max_length=63),
    Rule(
        f"self.matches({_cel_regex(_S3_BUCKET)}) && !self.matches({_cel_regex(_S3_BAD)})"
        f" && !self.matches({_cel_regex(_IPV4_LIKE)})",
        S3_BUCKET_MESSAGE,
    ),
    checked(s3_bucket_problem),
]

GCS_BUCKET_MESSAGE = (
    "must be a Cloud Storage bucket name: 3-63 lowercase letters, digits, '-', '_' and '.' (up to 222 "
    "with dots, each dot-separated part at most 63), starting and ending with a letter or digit, not an "
    "IP address, not starting with 'goog' and not containing 'google'"
)
_GCS_BUCKET = r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"
_GCS_PART_TOO_LONG = r"[^.]{64,}"
_GCS_BAD = r"^goog|google|\.\."


def gcs_bucket_problem(value: str) -> str | None:
    if (
        not _regex(_GCS_BUCKET).fullmatch(value)
        or re.search(_GCS_PART_TOO_LONG, value)
        or re.search(_GCS_BAD, value)
        or _regex(_IPV4_LIKE).fullmatch(value)
    ):
        return GCS_BUCKET_MESSAGE
    return None


GcsBucket = Annotated[
    str,
    Field(min_length=3, max_length=222),
    Rule(
        f"self.matches({_cel_regex(_GCS_BUCKET)}) && !self.matches({_cel_regex(_GCS_PART_TOO_LONG)})"
        f" && !self.matches({_cel_regex(_GCS_BAD)}) && !self.matches({_cel_regex(_IPV4_LIKE)})",
        GCS_BUCKET_MESSAGE,
    ),
    checked(gcs_bucket_problem),
]

AZURE_ACCOUNT = r"^[a-z0-9]{3,24}$"
AZURE_ACCOUNT_MESSAGE = "must be an Azure storage account name: 3-24 lowercase letters and digits"
AzureAccount = Annotated[
    str,
    Field(min_length=3, max_length=24),
    matches(AZURE_ACCOUNT, AZURE_ACCOUNT_MESSAGE),
    checked(pattern_check(AZURE_ACCOUNT, AZURE_ACCOUNT_MESSAGE)),
]
AZURE_CONTAINER = r"^[a-z0-9]+(-[a-z0-9]+)*$"
AZURE_CONTAINER_MESSAGE = (
    "must be an Azure blob container name: 3-63 lowercase letters, digits and single '-' between them, "
    "starting and ending with a letter or digit"
)
AzureContainer = Annotated[
    str,
    Field(min_length=3, max_length=63),
    matches(AZURE_CONTAINER, AZURE_CONTAINER_MESSAGE),
    checked(pattern_check(AZURE_CONTAINER, AZURE_CONTAINER_MESSAGE)),
]

AWS_REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
REGION = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
REGION_MESSAGE = "must be a region name: letters, digits, '-', '_' and '.', e.g. us-east-1"
Region = Annotated[
    str,
    Field(min_length=1, max_length=64),
    matches(REGION, REGION_MESSAGE),
    checked(pattern_check(REGION, REGION_MESSAGE)),
]


# --- Addresses ----------------------------------------------------------------------------------

IP_RULE_MESSAGE = "must be an IPv4 or IPv6 address or CIDR, e.g. 203.0.113.7 or 203.0.113.0/24"


def ip_rule_value(value: str) -> str:
    """An address range as ACR takes it: a CIDR, or one address meaning itself alone (/32, /128).
    Returned as a CIDR, so the code that renders rules sees one form."""
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        address = ipaddress.ip_address(value)
    except ValueError as error:
        raise ValueError(IP_RULE_MESSAGE) from error
    return f"{address}/{address.max_prefixlen}"


IpOrCidr = Annotated[
    str,
    Field(min_length=1, max_length=43),
    Rule("isCIDR(self) || isIP(self)", IP_RULE_MESSAGE),
    AfterValidator(ip_rule_value),
]
