"""``adc``: the command line of allye_data_connector (click for parsing, rich for tables
and progress in a terminal; plain text when the output is piped or redirected).

:mod:`._app` is the group (errors as one line, exit codes, ``--json``/``--debug``/
``--secret-dir`` before or after a command); one module per group of commands registers
its commands on it: :mod:`.tables` (``ls``, ``show``, ``get``, ``send``, ``rm``,
``watch``), :mod:`.store` (``gc``, ``cleanup``, ``config``, ``demo``), :mod:`.sources`
(``load``, ``sources``), :mod:`.remote` (``serve``, ``pull``, ``push``), with the listings
of :mod:`.objects` and :mod:`.arrays`; :mod:`._output` prints, :mod:`._params` parses.

The package (pandas, pyarrow) is imported only by the commands that need it, so that
``adc --version`` and ``adc --help`` answer at once.
"""

from . import arrays, objects, remote, sources, store, tables  # noqa: F401  (each registers its commands)
from ._app import main

__all__ = ["main"]
