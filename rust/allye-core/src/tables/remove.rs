//! Removing a table (see the module docs of [`crate::tables`]).

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::manifest::{self, Event};
use crate::payload::Target;
use crate::protocol::{
    check_table_name, Status, Transport, ADC_REMOVED, ADC_WRITER, DEFAULT_PRODUCER, METADATA_ERROR, METADATA_KEY,
    PROTOCOL_VERSION, REMOVED_REASON,
};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::time;

/// What [`remove`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Removal {
    /// The table removed.
    pub table_name: String,
    /// The id of the removal line.
    pub id: String,
    /// Payloads deleted (`transport`, `locator`).
    pub deleted: Vec<(Transport, String)>,
    /// Payloads left alone because they live outside this store.
    pub skipped: Vec<(Transport, String)>,
}

/// Removes a table: appends the removal line, then deletes the payloads of all its
/// versions that this store owns. `TableNotFound` when the manifest never mentions it.
pub fn remove(store: &Store, table: &str) -> Result<Removal> {
    check_table_name(table)?;
    let all = manifest::read_all(store)?;
    crate::payload::check_payload_dir(store)?;
    if !all.iter().any(|e| e.table_name == table) {
        return Err(Error::table_not_found(store.root(), table, None));
    }
    let id = crate::sys::ids::new_v4().to_string();
    let mut metadata = serde_json::Map::new();
    metadata.insert(METADATA_ERROR.into(), Value::String(REMOVED_REASON.into()));
    metadata.insert(METADATA_KEY.into(), json!({ADC_REMOVED: true, ADC_WRITER: WriterIdentity::current()}));
    let producer = all
        .iter()
        .rev()
        .find(|e| e.table_name == table)
        .map(|e| e.producer.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PRODUCER.into());
    let tombstone = Event {
        version: PROTOCOL_VERSION,
        id: id.clone(),
        table_name: table.into(),
        producer,
        status: Status::Error,
        created_at: time::now_iso(),
        ttl_sec: None,
        payload: None,
        metadata,
    };
    manifest::append(store, &tombstone, false)?;

    let mut deleted = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ev in all.iter().filter(|e| e.table_name == table && e.status == Status::Ready) {
        let Some(p) = ev.payload.as_ref() else { continue };
        if p.transport == Transport::Inline {
            continue; // the line is the payload: the removal line ends it
        }
        if !seen.insert((p.transport.clone(), p.locator.clone())) {
            continue;
        }
        let pair = (p.transport.clone(), p.locator.clone());
        let target = Target::of(p);
        if target.inside(store) != Some(true) {
            skipped.push(pair);
        } else if target.exists(store) {
            target.delete(store)?;
            deleted.push(pair);
        }
    }
    log::info!("removed table {table:?}: {} payloads deleted", deleted.len());
    Ok(Removal { table_name: table.into(), id, deleted, skipped })
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::manifest::{self, Event};
    use crate::protocol::{TableStateKind, TransportChoice, REMOVED_REASON};
    use crate::store::Store;
    use crate::tables::{get, latest, list, remove, send as send_table, state, states, SendOptions};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::path::Path;
    use std::sync::Arc;

    fn send(store: &Store, name: &str, transport: TransportChoice) -> Event {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10));
        let b = RecordBatch::try_new(schema.clone(), vec![n]).unwrap();
        let opts = SendOptions { table_name: Some(name.into()), transport, ..Default::default() };
        send_table(store, &schema, &[b], &opts).unwrap()
    }

    #[test]
    fn removal_hides_a_table_until_a_new_version_and_spares_outside_payloads() {
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
        assert!(!crate::sys::shm::exists(&s1.payload.as_ref().unwrap().locator));
        let t = state(&store, "t", None).unwrap();
        assert_eq!(t.state, TableStateKind::Removed);
        assert_eq!(t.error.as_deref(), Some(REMOVED_REASON));
        assert!(t.ready.is_none());
        assert!(matches!(latest(&store, "t", None), Err(Error::TableNotFound { .. })));
        assert!(matches!(get(&store, "t", None, true), Err(Error::TableNotFound { .. })));
        // The plain protocol lookup still finds the old ready line (as 0.1.2 would).
        assert_eq!(manifest::latest_ready(&store, "t", None).unwrap().unwrap().id, s1.id);
        assert!(latest(&store, "other", None).is_ok());
        let listed: Vec<String> = list(&store, None).unwrap().into_iter().map(|e| e.table_name).collect();
        assert_eq!(listed, ["other"], "list leaves a removed table out");
        // A new version brings the table back.
        let f2 = send(&store, "t", TransportChoice::File);
        assert_eq!(latest(&store, "t", None).unwrap().id, f2.id);
        assert_eq!(get(&store, "t", None, true).unwrap().0.id, f2.id);
        assert_eq!(state(&store, "t", None).unwrap().state, TableStateKind::Ready);
        assert!(matches!(remove(&store, "never"), Err(Error::TableNotFound { .. })));
        // A version whose payload lives outside the store: a get does not follow it (a
        // file payload is read from this store's payloads/ only), rm leaves the file
        // alone, and our readers treat the table as removed.
        let outside_dir = tmp.path().join("elsewhere");
        std::fs::create_dir(&outside_dir).unwrap();
        let f3 = send(&store, "ext", TransportChoice::File);
        let moved = outside_dir.join("ext.arrow");
        std::fs::rename(&f3.payload.as_ref().unwrap().locator, &moved).unwrap();
        let mut foreign = f3.clone();
        foreign.id = "foreign".into();
        foreign.payload.as_mut().unwrap().locator = moved.to_string_lossy().into();
        manifest::append(&store, &foreign, false).unwrap();
        assert_eq!(latest(&store, "ext", None).unwrap().id, "foreign");
        assert!(matches!(get(&store, "ext", None, true), Err(Error::PayloadMissing { .. })));
        let r = remove(&store, "ext").unwrap();
        assert_eq!(r.skipped.len(), 1);
        assert!(moved.exists());
        assert!(matches!(get(&store, "ext", None, true), Err(Error::TableNotFound { .. })));
        remove(&store, "t").unwrap();
        remove(&store, "other").unwrap();
    }
}
