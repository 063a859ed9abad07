"""Shared arrays, the ataraxis shim and YamlConfig (a package, so its conftest does not shadow tests/conftest.py)."""
