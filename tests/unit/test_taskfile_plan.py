"""The planner: task files → the plan acr-builder would execute, or its refusal. Real task files from
acr-builder's test data and Microsoft's samples (tests/unit/taskfiles, with their origin), and
small files for each rule; expected plans derived from acr-builder's code (graph/, templating/)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockyard.builds.taskfile.arguments import parse_build, parse_cmd
from dockyard.builds.taskfile.model import DecodeError, decode_task
from dockyard.builds.taskfile.plan import (
    Plan,
    PlanError,
    PlannedStep,
    merge_env,
    normalize_push,
    plan,
)
from dockyard.builds.template import RunVariables

RUN = RunVariables(ID="ca1", Registry="reg.example", Date="20261201-060405z", Commit="c0ffee", Branch="main")
TASKFILES = Path(__file__).parent / "taskfiles"
ACB = TASKFILES / "acr-builder"
SAMPLES = TASKFILES / "acr-tasks"


def p(text: str, **kwargs: object) -> Plan:
    return plan(textwrap.dedent(text), RUN, **kwargs)  # type: ignore[arg-type]


def steps(result: Plan) -> dict[str, PlannedStep]:
    return {s.id: s for s in result.steps}


def refused(text: str, **kwargs: object) -> str:
    with pytest.raises(PlanError) as caught:
        p(text, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------------------------------- acr-builder's own test data


def test_acb_yaml_dag_defaults_and_env() -> None:
    result = plan((ACB / "acb.yaml").read_text(), RUN)
    by_id = steps(result)
    # the DAG its comment draws: root -> puller; C -> B; build-qux -> build-foo -> build-qaz; build-bar
    assert {s.id: s.depends_on for s in result.steps} == {
        "puller": (),
        "build-qux": (),
        "C": (),
        "build-bar": (),
        "B": ("C",),
        "build-foo": ("build-qux",),
        "build-qaz": ("build-foo",),
    }
    assert result.stages == (("puller", "build-qux", "C", "build-bar"), ("B", "build-foo"), ("build-qaz",))
    assert result.version == "v1.0.0"
    # task env merged: the step's own foo=bar wins; others get foo=taskEnv appended
    assert by_id["puller"].env == ("eric=foo", "foo=bar")
    assert by_id["build-foo"].env == ("eric=foo", "foo=taskEnv")
    assert by_id["C"].env == ("foo=taskEnv",)
    assert by_id["puller"].retries == 5 and by_id["puller"].retry_delay == 90
    assert by_id["build-qux"].retry_delay == 5 and by_id["build-qux"].timeout == 600
    assert by_id["build-qux"].detach and by_id["build-qux"].start_delay == 50
    assert by_id["B"].ignore_errors and by_id["B"].disable_working_directory_override
    assert by_id["puller"].working_directory == "pullDir" and by_id["puller"].pull
    assert by_id["C"].ports == ("8000:8000", "8080:8080") and by_id["C"].keep
    qaz = by_id["build-qaz"]
    assert qaz.type == "build" and qaz.repeat == 2 and qaz.privileged and qaz.user == "root" and qaz.network == "host"
    assert qaz.dockerfile == "Dockerfile" and qaz.context == "https://github.com/ehotinger/qaz"
    assert qaz.build_flags == ("--cache-from=ubuntu",)
    assert by_id["puller"].image == "azure/images/docker" and by_id["puller"].args == ("pull", "ubuntu")
    assert any("exitedWith" in w and "'puller'" in w for w in result.warnings)


def test_valid_alias_yaml_is_version_1_0_0_so_aliases_are_not_applied() -> None:
    result = plan((ACB / "valid-alias.yaml").read_text(), RUN)
    by_id = steps(result)
    assert by_id["build-qux"].args[-2] == "$qux"  # kept: no aliases below v1.1.0
    assert by_id["build-bar"].image == "acb"
    assert any("unknown key 'alias'" in w for w in result.warnings)
    assert any("unknown key 'test'" in w for w in result.warnings)


def _stress_sections() -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in (ACB / "preprocessing-stress.yaml").read_text().split("\n"):
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line[2:])
    return {name: "\n".join(lines) for name, lines in sections.items()}


def _shape(result: Plan) -> list[dict[str, object]]:
    return [s.model_dump(exclude={"line"}) for s in result.steps]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("Chaining Directive Unicode", "Expected"),
        ("Multiline Alias", "Expected"),
        ("Escape", "Expected Escape"),
        ("Alias No Use", "Expected"),
        ("Expected", "Expected"),
    ],
)
def test_acr_builders_preprocessor_stress_cases(section: str, expected: str) -> None:
    sections = _stress_sections()
    external = (ACB / "alphanumeric-external.yaml").read_text()
    result = plan(sections[section], RUN, read_alias_source=lambda path: external)
    assert _shape(result) == _shape(plan(sections[expected], RUN))


def test_the_escape_case_keeps_literal_dollars() -> None:
    result = plan(_stress_sections()["Escape"], RUN)
    assert result.steps[0].id == "$puller"
    assert result.steps[0].image == "$azure/$images/$docker"


def test_mounts_secrets_from_acr_builders_templating_testdata() -> None:
    result = plan((ACB / "mounts_secrets.yaml").read_text(), RUN, secrets={"sampleSecret": "s3"})
    (volume,) = result.volumes
    assert volume.secret == {"mysecret1": "czM=", "mysecret2": "dGhpcyBpcyBhIG5vbiBlbmNvZGVkIHN0cmluZw=="}
    (step,) = result.steps
    assert (
        step.id == "acb_step_0"
        and step.image == "bash"
        and step.args == ("cat", "/run/test/mysecret1", "/run/test/mysecret2")
    )
    assert [(m.name, m.mount_path) for m in step.volume_mounts] == [("mysecrets", "/run/test")]
    assert result.warnings == ()


def test_git_build_from_acr_builders_templating_testdata() -> None:
    result = plan((ACB / "git-build.yaml").read_text(), RUN)
    first, push = result.steps
    assert first.id == "git-context" and first.image == "build"  # a cmd step: the "image" is `build`
    assert push.id == "acb_step_1" and push.depends_on == ("git-context",)
    assert push.images == ("acr-builder:ca1",)


# ---------------------------------------------------------------------------------------- Microsoft's samples


def test_sample_build_test_update_hello_world() -> None:
    result = plan((SAMPLES / "build-test-update-hello-world.yaml").read_text(), RUN)
    by_id = steps(result)
    assert list(by_id) == ["acb_step_0", "acb_step_1", "hello-world", "func-tests", "acb_step_4", "acb_step_5"]
    assert by_id["acb_step_0"].tags == ("reg.example/hello-world:ca1",)
    assert by_id["acb_step_0"].depends_on == () and by_id["acb_step_1"].depends_on == ()
    # no `when`: the previous step in the file, even though that is the other parallel build
    assert by_id["hello-world"].depends_on == ("acb_step_1",)
    assert by_id["hello-world"].image == "reg.example/hello-world:ca1"
    assert by_id["func-tests"].env == ("test-target=hello-world",)
    assert by_id["acb_step_4"].images == ("reg.example/hello-world:ca1",)
    helm = by_id["acb_step_5"]
    assert helm.image == "cmd.azurecr.io/helm:v2.11.0-rc.2"
    assert helm.args == (
        "update", "helloworld", "./release/helm/", "--reuse-values", "--set", "helloworld.image=reg.example/hello-world:ca1",
    )  # fmt: skip
    assert result.stages[0] == ("acb_step_0", "acb_step_1")


def test_sample_when_parallel_dependent() -> None:
    result = plan((SAMPLES / "when-parallel-dependent.yaml").read_text(), RUN)
    assert [(s.id, s.depends_on) for s in result.steps] == [
        ("build-hello-world", ()),
        ("build-hello-world-test", ()),
        ("hello-world", ("build-hello-world",)),
        ("func-tests", ("hello-world",)),
        ("acb_step_4", ("func-tests",)),
    ]
    assert result.stages == (
        ("build-hello-world", "build-hello-world-test"),
        ("hello-world",),
        ("func-tests",),
        ("acb_step_4",),
    )


def test_sample_network_curl_uses_the_curl_alias_and_detach() -> None:
    nginx, curl = plan((SAMPLES / "network-curl.yaml").read_text(), RUN).steps
    assert nginx.detach and nginx.image == "mcr.microsoft.com/oss/nginx/nginx:1.15.5-alpine"
    assert curl.image == "mcr.microsoft.com/acr/curl:2ff604c" and curl.args == ("--url", "http://nginx")
    assert curl.depends_on == ("nginx",)


def test_sample_bash_with_a_tag_is_not_the_bash_alias() -> None:
    (step,) = plan((SAMPLES / "bash-echo-3.yaml").read_text(), RUN).steps
    assert step.image == "bash:3.0" and step.args == ("echo", "hello", "world")


def test_sample_build_push_multi() -> None:
    build, push = plan((SAMPLES / "build-push-hello-world-multi.yaml").read_text(), RUN).steps
    assert build.tags == ("reg.example/hello-world:ca1", "reg.example/hello-world:latest")
    assert push.images == build.tags


def test_sample_managed_identities_aliases_secrets_and_missing_values() -> None:
    result = plan((SAMPLES / "managed-identities.yaml").read_text(), RUN, secrets={"name": "v"})
    first, docker, push, login, tags = result.steps
    assert first.image == "mcr.microsoft.com/acr/bash:2ff604c"
    # `$MY_SECRET` is not an alias: kept for the shell; the secret renders inside the env entry
    assert first.args[1].startswith('if [ -z "$MY_SECRET" ]')
    assert first.env == ("MY_SECRET='v'",)
    assert docker.image == "docker" and docker.args == (
        "build",
        "-t",
        "reg.example/repo:ca1",
        "https://github.com/Azure-Samples/aci-helloworld.git",
    )
    assert push.images == ("reg.example/repo:ca1",)
    assert login.image == "mcr.microsoft.com/acr/azure-cli:2ff604c"
    # {{.Values.registryName}} is not set: it renders empty
    assert tags.args == ("acr", "repository", "show-tags", "-n", "--repository", "repo")


def test_sample_managed_identities_without_the_secret_warns() -> None:
    result = plan((SAMPLES / "managed-identities.yaml").read_text(), RUN)
    assert result.steps[0].env == ("MY_SECRET=''",)
    assert any("secret 'name' has no value" in w for w in result.warnings)


def test_sample_mounts_secrets_with_values() -> None:
    result = plan(
        (SAMPLES / "mounts-secrets.yaml").read_text(), RUN, values={"mysecret": "b"}, secrets={"sampleSecret": "a"}
    )
    assert result.volumes[0].secret == {"mysecret1": "YQ==", "mysecret2": "Yg=="}
    assert result.secrets[0].keyvault == "https://myacbvault2.vault.azure.net/secrets/SampleSecret"


def test_sample_buildx_cache() -> None:
    build, push = plan((SAMPLES / "buildx.yml").read_text(), RUN).steps
    assert build.cache and build.dockerfile == "hello-world.dockerfile"
    assert push.images == ("reg.example/hello-world:ca1",)


def test_sample_multiple_registries_with_values() -> None:
    values = {"REGISTRY1": "one.example", "REGISTRY2": "two.example"}
    result = plan((SAMPLES / "multipleRegistries-testtask.yaml").read_text(), RUN, values=values)
    b1, p1, b2, p2 = result.steps
    assert (
        b1.tags == ("one.example/hello-world:ca1",) and b1.context == "." and b1.dockerfile == "hello-world.dockerfile"
    )
    assert p2.images == ("two.example/hello-world:ca1",)
    assert [s.depends_on for s in result.steps] == [(), (b1.id,), (p1.id,), (b2.id,)]


# ---------------------------------------------------------------------------------------- rendering before parsing


def test_render_before_parse_makes_invalid_yaml_valid() -> None:
    # `- {{.Run.Registry}}/x` is a flow mapping before rendering: invalid YAML until rendered
    result = p(
        """
        steps:
          - build: -t {{.Run.Registry}}/x:{{.Run.ID}} .
          - push:
            - {{.Run.Registry}}/x:{{.Run.ID}}
            - {{.Run.Registry}}/x
        """
    )
    assert result.steps[1].images == ("reg.example/x:ca1", "reg.example/x:latest")


def test_template_syntax_in_comment_lines_is_never_executed() -> None:
    result = p(
        """
        # {{index .Object "x"}} would fail to execute
        steps:
            # {{.Nope.Deeper}}
          - cmd: ubuntu echo {{.Run.Date}}
        """
    )
    assert result.steps[0].args == ("echo", "20261201-060405z")


def test_conditional_steps_and_ranges_render() -> None:
    text = """
        steps:
        {{- range .Values.images }}
          - build: -t {{ . }} .
            when: ["-"]
        {{- end }}
        {{- if eq .Values.push "yes" }}
          - push: [{{ join "," .Values.images }}]
            when: [{{ range $i, $x := .Values.images }}{{ if $i }},{{ end }}acb_step_{{ $i }}{{ end }}]
        {{- end }}
        """
    result = p(text, values={"images": ["a:1", "b:2"], "push": "yes"})
    assert [s.type for s in result.steps] == ["build", "build", "push"]
    assert result.steps[2].depends_on == ("acb_step_0", "acb_step_1")
    assert result.stages == (("acb_step_0", "acb_step_1"), ("acb_step_2",))


def test_run_and_values_json_and_registry_name() -> None:
    result = p(
        """
        steps:
          - cmd: ubuntu echo {{.Run.RegistryName}} {{.ValuesJSON}} {{.Run.OS}} {{.Run.Architecture}}
        """,
        values={"a": "x y"},
    )
    assert result.steps[0].args == ("echo", "reg", '{"a":"x y"}', "linux", "amd64")


def test_a_render_error_is_refused_with_its_line() -> None:
    message = refused(
        """
        steps:
          - cmd: ubuntu echo {{.Values.a.b}}
        """
    )
    assert message.startswith("render: template: line 3") and "nil pointer evaluating" in message


def test_text_that_renders_to_nothing_is_refused() -> None:
    assert "rendered template was empty" in refused("{{if false}}steps: []{{end}}")


def test_an_empty_file_is_a_plan_with_no_steps() -> None:
    result = p("# only a comment\n")
    assert result.steps == () and any("no steps" in w for w in result.warnings)


# ---------------------------------------------------------------------------------------- aliases


def test_aliases_with_templates_and_builtins() -> None:
    result = p(
        """
        version: v1.1.0
        alias:
          values:
            repo: "{{.Run.Registry}}/web"
            nested: $Registry/web
            tag: "{{.Run.Branch}}-{{.Run.ID}}"
            img: ubuntu:22.04
        steps:
          - build: -t $repo:$tag -t $nested .
          - cmd: $img echo $$HOME $HOME $Commit
        """
    )
    build, cmd = result.steps
    # an alias's value is not scanned again for aliases (one pass, as acr-builder's state machine)
    assert build.tags == ("reg.example/web:main-ca1", "$Registry/web")
    assert cmd.image == "ubuntu:22.04" and cmd.args == ("echo", "$HOME", "$HOME", "c0ffee")


def test_aliases_are_not_applied_below_v1_1_0() -> None:
    result = p(
        """
        version: v1.0.0
        steps:
          - cmd: bash echo $ID
        """
    )
    assert result.steps[0].image == "bash" and result.steps[0].args == ("echo", "$ID")


def test_uppercase_version_is_valid_but_does_not_enable_aliases() -> None:
    result = p(
        """
        version: V1.1.0
        steps:
          - cmd: bash echo $ID
        """
    )
    assert result.version == "V1.1.0" and result.steps[0].image == "bash"


def test_alias_directive_and_errors() -> None:
    result = p(
        """
        version: v1.1.0
        alias:
          directive: "&"
          values:
            img: alpine
        steps:
          - cmd: &img echo $img &ID
        """
    )
    assert result.steps[0].image == "alpine" and result.steps[0].args == ("echo", "$img", "ca1")
    assert "does not download alias files" in refused(
        """
        version: v1.1.0
        alias:
          src: [https://example.com/aliases.yaml]
        steps:
          - cmd: bash echo
        """
    )


def test_the_image_alias_applies_only_to_cmd_steps_first_word() -> None:
    result = p(
        """
        version: v1.1.0
        steps:
          - cmd: az acr list
          - cmd: ubuntu az
          - build: -t az .
        """
    )
    assert result.steps[0].image == "mcr.microsoft.com/acr/azure-cli:2ff604c"
    assert result.steps[1].image == "ubuntu" and result.steps[1].args == ("az",)
    assert result.steps[2].tags == ("az",)


# ---------------------------------------------------------------------------------------- defaults


def test_defaults_ids_timeouts_retry_delay_and_working_directory() -> None:
    result = p(
        """
        stepTimeout: 30
        workingDirectory: /src
        steps:
          - cmd: a
          - cmd: b
            timeout: 99
            retryDelay: -1
            workingDirectory: sub
          - cmd: c
            timeout: 0
            retryDelay: 7
        """
    )
    a, b, c = result.steps
    assert [a.id, b.id, c.id] == ["acb_step_0", "acb_step_1", "acb_step_2"]
    assert (a.timeout, b.timeout, c.timeout) == (30, 99, 30)
    assert (a.retry_delay, b.retry_delay, c.retry_delay) == (5, 5, 7)
    assert (a.working_directory, b.working_directory) == ("/src", "sub")
    assert result.version == "v1.0.0"


@pytest.mark.parametrize("step_timeout", ["0", "-5"])
def test_a_non_positive_step_timeout_is_600(step_timeout: str) -> None:
    assert p(f"stepTimeout: {step_timeout}\nsteps:\n  - cmd: a\n").steps[0].timeout == 600


def test_when_empty_list_means_no_when() -> None:
    result = p("steps:\n  - cmd: a\n  - cmd: b\n    when: []\n  - cmd: c\n    when: [-]\n")
    assert [s.depends_on for s in result.steps] == [(), ("acb_step_0",), ()]


def test_yaml_1_1_booleans_as_go_yaml_reads_them() -> None:
    result = p("steps:\n  - cmd: a\n    detach: y\n    keep: yes\n    privileged: off\n")
    assert result.steps[0].detach and result.steps[0].keep and not result.steps[0].privileged


# ---------------------------------------------------------------------------------------- env merging


@pytest.mark.parametrize(
    ("task_env", "step_env", "expected"),
    [  # acr-builder's graph/task_test.go TestMergeEnvs
        (["key1=val1", "key2=val2", "key3=val3"], [], ["key1=val1", "key2=val2", "key3=val3"]),
        (["key1=val1", "key2=val2", "key3=val3"], ["key1=newVal1", "key2=newVal2"], ["key1=newVal1", "key2=newVal2", "key3=val3"]),
        (["key1=val1,key2=val2,key3=val3"], ["key1=newVal1", "key2=newVal2", "key3=newVal3="], ["key1=newVal1", "key2=newVal2", "key3=newVal3="]),
        (["key1=val1,key2=val2,key3=val3"], [], ["key1=val1", "key2=val2", "key3=val3"]),
        (["key1=val1,key2=val2", "key3=val3,key4=val4"], ["key1=newVal1", "key2=newVal2"], ["key1=newVal1", "key2=newVal2", "key3=val3", "key4=val4"]),
        (["key1=val1,key2=val2", "key3=val3,key4=val4"], ["key1=newVal1", "key2=newVal2", "key3=newVal3="], ["key1=newVal1", "key2=newVal2", "key3=newVal3=", "key4=val4"]),
        ([], [], []),
        ([], ["key=val1"], ["key=val1"]),
    ],
)  # fmt: skip
def test_merge_env(task_env: list[str], step_env: list[str], expected: list[str]) -> None:
    assert list(merge_env(tuple(step_env), tuple(task_env))) == expected


def test_env_without_equals_is_refused_only_when_the_task_has_env() -> None:
    assert p("steps:\n  - cmd: a\n    env: [NOEQUALS]\n").steps[0].env == ("NOEQUALS",)
    message = refused("env: [A=1]\nsteps:\n  - id: s\n    cmd: a\n    env: [NOEQUALS]\n")
    assert "step 's'" in message and "cannot parse step environment variable NOEQUALS" in message
    assert "cannot parse task environment variable BAD" in refused("env: ['A=1,BAD']\nsteps:\n  - cmd: a\n")


def test_step_env_is_not_split_on_commas_but_task_env_is() -> None:
    result = p("env: ['A=1,B=2']\nsteps:\n  - cmd: a\n    env: ['C=3,4']\n")
    assert result.steps[0].env == ("C=3,4", "A=1", "B=2")


# ---------------------------------------------------------------------------------------- push names


def test_push_names_are_normalised_and_deduplicated() -> None:
    assert normalize_push(("a", "a:latest", "r.io/b@sha256:00", "localhost:5000/c", "d:1", "d:1")) == (
        "a:latest",
        "r.io/b@sha256:00",
        "localhost:5000/c",  # acr-builder only looks for a `:` anywhere: no `:latest` here
        "d:1",
    )


def test_push_as_an_inline_string_is_a_type_error() -> None:
    assert "cannot unmarshal !!str `x` into []string" in refused("steps:\n  - push: x\n")


# ---------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v2.0.0\nsteps:\n  - cmd: a\n", "invalid version specified: 'v2.0.0'"),
        ("steps:\n  - id: s\n    cmd: a\n    build: .\n", "step 's' (line 2): step must only contain a single build, cmd, or push property"),
        ("steps:\n  - id: s\n", "step 's' (line 2): step is missing a cmd, build, or push property"),
        ("steps:\n  - id: s\n    push: []\n", "step is missing a cmd, build, or push property"),
        ("steps:\n  - id: 'a b'\n    cmd: a\n", "step ID cannot contain spaces"),
        ("steps:\n  - id: s\n    cmd: a\n    retries: -1\n", "step 's' (line 2): step must specify retries >= 0"),
        ("steps:\n  - id: s\n    cmd: a\n    repeat: -1\n", "step must specify repeat >= 0"),
        ("steps:\n  - id: a\n    cmd: a\n  - id: s\n    cmd: b\n    when: ['-', a]\n", "step 's' (line 4): step cannot contain other IDs in when if the immediate execution token is specified"),
        ("steps:\n  - id: s\n    cmd: a\n    when: [s]\n", "Step ID: s is self-referenced"),
        ("steps:\n  - id: a\n    cmd: a\n    when: [b]\n  - id: b\n    cmd: b\n", "step 'a' (line 2): when: b does not exist as a vertex [from: b, to: a]"),
        ("steps:\n  - id: a\n    cmd: a\n  - id: a\n    cmd: b\n", "step 'a' (line 4): a already exists as a vertex"),
        ("steps:\n  - id: acb_root\n    cmd: a\n", "acb_root is a reserved ID"),
        ("steps:\n  - cmd: a\n  - cmd: b\n  - cmd: c\n    when: [acb_step_0, acb_step_0]\n", "when lists acb_step_0 more than once"),
        ("steps:\n  - cmd: a\n    when: ['']\n", "from cannot be empty"),
        ("steps:\n  - build: .\n    cache: maybe\n", "invalid value for cache property"),
        ("steps:\n  - cmd: a\n    timeout: abc\n", "line 3: cannot unmarshal !!str `abc` into int"),
        ("steps:\n  - cmd: a\n    detach: 'true'\n", "cannot unmarshal !!str `true` into bool"),
        ("steps:\n  - cmd: [a]\n", "cannot unmarshal !!seq into string"),
        ("steps: {cmd: a}\n", "cannot unmarshal !!map into []*graph.Step"),
        ("- cmd: a\n", "cannot unmarshal !!seq into graph.Task"),
        ("steps:\n  - cmd: a\n  -\n", "step 2 (acb_step_1) is empty"),
        ("steps:\n  - cmd: 'a\n", "invalid task file: yaml:"),
        ("steps:\n  - $notexpanded\n", "cannot unmarshal !!str `$notexpanded` into graph.Step"),
    ],
)  # fmt: skip
def test_refusals_name_the_step_and_cause(text: str, message: str) -> None:
    assert message in refused(text)


def test_the_first_error_is_acr_builders_first() -> None:
    # acr-builder merges env for every step before validating any step (initialize, then the DAG)
    text = "env: [A=1]\nsteps:\n  - id: first\n    cmd: a\n    build: b\n  - id: second\n    cmd: a\n    env: [BAD]\n"
    assert "step 'second'" in refused(text)
    # and checks the version before any step
    assert "invalid version" in refused("version: x\nsteps:\n  - cmd: a\n    build: b\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("secrets:\n  - id: s\nsteps:\n  - cmd: a\n", "secret should contain either keyvault property"),
        ("secrets:\n  - keyvault: https://v/x\nsteps:\n  - cmd: a\n", "secret is missing an ID"),
        ("secrets:\n  - id: 'a b'\n    keyvault: https://v/x\nsteps:\n  - cmd: a\n", "secret ID cannot contain spaces"),
        ("secrets:\n  - id: s\n    keyvault: https://v/x\n    clientID: nope\nsteps:\n  - cmd: a\n", "msi client ID is not a valid guid"),
        ("secrets:\n  - id: s\n    clientID: 12345678-1234-1234-1234-123456789012\nsteps:\n  - cmd: a\n", "secret should contain either keyvault"),
        ("secrets:\n  - id: s\n    keyvault: https://v/x\n  - id: s\n    keyvault: https://v/y\nsteps:\n  - cmd: a\n", "duplicate secret found with ID: s"),
        ("volumes:\n  - name: 'bad name'\n    secret: {a: YQ==}\nsteps:\n  - cmd: a\n", "volume name is not well formed"),
        ("volumes:\n  - name: v\nsteps:\n  - cmd: a\n", "currently only support for source type secret"),
        ("volumes:\n  - name: v\n    secret: {}\nsteps:\n  - cmd: a\n", "secret is empty"),
        ("volumes:\n  - name: v\n    secret: {'a/b': YQ==}\nsteps:\n  - cmd: a\n", "file name, a/b, is not well formed"),
        ("volumes:\n  - name: v\n    secret: {a: YQ==}\n  - name: v\n    secret: {a: YQ==}\nsteps:\n  - cmd: a\n", "volume with duplicate name found"),
        ("steps:\n  - id: s\n    cmd: a\n    volumeMounts: [{name: nope, mountPath: /x}]\n", "step 's' (line 2): mount name, nope, does not correspond to a volume"),
        ("volumes:\n  - name: v\n    secret: {a: YQ==}\nsteps:\n  - id: s\n    push: [x]\n    volumeMounts: [{name: v, mountPath: /x}]\n", "invalid use of Mounts"),
        ("volumes:\n  - name: v\n    secret: {a: YQ==}\nsteps:\n  - id: s\n    cmd: a\n    volumeMounts: [{name: v, mountPath: /x}, {name: v, mountPath: /x}]\n", "mount with duplicate container file path found"),
    ],
)  # fmt: skip
def test_secret_and_volume_refusals(text: str, message: str) -> None:
    assert message in refused(text)


def test_a_volume_file_that_is_not_base64_is_a_warning() -> None:
    result = p("volumes:\n  - name: v\n    secret: {a: 'not base64!'}\nsteps:\n  - cmd: a\n")
    assert any("file 'a' is not base64" in w for w in result.warnings)


def test_a_refusal_keeps_the_warnings_found_before_it() -> None:
    with pytest.raises(PlanError) as caught:
        p("typo: 1\nversion: bad\nsteps:\n  - cmd: a\n")
    assert any("unknown key 'typo'" in w for w in caught.value.warnings)


# ---------------------------------------------------------------------------------------- warnings


def test_unknown_keys_are_warnings_naming_line_and_step() -> None:
    result = p(
        """
        version: v1.0.0
        push: [x]
        steps:
          - id: test
            cmd: a
            continueOnError: true
          - cmd: b
            stepTimeOut: 10
        secrets:
          - id: s
            keyvault: https://v/s
            vault: x
        """
    )
    assert result.warnings == (
        "secret 's' has no value in this plan: it renders as an empty string",
        "line 3: task: unknown key 'push' is ignored (as acr-builder ignores it)",
        "line 7: step 'test': unknown key 'continueOnError' is ignored (as acr-builder ignores it)",
        "line 9: step 2 (acb_step_1): unknown key 'stepTimeOut' is ignored (as acr-builder ignores it)",
        "line 13: secrets: unknown key 'vault' is ignored (as acr-builder ignores it)",
    )


def test_secrets_are_visible_only_when_declared() -> None:
    text = """
        secrets:
          - id: token
            keyvault: https://vault/token
        steps:
          - cmd: ubuntu echo {{.Secrets.token}}-{{.Secrets.other}}
        """
    result = p(text, secrets={"token": "t0k", "other": "x"})
    assert result.steps[0].args == ("echo", "t0k-")
    assert any("'other' is not declared" in w for w in result.warnings)


def test_a_secret_keyvault_url_may_use_values() -> None:
    result = p(
        """
        secrets:
          - id: token
            keyvault: https://{{.Values.vault}}.vault.azure.net/secrets/t
        steps:
          - cmd: ubuntu echo {{.Secrets.token}}
        """,
        values={"vault": "kv"},
        secrets={"token": "t"},
    )
    assert result.secrets[0].keyvault == "https://kv.vault.azure.net/secrets/t"


# ---------------------------------------------------------------------------------------- build and cmd text


@pytest.mark.parametrize(
    ("text", "tags", "dockerfile", "context", "build_args", "target"),
    [
        ("-t a:1 -f Dockerfile.x .", ("a:1",), "Dockerfile.x", ".", (), None),
        (". -t a", ("a",), None, ".", (), None),
        ("-t a --no-cache ./app", ("a",), None, "./app", (), None),
        ("--tag=a --tag b -f=x.df sub", ("a", "b"), "x.df", "sub", (), None),
        ("-t a --build-arg K=V --build-arg ONLYKEY --build-arg=X=1 .", ("a",), None, ".", ("K=V", "ONLYKEY", "X=1"), None),
        ("-t a --target runtime --platform linux/arm64 .", ("a",), None, ".", (), "runtime"),
        ("-f Dockerfile https://github.com/o/r.git#main:app", (), "Dockerfile", "https://github.com/o/r.git#main:app", (), None),
        ("-t 'quoted name' \"ctx dir\"", ("quoted name",), None, "ctx dir", (), None),
        ("-t a", ("a",), None, ".", (), None),
    ],
)  # fmt: skip
def test_parse_build(
    text: str,
    tags: tuple[str, ...],
    dockerfile: str | None,
    context: str,
    build_args: tuple[str, ...],
    target: str | None,
) -> None:
    parsed = parse_build(text)
    assert (parsed.tags, parsed.dockerfile, parsed.context, parsed.build_args, parsed.target) == (
        tags,
        dockerfile,
        context,
        build_args,
        target,
    )


def test_unknown_build_flags_are_warnings() -> None:
    result = p("steps:\n  - build: -t a --frobnicate x .\n")
    assert any("--frobnicate" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("text", "flags", "image", "args", "operators"),
    [
        ("ubuntu echo hi", (), "ubuntu", ("echo", "hi"), ()),
        ("-e A=1 -w /src --entrypoint sh --rm -it ubuntu -c 'echo $A'", ("-e", "A=1", "-w", "/src", "--entrypoint", "sh", "--rm", "-it"), "ubuntu", ("-c", "echo $A"), ()),
        ("--env=A=1 alpine env", ("--env=A=1",), "alpine", ("env",), ()),
        ("img run-tests || true", (), "img", ("run-tests",), ("|| true",)),
        ("img make > /dev/null", (), "img", ("make",), ("> /dev/null",)),
        ("img a; img b && c", (), "img", ("a",), ("; img b", "&& c")),
        ("img 'a || b'", (), "img", ("a || b",), ()),
        ("-e ONLY", ("-e", "ONLY"), None, (), ()),
        ("ubuntu echo a\necho b\n", (), "ubuntu", ("echo", "a"), ("\n echo b",)),
        ("ubuntu sh -c 'a\nb'", (), "ubuntu", ("sh", "-c", "a\nb"), ()),
        ("-t reg/app:1", ("-t",), "reg/app:1", (), ()),
    ],
)  # fmt: skip
def test_parse_cmd(
    text: str, flags: tuple[str, ...], image: str | None, args: tuple[str, ...], operators: tuple[str, ...]
) -> None:
    parsed = parse_cmd(text)
    assert (parsed.run_flags, parsed.image, parsed.args, parsed.operators) == (flags, image, args, operators)


def test_an_unclosed_quote_in_cmd_is_a_warning() -> None:
    result = p('steps:\n  - cmd: "ubuntu echo \'oops"\n')
    assert any("unclosed quote" in w for w in result.warnings)


def test_buildkit_is_on_only_with_the_exact_env_entry() -> None:
    result = p("steps:\n  - build: .\n    env: [DOCKER_BUILDKIT=1]\n  - build: --build-arg DOCKER_BUILDKIT=1 .\n")
    assert [s.uses_buildkit for s in result.steps] == [True, False]


# ---------------------------------------------------------------------------------------- the JSON shape


def test_as_json_shape_per_type() -> None:
    result = p(
        """
        env: [K=V]
        steps:
          - id: build-web
            build: -t {{.Run.Registry}}/hello:{{.Run.ID}} -f hello.dockerfile --build-arg A=1 .
          - id: test
            cmd: {{.Run.Registry}}/hello:{{.Run.ID}}
          - id: push
            push: ["{{.Run.Registry}}/hello:{{.Run.ID}}"]
        """
    )
    data = result.as_json()
    assert list(data) == ["valid", "error", "version", "warnings", "steps"]
    build, test, push = data["steps"]
    assert build["tags"] == ["reg.example/hello:ca1"] and "images" not in build and "image" not in build
    expected_build = {
        "id": "build-web", "type": "build", "dependsOn": [], "tags": ["reg.example/hello:ca1"],
        "dockerfile": "hello.dockerfile", "context": ".", "buildArgs": ["A=1"], "target": None, "timeout": 600,
        "retries": 0, "retryDelay": 5, "repeat": 0, "ignoreErrors": False, "detach": False, "env": ["K=V"],
    }  # fmt: skip
    assert {k: build[k] for k in expected_build} == expected_build
    assert list(build)[: len(expected_build)] == list(expected_build)
    assert test["image"] == "reg.example/hello:ca1" and test["dependsOn"] == ["build-web"] and "tags" not in test
    assert push["images"] == ["reg.example/hello:ca1"] and push["dependsOn"] == ["test"] and "image" not in push


def test_decode_task_reads_only_the_first_document() -> None:
    task, _ = decode_task("steps:\n  - cmd: a\n---\nsteps: nonsense\n")
    assert len(task.steps) == 1
    with pytest.raises(DecodeError):
        decode_task("steps: [")


def test_line_numbers_are_the_files_even_after_comment_lines_and_the_alias_block() -> None:
    text = "# one\n# two\nversion: v1.1.0\nalias:\n  values:\n    a: b\nsteps:\n  # three\n  - id: s\n    cmd: x\n    typo: 1\n    timeout: abc\n"
    message = refused(text)
    assert "line 12: cannot unmarshal !!str `abc` into int" in message
    with pytest.raises(PlanError) as caught:
        p(text)
    assert caught.value.warnings == ("line 11: step 's': unknown key 'typo' is ignored (as acr-builder ignores it)",)
    assert "line 5: function" in refused("# c\nsteps:\n  # c\n  - cmd: x\n    env: [{{nofunc}}]\n")
    result = p("# c\nsteps:\n  - cmd: a\n  # c\n  - cmd: b\n")
    assert [s.line for s in result.steps] == [3, 5]


def test_line_numbers_after_templates_that_add_lines_name_the_rendered_file() -> None:
    text = "steps:\n{{- range .Values.l }}\n  - cmd: {{ . }}\n{{- end }}\n  - cmd: x\n    typo: 1\n"
    result = p(text, values={"l": ["a", "b", "c", "d"]})
    assert result.warnings == (
        "line 7 of the rendered file: step 5 (acb_step_4): unknown key 'typo' is ignored (as acr-builder ignores it)",
    )


def test_now_is_the_runs_start_time() -> None:
    result = p('steps:\n  - build: -t app:{{now | date "2006.01.02"}} .\n')
    assert result.steps[0].tags == ("app:2026.12.01",)


def test_nested_maps_in_values_are_refused_as_acr_builder_cannot_serialise_them() -> None:
    assert "failed to serialize Values" in refused("steps:\n  - cmd: a\n", values={"m": {"k": "v"}})
    assert p("steps:\n  - cmd: a {{.Values.l}}\n", values={"l": ["x", "y"]}).steps[0].args == ("[x", "y]")


# ---------------------------------------------------------------------------------------- checked against acr-builder itself
# Each expected value below is what acr-builder's own packages (graph, templating @ 90b22f3, built
# with Go and run on the same text with the same run variables) produce: the cmd after aliases and
# rendering, or the push images.


def _commands(result: Plan) -> list[tuple[str, object]]:
    return [(s.id, s.command if s.type == "cmd" else (s.images or s.tags)) for s in result.steps]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: v1.1.0\nsteps:\n  - cmd: $Registry/x:$ID$Date\n  - cmd: bash echo $$ID $ID$$ $ $$\n  - cmd: echo-$unknown$ID\n",
            [
                ("acb_step_0", "reg.example/x:ca120261201-060405z"),
                ("acb_step_1", "mcr.microsoft.com/acr/bash:2ff604c echo $ID ca1$ $ $"),
                ("acb_step_2", "echo-$unknown$ID"),
            ],
        ),
        (
            'version: "v1.1.0"\nsteps:\n  - cmd: az\n  - cmd: " bash  echo"\n  - cmd: acr purge --ago 1d\n  - cmd: ID\n',
            [
                ("acb_step_0", "mcr.microsoft.com/acr/azure-cli:2ff604c"),
                ("acb_step_1", "mcr.microsoft.com/acr/bash:2ff604c  echo"),
                ("acb_step_2", "mcr.microsoft.com/acr/acr-cli:0.19 purge --ago 1d"),
                ("acb_step_3", "{{.Run.ID}}"),  # a built-in alias name as the first word: its unrendered value
            ],
        ),
        (
            "version: v1.1.0\r\nsteps:\r\n  - cmd: bash echo $ID\r\n  # c\r\n  - push: [a]\r\n",
            [("acb_step_0", "mcr.microsoft.com/acr/bash:2ff604c echo ca1"), ("acb_step_1", ("a:latest",))],
        ),
        (
            'steps:\n  - cmd: |\n      ubuntu sh -c "\n      # dropped by acb, even inside a block scalar\n      echo hi"\n',
            [("acb_step_0", 'ubuntu sh -c "\necho hi"\n')],
        ),
        (
            "version: v1.1.0 # trailing\nsteps:\n  - cmd: bash echo $ID\n",
            [("acb_step_0", "mcr.microsoft.com/acr/bash:2ff604c echo ca1")],
        ),
        (
            "steps:\n  - cmd: bash echo $ID\nversion: v1.1.0\nalias:\n  values:\n    ID: override\n",
            [("acb_step_0", "mcr.microsoft.com/acr/bash:2ff604c echo override")],
        ),
        (
            "version: v1.1.0\nsteps:\n  - id: x\n    cmd: ubuntu echo $v\n    alias: inner\nalias:\n  # comment\n  values:\n    v: one\n\n  directive: $\n",
            [("x", "ubuntu echo one")],
        ),
        (
            "steps:\n  - cmd: 'ubuntu echo {{ .Run.ID }}'\n  - cmd: ubuntu {{\"{{\"}}.Id}}\n  - cmd: ubuntu docker inspect --format '{{.Id}}'\n",
            [
                ("acb_step_0", "ubuntu echo ca1"),
                ("acb_step_1", "ubuntu {{.Id}}"),
                ("acb_step_2", "ubuntu docker inspect --format ''"),
            ],
        ),
        (
            "version: v1.1.0\nalias:\n  values:\n    n: 5\n    b: true\n    e:\nsteps:\n  - cmd: x $n $b [$e]\n",
            [("acb_step_0", "x 5 true []")],
        ),
        (
            'version: v1.1.0\nalias:\n  directive: "€"\n  values:\n    a: A\nsteps:\n  - cmd: x €a €€a\n',
            [("acb_step_0", "x A €a")],
        ),
        (
            "steps:\n  - cmd: x\n    id: 123\n  - cmd: y\n    id: 1.50\n    when: ['123']\n",
            [("123", "x"), ("1.50", "y")],
        ),
    ],
)
def test_matches_acr_builder(text: str, expected: list[tuple[str, object]]) -> None:
    assert _commands(plan(text, RUN)) == expected


def test_yaml_merge_keys_as_go_yaml() -> None:
    (step,) = p("base: &b\n  timeout: 7\n  retries: 2\nsteps:\n  - <<: *b\n    cmd: x\n").steps
    assert (step.timeout, step.retries) == (7, 2)


def test_run_and_values_json_are_shell_quoted_go_json() -> None:
    result = p("steps:\n  - cmd: x {{ .RunJSON }} {{ .ValuesJSON }}\n", values={"a": "<&>", "b": "it's"})
    run_json = (
        '{"Architecture":"amd64","Branch":"main","Commit":"c0ffee","Date":"20261201-060405z","GitTag":"","ID":"ca1",'
        '"OS":"linux","OSVersion":"","Registry":"reg.example","RegistryName":"reg","Repository":"","SharedVolume":"",'
        '"TaskName":"","TriggeredBy":""}'
    )
    values_json = '{"a":"\\u003c\\u0026\\u003e","b":"it\'"\'"\'s"}'
    assert result.steps[0].command == f"x '{run_json}' '{values_json}'"


def test_printf_bad_verbs_as_go_prints_them() -> None:
    result = p(
        'steps:\n  - cmd: x {{ printf "%v|%s|%q|%05d" .Values.l .Values.n .Values.b .Values.n }}\n',
        values={"l": [1, "a"], "n": 42, "b": True},
    )
    assert result.steps[0].command == "x [1 a]|%!s(int=42)|%!q(bool=true)|00042"


def test_container_env_and_working_directory_as_acr_builders_docker_run_gives_them() -> None:
    result = p(
        """
        workingDirectory: src
        steps:
          - cmd: a
            env: ["A='quoted value'", B=plain]
          - cmd: b
            workingDirectory: /abs/../x
          - cmd: c
            disableWorkingDirectoryOverride: true
          - cmd: d
            env: [C=two words]
        """
    )
    a, b, c, _ = result.steps
    assert a.container_env == ("HOME=/acb/home", "A=quoted value", "B=plain")
    assert a.env == ("A='quoted value'", "B=plain")  # as acr-builder holds them
    assert (a.container_working_directory, b.container_working_directory) == ("/workspace/src", "/x")
    assert c.container_working_directory is None
    assert any("'C=two words' is split by the host shell" in w for w in result.warnings)
