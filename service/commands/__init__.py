"""The `creditwatch` command: ``main()``, the command registry, one module per command."""
