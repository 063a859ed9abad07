"""Store maintenance: ``gc`` (0.1.2's call: what no reader can be served any more, in
every capability of the store), ``compact`` (the manifest) and ``cleanup_orphans`` (the
shared memory of deleted stores)."""

from __future__ import annotations

import logging
from typing import Optional

from .. import _core
from .._args import PathLike, int_arg, store_arg

logger = logging.getLogger(__name__)


def gc(
    *,
    secret_dir: Optional[PathLike] = None,
    dry_run: bool = True,
    keep_versions: int = _core.DEFAULT_KEEP_VERSIONS,
) -> list[_core.GcAction]:
    """Frees what no reader can be served any more, only inside this store:

    - payloads of versions whose TTL has run out;
    - superseded versions: all but the latest ``keep_versions`` per table and producer;
    - shared-memory segments sent with ``shm_unlink_on_read=True`` once a reader of ours
      has read them (send with ``shm_unlink_on_read=False`` to keep reading them);
    - leftovers of sends whose process died before finishing (an ``error`` line is
      appended for them) or that failed. A live sender's work is never touched;
    - shared arrays whose creator died and that no live process holds open
      (``transport`` ``"shared_array"``, see :class:`~..arrays.SharedArray`).
    - shared-memory segments of this user's deleted stores, whichever store this is
      (see :func:`cleanup_orphans`).
    - the same for named objects in every namespace (``table_name`` ``"<namespace>/<name>"``).

    ``dry_run=True`` (the default, as in 0.1.2) only reports. Returns the actions:
    ``{"action": "delete"|"skip"|"record", "transport", "locator", "table_name", "reason", "id",
    "scope"}`` (``skip``: a locator outside this store, never followed; ``record``: an
    ``error`` line appended for a dead sender's transfer; ``scope``: ``"store"`` for this
    store's, ``"orphan"`` for what deleted stores and dead loads left, which the gc of any
    store frees).

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).
        dry_run: Only report (the default, as in 0.1.2).
        keep_versions: Versions kept per table and producer (at least 1).

    Returns:
        The actions taken (or that would be).

    Raises:
        InvalidArgumentError: ``keep_versions`` below 1.
    """
    int_arg("keep_versions", keep_versions, minimum=1)
    actions = _core.gc(secret_dir=store_arg(secret_dir), dry_run=bool(dry_run), keep_versions=keep_versions)
    for a in actions:
        logger.info("gc %s%s %s %s (%s)", "would " if dry_run else "", a["action"], a["transport"], a["locator"], a["reason"])
    return actions


def cleanup_orphans(*, dry_run: bool = False) -> list[_core.GcAction]:
    """Frees the shared-memory segments that deleted stores left in ``/dev/shm`` (a
    store directory removed with ``rm -rf``, a test's temporary directory): segments
    live outside the store and would stay until reboot. Only this user's segments named
    by a store of ours whose directory no longer exists are touched, never those of a
    live store, of 0.1.2 (``psm_*``) or of any other program. ``adc cleanup`` on the
    command line; ``gc(dry_run=False)`` of any store does it too. Linux only (other
    systems cannot list their segments): elsewhere it finds nothing. Returns gc actions
    (``table_name`` and ``id`` empty; ``reason`` names the deleted store).

    Args:
        dry_run: Only report.

    Returns:
        The segments freed (or that would be).
    """
    actions = _core.collect_orphans(dry_run=bool(dry_run))
    for a in actions:
        logger.info("cleanup %s%s %s (%s)", "would " if dry_run else "", a["action"], a["locator"], a["reason"])
    return actions


def compact(*, secret_dir: Optional[PathLike] = None) -> _core.CompactReport:
    """Rewrites the manifest keeping only the lines that still mean something: ``ready``
    lines of live payloads, the latest ``error`` line per table and ``writing`` lines of
    unfinished sends. Atomic (written aside, renamed under the writers' lock), safe with
    concurrent readers and writers, ours and 0.1.2's. Run ``gc(dry_run=False)`` first to
    free superseded versions. Returns ``{"lines_before", "lines_after", "bytes_before",
    "bytes_after"}``.

    Args:
        secret_dir: The store directory (else ``$ALLYE_SECRET_DIR``, else ``~/.allye_secrets``).

    Returns:
        The manifest's lines and bytes before and after.
    """
    report = _core.compact(secret_dir=store_arg(secret_dir))
    logger.info("compacted the manifest: %d -> %d lines", report["lines_before"], report["lines_after"])
    return report
