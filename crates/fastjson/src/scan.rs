//! The validating scanner: whitespace, numbers, escapes, string ends found
//! 16 or 64 bytes at a time (SSE2 on x86_64, SWAR elsewhere), and the skipper
//! with an explicit frame stack that validates a value without decoding it.
//! Every rule is serde_json's (see the crate documentation).

use crate::error::*;

/// JSON's four whitespace bytes.
#[inline(always)]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// The index of the first non-whitespace byte at or after `i`.
#[inline(always)]
pub(crate) fn skip_ws(input: &[u8], mut i: usize) -> usize {
    while let Some(&b) = input.get(i) {
        if !is_ws(b) {
            break;
        }
        i += 1;
    }
    i
}

pub(crate) const ONES: u64 = u64::MAX / 255;
pub(crate) const HIGHS: u64 = ONES << 7;

/// Bit 7 of each byte of the result is set for bytes of `v` equal to `byte`;
/// exact for the lowest such byte (higher ones may be false positives).
#[inline(always)]
pub(crate) fn eq_mask(v: u64, byte: u8) -> u64 {
    let x = v ^ (ONES * byte as u64);
    x.wrapping_sub(ONES) & !x
}

/// Bit `k` is set when byte `k` of `chunk` is `"`, `\` or (when `CTRL`)
/// below 0x20.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn special_mask16<const CTRL: bool>(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are
    // always available; the load reads exactly the 16 bytes of `chunk` and
    // needs no alignment.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let mut m = _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
        );
        if CTRL {
            // max(v, 0x1F) == 0x1F exactly for bytes up to 0x1F.
            let below_space = _mm_set1_epi8(0x1F);
            m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space));
        }
        _mm_movemask_epi8(m) as u32
    }
}

/// The index of the first byte at or after `i` that ends a run of plain
/// string content: `"`, `\`, and (when `CTRL`) a control byte below 0x20;
/// `input.len()` if there is none.
#[inline(always)]
pub(crate) fn find_special<const CTRL: bool>(input: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    while let Some(chunk) = input.get(i..i + 16) {
        let bits = special_mask16::<CTRL>(chunk.try_into().unwrap());
        if bits != 0 {
            return i + bits.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(chunk) = input.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().unwrap());
        let mut m = eq_mask(v, b'"') | eq_mask(v, b'\\');
        if CTRL {
            m |= v.wrapping_sub(ONES * 0x20) & !v;
        }
        m &= HIGHS;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = input.get(i) {
        if b == b'"' || b == b'\\' || (CTRL && b < 0x20) {
            return i;
        }
        i += 1;
    }
    i
}

/// Value of a hex digit, or -1.
pub(crate) static HEX: [i8; 256] = {
    let mut table = [-1i8; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = match c as u8 {
            b @ b'0'..=b'9' => (b - b'0') as i8,
            b @ b'a'..=b'f' => (b - b'a' + 10) as i8,
            b @ b'A'..=b'F' => (b - b'A' + 10) as i8,
            _ => -1,
        };
        c += 1;
    }
    table
};

/// The code unit of four hex digits, or `None`.
#[inline]
pub(crate) fn decode_hex4(h: &[u8]) -> Option<u16> {
    let v = (HEX[h[0] as usize] as i32) << 12
        | (HEX[h[1] as usize] as i32) << 8
        | (HEX[h[2] as usize] as i32) << 4
        | HEX[h[3] as usize] as i32;
    // Any -1 digit makes the whole value negative.
    let any_bad =
        (HEX[h[0] as usize] | HEX[h[1] as usize] | HEX[h[2] as usize] | HEX[h[3] as usize]) < 0;
    if any_bad { None } else { Some(v as u16) }
}

/// Scans a number starting at `i` (a `-` or a digit) by the JSON grammar and
/// returns the index after it.
#[inline]
pub(crate) fn scan_number(input: &[u8], mut i: usize) -> Result<usize, ScanError> {
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    match input.get(i) {
        Some(b'0') => {
            i += 1;
            if let Some(b'0'..=b'9') = input.get(i) {
                return Err(ScanError(INVALID_NUMBER, i));
            }
        }
        Some(b'1'..=b'9') => {
            i += 1;
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
        }
        _ => return Err(ScanError(INVALID_NUMBER, i)),
    }
    if input.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(input.get(i), Some(b'0'..=b'9')) {
            return Err(ScanError(INVALID_NUMBER, i));
        }
        while let Some(b'0'..=b'9') = input.get(i) {
            i += 1;
        }
    }
    if let Some(b'e' | b'E') = input.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = input.get(i) {
            i += 1;
        }
        if !matches!(input.get(i), Some(b'0'..=b'9')) {
            return Err(ScanError(INVALID_NUMBER, i));
        }
        while let Some(b'0'..=b'9') = input.get(i) {
            i += 1;
        }
    }
    Ok(i)
}

/// The string-special bytes (`"`, `\\`, below 0x20) of one 64-byte window
/// of the input, so that the skipper finds the end of each of many short
/// strings with a shift instead of a fresh scan.
pub(crate) struct Specials {
    /// Start of the window (`usize::MAX`, with an empty mask, before the
    /// first).
    base: usize,
    /// Bit `k`: byte `base + k` is special.
    mask: u64,
}

impl Specials {
    pub(crate) fn new() -> Self {
        Specials {
            base: usize::MAX,
            mask: 0,
        }
    }

    /// Same result as `find_special::<true>(input, i)`.
    #[inline(always)]
    pub(crate) fn find(&mut self, input: &[u8], i: usize) -> usize {
        let off = i.wrapping_sub(self.base);
        if off < 64 {
            let m = self.mask >> off;
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
        }
        self.refill(input, i)
    }

    /// `find` past the current window: loads windows until one has a
    /// special byte at or after `i`.
    #[inline(never)]
    pub(crate) fn refill(&mut self, input: &[u8], mut i: usize) -> usize {
        if i.checked_sub(self.base).is_some_and(|off| off < 64) {
            i = self.base + 64;
        }
        loop {
            match input.get(i..).and_then(|rest| rest.first_chunk::<64>()) {
                Some(window) => {
                    self.base = i;
                    self.mask = special_mask64(window);
                    if self.mask != 0 {
                        return i + self.mask.trailing_zeros() as usize;
                    }
                    i += 64;
                }
                None => return find_special::<true>(input, i),
            }
        }
    }
}

/// Bit `k` is set when byte `k` of `window` is `"`, `\\` or below 0x20.
#[inline(always)]
pub(crate) fn special_mask64(window: &[u8; 64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut mask = 0;
        for (k, chunk) in window.chunks_exact(16).enumerate() {
            mask |= (special_mask16::<true>(chunk.try_into().unwrap()) as u64) << (16 * k);
        }
        mask
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut mask = 0;
        for (k, &b) in window.iter().enumerate() {
            mask |= ((b == b'"' || b == b'\\' || b < 0x20) as u64) << k;
        }
        mask
    }
}

/// `bytes` as text, or `None` if they are not UTF-8. Most strings in a
/// review are ASCII, and checking that first is several times cheaper than
/// full UTF-8 validation for short strings.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Skips the rest of an escape whose backslash is at `i - 1`, without
/// decoding it (surrogates are not checked, as in serde_json's skipping).
#[inline]
pub(crate) fn skip_escape(input: &[u8], i: usize) -> Result<usize, ScanError> {
    match input.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => match input.get(i + 1..i + 5) {
            Some(h) if decode_hex4(h).is_some() => Ok(i + 5),
            Some(_) => Err(ScanError(INVALID_ESCAPE, i + 5)),
            None => Err(ScanError(EOF_STRING, input.len())),
        },
        Some(_) => Err(ScanError(INVALID_ESCAPE, i + 1)),
        None => Err(ScanError(EOF_STRING, i)),
    }
}

/// Skips the literal `lit` at `i`.
#[inline(always)]
pub(crate) fn skip_literal(input: &[u8], i: usize, lit: &[u8]) -> Result<usize, ScanError> {
    match input.get(i..i + lit.len()) {
        Some(s) if s == lit => Ok(i + lit.len()),
        _ => Err(ScanError(EXPECTED_IDENT, i)),
    }
}

pub(crate) const NO_FRAME: u8 = 0;
pub(crate) const ARRAY_FRAME: u8 = 1;
pub(crate) const OBJECT_FRAME: u8 = 2;

/// Skips one JSON value (after optional whitespace) starting at `i` and
/// returns the index after it, validating it as serde_json's `ignore_value`
/// does. Nesting is tracked in `stack`, without a depth limit.
pub(crate) fn skip_value(
    input: &[u8],
    mut i: usize,
    stack: &mut Vec<u8>,
    specials: &mut Specials,
) -> Result<usize, ScanError> {
    stack.clear();
    let mut top = NO_FRAME;

    // Skips whitespace and yields the next byte, or fails with `$eof`.
    macro_rules! next_byte {
        ($eof:expr) => {{
            let mut b = match input.get(i) {
                Some(&b) => b,
                None => return Err(ScanError($eof, i)),
            };
            if b <= b' ' && is_ws(b) {
                i = skip_ws(input, i);
                b = match input.get(i) {
                    Some(&b) => b,
                    None => return Err(ScanError($eof, i)),
                };
            }
            b
        }};
    }
    // Skips the string whose opening quote is at `i` (UTF-8 is not checked).
    macro_rules! string {
        () => {{
            i += 1;
            loop {
                i = specials.find(input, i);
                match input.get(i) {
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => i = skip_escape(input, i + 1)?,
                    Some(_) => return Err(ScanError(CONTROL_CHARACTER, i)),
                    None => return Err(ScanError(EOF_STRING, i)),
                }
            }
        }};
    }
    // Skips the key whose opening quote is at `i` and its colon, then
    // continues with the value. What compact JSON is made of is taken in
    // one tight loop, with the same checks as the general path in the same
    // order: `"k":"v"` runs, `"k":{}` (dense in managedFields) and `"k":{"`
    // (a nested object's first key).
    macro_rules! entry {
        ($value:lifetime) => {{
            loop {
                string!();
                match input.get(i..i + 3) {
                    Some([b':', b'"', _]) => {
                        i += 1;
                        string!();
                    }
                    Some(b":{}") => i += 3,
                    Some(b":{\"") => {
                        i += 2;
                        stack.push(top);
                        top = OBJECT_FRAME;
                        continue;
                    }
                    _ => {
                        match next_byte!(EOF_OBJECT) {
                            b':' => i += 1,
                            _ => return Err(ScanError(EXPECTED_COLON, i)),
                        }
                        continue $value;
                    }
                }
                if input.get(i..i + 2) != Some(b",\"") {
                    break;
                }
                i += 1;
            }
        }};
    }

    'value: loop {
        match next_byte!(EOF_VALUE) {
            b'"' => string!(),
            b'{' => {
                i += 1;
                match next_byte!(EOF_OBJECT) {
                    b'}' => i += 1,
                    b'"' => {
                        stack.push(top);
                        top = OBJECT_FRAME;
                        entry!('value);
                    }
                    _ => return Err(ScanError(KEY_MUST_BE_STRING, i)),
                }
            }
            b'[' => {
                i += 1;
                if next_byte!(EOF_LIST) == b']' {
                    i += 1;
                } else {
                    stack.push(top);
                    top = ARRAY_FRAME;
                    continue 'value;
                }
            }
            b'n' => i = skip_literal(input, i, b"null")?,
            b't' => i = skip_literal(input, i, b"true")?,
            b'f' => i = skip_literal(input, i, b"false")?,
            b'-' | b'0'..=b'9' => i = scan_number(input, i)?,
            _ => return Err(ScanError(EXPECTED_VALUE, i)),
        }
        // A value ended: close the containers it ends.
        loop {
            let eof = match top {
                NO_FRAME => return Ok(i),
                ARRAY_FRAME => EOF_LIST,
                _ => EOF_OBJECT,
            };
            match next_byte!(eof) {
                b',' => {
                    i += 1;
                    if top == ARRAY_FRAME {
                        continue 'value;
                    }
                    match next_byte!(EOF_OBJECT) {
                        b'"' => entry!('value),
                        _ => return Err(ScanError(KEY_MUST_BE_STRING, i)),
                    }
                }
                b']' if top == ARRAY_FRAME => {
                    i += 1;
                    top = stack.pop().unwrap_or(NO_FRAME);
                }
                b'}' if top == OBJECT_FRAME => {
                    i += 1;
                    top = stack.pop().unwrap_or(NO_FRAME);
                }
                _ if top == ARRAY_FRAME => {
                    return Err(ScanError(EXPECTED_LIST_COMMA_OR_END, i));
                }
                _ => return Err(ScanError(EXPECTED_OBJECT_COMMA_OR_END, i)),
            }
        }
    }
}

/// Appends code point `n` (possibly a lone surrogate) as WTF-8.
pub(crate) fn push_wtf8(n: u32, out: &mut Vec<u8>) {
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (n >> 6) as u8, 0x80 | (n & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (n >> 12) as u8,
            0x80 | ((n >> 6) & 0x3F) as u8,
            0x80 | (n & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (n >> 18) as u8,
            0x80 | ((n >> 12) & 0x3F) as u8,
            0x80 | ((n >> 6) & 0x3F) as u8,
            0x80 | (n & 0x3F) as u8,
        ]),
    }
}
