//! Reading the payload a `ready` event names, where it lies.

use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::Event;
use crate::payload::{buffer_from_mapping, decode_file, decode_inline, decode_stream, map_file, Decoded};
use crate::protocol::Transport;
use crate::store::Store;
use crate::sys::shm;
use crate::sys::trust::Open;

/// Maps and decodes the payload of a `ready` event.
pub fn read_payload(store: &Store, ev: &Event) -> Result<Decoded> {
    let p = ev.payload.as_ref().ok_or_else(|| Error::InvalidArgument(format!("event {} has no payload", ev.id)))?;
    let missing = |reason: &str| Error::PayloadMissing {
        table: ev.table_name.clone(),
        transport: p.transport.to_string(),
        locator: p.locator.clone(),
        reason: reason.into(),
    };
    let corrupt =
        |reason: String| Error::PayloadCorrupt { table: ev.table_name.clone(), locator: p.locator.clone(), reason };
    match &p.transport {
        Transport::File => {
            // Read from this store's payloads/ under the locator's file name, never from
            // elsewhere: a store that was moved finds its files there, and a locator naming
            // a file outside the store (or a symbolic link in payloads/) is not followed.
            let name = Path::new(&p.locator).file_name().ok_or_else(|| missing("the locator names no file"))?;
            let path = store.payload_dir().join(name);
            let file = store
                .open_file(&path, Open::Read)?
                .ok_or_else(|| missing("the file does not exist (removed by gc?)"))?;
            let map = map_file(&file, &path)?;
            let buf = buffer_from_mapping(map);
            decode_file(&buf).map_err(corrupt)
        }
        Transport::Shm => {
            #[cfg(unix)]
            {
                let (map, size) = shm::open_map(&p.locator, p.data_size)?.ok_or_else(|| {
                    missing("the shared-memory segment does not exist (unlinked by gc, by a reboot, or by the resource tracker of a 0.1.2 process that opened it)")
                })?;
                if size < p.data_size {
                    return Err(corrupt(format!("segment holds {size} bytes, the manifest says {}", p.data_size)));
                }
                decode_stream(buffer_from_mapping(map)).map_err(corrupt)
            }
            #[cfg(windows)]
            {
                let (view, _) = shm::open_map(&p.locator, p.data_size)?
                    .ok_or_else(|| missing("the named mapping does not exist (its sender has exited)"))?;
                decode_stream(buffer_from_mapping(view)).map_err(corrupt)
            }
        }
        Transport::Inline => {
            let bytes = decode_inline(&p.locator).map_err(&corrupt)?;
            if (bytes.len() as u64) < p.data_size {
                return Err(corrupt(format!("the line holds {} bytes, it says {}", bytes.len(), p.data_size)));
            }
            decode_stream(bytes).map_err(corrupt)
        }
        other => Err(Error::UnknownTransport { table: ev.table_name.clone(), transport: other.to_string() }),
    }
}
