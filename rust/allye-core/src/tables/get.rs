//! The one get: the current version of a table, removal- and expiry-aware, read where
//! it lies (zero-copy), retried when gc frees a version under the reader.

use crate::error::{Error, Result};
use crate::gc::{is_consumed, mark_read, unlink_on_read};
use crate::manifest::{self, Event};
use crate::payload::{read_payload, Decoded};
use crate::protocol::{Transport, TRANSPORT_SHM};
use crate::store::Store;
use crate::sys::time;
use crate::tables::state::is_removed_now;

/// The last `ready` event of a table (for that producer) that has not expired, without
/// looking at removals: the protocol's own lookup, one index read.
fn current_ready(store: &Store, table: &str, producer: Option<&str>) -> Result<Event> {
    unexpired(store, table, producer, manifest::latest_ready(store, table, producer)?)
}

/// `found`, the last `ready` event of a table, unless there is none (`TableNotFound`) or
/// it has expired (`Expired`).
fn unexpired(store: &Store, table: &str, producer: Option<&str>, found: Option<Event>) -> Result<Event> {
    let ev = found.ok_or_else(|| Error::table_not_found(store.root(), table, producer))?;
    let expires_at = ev.payload.as_ref().and_then(|p| p.expires_at.as_deref());
    if time::is_expired(expires_at) {
        return Err(Error::Expired { table: table.into(), expires_at: expires_at.unwrap_or_default().to_string() });
    }
    Ok(ev)
}

/// The current `ready` event of a table: `TableNotFound` when there is none or the table
/// was removed since, `Expired` when its TTL has run out.
pub fn latest(store: &Store, table: &str, producer: Option<&str>) -> Result<Event> {
    let (found, removed) = manifest::latest_ready_and_removed(store, table, producer)?;
    let ev = unexpired(store, table, producer, found)?;
    if removed {
        return Err(Error::table_not_found(store.root(), table, producer));
    }
    Ok(ev)
}

/// Gets the current version of a table: its `ready` event and its decoded data, whose
/// buffers point into the mapped segment or file. A removed table is `TableNotFound`, an
/// expired one `Expired`. With `record_read`, the read counts for `shm_unlink_on_read`
/// (a load does; a look at the schema does not).
///
/// The latest `ready` line and whether a removal followed it come from one read of the
/// manifest index (a removal does not delete a payload outside the store, nor one
/// inside its line).
pub fn get(store: &Store, table: &str, producer: Option<&str>, record_read: bool) -> Result<(Event, Decoded)> {
    // The store path is checked once for the whole get (see `Store::pin`).
    let store = &store.pin(false)?;
    let (found, removed) = manifest::latest_ready_and_removed(store, table, producer)?;
    let ev = unexpired(store, table, producer, found)?;
    if removed {
        return Err(Error::table_not_found(store.root(), table, producer));
    }
    match read_current(store, table, producer, ev) {
        Ok(got) => {
            if record_read {
                self::record_read(store, &got.0);
            }
            Ok(got)
        }
        Err(e @ Error::PayloadMissing { .. }) => {
            if is_removed_now(store, table)? {
                Err(Error::table_not_found(store.root(), table, producer))
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Reads `ev`, the current version of `table` as [`current_ready`] found it. A version can be
/// freed by gc (superseded) between the lookup and the open; the lookup is then
/// repeated, so a reader always gets one complete version while writers and gc run.
fn read_current(store: &Store, table: &str, producer: Option<&str>, mut ev: Event) -> Result<(Event, Decoded)> {
    const ATTEMPTS: usize = 20;
    for _ in 1..ATTEMPTS {
        match read_payload(store, &ev) {
            Err(Error::PayloadMissing { .. }) => {
                let now = current_ready(store, table, producer)?;
                if now.id == ev.id {
                    break; // really gone: report it below
                }
                ev = now;
            }
            other => {
                let decoded = explain_missing(store, &ev, other)?;
                return Ok((ev, decoded));
            }
        }
    }
    let decoded = explain_missing(store, &ev, read_payload(store, &ev))?;
    Ok((ev, decoded))
}

/// Records that the payload of `ev` was loaded: gc unlinks a segment sent with
/// `shm_unlink_on_read=True` once it has been read.
pub fn record_read(store: &Store, ev: &Event) {
    if let Some(p) = ev.payload.as_ref() {
        if p.transport == Transport::Shm && unlink_on_read(ev) {
            mark_read(store, &p.locator);
        }
    }
}

/// Says why a segment flagged `shm_unlink_on_read` may be gone: consumed (a full load of
/// ours left its read marker and gc freed it), or possibly so.
fn explain_missing(store: &Store, ev: &Event, read: Result<Decoded>) -> Result<Decoded> {
    read.map_err(|e| match e {
        Error::PayloadMissing { table, transport, locator, reason }
            if transport == TRANSPORT_SHM && unlink_on_read(ev) =>
        {
            let reason = if is_consumed(store, ev) {
                "it was sent to be read once (shm_unlink_on_read=True), has been read, and gc() freed it; \
                 to read a table many times, send it with shm_unlink_on_read=False (adc send --keep-after-read)"
                    .to_string()
            } else {
                format!("{reason}; it was sent with shm_unlink_on_read=True, which lets gc() unlink it once read (send with shm_unlink_on_read=False to read it repeatedly)")
            };
            Error::PayloadMissing { table, transport, locator, reason }
        }
        e => e,
    })
}
