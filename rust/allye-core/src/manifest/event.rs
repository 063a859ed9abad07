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
    /// Segment name or absolute file path (or, inline, the payload itself).
    #[serde(serialize_with = "plain_str")]
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

/// A string written as it is when it needs no JSON escaping (base64, segment names,
/// most paths), else escaped as any other: serde_json looks up every byte of a string in
/// its escape table, which for an inline payload's 2 KB of base64 was a tenth of a small
/// put's instructions; a `RawValue`'s check is a word-at-a-time scan.
fn plain_str<S: serde::Serializer>(s: &str, ser: S) -> std::result::Result<S::Ok, S::Error> {
    const SHORT: usize = 64; // shorter ones cost less to escape than to check and copy
                             // A fold, not `any`: without the early exit the check compiles to vector code.
    let needs_escape = || s.bytes().fold(false, |found, b| found | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if s.len() >= SHORT && !needs_escape() {
        let mut quoted = String::with_capacity(s.len() + 2);
        quoted.push('"');
        quoted.push_str(s);
        quoted.push('"');
        if let Ok(raw) = serde_json::value::RawValue::from_string(quoted) {
            return raw.serialize(ser);
        }
    }
    ser.serialize_str(s)
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

    /// [`Event::to_line`] as the bytes an append writes, sized at once (an inline
    /// payload's locator is most of the line).
    pub fn to_line_bytes(&self) -> Result<Vec<u8>> {
        let locator = self.payload.as_ref().map_or(0, |p| p.locator.len());
        let mut line = Vec::with_capacity(locator + 512);
        serde_json::to_writer(&mut line, self)?;
        Ok(line)
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
    fn a_locator_is_written_as_serde_json_escapes_it_whatever_it_holds() {
        // Long plain ones take the unescaped path; quotes, backslashes, control and
        // non-ASCII characters, and short ones, the escaping one: the line must be the
        // same either way, and read back to the same string (and as a Python record).
        let long = "QUJD".repeat(40);
        let cases = [
            long.clone(),
            format!("{long}\\"),
            format!("{long}\\n"),
            format!("{long}\"n\""),
            format!("{long}\n"),
            format!("{long}\u{1}"),
            format!("{long}é✓"),
            format!("/dev/shm/{long}/\\x"),
            "short".to_string(),
            String::new(),
        ];
        for locator in cases {
            let mut ev = event("t", Status::Ready, "python", 1);
            ev.payload.as_mut().unwrap().locator = locator.clone();
            let line = String::from_utf8(ev.to_line_bytes().unwrap()).unwrap();
            let escaped = serde_json::to_string(&locator).unwrap();
            assert!(line.contains(&format!(r#""locator":{escaped},"#)), "{line}");
            assert_eq!(line, ev.to_line().unwrap());
            assert_eq!(Event::parse(line.as_bytes()).unwrap().payload.unwrap().locator, locator);
            let value = serde_json::to_value(&ev).unwrap();
            assert_eq!(value["payload"]["locator"], Value::String(locator));
        }
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
