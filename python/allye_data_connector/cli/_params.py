"""Parameter types of ``adc`` options: sizes with units, timeouts."""

from __future__ import annotations

from typing import Any, Optional

import click

def parse_size(text: str) -> int:
    """``"128MiB"`` -> 134217728, ``"1GB"`` -> 10**9 (the settings' rule,
    :func:`~..settings.parse_size`), a bad size as ``click.BadParameter``."""
    from ..errors import InvalidArgumentError
    from ..settings import parse_size as parse

    try:
        return parse(text)
    except InvalidArgumentError as exc:
        raise click.BadParameter(str(exc)) from None


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
