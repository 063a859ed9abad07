//! The event model: one manifest line, parsed leniently (as 0.1.2 tolerates) and
//! serialised compactly in the protocol's field order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::protocol::{Status, Transport, ADC_REMOVED, METADATA_KEY};

/// One manifest line. Field order is the protocol's; serialisation is compact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Protocol version (1).
    pub version: i64,
    /// The transfer's id (shared by its `writing` and `ready`/`error` lines).
    pub id: String,
    /// The table's name.
    pub table_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    /// Who sent it.
    pub producer: String,
    /// What the line says.
    pub status: Status,
    /// When the transfer started (protocol timestamp).
    pub created_at: String,
    /// Seconds the version is served.
    #[serde(default)]
    pub ttl_sec: Option<i64>,
    #[serde(default)]
    /// The payload of a `ready` line.
    pub payload: Option<PayloadRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    /// Free-form metadata (ours under `adc`).
    pub metadata: Map<String, Value>,
}

/// The `payload` object of a `ready` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadRef {
    /// How the payload travels.
    pub transport: Transport,
    /// Segment name or absolute file path.
    pub locator: String,
    /// Bytes of IPC data.
    pub data_size: u64,
    #[serde(default)]
    /// `(rows, columns)`.
    pub shape: [u64; 2],
    #[serde(default, deserialize_with = "null_as_default")]
    /// The sender's schema hash.
    pub schema_sha256: String,
    #[serde(default, deserialize_with = "null_as_default")]
    /// When the payload was created.
    pub created_at: String,
    /// When the version stops being served.
    #[serde(default)]
    pub expires_at: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Event {
    /// A `ready` line with its payload.
    pub fn is_ready(&self) -> bool {
        self.status == Status::Ready && self.payload.is_some()
    }

    /// True for a removal (ours): an `error` line whose `metadata.adc.removed` is true.
    pub fn is_removal(&self) -> bool {
        self.status == Status::Error
            && self
                .metadata
                .get(METADATA_KEY)
                .and_then(|m| m.get(ADC_REMOVED))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// The compact JSON line (without the `\n`).
    pub fn to_line(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses one line; `None` for anything that is not a v1-shaped event.
    pub fn parse(line: &[u8]) -> Option<Event> {
        let line = trim_ascii(line);
        if line.is_empty() || line[0] != b'{' {
            return None;
        }
        serde_json::from_slice(line).ok()
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::test_support::event;

    #[test]
    fn serialises_like_python_json_dumps_compact() {
        let mut ev = event("tä", Status::Ready, "python", 3);
        ev.metadata.insert("shm_unlink_on_read".into(), Value::Bool(true));
        let line = ev.to_line().unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"id":"id-3","table_name":"tä","producer":"python","status":"ready","created_at":"2025-12-18T12:34:56+0900","ttl_sec":null,"payload":{"transport":"file_arrow_ipc_v1","locator":"/x/3.arrow","data_size":3,"shape":[3,1],"schema_sha256":"","created_at":"2025-12-18T12:34:56+0900","expires_at":null},"metadata":{"shm_unlink_on_read":true}}"#
        );
        assert_eq!(Event::parse(line.as_bytes()).unwrap(), ev);
    }

    #[test]
    fn parses_lenient_and_rejects_garbage() {
        // 0.1.2 tolerates a missing producer and null metadata.
        let ev = Event::parse(br#"{"version":1,"id":"a","table_name":"t","status":"writing","created_at":"x","ttl_sec":null,"payload":null,"metadata":null}"#).unwrap();
        assert_eq!(ev.producer, "");
        for bad in [
            &b""[..],
            b"garbage",
            b"{\"version\":1",
            br#"{"version":"one","id":"a","table_name":"t","status":"ready","created_at":"x"}"#,
            br#"{"version":1,"id":"a","table_name":5,"status":"ready","created_at":"x"}"#,
            br#"[1,2,3]"#,
        ] {
            assert!(Event::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
