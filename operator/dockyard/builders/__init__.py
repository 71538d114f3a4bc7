"""Pure manifest builders: parsed models in, Kubernetes object dicts out. No I/O, no clock, no
randomness (callers pass generated values in), so every builder is golden-tested."""
