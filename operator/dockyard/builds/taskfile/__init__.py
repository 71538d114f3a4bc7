"""ACR multi-step task files (acr-builder's `acb exec`) turned into a plan, without a cluster.

The order is acr-builder's (cmd/acb/commands/exec/exec.go): comment lines dropped → `$` aliases
for `version >= "v1.1.0"` (`aliases`) → Go text/template rendering (`render`) → YAML → validation,
defaults and the `when` DAG (`plan`, into the frozen models of `model`). Pure: no I/O but the
alias `src` files a caller chooses to read.
"""
