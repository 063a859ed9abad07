"""panoply-python-sdk's API on allye_data_connector: switch by changing one import.

# --- sources: panoply's DataSource (issue 15) ---
``DataSource`` keeps panoply's contract (``__init__(source, options)``, ``read(n)``,
``close()``, ``log(*msgs)``, ``progress(loaded, total, msg)``, ``state(state_id, state)``,
``raw(tag, raw, metadata)``, ``on``/``fire`` events, class or module ``CONFIG`` and
``Stream``) and runs with :func:`allye_data_connector.load` into the store::

    from allye_data_connector.compat.panoply import DataSource   # was: from panoply import DataSource
    import allye_data_connector as adc

    adc.load(MyDataSource({"user": "me"}, {}), "my_table")

Differences: ``log()`` goes through ``logging`` (logger
``allye_data_connector.sources.<Class>``) unless ``options["logger"]`` is given, and masks
the values of parameters marked ``"secret": True``; the OAuth token decorators
(``validate_token``) are not provided.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping, Optional

from .. import sources as _sources


class DataSource(_sources.DataSource):
    """panoply's ``DataSource`` base class (see the module docs)."""

    def __init__(self, source: Mapping[str, Any], options: Optional[Mapping[str, Any]] = None):
        super().__init__(source, options)
        # panoply sources update their own parameters (a refreshed token) in place.
        if isinstance(source, dict):
            self.source = source
        if isinstance(options, dict):
            self.options = options

    def raw(self, tag: str, raw: bytes, metadata: Any) -> dict[str, Any]:
        """A raw response object, as panoply's ``raw()`` makes it."""
        return {"type": "raw", "tag": tag, "raw": base64.b64encode(raw), "metadata": metadata}


__all__ = ["DataSource"]
