"""The task-file template engine (Go text/template + the Sprig functions task files use) and the
alias preprocessor, against the behaviour of acr-builder's templating/ and graph/preprocessor.go."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.builds.taskfile.aliases import (
    IMAGE_ALIASES,
    RUN_ALIASES,
    AliasError,
    Aliases,
    expand,
    expand_command,
    find_version,
    load_aliases,
    separate_alias_block,
    strip_comments,
    uses_aliases,
)
from dockyard.builds.taskfile.render import FUNCTIONS, RenderError, render

DATA = {
    "Run": {"ID": "ca1", "Registry": "reg.example", "Commit": "ABC123", "Date": "20261201-060405z"},
    "Build": {"ID": "ca1"},
    "Values": {"name": "web", "n": 3, "flag": True, "list": ["a", "b"], "nested": {"k": "v"}, "empty": ""},
    "Secrets": {"a-b": "s3cret", "pw": "hunter2"},
}
TASKFILES = Path(__file__).parent / "taskfiles"


def r(text: str) -> str:
    return render(text, DATA)


# ---------------------------------------------------------------------------------------- fields and missing keys


def test_fields_render_and_missing_keys_render_empty() -> None:
    assert r("{{.Run.ID}}/{{.Run.Registry}}:{{.Build.ID}}") == "ca1/reg.example:ca1"
    assert r("a{{.Run.Tag}}b{{.Values.nope}}c{{.Nope}}d") == "abcd"


def test_a_field_of_a_missing_key_is_an_error_as_in_go() -> None:
    with pytest.raises(RenderError, match=r"nil pointer evaluating interface \{\}\.y"):
        r("{{.Values.x.y}}")


def test_a_field_of_a_string_is_an_error() -> None:
    with pytest.raises(RenderError, match="can't evaluate field y in type string"):
        r("{{.Values.name.y}}")


def test_literal_no_value_text_is_removed_too() -> None:
    # acr-builder removes every "<no value>" from the output, not only missing keys
    assert r("x<no value>y") == "xy"


def test_dot_and_root_variable() -> None:
    assert r("{{with .Run}}{{.ID}}-{{$.Values.name}}{{end}}") == "ca1-web"
    assert r("{{ . | len }}") == "4"


def test_values_print_like_go() -> None:
    assert r("{{.Values.n}} {{.Values.flag}} {{.Values.list}} {{.Values.nested}}") == "3 true [a b] map[k:v]"
    assert render("{{.x}} {{.y}} {{.z}}", {"x": 1.5, "y": 1000000.0, "z": 100000.0}) == "1.5 1e+06 100000"


# ---------------------------------------------------------------------------------------- index, secrets, b64


def test_index_reads_keys_with_dashes() -> None:
    assert r('{{index .Secrets "a-b"}}') == "s3cret"
    assert r('{{index .Values.list 1}} {{index .Values "nested" "k"}}') == "b v"
    assert r('[{{index .Secrets "missing"}}]') == "[]"


def test_dashed_field_names_are_a_parse_error() -> None:
    with pytest.raises(RenderError):
        r("{{.Secrets.a-b}}")


def test_b64enc_and_b64dec() -> None:
    assert r('{{"this is a non encoded string" | b64enc}}') == "dGhpcyBpcyBhIG5vbiBlbmNvZGVkIHN0cmluZw=="
    assert r("{{.Secrets.pw | b64enc}}") == "aHVudGVyMg=="
    assert r('{{"aGVsbG8=" | b64dec}}') == "hello"


def test_b64enc_of_a_missing_value_is_empty_as_acr_builder_overrides_it() -> None:
    assert r("[{{.Secrets.undeclared | b64enc}}]") == "[]"


def test_b64enc_of_a_non_string_is_reflects_text() -> None:
    # acr-builder's Base64Encode uses reflect.Value.String(): "<int Value>" for an int
    assert r("{{.Values.n | b64enc}}") == "PGludCBWYWx1ZT4="


# ---------------------------------------------------------------------------------------- pipelines and Sprig


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Run.Commit | lower}}", "abc123"),
        ("{{.Values.name | upper}}", "WEB"),
        ('{{"  x  " | trim}}', "x"),
        ('{{.Run.Registry | replace "." "-"}}', "reg-example"),
        ('{{replace "." "-" .Run.Registry}}', "reg-example"),
        ('{{.Values.nope | default "fallback"}}', "fallback"),
        ('{{.Values.empty | default "fallback"}}', "fallback"),
        ('{{.Values.name | default "fallback"}}', "web"),
        ("{{.Values.name | quote}}", '"web"'),
        ("{{.Values.name | squote}}", "'web'"),
        ('{{printf "%s:%d" .Values.name .Values.n}}', "web:3"),
        ('{{printf "%v-%q" .Values.flag "x"}}', 'true-"x"'),
        ('{{.Values.list | join ","}}', "a,b"),
        ('{{(split "/" "a/b")._1}}', "b"),
        ('{{splitList "/" "a/b" | last}}', "b"),
        ('{{"abc" | trunc 2}}', "ab"),
        ('{{"abcdef" | substr 1 3}}', "bc"),
        ('{{"v1.2" | trimPrefix "v"}}', "1.2"),
        ('{{"img:tag" | trimSuffix ":tag"}}', "img"),
        ('{{"x" | repeat 3}}', "xxx"),
        ('{{contains "b" "abc"}} {{hasPrefix "a" "abc"}} {{hasSuffix "c" "abc"}}', "true true true"),
        ('{{ternary "yes" "no" .Values.flag}}', "yes"),
        ('{{coalesce .Values.nope .Values.empty "third"}}', "third"),
        ("{{empty .Values.empty}} {{empty .Values.name}}", "true false"),
        ("{{add 1 2 .Values.n}} {{sub 5 2}}", "6 3"),
        ('{{"42" | atoi}}', "42"),
        ('{{list "a" "b" | toJson}}', '["a","b"]'),
        ('{{cat "a" .Values.nope "b"}}', "a b"),
        ('{{regexReplaceAll "[^a-z]" "a1b2" "-"}}', "a-b-"),
        ('{{"a b" | nospace}}', "ab"),
        ('{{"a\\nb" | indent 2}}', "  a\n  b"),
        ("{{.Values.nested | toJson}}", '{"k":"v"}'),
        ('{{print "a" 1 2 "b"}}', "a1 2b"),
        ("{{len .Values.list}}", "2"),
        ('{{"x" | sha256sum | trunc 8}}', "2d711642"),
    ],
)
def test_functions(template: str, expected: str) -> None:
    assert r(template) == expected


def test_a_missing_value_piped_into_a_string_function_is_an_error_as_in_go() -> None:
    with pytest.raises(RenderError, match="invalid value; expected string"):
        r("{{.Values.nope | lower}}")


def test_a_wrong_type_into_a_string_function_is_an_error() -> None:
    with pytest.raises(RenderError, match="expected string; got int"):
        r("{{.Values.n | lower}}")


def test_unknown_functions_are_parse_errors() -> None:
    with pytest.raises(RenderError, match='function "frobnicate" not defined'):
        r("{{frobnicate .Run.ID}}")


@pytest.mark.parametrize("name", ["semver", "env", "uuidv4", "randAlphaNum"])
def test_sprig_functions_not_supported_are_named(name: str) -> None:
    with pytest.raises(RenderError, match=f"function '{name}' exists in acr-builder"):
        r("{{" + name + "}}")


def test_now_is_the_given_start_time_and_date_formats_go_layouts() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 12, 1, 6, 4, 5, tzinfo=UTC)
    assert render('{{now | date "20060102-150405"}}', DATA, now=start) == "20261201-060405"
    assert render('{{date "2006-01-02T15:04:05Z07:00" now}}', DATA, now=start) == "2026-12-01T06:04:05Z"
    assert render('{{now | date "Jan 2, 2006 3:04PM"}}', DATA, now=start) == "Dec 1, 2026 6:04AM"
    with pytest.raises(RenderError, match="start time is not known"):
        r("{{now}}")


def test_the_function_table_has_no_overlap_with_the_refused_list() -> None:
    from dockyard.builds.taskfile.render import UNSUPPORTED_SPRIG

    assert not set(FUNCTIONS) & UNSUPPORTED_SPRIG


# ---------------------------------------------------------------------------------------- control flow


def test_if_else_if_else() -> None:
    template = '{{if eq .Values.name "api"}}A{{else if .Values.flag}}F{{else}}E{{end}}'
    assert r(template) == "F"
    assert render(template, {"Values": {"name": "api"}}) == "A"
    assert render(template, {"Values": {}}) == "E"


def test_eq_with_a_missing_value_is_false_not_an_error() -> None:
    assert r('{{if eq .Values.nope "x"}}yes{{else}}no{{end}}') == "no"


def test_comparisons_and_logic() -> None:
    assert r("{{if and .Values.flag (gt .Values.n 2)}}y{{end}}") == "y"
    assert r("{{if or .Values.nope .Values.empty}}y{{else}}n{{end}}") == "n"
    assert r("{{if not .Values.nope}}y{{end}}") == "y"
    assert r('{{if ne .Values.name "x"}}y{{end}}') == "y"
    with pytest.raises(RenderError, match="incompatible types for comparison"):
        r('{{if eq .Values.n "3"}}y{{end}}')


def test_and_or_stop_at_the_deciding_argument() -> None:
    assert r("{{if and .Values.nope .Values.nope.deeper}}y{{else}}n{{end}}") == "n"
    assert r("{{or .Values.name .Values.nope.deeper}}") == "web"
    assert r('{{and 1 "x"}} {{or 0 ""}}|') == "x |"


def test_range_over_lists_maps_and_else() -> None:
    assert r("{{range .Values.list}}[{{.}}]{{end}}") == "[a][b]"
    assert r("{{range $i, $v := .Values.list}}{{$i}}={{$v}} {{end}}") == "0=a 1=b "
    assert render("{{range $k, $v := .m}}{{$k}}:{{$v}},{{end}}", {"m": {"b": 2, "a": 1}}) == "a:1,b:2,"
    assert r("{{range .Values.nope}}x{{else}}none{{end}}") == "none"
    assert r('{{range .Values.list}}{{if eq . "a"}}{{continue}}{{end}}{{.}}{{end}}') == "b"
    assert r("{{range .Values.list}}{{.}}{{break}}{{end}}") == "a"


def test_variables() -> None:
    assert r('{{$x := .Run.ID}}{{$x}}-{{$x = "z"}}{{$x}}') == "ca1-z"
    with pytest.raises(RenderError, match=r"undefined variable: \$y"):
        r("{{$y}}")


def test_trim_markers_and_comments() -> None:
    assert r("a  {{- .Run.ID -}}  \n b") == "aca1b"
    assert r("a {{.Run.ID -}}\n\n b") == "a ca1b"
    assert r("x {{- /* a comment */ -}} y") == "xy"
    assert r("x{{/* {{.Nope.Deeper}} */}}y") == "xy"
    # `{{-3}}` is the number -3, not a trim marker
    assert r("a {{-3}}") == "a -3"


def test_parenthesised_pipelines_and_field_chains() -> None:
    assert r('{{(printf "%s" .Run.ID) | upper}}') == "CA1"
    assert render("{{(index .a 0).b}}", {"a": [{"b": "deep"}]}) == "deep"


def test_raw_strings_and_escapes() -> None:
    assert r("{{`a\\n{{b}}`}}") == "a\\n{{b}}"
    assert r('{{"tab\\tq\\"x"}}') == 'tab\tq"x'


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Run.ID", "unclosed action"),
        ("{{if .Run.ID}}x", "unexpected EOF"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ('{{"abc}}', "unterminated quoted string"),
        ('{{define "x"}}{{end}}', "not supported"),
        ("{{break}}", "outside {{range}}"),
        ("{{/* never closed", "unclosed comment"),
        ("{{.Run.ID 1}}", "can't give argument to non-function"),
        ("{{ | upper}}", "missing command"),
        ("{{printf}}", "wrong number of args for printf"),
    ],
)
def test_errors_are_clear(template: str, message: str) -> None:
    with pytest.raises(RenderError, match="template: line") as caught:
        r(template)
    assert message in str(caught.value)


def test_errors_name_the_line() -> None:
    with pytest.raises(RenderError, match="line 3"):
        r("a\nb\n{{nofunc}}")


# ---------------------------------------------------------------------------------------- comments, version, alias block


def test_comment_lines_are_dropped_with_their_template_syntax() -> None:
    text = 'a: 1\n  # {{index .Object "x"}}\n#top\nb: 2'
    assert strip_comments(text) == "a: 1\nb: 2"
    assert r(strip_comments(text)) == "a: 1\nb: 2"


def test_find_version_is_read_from_the_raw_text() -> None:
    assert find_version("# c\nsteps: []\nversion: 'v1.1.0'\n") == "v1.1.0"
    assert find_version('"version": v1.0.0') == "v1.0.0"
    assert find_version("  version: v1.1.0") == ""  # indented: not the task's version
    assert find_version("versions: x\n") == ""


@pytest.mark.parametrize(
    ("version", "enabled"),
    [
        ("v1.1.0", True),
        ("v1.0.0", False),
        ("", False),
        ("1.0-preview-1", False),
        ("V1.1.0", False),
        ("v2", True),
        ("v1.10.0", True),
    ],
)
def test_aliases_are_enabled_by_a_string_comparison(version: str, enabled: bool) -> None:
    assert uses_aliases(version) is enabled


def test_the_alias_block_is_cut_out_up_to_the_next_top_level_key() -> None:
    text = "version: v1.1.0\nalias:\n  values:\n    a: b\n\nsteps:\n  - cmd: x\n"
    block, rest = separate_alias_block(text)
    assert block == "alias:\n  values:\n    a: b\n\n"
    assert rest == "version: v1.1.0\nsteps:\n  - cmd: x\n"


def test_expand_replaces_known_aliases_and_keeps_unknown_ones() -> None:
    aliases = Aliases({"img": "ubuntu", "tag": "22.04"})
    assert expand("cmd: $img:$tag echo $HOME $$img", aliases) == "cmd: ubuntu:22.04 echo $HOME $img"
    assert expand("$img$tag", aliases) == "ubuntu22.04"
    assert expand("price 5$", aliases) == "price 5$"
    assert expand("$unknown$img", aliases) == "$unknown$img"  # go: an unknown alias ends the run of aliases


def test_expand_with_another_directive() -> None:
    aliases = Aliases({"a": "A", "b": "B"}, directive="&")
    assert expand("&a&b $a &&x", aliases) == "AB $a &x"


def test_load_aliases_orders_values_then_sources_then_built_ins() -> None:
    files = {"one.yaml": "x: one\ny: one\n", "two.yaml": "x: two\nbash: mybash\n"}
    block = "alias:\n  src:\n    - one.yaml\n    - two.yaml\n  values:\n    y: own\n"
    aliases = load_aliases(block, files.__getitem__)
    assert aliases.values["y"] == "own"
    assert aliases.values["x"] == "two"  # later src files win over earlier ones
    assert aliases.values["bash"] == "mybash"  # over the built-in image alias
    assert aliases.values["curl"] == IMAGE_ALIASES["curl"]
    assert aliases.values["Registry"] == RUN_ALIASES["Registry"]


def test_load_aliases_refuses_urls_and_bad_names() -> None:
    with pytest.raises(AliasError, match="does not download alias files"):
        load_aliases("alias:\n  src:\n    - https://example.com/a.yaml\n", lambda p: "")
    with pytest.raises(AliasError, match="only support alphanumeric"):
        load_aliases("alias:\n  values:\n    bad-name: x\n", None)
    with pytest.raises(AliasError, match="single character"):
        load_aliases("alias:\n  directive: '&&'\n", None)
    with pytest.raises(AliasError, match="may not be alphanumeric"):
        load_aliases("alias:\n  directive: a\n", None)
    with pytest.raises(AliasError, match="has none of"):
        load_aliases("alias:\n  src:\n    - local.yaml\n", None)


def test_alias_source_files_from_acr_builders_testdata() -> None:
    source = TASKFILES / "acr-builder" / "valid-external.yaml"
    aliases = load_aliases("alias:\n  src:\n    - ./valid-external.yaml\n", lambda p: source.read_text())
    assert aliases.values["pack"] == "mcr.microsoft.com/azure-task-commands/buildpack:latest pack"


def test_expand_command_replaces_only_the_first_word() -> None:
    aliases = load_aliases("", None)
    assert expand_command("bash echo bash", aliases) == "mcr.microsoft.com/acr/bash:2ff604c echo bash"
    assert expand_command("  az login", aliases) == "mcr.microsoft.com/acr/azure-cli:2ff604c login"
    assert expand_command("bash:3.0 echo", aliases) == "bash:3.0 echo"
    assert expand_command("ubuntu echo", aliases) == "ubuntu echo"


@pytest.mark.parametrize(
    ("template", "message"),
    [  # each an error in acr-builder too (Go 1.26, sprig v2.22.0), checked by running it
        ("{{ slice .Values.name 1 2 }}", "list should be type of slice or array but string"),
        ("{{ eq .Values.n 3.0 }}", "incompatible types for comparison"),
        ("{{ lt .Values.n 5.5 }}", "incompatible types for comparison"),
        ('{{ trunc -2 "abcdef" }}', "slice bounds out of range"),
        ('{{ ternary "a" "b" "yes" }}', "expected bool; found yes"),
        ("{{ first .Values.nope }}", "Cannot find first"),
    ],
)
def test_go_and_sprig_errors(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=re.escape(message)):
        r(template)


def test_sprig_slice_add1_hello_trimall_and_json_escaping() -> None:
    assert r('{{ slice .Values.list 1 }}|{{ add1 4 }}|{{ hello }}|{{ trimall "x" "xax" }}') == "[b]|5|Hello!|a"
    assert r('{{ list "<&>" | toJson }}') == '["\\u003c\\u0026\\u003e"]'
    assert r('{{ trunc 10 "abc" }}|{{ substr 2 100 "abcdef" }}') == "abc|cdef"
