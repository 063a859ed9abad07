//! Arrow IPC payloads: writing a table into a segment (IPC stream) or a file (IPC file,
//! written under a temporary name and renamed when complete), and reading them back
//! without copying: the segment or the file is mapped and arrow-rs decodes buffers that
//! point into the mapping (they own it through an `Arc`).
//!
//! Writing costs one copy, into the page cache: arrow-ipc (59.3+) writes each body buffer
//! straight from the caller's memory with one `write(2)` through the descriptor (the
//! `BufWriter` only gathers the small message headers and padding; larger writes pass
//! through it). On Linux that is cheaper than filling a fresh mapping, whose first-touch
//! page faults cost several times a `write` of the same bytes.
//!
//! Record batches: an uncompressed payload is ONE record batch by default, however many
//! the caller hands over ([`write_one_batch`]; a segment's batches are joined), because a
//! reader converting a multi-batch payload to NumPy columns must concatenate the batches
//! (a full copy), while a single batch is wrapped as is; compressed files, which are
//! decompressed on read anyway, keep 0.1.2's `chunk_rows` batches so that one batch at a
//! time is (de)compressed; `chunk_rows == 0` keeps the batches as given.

mod file;
mod inline;
mod ipc;
mod locator;
mod mapping;
pub(crate) mod nan;
mod place;
mod read;
mod stream;

pub use crate::protocol::Compression;
pub use file::{decode_file, temp_name_for, temp_path_for, write_file, write_file_from};
pub(crate) use inline::decode_inline;
pub use inline::encode_inline;
pub(crate) use ipc::write_options;
pub use ipc::{chunked, joined};
pub(crate) use locator::{check_payload_dir, payload_dir, Target};
pub use mapping::{buffer_from_mapping, map_file};
pub use place::{placeable, stream_schema, variable_width, write_one_batch, PlacedFile};
pub use read::read_payload;
pub use stream::decode_stream;
#[cfg(unix)]
pub use stream::write_segment;
#[cfg(target_os = "linux")]
pub use stream::{prefill_pooled, publish_prefilled, write_segment_pooled, Prefilled};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// A decoded payload: its schema and batches. The batches' buffers point into the
/// mapping, which lives as long as any of them.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The payload's schema.
    pub schema: SchemaRef,
    /// Its record batches.
    pub batches: Vec<RecordBatch>,
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    pub(crate) fn sample(rows: i64) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("f", DataType::Float64, true),
            Field::new("i", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let f: ArrayRef =
            Arc::new(Float64Array::from_iter((0..rows).map(|v| if v % 7 == 0 { None } else { Some(v as f64 * 0.5) })));
        let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let s: ArrayRef =
            Arc::new(StringArray::from_iter((0..rows).map(|v| if v % 5 == 0 { None } else { Some(format!("ü{v}")) })));
        (schema.clone(), RecordBatch::try_new(schema, vec![f, i, s]).unwrap())
    }

    /// A test's temporary directory as a trusted directory (a `tempdir` is 0700 and ours).
    pub(crate) fn trusted(dir: &std::path::Path) -> crate::sys::trust::TrustedDir {
        crate::sys::trust::TrustedDir::open_root(dir).unwrap().unwrap()
    }

    pub(crate) fn concat(d: &Decoded) -> RecordBatch {
        arrow_select::concat::concat_batches(&d.schema, &d.batches).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{sample, trusted};
    use super::*;
    use arrow_buffer::Buffer;
    use arrow_ipc::writer::StreamWriter;
    use std::fs;

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(2000);
        let path = tmp.path().join("t.arrow");
        write_file(
            &trusted(tmp.path()),
            "t.arrow",
            &schema,
            std::slice::from_ref(&batch),
            500,
            Compression::None,
            false,
        )
        .unwrap();
        let bytes = fs::read(&path).unwrap();
        for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_file(&Buffer::from_vec(bytes[..cut].to_vec())).is_err(), "cut {cut}");
        }
        // Flip bytes all over the file: every outcome is Ok or Err, never a panic.
        let mut state = 0x2545F4914F6CDD1Du64;
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % b.len();
                b[i] = (state >> 32) as u8;
            }
            let _ = decode_file(&Buffer::from_vec(b));
        }
        let mut sw = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        sw.write(&batch).unwrap();
        sw.finish().unwrap();
        let stream = sw.into_inner().unwrap();
        for cut in [0, 3, 50, stream.len() / 2, stream.len() - 4] {
            assert!(decode_stream(Buffer::from_vec(stream[..cut].to_vec())).is_err(), "cut {cut}");
        }
    }
}
