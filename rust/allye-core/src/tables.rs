//! What the Receiver shows before it loads anything (every table with its latest state),
//! and removing a table.
//!
//! ## Removing a table
//! Protocol v1 has no "removed" event. [`remove`] appends an `error` line for the table
//! (a new transfer id, `metadata.error = "removed by user"`, `metadata.adc.removed =
//! true`) — a line every reader already tolerates — and then deletes the payloads of
//! every version of that table that this store owns (files directly inside
//! `payloads/`, segments named by this manifest). What readers see afterwards:
//! * ours: the table's state is `removed`, `list` leaves it out, and a get raises
//!   `TableNotFound` (see [`is_removed`]) until a new version is sent;
//! * 0.1.2 and the widgets: the last `ready` line still exists, but its payload is gone,
//!   so a load fails with their "payload missing" error, and the latest state they may
//!   show is `error` with the reason "removed by user".

use serde::Serialize;
use serde_json::{json, Value};

use crate::connector::METADATA_KEY;
use crate::error::{Error, Result};
use crate::gc::Target;
use crate::manifest::{self, Event, TableState, STATUS_ERROR, STATUS_READY};
use crate::process::WriterIdentity;
use crate::store::Store;
use crate::time;

/// The reason written on a removal line.
pub const REMOVED_REASON: &str = "removed by user";

/// True for a removal line written by [`remove`].
pub fn is_tombstone(ev: &Event) -> bool {
    ev.status == STATUS_ERROR
        && ev
            .metadata
            .get(METADATA_KEY)
            .and_then(|m| m.get("removed"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// True when the table's last line is a removal: no version has been sent since.
pub fn is_removed(state: &TableState) -> bool {
    state.latest.as_ref().is_some_and(is_tombstone)
}

/// One table as the Receiver lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub table_name: String,
    /// `writing`, `ready`, `error` (status of the last line), or `removed`.
    pub state: String,
    /// `metadata.error` of the last line when it is an `error`.
    pub error: Option<String>,
    /// The last line of any status.
    pub latest: Option<Event>,
    /// The current version (last `ready` line), unless removed.
    pub ready: Option<Event>,
    /// Whether the current version is past its `expires_at`.
    pub expired: bool,
}

/// Every table in the store with its latest state, sorted by name (from the incremental
/// index: only bytes appended since the last look are read).
pub fn states(store: &Store, producer: Option<&str>) -> Result<Vec<TableInfo>> {
    let all = manifest::latest_per_table(store)?;
    Ok(all
        .into_iter()
        .filter_map(|(name, st)| {
            if let Some(p) = producer {
                // A table "belongs" to a producer when any of its lines came from it.
                let from_p = st.latest.as_ref().is_some_and(|e| e.producer == p) || st.ready_by_producer.contains_key(p);
                if !from_p {
                    return None;
                }
            }
            Some(info(name, &st, producer))
        })
        .collect())
}

/// The state of one table, or `TableNotFound` when the manifest never mentions it.
pub fn state(store: &Store, table: &str, producer: Option<&str>) -> Result<TableInfo> {
    manifest::table_state(store, table)?
        .map(|st| info(table.to_string(), &st, producer))
        .ok_or_else(|| Error::table_not_found(store, table, producer))
}

fn info(name: String, st: &TableState, producer: Option<&str>) -> TableInfo {
    let removed = is_removed(st);
    let latest = st.latest.clone();
    let state = if removed {
        "removed".to_string()
    } else {
        latest.as_ref().map_or_else(|| "unknown".into(), |e| e.status.clone())
    };
    let error = latest
        .as_ref()
        .filter(|e| e.status == STATUS_ERROR)
        .and_then(|e| e.metadata.get("error"))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let ready = if removed { None } else { st.ready_for(producer).cloned() };
    let expired = ready
        .as_ref()
        .and_then(|e| e.payload.as_ref())
        .is_some_and(|p| time::is_expired(p.expires_at.as_deref()));
    TableInfo {
        table_name: name,
        state,
        error,
        latest,
        ready,
        expired,
    }
}

/// The current `ready` event like [`crate::connector::latest`], but a table whose last
/// line is a removal is `TableNotFound`. Looks at the table's state (a copy of the
/// index) every time; [`get_live`] avoids that on the common path.
pub fn latest_live(store: &Store, table: &str, producer: Option<&str>) -> Result<Event> {
    let ev = crate::connector::latest(store, table, producer)?;
    if state(store, table, producer)?.state == "removed" {
        return Err(Error::table_not_found(store, table, producer));
    }
    Ok(ev)
}

/// [`crate::connector::get`] that honours removals. A removal deletes every payload
/// inside the store, so the table's state is only consulted when the payload is
/// missing or lives outside the store (which a removal does not delete). With
/// `record_read`, the read counts for `shm_unlink_on_read` (a load does; a look at the
/// schema does not).
pub fn get_live(store: &Store, table: &str, producer: Option<&str>, record_read: bool) -> Result<(Event, crate::payload::Decoded)> {
    let ev = crate::connector::latest(store, table, producer)?;
    let removed = || -> Result<bool> { Ok(state(store, table, producer)?.state == "removed") };
    let inside = ev.payload.as_ref().is_some_and(|p| Target::of(p).inside(store) == Some(true));
    if !inside && removed()? {
        return Err(Error::table_not_found(store, table, producer));
    }
    // `read_current` retries a version gc freed under it.
    match crate::connector::read_current(store, table, producer, ev) {
        Ok(got) => {
            if record_read {
                crate::connector::record_read(store, &got.0);
            }
            Ok(got)
        }
        Err(e @ Error::PayloadMissing { .. }) => {
            if removed()? {
                Err(Error::table_not_found(store, table, producer))
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// What [`remove`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub table_name: String,
    /// The id of the removal line.
    pub id: String,
    /// Payloads deleted (`transport`, `locator`).
    pub deleted: Vec<(String, String)>,
    /// Payloads left alone because they live outside this store.
    pub skipped: Vec<(String, String)>,
}

/// Removes a table: appends the removal line, then deletes the payloads of all its
/// versions that this store owns. `TableNotFound` when the manifest never mentions it.
pub fn remove(store: &Store, table: &str) -> Result<Removal> {
    crate::connector::validate_table_name(table)?;
    let all = manifest::read_all(store)?;
    if !all.iter().any(|e| e.table_name == table) {
        return Err(Error::table_not_found(store, table, None));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut metadata = serde_json::Map::new();
    metadata.insert("error".into(), Value::String(REMOVED_REASON.into()));
    metadata.insert(
        METADATA_KEY.into(),
        json!({"removed": true, "writer": WriterIdentity::current()}),
    );
    let producer = all
        .iter()
        .rev()
        .find(|e| e.table_name == table)
        .map(|e| e.producer.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::connector::DEFAULT_PRODUCER.into());
    let tombstone = Event {
        version: 1,
        id: id.clone(),
        table_name: table.into(),
        producer,
        status: STATUS_ERROR.into(),
        created_at: time::now_iso(),
        ttl_sec: None,
        payload: None,
        metadata,
    };
    manifest::append(store, &tombstone, false)?;

    let mut deleted = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ev in all.iter().filter(|e| e.table_name == table && e.status == STATUS_READY) {
        let Some(p) = ev.payload.as_ref() else { continue };
        if !seen.insert((p.transport.clone(), p.locator.clone())) {
            continue;
        }
        let pair = (p.transport.clone(), p.locator.clone());
        let target = Target::of(p);
        if target.inside(store) != Some(true) {
            skipped.push(pair);
        } else if target.exists() {
            target.delete(store)?;
            deleted.push(pair);
        }
    }
    log::info!("removed table {table:?}: {} payloads deleted", deleted.len());
    Ok(Removal {
        table_name: table.into(),
        id,
        deleted,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use super::*;
    use crate::connector::{self, SendOptions, TransportChoice};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn send(store: &Store, name: &str, transport: TransportChoice) -> Event {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10));
        let b = RecordBatch::try_new(schema.clone(), vec![n]).unwrap();
        let opts = SendOptions { table_name: Some(name.into()), transport, ..Default::default() };
        connector::send(store, &schema, &[b], &opts).unwrap()
    }

    #[test]
    fn states_and_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let f1 = send(&store, "t", TransportChoice::File);
        let s1 = send(&store, "t", TransportChoice::Shm);
        send(&store, "other", TransportChoice::File);
        let st = states(&store, None).unwrap();
        assert_eq!(st.iter().map(|t| t.state.as_str()).collect::<Vec<_>>(), ["ready", "ready"]);
        assert_eq!(state(&store, "t", None).unwrap().ready.unwrap().id, s1.id);
        assert!(matches!(state(&store, "nope", None), Err(Error::TableNotFound { .. })));

        let r = remove(&store, "t").unwrap();
        assert_eq!(r.deleted.len(), 2, "{r:?}");
        assert!(!Path::new(&f1.payload.as_ref().unwrap().locator).exists());
        assert!(!crate::shm::exists(&s1.payload.as_ref().unwrap().locator));
        let t = state(&store, "t", None).unwrap();
        assert_eq!(t.state, "removed");
        assert_eq!(t.error.as_deref(), Some(REMOVED_REASON));
        assert!(t.ready.is_none());
        assert!(matches!(latest_live(&store, "t", None), Err(Error::TableNotFound { .. })));
        assert!(matches!(get_live(&store, "t", None, true), Err(Error::TableNotFound { .. })));
        // The plain protocol lookup still finds the old ready line (as 0.1.2 would).
        assert_eq!(connector::latest(&store, "t", None).unwrap().id, s1.id);
        assert!(latest_live(&store, "other", None).is_ok());
        let listed: Vec<String> = connector::list(&store, None).unwrap().into_iter().map(|e| e.table_name).collect();
        assert_eq!(listed, ["other"], "list leaves a removed table out");
        // A new version brings the table back.
        let f2 = send(&store, "t", TransportChoice::File);
        assert_eq!(latest_live(&store, "t", None).unwrap().id, f2.id);
        assert_eq!(get_live(&store, "t", None, true).unwrap().0.id, f2.id);
        assert_eq!(state(&store, "t", None).unwrap().state, "ready");
        assert!(matches!(remove(&store, "never"), Err(Error::TableNotFound { .. })));
        // A version whose payload lives outside the store: rm leaves the file alone, but
        // our readers still treat the table as removed.
        let outside_dir = tmp.path().join("elsewhere");
        std::fs::create_dir(&outside_dir).unwrap();
        let f3 = send(&store, "ext", TransportChoice::File);
        let moved = outside_dir.join("ext.arrow");
        std::fs::rename(&f3.payload.as_ref().unwrap().locator, &moved).unwrap();
        let mut foreign = f3.clone();
        foreign.id = "foreign".into();
        foreign.payload.as_mut().unwrap().locator = moved.to_string_lossy().into();
        manifest::append(&store, &foreign, false).unwrap();
        assert_eq!(get_live(&store, "ext", None, true).unwrap().0.id, "foreign");
        let r = remove(&store, "ext").unwrap();
        assert_eq!(r.skipped.len(), 1);
        assert!(moved.exists());
        assert!(matches!(get_live(&store, "ext", None, true), Err(Error::TableNotFound { .. })));
        remove(&store, "t").unwrap();
        remove(&store, "other").unwrap();
    }
}
