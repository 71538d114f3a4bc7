"""The images the Dockerfile describes and the chart points at: non-root everywhere, read-only root
filesystem friendly, the token service's slim image carrying just what `python -m dockyard.auth`
imports, and the chart's default tag following the package version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from dockyard.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _stages() -> dict[str, str]:
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].split(" AS ")[-1].strip(): part for part in parts}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_runtime_stages_run_as_a_numeric_non_root_user_with_writes_only_under_tmp_and_state() -> None:
    stages = _stages()
    assert list(stages)[-1] == "operator", "the operator must stay the default (last) target"
    for name in ("operator", "token-service"):
        stage = stages[name]
        assert re.search(r"^USER 10001:10001$", stage, re.MULTILINE), name
        assert "PYTHONDONTWRITEBYTECODE=1" in stage and "HOME=/tmp" in stage and "TMPDIR=/tmp" in stage, name
    for name in ("build", "token-build"):
        assert "compileall" in stages[name], f"{name}: bytecode compiled at build time (the root is read-only)"
        assert "uninstall -y -q pip setuptools" in stages[name], f"{name}: no installer in the image"


def test_the_token_service_image_installs_only_pyproject_dependencies() -> None:
    line = next(x for x in _stages()["token-build"].splitlines() if "pip install aiohttp" in x)
    wanted = {_name(word) for word in line.split("pip install", 1)[1].split() if word[0].isalpha()}
    declared = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    assert wanted <= declared | {"pydantic-core"}, wanted - declared


def test_the_token_service_imports_nothing_outside_its_slim_image() -> None:
    line = next(x for x in _stages()["token-build"].splitlines() if "pip install aiohttp" in x)
    slim = {_name(w).replace("-", "_") for w in line.split("pip install", 1)[1].split() if w[0].isalpha()}
    operator_only = {_name(d).replace("-", "_") for d in PYPROJECT["project"]["dependencies"]} - slim
    operator_only = {{"pyyaml": "yaml", "pyjwt": "jwt"}.get(m, m) for m in operator_only}
    probe = (
        "import sys, dockyard.auth.__main__, dockyard.auth.server;"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "aiohttp" in loaded and "jwt" in loaded
    assert not loaded & operator_only, f"the token service imports {loaded & operator_only}, missing from its image"


def test_the_charts_default_image_tag_is_the_package_version() -> None:
    version = PYPROJECT["project"]["version"]
    chart = yaml.safe_load((ROOT / "helm" / "dockyard" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "helm" / "dockyard" / "values.yaml").read_text())
    assert chart["appVersion"] == version
    assert values["image"]["tag"] == "", "an empty tag renders the chart's appVersion"
    assert OperatorSettings().operator_image.endswith(f":{version}")


def test_registry_pods_run_the_token_service_image_when_one_is_set() -> None:
    from dockyard.handlers.registry import _reconciler

    kube: Any = object()
    default = OperatorSettings(operator_image="example/dockyard:1")
    assert _reconciler(kube, default).token_image == "example/dockyard:1"
    slim = OperatorSettings(operator_image="example/dockyard:1", token_service_image="example/dockyard-token:1")
    assert _reconciler(kube, slim).token_image == "example/dockyard-token:1"
