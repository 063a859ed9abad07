"""Telling a running Allye canvas that a table has landed (PROTOCOL.md, "Canvas notification").

A failed notification never fails the send: the outcome is logged (``debug`` when no
canvas is running, ``info``/``warning`` otherwise) and returned.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional
from urllib.request import Request, urlopen

from .. import _core
from ..errors import AllyeError

logger = logging.getLogger(__name__)

API_INFO_PATH = Path("~/.allye_secrets/allye_canvas_api.json")
LOAD_PATH = "/v1/data-receiver/load"


@functools.lru_cache(maxsize=8)
def _api_info_location(home: Optional[str]) -> tuple[str, str]:
    """The API file's name and folder for this ``$HOME`` (every send asks; pathlib's
    ``expanduser`` costs more than the read)."""
    path = API_INFO_PATH.expanduser()
    return path.name, str(path.parent)


def resolve_api_url() -> Optional[str]:
    """``$ALLYE_CANVAS_API_URL``, else ``base_url`` in ``~/.allye_secrets/allye_canvas_api.json``."""
    env = (os.environ.get("ALLYE_CANVAS_API_URL") or "").strip()
    if env:
        return env
    name, folder = _api_info_location(os.environ.get("HOME"))
    try:
        # Read under the store's trust rule: a file another user could have written
        # would send table names to their URL.
        raw = _core.read_store_file(name, secret_dir=folder)
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except AllyeError as exc:
        logger.warning("not notifying the canvas: %s", exc)
        return None
    except ValueError:
        return None
    base_url = str(data.get("base_url") or "").strip() if isinstance(data, dict) else ""
    return base_url or None


def notify_receiver(
    table_name: str,
    *,
    create_if_missing: bool = True,
    create_new: bool = True,
    refresh_manifest: bool = True,
    timeout_sec: float = 1.0,
) -> dict[str, Any]:
    """POSTs ``{base_url}/v1/data-receiver/load``; returns the canvas' answer or
    ``{"ok": False, "error": ...}``. Never raises."""
    base_url = resolve_api_url()
    if not base_url:
        logger.debug("no Allye canvas API configured; not notifying about %r", table_name)
        return {"ok": False, "error": "api_url_missing"}
    body = json.dumps(
        {
            "table_name": table_name,
            "create_if_missing": bool(create_if_missing),
            "create_new": bool(create_new),
            "refresh_manifest": bool(refresh_manifest),
        },
        ensure_ascii=False,
    ).encode("utf-8")
    req = Request(base_url.rstrip("/") + LOAD_PATH, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urlopen(req, timeout=timeout_sec) as resp:
            raw = resp.read()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        logger.debug("Allye canvas at %s not reachable (%s); load %r in the Receiver by hand", base_url, exc, table_name)
        return {"ok": False, "error": f"request_failed: {exc}"}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        logger.warning("Allye canvas answered with something that is not a JSON object")
        return {"ok": False, "error": "invalid_response"}
    data.setdefault("ok", False)
    if data["ok"]:
        logger.info(
            "Allye Data Receiver %s table %r",
            "created and loaded" if data.get("created") and data.get("loaded", True) else "loaded",
            table_name,
        )
    else:
        logger.warning(
            "Allye Data Receiver could not load %r (error=%s); load it by hand", table_name, data.get("error")
        )
    return data
