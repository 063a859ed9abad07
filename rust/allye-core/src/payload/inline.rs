//! Inline payloads: a small Arrow IPC stream carried, base64, in its `ready` line's
//! `locator` (transport [`crate::protocol::Transport::Inline`]).
//!
//! Only named objects' namespaces use them (see [`crate::objects`]), never the store's own
//! manifest that 0.1.2 and the widgets read. A put of a small object is then ONE locked
//! append: no `writing` line (nothing exists that a crash could leave behind), no segment
//! to create, write, map and later unlink, and a get decodes the bytes its lookup already
//! read. The line is the payload, so it lives exactly as long as the line: gc has nothing
//! to free, and a compaction keeps the line while it is its object's latest version.

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::payload::{write_options, Compression};

/// The batches as an IPC stream (as a segment holds them), base64: the `locator` of an
/// inline payload; and the stream's length in bytes (its `data_size`).
pub fn encode_inline(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(String, u64)> {
    let mut writer = StreamWriter::try_new_with_options(Vec::new(), schema, write_options(Compression::None)?)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner()?;
    Ok((base64_simd::STANDARD.encode_to_string(&bytes), bytes.len() as u64))
}

/// The IPC stream an inline `locator` holds, in a 64-byte aligned buffer (so that the
/// decoder wraps its buffers without copying them again).
pub(crate) fn decode_inline(locator: &str) -> std::result::Result<Buffer, String> {
    let b64 = base64_simd::STANDARD;
    let len = b64.decoded_length(locator.as_bytes()).map_err(|e| format!("bad base64: {e}"))?;
    let mut out = MutableBuffer::from_len_zeroed(len);
    let n = b64
        .decode(locator.as_bytes(), base64_simd::Out::from_slice(out.as_slice_mut()))
        .map_err(|e| format!("bad base64: {e}"))?
        .len();
    out.truncate(n);
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::decode_stream;
    use crate::payload::test_support::sample;

    #[test]
    fn an_inline_payload_decodes_to_the_batches_encoded() {
        let (schema, batch) = sample(50);
        let (locator, size) = encode_inline(&schema, std::slice::from_ref(&batch)).unwrap();
        let bytes = decode_inline(&locator).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(bytes.as_ptr() as usize % 64, 0);
        let decoded = decode_stream(bytes).unwrap();
        assert_eq!(decoded.schema, schema);
        assert_eq!(decoded.batches, vec![batch]);
    }

    #[test]
    fn a_damaged_inline_payload_is_an_error_not_data() {
        let (schema, batch) = sample(5);
        let (locator, _) = encode_inline(&schema, &[batch]).unwrap();
        assert!(decode_inline("not base64 at all!").is_err());
        let cut = decode_inline(&locator[..locator.len() / 2 / 4 * 4]).unwrap();
        assert!(decode_stream(cut).is_err(), "a truncated stream is refused");
    }
}
