"""Task-file runs on the Job-per-step path: the operator schedules a plan's steps as it would run
them on acr-builder, one Job per step attempt.

    steps.py      plan → the steps this path runs (pure; reuses the single-pod mapping)
    observe.py    the run's Jobs and pods → what each step attempt did (pure)
    decide.py     steps + attempts + clock → what to create, each step's status, the run's verdict (pure)
    manifests.py  the workspace claim, the pull secret, the step Jobs (pure, golden-tested)
    staging.py    the staging repository of a run's built images, and its clean-up (registry I/O)
    copy.py       the push step's program: staged image → final tags (runs in the step's pod)

The reconcile (`builds/reconcile.py`) only applies what `decide` returns; everything it creates has
a deterministic name, so a restart at any point creates nothing twice.
"""
