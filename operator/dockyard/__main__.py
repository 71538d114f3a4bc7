"""`python -m dockyard`: run the operator as configured by `DOCKYARD_*` variables.

The same as `kopf run --standalone -m dockyard.main --liveness <endpoint>` with `-A` or
`--namespace`, with the settings read once here and handed to the startup handler in `memo`.
Exits 0 after SIGTERM/SIGINT once kopf has stopped; 2 if the settings are invalid.
`python -m dockyard plan FILE …` is the task-file dry run instead (see `dockyard.cli.plan`).
"""

from __future__ import annotations

import logging
import sys

# kopf imports the kubernetes package when it is installed (to accept its model objects), and that
# loads ~850 generated classes: about 15 MiB of the operator's memory, for nothing, since the
# operator talks to the API server through `core/apiserver.py`. A None entry makes that import fail
# as if the package were absent. The CLI (`dockyard.cli.main`) uses the package in its own process.
sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]

import kopf  # noqa: E402
from pydantic import ValidationError  # noqa: E402

import dockyard.main  # noqa: E402, F401  (registers the handlers; reads no setting)
from dockyard.cli.plan import main as plan_command  # noqa: E402
from dockyard.settings import MEMO_KEY, OperatorSettings, load_settings  # noqa: E402

_LOG_FORMATS = {"plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}


def configure_logging(config: OperatorSettings) -> None:
    verbose = config.log_level == "debug"
    kopf.configure(log_format=_LOG_FORMATS[config.log_format], verbose=verbose, quiet=config.log_level == "warning")
    if not verbose:
        # Kubernetes probes every few seconds; three INFO lines per probe would drown the log.
        for name in ("kopf.activities.probe", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main() -> int:
    if sys.argv[1:2] == ["plan"]:  # the task-file dry run (dockyard.cli.plan); needs no settings
        return plan_command(sys.argv[2:])
    try:
        config = load_settings()
    except ValidationError as error:
        print(f"dockyard: invalid settings\n{error}", file=sys.stderr)
        return 2
    configure_logging(config)
    kopf.run(
        standalone=True,
        clusterwide=not config.namespace,
        namespaces=[config.namespace] if config.namespace else [],
        liveness_endpoint=config.liveness_endpoint,
        memo=kopf.Memo({MEMO_KEY: config}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
