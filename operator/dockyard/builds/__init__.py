"""Image builds: BuildRuns as Kaniko Jobs, run IDs, run status, logs kept after the pod is gone, and
the quick-build context (packed by the CLI, fetched by the build pod)."""
