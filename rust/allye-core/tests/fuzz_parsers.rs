//! Property tests (proptest) of the two parsers that read what other processes wrote:
//! the manifest line parser and the payload opener. Whatever the bytes, they return a
//! value or an error: no panic, no crash, and data they accept is valid Arrow.

use std::io::Write;
use std::sync::Arc;

use allye_core::manifest::{self, Event};
use allye_core::payload::{self, Compression};
use allye_core::Store;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;

const VALID: &str = r#"{"version":1,"id":"0b5c4a3e-7f55-4d7e-9a57-2b0c0c6b2f11","table_name":"iris","producer":"python","status":"ready","created_at":"2025-12-18T12:34:56+0900","ttl_sec":60,"payload":{"transport":"file_arrow_ipc_v1","locator":"/s/payloads/x.arrow","data_size":1234,"shape":[150,5],"schema_sha256":"ab","created_at":"2025-12-18T12:34:56+0900","expires_at":"2025-12-18T12:35:56+0900"},"metadata":{"shm_unlink_on_read":true}}"#;

fn sample() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("f", DataType::Float64, true),
        Field::new("i", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let f: ArrayRef = Arc::new(Float64Array::from_iter((0..300).map(|v| (v % 7 != 0).then_some(v as f64))));
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..300));
    let s: ArrayRef = Arc::new(StringArray::from_iter((0..300).map(|v| (v % 5 != 0).then(|| format!("ü{v}")))));
    (schema.clone(), RecordBatch::try_new(schema, vec![f, i, s]).unwrap())
}

/// Valid IPC file bytes (3 batches, uncompressed or zstd) and IPC stream bytes.
fn payloads() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static P: std::sync::OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (schema, batch) = sample();
        let trusted = allye_core::sys::trust::TrustedDir::open_root(dir.path()).unwrap().unwrap();
        let plain = dir.path().join("plain.arrow");
        payload::write_file(
            &trusted,
            "plain.arrow",
            &schema,
            std::slice::from_ref(&batch),
            100,
            Compression::None,
            false,
        )
        .unwrap();
        let zstd = dir.path().join("zstd.arrow");
        payload::write_file(
            &trusted,
            "zstd.arrow",
            &schema,
            std::slice::from_ref(&batch),
            100,
            Compression::Zstd,
            false,
        )
        .unwrap();
        let mut stream = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema).unwrap();
        stream.write(&batch).unwrap();
        stream.finish().unwrap();
        (std::fs::read(plain).unwrap(), std::fs::read(zstd).unwrap(), stream.into_inner().unwrap())
    })
}

/// A mutation of `bytes`: some bytes overwritten, then maybe truncated or extended.
fn mutate(bytes: &[u8], flips: &[(usize, u8)], cut: Option<usize>, extra: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for &(i, v) in flips {
        let n = b.len();
        if n > 0 {
            b[i % n] = v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b.extend_from_slice(extra);
    b
}

fn check_decoded(d: &payload::Decoded) {
    for batch in &d.batches {
        for col in batch.columns() {
            col.to_data().validate_full().expect("an accepted payload holds valid Arrow data");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn line_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Event::parse(&bytes);
    }

    #[test]
    fn line_parser_on_mutated_lines(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                                    cut in proptest::option::of(any::<usize>())) {
        let line = mutate(VALID.as_bytes(), &flips, cut, b"");
        if let Some(ev) = Event::parse(&line) {
            // Whatever parses serialises back and parses to the same event.
            let again = Event::parse(ev.to_line().unwrap().as_bytes()).unwrap();
            prop_assert_eq!(again, ev);
        }
    }

    #[test]
    fn manifest_reader_keeps_exactly_the_valid_lines(
        garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..80), 0..12),
        valid_at in proptest::collection::vec(any::<bool>(), 1..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path());
        store.ensure().unwrap();
        let mut file = std::fs::File::create(store.manifest_path()).unwrap();
        let mut expected = Vec::new();
        let mut g = garbage.iter();
        for (n, valid) in valid_at.iter().enumerate() {
            if *valid {
                let line = VALID.replace("0b5c4a3e", &format!("{n:08x}"));
                expected.push(Event::parse(line.as_bytes()).unwrap());
                writeln!(file, "{line}").unwrap();
            } else if let Some(junk) = g.next() {
                // Garbage that happens to be a valid event is counted as one.
                if let Some(ev) = Event::parse(junk) { expected.push(ev); }
                file.write_all(junk).unwrap();
                file.write_all(b"\n").unwrap();
            }
        }
        // A torn last line is never reported.
        file.write_all(&VALID.as_bytes()[..VALID.len() / 2]).unwrap();
        drop(file);
        let got = manifest::read_all(&store).unwrap();
        prop_assert_eq!(&got, &expected);
        let last = expected.iter().rev().find(|e| e.table_name == "iris" && e.is_ready()).cloned();
        prop_assert_eq!(manifest::latest_ready(&store, "iris", None).unwrap(), last);
    }

    #[test]
    fn payload_opener_never_panics_and_accepts_only_valid_data(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let (plain, zstd, stream) = payloads();
        let source = [plain, zstd, stream][which];
        let bytes = mutate(source, &flips, cut, &extra);
        let result = if which < 2 {
            payload::decode_file(&Buffer::from_vec(bytes))
        } else {
            payload::decode_stream(Buffer::from_vec(bytes))
        };
        if let Ok(d) = result {
            check_decoded(&d);
        }
    }
}

#[test]
fn unmutated_payloads_decode() {
    let (plain, zstd, stream) = payloads();
    let (_, batch) = sample();
    for bytes in [plain, zstd] {
        let d = payload::decode_file(&Buffer::from_vec(bytes.clone())).unwrap();
        assert_eq!(d.batches.iter().map(|b| b.num_rows()).sum::<usize>(), batch.num_rows());
    }
    let d = payload::decode_stream(Buffer::from_vec(stream.clone())).unwrap();
    assert_eq!(d.batches[0], batch);
}
