"""Parameter types of ``adc`` options: sizes with units, timeouts."""

from __future__ import annotations

import re
from typing import Any, Optional

import click

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """``"128MiB"`` -> 134217728, ``"1GB"`` -> 10**9, ``"4096"`` -> 4096 (``KiB`` and
    friends are powers of 1024, ``KB`` or ``K`` powers of 1000)."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise click.BadParameter(f"{text!r} is not a size: use bytes or a unit, e.g. 4096, 64MiB, 1GB, 512KiB")
    value = float(m.group(1).replace("_", "")) * _SIZE_UNITS[unit]
    if value != int(value):
        raise click.BadParameter(f"{text!r} is not a whole number of bytes")
    return int(value)


class _Size(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


SIZE = _Size()
TIMEOUT = click.FloatRange(min=0)
