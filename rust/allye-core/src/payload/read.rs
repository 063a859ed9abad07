//! Reading the payload a `ready` event names, where it lies.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::manifest::Event;
use crate::payload::{buffer_from_mapping, decode_file, decode_stream, map_file, Decoded};
use crate::protocol::Transport;
use crate::store::Store;
use crate::sys::shm;

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
            let mut path = PathBuf::from(&p.locator);
            if !path.exists() {
                // The store may have been moved: look for the same file name in our payloads/.
                if let Some(name) = path.file_name() {
                    let here = store.payload_dir().join(name);
                    if here.exists() {
                        path = here;
                    }
                }
            }
            let map = map_file(&path)?.ok_or_else(|| missing("the file does not exist (removed by gc?)"))?;
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
        other => Err(Error::UnknownTransport { table: ev.table_name.clone(), transport: other.to_string() }),
    }
}
