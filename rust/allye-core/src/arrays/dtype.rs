//! The element type of a shared array, as text: what NumPy can rebuild the dtype from
//! and what the core needs of it (the item size, and that it holds no pointers).
//!
//! Two forms, both NumPy's own spelling:
//! - a *typestr* (`dtype.str`): byte order `<`, `>` or `|`, a kind letter and a size:
//!   `|b1`; `|i1` `<i2` `<i4` `<i8` (and `u`); `<f2` `<f4` `<f8` `<f16`; `<c8` `<c16`
//!   `<c32`; `|S<n>` (n bytes); `<U<n>` (n characters of 4 bytes); `|V<n>` (n raw
//!   bytes); `<M8` / `<m8` with an optional unit (`<M8[ns]`);
//! - a *structured* dtype's field list, the Python literal NumPy's `.npy` format writes
//!   (`repr(numpy.lib.format.dtype_to_descr(dtype))`): `[('name', TYPE), ('name', TYPE,
//!   (d1, d2)), ...]` where TYPE is a typestr or a nested field list, and padding is a
//!   field named `''` of kind `V`. Its item size is the sum of its fields'.
//!
//! The object kind (`O`) is refused wherever it appears: its items are pointers into one
//! process's heap, meaningless (and unsafe to follow) in any other.

use crate::error::{Error, Result};

/// Longest dtype text (bytes), what the header's dtype area holds.
pub const MAX_DTYPE_LEN: usize = 3580;

fn bad(text: &str, why: impl std::fmt::Display) -> Error {
    let shown: String = text.chars().take(80).collect();
    Error::InvalidArgument(format!(
        "unsupported shared array dtype {shown:?}: {why}; use a fixed-size NumPy dtype that is not object \
         (numeric, bool, datetime, fixed-width str or bytes, raw void, or a structured dtype of those)"
    ))
}

/// The item size in bytes of a dtype text (either form), or a clear error.
pub fn itemsize(text: &str) -> Result<usize> {
    if text.len() > MAX_DTYPE_LEN {
        return Err(bad(text, format!("its description is longer than {MAX_DTYPE_LEN} bytes")));
    }
    let size = if text.starts_with('[') {
        let mut p = Parser { s: text.as_bytes(), i: 0, text };
        let size = p.fields(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(bad(text, "trailing text after the field list"));
        }
        size
    } else {
        typestr_itemsize(text).map_err(|why| bad(text, why))?
    };
    if size == 0 {
        return Err(bad(text, "its items have no bytes"));
    }
    Ok(size)
}

/// True when `text` is a structured dtype's field list.
pub fn is_structured(text: &str) -> bool {
    text.starts_with('[')
}

/// The item size of a typestr, or why it is refused.
fn typestr_itemsize(t: &str) -> std::result::Result<usize, String> {
    let b = t.as_bytes();
    if b.get(1) == Some(&b'O') || t == "O" {
        return Err("object arrays hold pointers into one process's memory".into());
    }
    if b.len() < 3 || !matches!(b[0], b'<' | b'>' | b'|') {
        return Err("expected a typestr: a byte order ('<', '>' or '|'), a kind letter and a size".into());
    }
    let kind = b[1];
    let rest = &t[2..];
    let (digits, unit) = match rest.find('[') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || digits.len() > 9 {
        return Err("its size is not a number".into());
    }
    let n: usize = digits.parse().map_err(|_| "its size is not a number".to_string())?;
    if let Some(unit) = unit {
        let ok = matches!(kind, b'M' | b'm')
            && unit.len() > 2
            && unit.ends_with(']')
            && unit[1..unit.len() - 1].bytes().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err("only datetime64 and timedelta64 take a unit, as [unit]".into());
        }
    }
    let size = match kind {
        b'O' => return Err("object arrays hold pointers into one process's memory".into()),
        b'b' if n == 1 => 1,
        b'i' | b'u' if matches!(n, 1 | 2 | 4 | 8) => n,
        b'f' if matches!(n, 2 | 4 | 8 | 16) => n,
        b'c' if matches!(n, 8 | 16 | 32) => n,
        b'M' | b'm' if n == 8 => 8,
        b'S' | b'V' if n > 0 => n,
        b'U' if n > 0 => n.checked_mul(4).ok_or("its size overflows")?,
        b'b' | b'i' | b'u' | b'f' | b'c' | b'M' | b'm' => return Err(format!("no {} of {n} bytes", kind as char)),
        b'S' | b'U' | b'V' => return Err("a flexible dtype needs a size (S8, U16, V4, not S or U0)".into()),
        _ => return Err(format!("unknown kind {:?}", kind as char)),
    };
    Ok(size)
}

/// A small reader of the field-list literal (section "structured" above).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

/// Nesting limit of field lists (NumPy's own dtypes are far shallower).
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {:?} at byte {}", c as char, self.i)))
        }
    }
    fn err(&self, why: impl std::fmt::Display) -> Error {
        bad(self.text, format!("not a NumPy field list ({why})"))
    }
    /// A quoted string without escapes.
    fn string(&mut self) -> Result<&str> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            Some(b'(') => return Err(self.err("fields with titles are not supported")),
            _ => return Err(self.err(format!("expected a quoted string at byte {}", self.i))),
        };
        let start = self.i + 1;
        let end = self.s[start..].iter().position(|&c| c == q).map(|p| start + p);
        let Some(end) = end else { return Err(self.err("unterminated string")) };
        let out = std::str::from_utf8(&self.s[start..end]).map_err(|_| self.err("a string is not UTF-8"))?;
        if out.contains('\\') {
            return Err(self.err("escapes in names are not supported"));
        }
        self.i = end + 1;
        Ok(out)
    }
    fn number(&mut self) -> Result<usize> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err(format!("expected a dimension at byte {start}")))
    }
    /// `[field, ...]`: the sum of the fields' sizes.
    fn fields(&mut self, depth: usize) -> Result<usize> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.expect(b'[')?;
        let mut total = 0usize;
        let mut names = std::collections::HashSet::new();
        loop {
            if self.peek() == Some(b']') && !names.is_empty() {
                self.i += 1;
                return Ok(total);
            }
            self.expect(b'(')?;
            let name = self.string()?.to_string();
            if !name.is_empty() && !names.insert(name.clone()) {
                return Err(self.err(format!("field {name:?} appears twice")));
            }
            names.insert(format!("\0{}", names.len())); // counts padding fields too
            self.expect(b',')?;
            let size = if self.peek() == Some(b'[') {
                self.fields(depth + 1)?
            } else {
                let t = self.string()?.to_string();
                typestr_itemsize(&t).map_err(|why| bad(self.text, format!("field {name:?}: {why}")))?
            };
            let mut count = 1usize;
            if self.peek() == Some(b',') {
                self.i += 1;
                if self.peek() == Some(b'(') {
                    self.i += 1;
                    loop {
                        if self.peek() == Some(b')') {
                            self.i += 1;
                            break;
                        }
                        let d = self.number()?;
                        count = count.checked_mul(d).ok_or_else(|| self.err("a field's shape overflows"))?;
                        if self.peek() == Some(b',') {
                            self.i += 1;
                        }
                    }
                }
            }
            self.expect(b')')?;
            let field = size.checked_mul(count).ok_or_else(|| self.err("a field's size overflows"))?;
            total = total.checked_add(field).ok_or_else(|| self.err("the item size overflows"))?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                _ => return Err(self.err(format!("expected ',' or ']' at byte {}", self.i))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typestrs_numpy_writes_have_their_sizes() {
        for (t, n) in [
            ("|b1", 1),
            ("<i4", 4),
            (">u8", 8),
            ("<f2", 2),
            ("<f16", 16),
            ("<c32", 32),
            ("|S8", 8),
            ("<U1", 4),
            ("<U10", 40),
            ("|V3", 3),
            ("<M8[ns]", 8),
            ("<m8", 8),
        ] {
            assert_eq!(itemsize(t).unwrap(), n, "{t}");
        }
    }

    #[test]
    fn object_and_flexible_without_size_are_refused() {
        for t in ["|O", "|O8", "<U0", "|S0", "|S", "<i3", "|b2", "<f8[ns]", "i4", "", "<q8", "<M8[n s]"] {
            let e = itemsize(t).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{t}");
        }
        let msg = itemsize("|O").unwrap_err().to_string();
        assert!(msg.contains("object") && msg.contains("pointers"), "{msg}");
    }

    #[test]
    fn structured_field_lists_sum_their_fields() {
        assert_eq!(itemsize("[('a', '|u1'), ('', '|V3'), ('b', '<i4')]").unwrap(), 8);
        assert_eq!(itemsize("[('x', '<f8', (3,)), ('n', '|S4')]").unwrap(), 28);
        assert_eq!(itemsize("[('g', '<i2', (2, 3))]").unwrap(), 12);
        assert_eq!(itemsize("[('p', [('q', '<i2'), ('r', '|u1')]), ('s', '<U2')]").unwrap(), 11);
        assert_eq!(itemsize("[(\"it's\", '<f4')]").unwrap(), 4);
        for bad in [
            "[('a', '|O')]",
            "[('a', '<i4'), ('b', [('c', '|O')])]",
            "[]",
            "[('a', '<i4'), ('a', '<i4')]",
            "[(('title', 'a'), '<i4')]",
            "[('a', '<i4')] x",
            "[('a', '<i4'",
            "[('a\\x00', '<i4')]",
        ] {
            assert!(matches!(itemsize(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }
}
