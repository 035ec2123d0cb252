"""The strategy file: schema, YAML loading and overrides, every section spec."""
