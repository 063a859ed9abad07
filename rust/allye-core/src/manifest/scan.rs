//! Reading the manifest backwards from its end, block by block.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::manifest::Event;

/// The offset just after the last `\n` before `len` (0 when there is none).
pub(crate) fn complete_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut block = vec![0u8; BLOCK as usize];
    let mut pos = len;
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut block[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// Calls `f` on every complete line from the last to the first, with the byte offset
/// where the line starts; stops as soon as `f` returns `true`. A trailing partial line
/// (no `\n` yet) is not reported. Returns whether `f` stopped the scan.
///
/// Reads 64 KiB blocks from the end and finds line breaks with `memrchr`; a line lying
/// inside one block is handed to `f` as a slice of the block (no copy), a line spanning
/// blocks is assembled.
pub(crate) fn scan_backwards(
    file: &mut (impl Read + Seek + ?Sized),
    end: u64,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<bool> {
    const BLOCK: u64 = 64 * 1024;
    let mut pos = end;
    // The tail of the line being assembled when it spans blocks (file order).
    let mut carry: Vec<u8> = Vec::new();
    let mut seen_newline = false;
    let mut block = vec![0u8; BLOCK as usize];
    let mut joined = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut block[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        let mut line_end = chunk.len();
        for nl in memchr::memrchr_iter(b'\n', chunk) {
            if seen_newline {
                let part = &chunk[nl + 1..line_end];
                let line_start = start + nl as u64 + 1;
                let stop = if carry.is_empty() {
                    f(line_start, part)
                } else {
                    joined.clear();
                    joined.extend_from_slice(part);
                    joined.extend_from_slice(&carry);
                    carry.clear();
                    f(line_start, &joined)
                };
                if stop {
                    return Ok(true);
                }
            }
            seen_newline = true;
            line_end = nl;
        }
        if seen_newline && line_end > 0 {
            // The start of this block belongs to a line that began in an earlier block.
            let mut head = chunk[..line_end].to_vec();
            head.extend_from_slice(&carry);
            carry = head;
        }
        pos = start;
    }
    if seen_newline && !carry.is_empty() {
        return Ok(f(0, &carry));
    }
    Ok(false)
}

/// Scans `[0, end)` backwards for the last `ready` line of `table` (and `producer`).
pub(crate) fn scan_latest_ready(
    file: &mut (impl Read + Seek + ?Sized),
    end: u64,
    table: &str,
    producer: Option<&str>,
) -> std::io::Result<Option<Event>> {
    scan_last_of(file, end, table, |ev| (ev.is_ready() && producer.is_none_or(|p| ev.producer == p)).then_some(ev))
}

/// Scans `[0, end)` backwards for the last `ready` or removal line of `table`: true when
/// it is a removal ([`Event::is_removal`]); false when it is a `ready` line or neither exists.
pub(crate) fn scan_removed_since_ready(
    file: &mut (impl Read + Seek + ?Sized),
    end: u64,
    table: &str,
) -> std::io::Result<bool> {
    let found = scan_last_of(file, end, table, |ev| (ev.is_ready() || ev.is_removal()).then(|| ev.is_removal()))?;
    Ok(found.unwrap_or(false))
}

/// Scans `[0, end)` backwards for the last line of `table` that `pick` answers for.
fn scan_last_of<T>(
    file: &mut (impl Read + Seek + ?Sized),
    end: u64,
    table: &str,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> std::io::Result<Option<T>> {
    // Cheap pre-filter before a full parse: a name that no JSON writer escapes must
    // appear verbatim in a line that mentions it.
    let verbatim = table.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && !matches!(b, b'"' | b'\\' | b'/'));
    let finder = memchr::memmem::Finder::new(table.as_bytes());
    let mut found = None;
    scan_backwards(file, end, |_, line| {
        if verbatim && finder.find(line).is_none() {
            return false;
        }
        found = Event::parse(line).filter(|ev| ev.table_name == table).and_then(&mut pick);
        found.is_some()
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::test_support::store;

    #[test]
    fn backwards_scan_crosses_blocks() {
        let (_tmp, s) = store();
        // Lines longer than a block and many short ones around them.
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000 {
            let line = if i % 1000 == 7 { format!("{}{}", "x".repeat(70_000), i) } else { format!("line-{i}") };
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
            expected.push(line);
        }
        text.extend_from_slice(b"partial-no-newline");
        std::fs::write(s.manifest_path(), &text).unwrap();
        let mut f = File::open(s.manifest_path()).unwrap();
        let mut got = Vec::new();
        let mut offsets = Vec::new();
        scan_backwards(&mut f, text.len() as u64, |off, line| {
            got.push(String::from_utf8(line.to_vec()).unwrap());
            offsets.push(off);
            false
        })
        .unwrap();
        got.reverse();
        offsets.reverse();
        assert_eq!(got, expected);
        for (off, line) in offsets.iter().zip(&expected) {
            assert_eq!(&text[*off as usize..*off as usize + line.len()], line.as_bytes());
        }
    }

    #[test]
    fn backwards_scan_matches_a_forward_split_for_any_line_lengths() {
        let (_tmp, s) = store();
        let mut state = 0x9E3779B97F4A7C15u64;
        for round in 0..20 {
            let mut text = Vec::new();
            let mut expected = Vec::new();
            for i in 0..(50 + round * 37) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Empty lines, short ones, and lines around and beyond the 64 KiB block.
                let len = match state % 5 {
                    0 => 0,
                    1 => (state >> 8) as usize % 40,
                    2 => 65_536 - 1 + (state >> 8) as usize % 3,
                    _ => (state >> 8) as usize % 9000,
                };
                let line: Vec<u8> = (0..len).map(|k| b'a' + ((k + i) % 26) as u8).collect();
                expected.push((text.len() as u64, line.clone()));
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            if round % 2 == 1 {
                text.extend_from_slice(b"torn tail");
            }
            std::fs::write(s.manifest_path(), &text).unwrap();
            let mut f = File::open(s.manifest_path()).unwrap();
            let mut got = Vec::new();
            scan_backwards(&mut f, text.len() as u64, |off, line| {
                got.push((off, line.to_vec()));
                false
            })
            .unwrap();
            got.reverse();
            // A leading empty line at offset 0 is not reported (nothing to parse there).
            if expected.first().is_some_and(|(_, l)| l.is_empty()) {
                expected.remove(0);
            }
            assert_eq!(got.len(), expected.len(), "round {round}");
            assert!(got == expected, "round {round}");
            let end = complete_end(&mut f, text.len() as u64).unwrap();
            assert_eq!(end as usize, text.iter().rposition(|&b| b == b'\n').unwrap() + 1);
        }
    }
}
