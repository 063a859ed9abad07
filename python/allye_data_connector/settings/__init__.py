"""Settings: the defaults of sends, reads and loads, from arguments, then environment
variables, then ``<store>/settings.yaml``, then built-in defaults (0.1.2's), and the
:class:`YamlConfig` dataclass base the settings file is written with."""

from .config import (
    ENV,
    SETTINGS_FILE,
    SIZE_SETTINGS,
    Resolved,
    Settings,
    check,
    effective,
    load,
    parse_setting,
    parse_size,
    save,
    settings_file,
)
from .config import shared as shared  # the package's own cached reads (not in __all__)
from .config import shared_for as shared_for
from .yaml_config import YamlConfig, read_mapping

__all__ = [
    "ENV",
    "SETTINGS_FILE",
    "SIZE_SETTINGS",
    "Resolved",
    "Settings",
    "YamlConfig",
    "check",
    "effective",
    "load",
    "parse_setting",
    "parse_size",
    "read_mapping",
    "save",
    "settings_file",
]
