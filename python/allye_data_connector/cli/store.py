"""``adc`` commands on the store: ``gc``, ``cleanup`` (of deleted stores' shared memory),
``config`` (the settings) and ``demo``."""

from __future__ import annotations

import sys
from typing import Optional

import click

from .. import _core, errors
from ._app import Ctx, common_options, main, tables_api
from ._output import emit_json, print_table, transport_name


@main.command("gc")
@click.option("--delete", "delete", is_flag=True, help="Delete what would be freed (without it, gc only reports, as gc() does).")
@click.option("--dry-run", "dry_run", is_flag=True, help="Only report what would be deleted (the default).")
@click.option("--keep-versions", default=1, show_default=True, type=click.IntRange(min=1), help="Versions kept per table and producer.")
@common_options
@click.pass_obj
def gc_cmd(obj: Ctx, delete: bool, dry_run: bool, keep_versions: int) -> None:
    """Report, or with --delete free, what no reader can be served any more in this
    store: expired versions, superseded versions (all but the latest --keep-versions),
    shared memory sent to be read once and read, and what failed or dead senders left.

    Like gc() in Python, it only reports unless told to delete (gc(dry_run=False),
    `adc gc --delete`)."""
    if delete and dry_run:
        raise click.UsageError("--delete and --dry-run contradict each other; pass one")
    api = tables_api()
    actions = api.gc(secret_dir=obj.secret_dir, dry_run=not delete, keep_versions=keep_versions)
    if obj.json:
        emit_json(actions)
        return
    verb = "deleted" if delete else "would delete"
    store_scope, orphan_scope = _core.GC_SCOPES
    # This store's first, then what deleted stores and dead loads left (any store's gc frees it).
    for scope in (store_scope, orphan_scope):
        for a in actions:
            if a["scope"] != scope:
                continue
            what = {"delete": verb, "skip": "skipped", "record": "recorded a failed send of"}.get(a["action"], a["action"])
            table = f"{a['table_name']!r} " if a["table_name"] else ""  # a deleted store's segment has no table
            click.echo(f"{what} {table}{transport_name(a['transport'])} {a['locator']} ({a['reason']})")
    n = sum(a["action"] == "delete" and a["scope"] == store_scope for a in actions)
    left = sum(a["action"] == "delete" and a["scope"] == orphan_scope for a in actions)
    others = f"; and {left} leftovers of deleted stores and dead loads" if left else ""
    if delete:
        click.echo(f"{n} payloads of this store deleted" + (others + " freed" if left else ""))
    else:
        click.echo(f"{n} payloads of this store would be deleted" + (others + " would be freed" if left else "")
                   + ("; run `adc gc --delete` to delete them" if n or left else ""))


@main.command("cleanup")
@click.option("--dry-run", "dry_run", is_flag=True, help="Only report what would be freed.")
@common_options
@click.pass_obj
def cleanup_cmd(obj: Ctx, dry_run: bool) -> None:
    """Free the shared memory that deleted stores left behind (a store directory removed
    with rm -rf keeps its segments in /dev/shm until reboot). Touches only your segments
    of stores whose directory is gone: never a live store's, 0.1.2's or another
    program's. `adc gc --delete` of any store does it too."""
    actions = tables_api().cleanup_orphans(dry_run=dry_run)
    if obj.json:
        emit_json(actions)
        return
    verb = "would free" if dry_run else "freed"
    for a in actions:
        click.echo(f"{verb} {a['locator']} ({a['reason']})")
    stores = len({a["reason"] for a in actions})
    click.echo(f"{verb} {len(actions)} segments of {stores} deleted stores" if actions else "no segments of deleted stores")


@main.command("config")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Save a setting to the store's settings.yaml (sizes take units: max_shm_bytes=128MiB).")
@common_options
@click.pass_obj
def config_cmd(obj: Ctx, assignments: tuple[str, ...]) -> None:
    """Show the effective settings and where each value comes from (--set saves one)."""
    from .. import settings as _settings

    store = tables_api().store_path(obj.secret_dir)
    if assignments:
        file = _settings.settings_file(store)
        current = _settings.Settings.from_yaml(file) if file.exists() else _settings.Settings()
        known = set(_settings.ENV)
        for a in assignments:
            key, sep, value = a.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise click.BadParameter(f"{a!r}: use KEY=VALUE with KEY one of {', '.join(sorted(known))}", param_hint="--set")
            if key in _settings.SIZE_SETTINGS:
                try:
                    _settings.parse_setting(key, value, "--set")
                except errors.InvalidArgumentError as exc:  # a malformed size is bad usage, as --max-shm-bytes's
                    raise click.BadParameter(str(exc), param_hint="--set") from None
            setattr(current, key, _settings.parse_setting(key, value, "--set"))
        # Checked before it is saved: a value no send accepts never reaches the file.
        _settings.check(current, {k: "--set" if any(a.partition("=")[0].strip() == k for a in assignments)
                                  else str(file) for k in _settings.ENV})
        _settings.save(current, store)
    resolved = _settings.load(store)
    rows = [{"name": k, "value": getattr(resolved.settings, k), "source": resolved.sources[k], "env": _settings.ENV[k]} for k in _settings.ENV]
    if obj.json:
        emit_json({"store": str(store), "file": str(resolved.file), "settings": rows})
        return
    click.echo(f"store {store}  (file {resolved.file})")
    print_table(("setting", "value", "from", "environment variable"),
                 [[r["name"], repr(r["value"]), r["source"], r["env"]] for r in rows])


@main.command("demo")
@click.option("--secret-dir", "demo_dir", type=click.Path(file_okay=False),
              help="Store to run in (default: the global --secret-dir or $ALLYE_SECRET_DIR, else a temporary one).")
@click.option("--keep", is_flag=True, help="Leave the demo's tables in the store (to try adc ls / show / get on them).")
@click.option("--rows", default=1_000_000, show_default=True, type=click.IntRange(min=1), help="Rows of the big frame.")
@click.pass_obj
def demo_cmd(obj: Ctx, demo_dir: Optional[str], keep: bool, rows: int) -> None:
    """The README's main job: send real frames from this process, read them in another
    one, prove no copy was made, and clean up."""
    from ..demo import run

    sys.exit(run(secret_dir=demo_dir or obj.secret_dir, keep=keep, rows=rows))
