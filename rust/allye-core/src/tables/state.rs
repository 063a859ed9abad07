//! What the Receiver shows before it loads anything: every table with its latest state,
//! the current versions (removed tables left out), and whether a table was removed.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gc::{is_consumed, unlink_on_read};
use crate::manifest::{self, Event, TableState};
use crate::protocol::{Status, TableStateKind, Transport, METADATA_ERROR};
use crate::store::Store;
use crate::sys::{shm, time};

/// True when the table was removed and no version has been sent since (a failed send
/// after the removal leaves it removed).
pub fn is_removed(state: &TableState) -> bool {
    state.removed
}

/// True when a removal follows the last `ready` line of `table` (from the index, see
/// [`manifest::is_removed`]).
pub(crate) fn is_removed_now(store: &Store, table: &str) -> Result<bool> {
    manifest::is_removed(store, table)
}

/// One table as the Receiver lists it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TableInfo {
    /// The table's name.
    pub table_name: String,
    /// The status of the last line, `removed`, or `consumed` (a current version sent to be
    /// read once and read).
    pub state: TableStateKind,
    /// `metadata.error` of the last line when it is an `error`.
    pub error: Option<String>,
    /// The last line of any status.
    pub latest: Option<Event>,
    /// The current version (last `ready` line), unless removed.
    pub ready: Option<Event>,
    /// Whether the current version is past its `expires_at`.
    pub expired: bool,
}

impl TableInfo {
    /// A streaming table that the manifest does not list (never published, or published
    /// before a removal and appended to since): ready, its listing as latest and current.
    pub(crate) fn stream(table: &str, listing: Event) -> Self {
        TableInfo {
            table_name: table.into(),
            state: TableStateKind::Ready,
            error: None,
            latest: Some(listing.clone()),
            ready: Some(listing),
            expired: false,
        }
    }
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
                let from_p =
                    st.latest.as_ref().is_some_and(|e| e.producer == p) || st.ready_by_producer.contains_key(p);
                if !from_p {
                    return None;
                }
            }
            Some(info(store, name, &st, producer))
        })
        .collect())
}

/// The state of one table, or `TableNotFound` when the manifest never mentions it.
pub fn state(store: &Store, table: &str, producer: Option<&str>) -> Result<TableInfo> {
    manifest::table_state(store, table)?
        .map(|st| info(store, table.to_string(), &st, producer))
        .ok_or_else(|| Error::table_not_found(store.root(), table, producer))
}

fn kind(status: &Status) -> TableStateKind {
    match status {
        Status::Writing => TableStateKind::Writing,
        Status::Ready => TableStateKind::Ready,
        Status::Error => TableStateKind::Error,
        other => TableStateKind::Other(other.as_str().to_string()),
    }
}

fn info(store: &Store, name: String, st: &TableState, producer: Option<&str>) -> TableInfo {
    let removed = is_removed(st);
    let latest = st.latest.as_deref().cloned();
    let mut state = if removed {
        TableStateKind::Removed
    } else {
        latest.as_ref().map_or(TableStateKind::Unknown, |e| kind(&e.status))
    };
    let error = latest
        .as_ref()
        .filter(|e| e.status == Status::Error)
        .and_then(|e| e.metadata.get(METADATA_ERROR))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let ready = if removed { None } else { st.ready_for(producer).cloned() };
    if state == TableStateKind::Ready && ready.as_ref().is_some_and(|ev| is_consumed(store, ev)) {
        state = TableStateKind::Consumed;
    }
    let expired =
        ready.as_ref().and_then(|e| e.payload.as_ref()).is_some_and(|p| time::is_expired(p.expires_at.as_deref()));
    TableInfo { table_name: name, state, error, latest, ready, expired }
}

/// The current `ready` event of every table (for that producer), sorted by table name;
/// removed tables are left out. What the store holds: a version listed here may be
/// expired or consumed (see [`list_readable`] for what a get can read).
pub fn list(store: &Store, producer: Option<&str>) -> Result<Vec<Event>> {
    Ok(manifest::latest_per_table(store)?
        .into_values()
        .filter(|t| !is_removed(t))
        .filter_map(|t| t.ready_for(producer).cloned())
        .collect())
}

/// Bytes held by the current versions [`list`] names (all producers), leaving out those
/// past their `expires_at` when `skip_expired`; summed in the index without copying it.
pub fn live_bytes(store: &Store, skip_expired: bool) -> Result<u64> {
    manifest::with_tables(store, |tables| {
        tables
            .values()
            .filter(|t| !is_removed(t))
            .filter_map(|t| t.ready.as_ref()?.payload.as_ref())
            .filter(|p| !(skip_expired && time::is_expired(p.expires_at.as_deref())))
            .map(|p| p.data_size)
            .sum()
    })
}

/// [`list`] without the versions a get refuses: expired ones, and those sent to be read
/// once (`shm_unlink_on_read`) that were read and whose segment gc has freed. A listing
/// names only what can be read ([`states`] names everything).
pub fn list_readable(store: &Store, producer: Option<&str>) -> Result<Vec<Event>> {
    Ok(list(store, producer)?.into_iter().filter(|ev| readable(store, ev)).collect())
}

/// Whether a get of `ev`, a current version, can read it as far as the log and the read
/// markers tell (a payload lost otherwise, say by a reboot, is the get's to report).
/// Costs nothing for a version without a TTL or `shm_unlink_on_read`.
pub fn readable(store: &Store, ev: &Event) -> bool {
    let Some(p) = ev.payload.as_ref() else { return true };
    if time::is_expired(p.expires_at.as_deref()) {
        return false;
    }
    !(p.transport == Transport::Shm && unlink_on_read(ev) && is_consumed(store, ev) && !shm::exists(&p.locator))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::{self, GcOptions};
    use crate::protocol::{TransportChoice, METADATA_SHM_UNLINK_ON_READ};
    use crate::tables::{get, send, SendOptions};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn a_listing_names_only_what_a_get_can_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("store"));
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10));
        let batch = RecordBatch::try_new(schema.clone(), vec![n]).unwrap();
        let mut once = SendOptions { transport: TransportChoice::Shm, ..SendOptions::named("once") };
        once.metadata.insert(METADATA_SHM_UNLINK_ON_READ.into(), true.into());
        send(&store, &schema, std::slice::from_ref(&batch), &once).unwrap();
        send(
            &store,
            &schema,
            std::slice::from_ref(&batch),
            &SendOptions { ttl_sec: Some(0), ..SendOptions::named("old") },
        )
        .unwrap();
        send(&store, &schema, std::slice::from_ref(&batch), &SendOptions::named("kept")).unwrap();
        let names = |evs: Vec<Event>| evs.into_iter().map(|e| e.table_name).collect::<Vec<_>>();
        std::thread::sleep(std::time::Duration::from_millis(1100)); // "old" expires
        assert_eq!(names(list_readable(&store, None).unwrap()), ["kept", "once"]);
        get(&store, "once", None, true).unwrap(); // read in full: consumed, still readable
        assert_eq!(names(list_readable(&store, None).unwrap()), ["kept", "once"]);
        gc::collect(&store, GcOptions::new(false, 1)).unwrap();
        assert!(get(&store, "once", None, true).is_err());
        assert_eq!(names(list_readable(&store, None).unwrap()), ["kept"]);
        assert_eq!(names(list(&store, None).unwrap()), ["kept", "old", "once"], "the current versions the log names");
        let states = states(&store, None).unwrap();
        let once = states.iter().find(|t| t.table_name == "once").unwrap();
        assert_eq!(once.state, TableStateKind::Consumed);
    }

    #[test]
    fn a_foreign_status_is_listed_as_written() {
        assert_eq!(kind(&Status::from_wire("paused")).as_str(), "paused");
        assert_eq!(serde_json::to_string(&kind(&Status::from_wire("paused"))).unwrap(), "\"paused\"");
        assert_eq!(kind(&Status::Ready), TableStateKind::Ready);
    }
}
