"""The YAML network spec: loading with source locations, then validation into typed objects."""
