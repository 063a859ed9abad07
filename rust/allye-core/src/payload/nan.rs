//! Refusing NaN in float columns a caller wrapped without looking (`SendOptions::reject_nan`).
//!
//! pandas writes a missing float as NaN and Arrow as a null: the Python converter turns
//! every NaN of a float column into a null, which needs one pass over the column. For a
//! large frame that pass costs as much memory traffic as the copy into shared memory
//! that follows it. So the converter may wrap float columns as they are and name them
//! here: the core looks for NaN while it copies them (the values are in cache then), or
//! in one pass beforehand when the payload is written another way, and refuses the send
//! ([`Error::NanFound`], nothing written) when it finds one; the converter then converts
//! those columns with nulls and sends again. What a NaN becomes never depends on the path.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::RecordBatch;
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// Bytes copied before the copied bytes are looked at (they are still in the cache).
const FUSED_CHUNK: usize = 64 << 10;

/// Bytes of values from which [`check`] looks with several threads.
const PARALLEL_CHECK_BYTES: usize = 8 << 20;

/// The float width of a column's values, when it is a float column we can look into.
fn width(dt: &DataType) -> Option<usize> {
    match dt {
        DataType::Float32 => Some(4),
        DataType::Float64 => Some(8),
        _ => None,
    }
}

/// Refuses options naming a column that is not float32/float64 (or out of range).
pub(crate) fn check_columns(schema: &arrow_schema::Schema, columns: &[usize]) -> Result<()> {
    for &c in columns {
        let field = schema.fields().get(c).ok_or_else(|| {
            Error::InvalidArgument(format!("reject_nan names column {c}, but the table has {}", schema.fields().len()))
        })?;
        if width(field.data_type()).is_none() {
            return Err(Error::InvalidArgument(format!(
                "reject_nan names column {c} ({:?}) of type {}; only float32 and float64 columns hold NaN",
                field.name(),
                field.data_type()
            )));
        }
    }
    Ok(())
}

/// The value bytes of column `c` of `batch` (offset applied) and their float width.
fn values(batch: &RecordBatch, c: usize) -> Option<(&[u8], usize)> {
    let col = batch.columns().get(c)?;
    match col.data_type() {
        DataType::Float64 => Some((col.as_primitive::<Float64Type>().values().inner().as_slice(), 8)),
        DataType::Float32 => Some((col.as_primitive::<Float32Type>().values().inner().as_slice(), 4)),
        _ => None,
    }
}

/// Whether `bytes` (values of width `w`, 4 or 8) hold a NaN. Branch-free per value, so
/// that the compiler vectorises it.
pub(crate) fn any_nan(bytes: &[u8], w: usize) -> bool {
    if w == 8 {
        const ABS: u64 = !(1 << 63);
        const INF: u64 = 0x7ff0_0000_0000_0000;
        let mut found = false;
        for block in bytes.chunks(512) {
            let mut m = false;
            for v in block.chunks_exact(8) {
                m |= (u64::from_ne_bytes(v.try_into().expect("8 bytes")) & ABS) > INF;
            }
            found |= m;
        }
        found
    } else {
        const ABS: u32 = !(1 << 31);
        const INF: u32 = 0x7f80_0000;
        let mut found = false;
        for block in bytes.chunks(512) {
            let mut m = false;
            for v in block.chunks_exact(4) {
                m |= (u32::from_ne_bytes(v.try_into().expect("4 bytes")) & ABS) > INF;
            }
            found |= m;
        }
        found
    }
}

/// Looks for NaN in columns `columns` of every batch, with several threads when large:
/// [`Error::NanFound`] naming the first column holding one.
pub(crate) fn check(batches: &[RecordBatch], columns: &[usize]) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    let mut pieces: Vec<(usize, &[u8], usize)> = Vec::new();
    for batch in batches {
        for &c in columns {
            if let Some((bytes, w)) = values(batch, c) {
                pieces.push((c, bytes, w));
            }
        }
    }
    let total: usize = pieces.iter().map(|p| p.1.len()).sum();
    // Asked only for a large scan: the answer costs a dozen reads of /proc and cgroup files.
    let threads = if total < PARALLEL_CHECK_BYTES {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
    };
    let found = if threads < 2 {
        pieces.iter().find(|(_, b, w)| any_nan(b, *w)).map(|p| p.0)
    } else {
        // Even shares of the bytes, cut at value boundaries (1 MiB is a multiple of both widths).
        let share = total.div_ceil(threads).next_multiple_of(1 << 20);
        let mut work: Vec<Vec<(usize, &[u8], usize)>> = vec![Vec::new(); threads];
        let (mut t, mut room) = (0, share);
        for (c, mut b, w) in pieces {
            while !b.is_empty() {
                let n = b.len().min(room);
                work[t].push((c, &b[..n], w));
                b = &b[n..];
                room -= n;
                if room == 0 {
                    if t + 1 < threads {
                        t += 1;
                        room = share;
                    } else {
                        room = usize::MAX; // the last thread takes what rounding left
                    }
                }
            }
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = work
                .into_iter()
                .map(|part| s.spawn(move || part.iter().find(|(_, b, w)| any_nan(b, *w)).map(|p| p.0)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().expect("the NaN check does not panic")).min()
        })
    };
    match found {
        Some(column) => Err(Error::NanFound { column }),
        None => Ok(()),
    }
}

/// The value buffers a fused copy must look into: each buffer's address and length ->
/// its column and width, and whether the copy has seen it.
pub(crate) struct Watch {
    buffers: HashMap<(usize, usize), (usize, usize)>,
    seen: Vec<(usize, usize)>,
    /// The first column found holding NaN.
    pub(crate) found: Option<usize>,
}

impl Watch {
    /// The value buffers of `columns` in `batches`.
    pub(crate) fn new(batches: &[RecordBatch], columns: &[usize]) -> Watch {
        let mut buffers = HashMap::new();
        for batch in batches {
            for &c in columns {
                if let Some((bytes, w)) = values(batch, c) {
                    if !bytes.is_empty() {
                        buffers.insert((bytes.as_ptr() as usize, bytes.len()), (c, w));
                    }
                }
            }
        }
        Watch { buffers, seen: Vec::new(), found: None }
    }

    /// Whether nothing is watched.
    pub(crate) fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// The width to look with when `buf` is a watched buffer (and notes it seen).
    pub(crate) fn lookup(&mut self, buf: &[u8]) -> Option<(usize, usize)> {
        let key = (buf.as_ptr() as usize, buf.len());
        let hit = self.buffers.get(&key).copied();
        if hit.is_some() {
            self.seen.push(key);
        }
        hit
    }

    /// After the copy: [`Error::NanFound`] when a watched buffer held NaN; a watched
    /// buffer the writer did not pass as it is (copied or re-laid out) is looked at
    /// here, in `batches`, so nothing escapes the check.
    pub(crate) fn finish(mut self, batches: &[RecordBatch], columns: &[usize]) -> Result<()> {
        if let Some(column) = self.found {
            return Err(Error::NanFound { column });
        }
        for key in &self.seen {
            self.buffers.remove(key);
        }
        if self.buffers.is_empty() {
            return Ok(());
        }
        let missed: Vec<usize> = {
            let mut v: Vec<usize> = self.buffers.values().map(|&(c, _)| c).collect();
            v.sort_unstable();
            v.dedup();
            v.retain(|c| columns.contains(c));
            v
        };
        check(batches, &missed)
    }
}

/// `dst.copy_from_slice(src)`, looking for NaN (values of width `w`) in what it copies;
/// true when one was found (the copy may stop there).
///
/// On x86-64 the values are loaded once, checked and written with non-temporal stores,
/// as a large `memcpy` writes: copying in cache-sized chunks with ordinary stores and
/// looking at each chunk afterwards costs about as much as a separate pass over the
/// values (the stores read each destination line first), which is what this saves.
pub(crate) fn copy_looking(dst: &mut [u8], src: &[u8], w: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        if head % w == 0 && src.as_ptr() as usize % w == 0 {
            let (dh, dt) = dst.split_at_mut(head);
            let (sh, st) = src.split_at(head);
            dh.copy_from_slice(sh);
            if any_nan(sh, w) {
                return true;
            }
            // SAFETY: `dt` starts 16-byte aligned, both slices have the same length, and
            // SSE2 is part of x86-64.
            return unsafe { copy_looking_sse2(dt, st, w) };
        }
    }
    copy_looking_chunked(dst, src, w)
}

/// `dst.copy_from_slice(src)` for a large copy into a segment: on x86-64 with
/// non-temporal stores, as [`copy_looking`] copies (without looking at the values).
pub(crate) fn copy_streaming(dst: &mut [u8], src: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        let (dh, dt) = dst.split_at_mut(head);
        let (sh, st) = src.split_at(head);
        dh.copy_from_slice(sh);
        // SAFETY: as in `copy_looking`; width 0 looks at nothing.
        unsafe { copy_looking_sse2(dt, st, 0) };
        return;
    }
    #[allow(unreachable_code)]
    dst.copy_from_slice(src)
}

/// [`copy_looking`] with ordinary copies of cache-sized chunks (any target, any alignment).
fn copy_looking_chunked(dst: &mut [u8], src: &[u8], w: usize) -> bool {
    // Chunks are multiples of both widths, so values never straddle two.
    for (d, s) in dst.chunks_mut(FUSED_CHUNK).zip(src.chunks(FUSED_CHUNK)) {
        d.copy_from_slice(s);
        if any_nan(s, w) {
            return true;
        }
    }
    false
}

/// The SSE2 body of [`copy_looking`]: `dst` 16-byte aligned, `dst.len() == src.len()`,
/// a multiple of `w` (4 or 8); `w` 0: copies without looking (any length).
#[cfg(target_arch = "x86_64")]
unsafe fn copy_looking_sse2(dst: &mut [u8], src: &[u8], w: usize) -> bool {
    use std::arch::x86_64::*;
    debug_assert!(dst.is_empty() || dst.as_ptr() as usize % 16 == 0);
    debug_assert_eq!(dst.len(), src.len());
    let blocks = dst.len() / 64;
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let mut found = false;
    let mut i = 0;
    while i < blocks && !found {
        // Up to FUSED_CHUNK bytes between looks at the accumulated mask.
        let end = (i + FUSED_CHUNK / 64).min(blocks);
        let mut acc = _mm_setzero_pd();
        while i < end {
            let o = i * 64;
            let v0 = _mm_loadu_pd(s.add(o) as *const f64);
            let v1 = _mm_loadu_pd(s.add(o + 16) as *const f64);
            let v2 = _mm_loadu_pd(s.add(o + 32) as *const f64);
            let v3 = _mm_loadu_pd(s.add(o + 48) as *const f64);
            let m = if w == 0 {
                _mm_setzero_pd()
            } else if w == 8 {
                _mm_or_pd(
                    _mm_or_pd(_mm_cmpunord_pd(v0, v0), _mm_cmpunord_pd(v1, v1)),
                    _mm_or_pd(_mm_cmpunord_pd(v2, v2), _mm_cmpunord_pd(v3, v3)),
                )
            } else {
                let (f0, f1, f2, f3) = (_mm_castpd_ps(v0), _mm_castpd_ps(v1), _mm_castpd_ps(v2), _mm_castpd_ps(v3));
                _mm_castps_pd(_mm_or_ps(
                    _mm_or_ps(_mm_cmpunord_ps(f0, f0), _mm_cmpunord_ps(f1, f1)),
                    _mm_or_ps(_mm_cmpunord_ps(f2, f2), _mm_cmpunord_ps(f3, f3)),
                ))
            };
            acc = _mm_or_pd(acc, m);
            _mm_stream_pd(d.add(o) as *mut f64, v0);
            _mm_stream_pd(d.add(o + 16) as *mut f64, v1);
            _mm_stream_pd(d.add(o + 32) as *mut f64, v2);
            _mm_stream_pd(d.add(o + 48) as *mut f64, v3);
            i += 1;
        }
        found = _mm_movemask_ps(_mm_castpd_ps(acc)) != 0; // every lane, f32 ones too
    }
    // Non-temporal stores are weakly ordered: fence them before anything else that
    // publishes the segment.
    _mm_sfence();
    if found {
        return true;
    }
    let done = blocks * 64;
    dst[done..].copy_from_slice(&src[done..]);
    w != 0 && any_nan(&src[done..], w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    fn batch(x: Vec<f64>, y: Vec<f32>) -> RecordBatch {
        let n = x.len() as i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("n", DataType::Int64, false),
            Field::new("y", DataType::Float32, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(x)),
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Float32Array::from(y)),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    #[test]
    fn every_nan_bit_pattern_is_found_and_infinities_are_not() {
        for bits in [0x7ff8_0000_0000_0000u64, 0xfff8_0000_0000_0001, 0x7ff0_0000_0000_0001, 0xffff_ffff_ffff_ffff] {
            let v = f64::from_bits(bits);
            assert!(v.is_nan());
            let mut xs = vec![1.0f64; 1001];
            xs[777] = v;
            let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_ne_bytes()).collect();
            assert!(any_nan(&bytes, 8), "{bits:x}");
        }
        let xs = [f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -0.0, f64::MIN_POSITIVE];
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_ne_bytes()).collect();
        assert!(!any_nan(&bytes, 8));
        for bits in [0x7fc0_0000u32, 0xffc0_0000, 0x7f80_0001, 0xffff_ffff] {
            let mut ys = vec![2.0f32; 333];
            ys[332] = f32::from_bits(bits);
            let bytes: Vec<u8> = ys.iter().flat_map(|y| y.to_ne_bytes()).collect();
            assert!(any_nan(&bytes, 4), "{bits:x}");
        }
        let ys = [f32::INFINITY, f32::NEG_INFINITY, f32::MAX];
        let bytes: Vec<u8> = ys.iter().flat_map(|y| y.to_ne_bytes()).collect();
        assert!(!any_nan(&bytes, 4));
    }

    #[test]
    fn check_names_the_column_and_sees_slices_and_large_columns() {
        let n = 3_000_000; // 24 MB: the threaded check
        let mut x = vec![0.5; n];
        let y = vec![0.25f32; n];
        x[n - 1] = f64::NAN;
        let b = batch(x, y.clone());
        assert!(matches!(check(std::slice::from_ref(&b), &[0, 2]), Err(Error::NanFound { column: 0 })));
        assert!(check(std::slice::from_ref(&b), &[2]).is_ok());
        // A slice that leaves the NaN out holds none.
        let sliced = b.slice(0, n - 1);
        assert!(check(std::slice::from_ref(&sliced), &[0, 2]).is_ok());
        let mut y2 = y;
        y2[5] = f32::NAN;
        let b2 = batch(vec![1.0; n], y2);
        assert!(matches!(check(&[b2.slice(3, 100)], &[0, 2]), Err(Error::NanFound { column: 2 })));
        assert!(check(&[b2.slice(6, 100)], &[0, 2]).is_ok());
    }

    #[test]
    fn the_fused_copy_copies_everything_and_finds_a_nan_anywhere() {
        let mut xs = vec![3.0f64; 100_000];
        let src: Vec<u8> = xs.iter().flat_map(|x| x.to_ne_bytes()).collect();
        let mut dst = vec![0u8; src.len()];
        assert!(!copy_looking(&mut dst, &src, 8));
        assert_eq!(dst, src);
        xs[99_999] = f64::NAN;
        let src: Vec<u8> = xs.iter().flat_map(|x| x.to_ne_bytes()).collect();
        assert!(copy_looking(&mut dst, &src, 8));
    }

    #[test]
    fn the_fused_copy_is_exact_at_every_alignment_and_finds_a_nan_in_head_body_and_tail() {
        for w in [4usize, 8] {
            for shift in (0..32).step_by(w) {
                for values in [0usize, 1, 3, 17, 64, 1000, 20_000] {
                    let len = values * w;
                    let src: Vec<u8> = (0..len).map(|i| (i % 61) as u8).collect(); // no NaN pattern
                    let mut buf = vec![0u8; len + 64];
                    let dst = &mut buf[shift..shift + len];
                    assert!(!copy_looking(dst, &src, w), "w {w} shift {shift} values {values}");
                    assert_eq!(dst, &src[..], "w {w} shift {shift} values {values}");
                    for at in [0, values / 2, values.saturating_sub(1)].into_iter().filter(|_| values > 0) {
                        let mut bad = src.clone();
                        let nan: Vec<u8> =
                            if w == 8 { f64::NAN.to_ne_bytes().to_vec() } else { f32::NAN.to_ne_bytes().to_vec() };
                        bad[at * w..at * w + w].copy_from_slice(&nan);
                        let dst = &mut buf[shift..shift + len];
                        assert!(copy_looking(dst, &bad, w), "w {w} shift {shift} values {values} at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_streaming_copy_is_exact_at_every_alignment_and_length() {
        let src: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut buf = vec![0u8; src.len() + 32];
        for shift in 0..17 {
            for len in [0, 1, 15, 16, 63, 64, 65, 1000, 69_999] {
                buf.fill(0xee);
                copy_streaming(&mut buf[shift..shift + len], &src[..len]);
                assert_eq!(&buf[shift..shift + len], &src[..len], "shift {shift} len {len}");
                assert!(buf[..shift].iter().all(|&b| b == 0xee) && buf[shift + len..].iter().all(|&b| b == 0xee));
            }
        }
    }

    #[test]
    fn a_watched_buffer_the_writer_never_passed_is_checked_at_the_end() {
        let mut x = vec![1.0; 1000];
        x[10] = f64::NAN;
        let b = batch(x, vec![1.0; 1000]);
        let watch = Watch::new(std::slice::from_ref(&b), &[0, 2]);
        assert!(!watch.is_empty());
        // Nothing was copied through the watch: finish looks at both columns itself.
        assert!(matches!(watch.finish(std::slice::from_ref(&b), &[0, 2]), Err(Error::NanFound { column: 0 })));
    }
}
