"""ACR multi-step task files (acr-builder's `acb exec`) turned into a plan, without a cluster.

The order is acr-builder's (cmd/acb/commands/exec/exec.go): comment lines dropped → `$` aliases
for `version >= "v1.1.0"` (`aliases`) → Go text/template rendering (`render`, with the functions of
`functions`) → YAML decoded with go-yaml's rules (`model`) → validation, defaults and the `when` DAG
(`plan`), with build and cmd text read as docker and the host shell read it (`arguments`). Pure: no
I/O but the alias `src` files a caller chooses to read. `hack/acb_oracle` compares it with
acr-builder's own packages.
"""
