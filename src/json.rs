//! A strict serde `Deserializer` for JSON byte slices with a fast skipper.
//!
//! [`from_slice`] accepts exactly the inputs `serde_json::from_slice` accepts
//! (default features: no `arbitrary_precision`, no `float_roundtrip`) and
//! drives visitors with the same calls, so any `Deserialize` type decodes to
//! the same value. What differs is speed where values are skipped: every
//! value deserialized as [`serde::de::IgnoredAny`] (unknown struct fields,
//! `IgnoredAny` fields) goes through a validating scanner with an explicit
//! frame stack, string ends found from a 64-byte window bitmask (SSE2 on
//! x86_64, SWAR elsewhere) and a tight loop for compact `"key":"string"`
//! runs, instead of serde_json's byte-by-byte `ignore_value`. Decoded strings
//! are scanned 16 bytes at a time. Floats are converted by serde_json itself
//! (on the number's own bytes), so their values are bit-identical. Skipped values are validated to
//! exactly serde_json's rules: full grammar, numbers, escapes (`\u` needs four
//! hex digits, surrogates are not checked), no control characters in strings,
//! no UTF-8 check of skipped strings, and no depth limit. Values that are
//! decoded are limited to serde_json's recursion depth of 128.
//!
//! Error messages are short and do not follow serde_json's wording; callers
//! that show errors to users re-decode with serde_json.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Expected, Visitor};

/// Decodes a `T` from the JSON text `input`; only whitespace may follow it.
///
/// Accepts exactly what `serde_json::from_slice::<T>` accepts and gives the
/// same value.
pub fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T, Error> {
    let mut de = Deserializer {
        input,
        pos: 0,
        scratch: Vec::new(),
        remaining_depth: 128,
        frames: Vec::new(),
        specials: Specials::new(),
    };
    let value = match T::deserialize(&mut de) {
        Ok(value) => value,
        Err(err) => return Err(err.at(de.pos)),
    };
    match de.parse_ws() {
        None => Ok(value),
        Some(_) => Err(de.error(TRAILING_CHARACTERS)),
    }
}

/// A JSON syntax error or a type mismatch, with the byte offset where it was
/// found.
pub struct Error(Box<ErrorImpl>);

struct ErrorImpl {
    message: Cow<'static, str>,
    offset: Option<usize>,
}

impl Error {
    fn syntax(message: &'static str, offset: usize) -> Self {
        Error(Box::new(ErrorImpl {
            message: Cow::Borrowed(message),
            offset: Some(offset),
        }))
    }

    /// Gives an error raised by a visitor (which knows no position) the
    /// position where decoding stopped.
    #[cold]
    fn at(mut self, offset: usize) -> Self {
        self.0.offset.get_or_insert(offset);
        self
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Byte offset in the input where the error was found.
    pub fn offset(&self) -> usize {
        self.0.offset.unwrap_or(0)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message(), self.offset())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("message", &self.message())
            .field("offset", &self.0.offset)
            .finish()
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(Box::new(ErrorImpl {
            message: Cow::Owned(msg.to_string()),
            offset: None,
        }))
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

const EOF_VALUE: &str = "EOF while parsing a value";
const EOF_STRING: &str = "EOF while parsing a string";
const EOF_LIST: &str = "EOF while parsing a list";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EXPECTED_VALUE: &str = "expected value";
const EXPECTED_IDENT: &str = "expected ident";
const EXPECTED_COLON: &str = "expected `:`";
const EXPECTED_LIST_COMMA_OR_END: &str = "expected `,` or `]`";
const EXPECTED_OBJECT_COMMA_OR_END: &str = "expected `,` or `}`";
const EXPECTED_NUMERIC_KEY: &str = "invalid value: expected key to be a number in quotes";
const EXPECTED_QUOTE: &str = "expected closing double quote";
const KEY_MUST_BE_STRING: &str = "key must be a string";
const TRAILING_COMMA: &str = "trailing comma";
const TRAILING_CHARACTERS: &str = "trailing characters";
const INVALID_NUMBER: &str = "invalid number";
const NUMBER_OUT_OF_RANGE: &str = "number out of range";
const INVALID_ESCAPE: &str = "invalid escape";
const CONTROL_CHARACTER: &str = "control character (\\u0000-\\u001F) found while parsing a string";
const LONE_SURROGATE: &str = "lone leading surrogate in hex escape";
const UNEXPECTED_END_OF_HEX_ESCAPE: &str = "unexpected end of hex escape";
const INVALID_UNICODE: &str = "invalid unicode code point";
const RECURSION_LIMIT: &str = "recursion limit exceeded";

/// A syntax error found by the free scanning functions: message and offset.
struct ScanError(&'static str, usize);

impl From<ScanError> for Error {
    #[cold]
    fn from(ScanError(message, offset): ScanError) -> Self {
        Error::syntax(message, offset)
    }
}

/// JSON's four whitespace bytes.
#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// The index of the first non-whitespace byte at or after `i`.
#[inline(always)]
fn skip_ws(input: &[u8], mut i: usize) -> usize {
    while let Some(&b) = input.get(i) {
        if !is_ws(b) {
            break;
        }
        i += 1;
    }
    i
}

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES << 7;

/// Bit 7 of each byte of the result is set for bytes of `v` equal to `byte`;
/// exact for the lowest such byte (higher ones may be false positives).
#[inline(always)]
fn eq_mask(v: u64, byte: u8) -> u64 {
    let x = v ^ (ONES * byte as u64);
    x.wrapping_sub(ONES) & !x
}

/// Bit `k` is set when byte `k` of `chunk` is `"`, `\` or (when `CTRL`)
/// below 0x20.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_mask16<const CTRL: bool>(chunk: &[u8; 16]) -> u32 {
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
static HEX: [i8; 256] = {
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
fn decode_hex4(h: &[u8]) -> Option<u16> {
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
fn scan_number(input: &[u8], mut i: usize) -> Result<usize, ScanError> {
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
struct Specials {
    /// Start of the window (`usize::MAX`, with an empty mask, before the
    /// first).
    base: usize,
    /// Bit `k`: byte `base + k` is special.
    mask: u64,
}

impl Specials {
    fn new() -> Self {
        Specials {
            base: usize::MAX,
            mask: 0,
        }
    }

    /// Same result as `find_special::<true>(input, i)`.
    #[inline(always)]
    fn find(&mut self, input: &[u8], i: usize) -> usize {
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
    fn refill(&mut self, input: &[u8], mut i: usize) -> usize {
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
fn special_mask64(window: &[u8; 64]) -> u64 {
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
fn utf8(bytes: &[u8]) -> Option<&str> {
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
fn skip_escape(input: &[u8], i: usize) -> Result<usize, ScanError> {
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
fn skip_literal(input: &[u8], i: usize, lit: &[u8]) -> Result<usize, ScanError> {
    match input.get(i..i + lit.len()) {
        Some(s) if s == lit => Ok(i + lit.len()),
        _ => Err(ScanError(EXPECTED_IDENT, i)),
    }
}

const NO_FRAME: u8 = 0;
const ARRAY_FRAME: u8 = 1;
const OBJECT_FRAME: u8 = 2;

/// Skips one JSON value (after optional whitespace) starting at `i` and
/// returns the index after it, validating it as serde_json's `ignore_value`
/// does. Nesting is tracked in `stack`, without a depth limit.
fn skip_value(
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
fn push_wtf8(n: u32, out: &mut Vec<u8>) {
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

/// A parsed number, as serde_json hands it to visitors.
enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Number {
    fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Number::U64(n) => visitor.visit_u64(n),
            Number::I64(n) => visitor.visit_i64(n),
            Number::F64(n) => visitor.visit_f64(n),
        }
    }
}

/// A decoded string: borrowed from the input, or unescaped into scratch.
enum Str<'de, 's> {
    Borrowed(&'de str),
    Copied(&'s str),
}

struct Deserializer<'de> {
    input: &'de [u8],
    pos: usize,
    /// Unescaped string bytes.
    scratch: Vec<u8>,
    /// Nesting still allowed for decoded (not skipped) containers.
    remaining_depth: u8,
    /// The skipper's frame stack, kept to reuse its allocation.
    frames: Vec<u8>,
    /// The skipper's last window: the next skipped value often starts in it.
    specials: Specials,
}

impl<'de> Deserializer<'de> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Skips whitespace and peeks at the next byte.
    #[inline(always)]
    fn parse_ws(&mut self) -> Option<u8> {
        match self.input.get(self.pos) {
            Some(&b) if !is_ws(b) => Some(b),
            _ => {
                self.pos = skip_ws(self.input, self.pos);
                self.peek()
            }
        }
    }

    #[cold]
    fn error(&self, message: &'static str) -> Error {
        Error::syntax(message, self.pos)
    }

    /// A type mismatch: the value at the current position does not fit `exp`.
    #[cold]
    fn invalid_type(&self, exp: &dyn Expected) -> Error {
        let found = match self.peek() {
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(b'"') => "a string",
            Some(b'[') => "an array",
            Some(b'{') => "an object",
            _ => return self.error(EXPECTED_VALUE),
        };
        de::Error::custom(format_args!("invalid type: {found}, expected {exp}"))
    }

    /// Checks that the bytes at the current position are `ident`.
    #[inline]
    fn parse_ident(&mut self, ident: &[u8]) -> Result<()> {
        match skip_literal(self.input, self.pos, ident) {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err(_) => Err(self.error(EXPECTED_IDENT)),
        }
    }

    /// Enters a decoded container (serde_json's recursion limit).
    #[inline(always)]
    fn enter(&mut self) -> Result<()> {
        if self.remaining_depth <= 1 {
            return Err(self.error(RECURSION_LIMIT));
        }
        self.remaining_depth -= 1;
        Ok(())
    }

    /// Parses a number at the current position (a `-` or a digit).
    #[inline]
    fn parse_number(&mut self) -> Result<Number> {
        let input = self.input;
        let start = self.pos;
        let mut i = start;
        let positive = input.get(i) != Some(&b'-');
        if !positive {
            i += 1;
        }
        let mut significand: u64;
        match input.get(i) {
            Some(b'0') => {
                i += 1;
                significand = 0;
            }
            Some(&c @ b'1'..=b'9') => {
                i += 1;
                significand = (c - b'0') as u64;
                while let Some(&c @ b'0'..=b'9') = input.get(i) {
                    match significand
                        .checked_mul(10)
                        .and_then(|s| s.checked_add((c - b'0') as u64))
                    {
                        Some(s) => significand = s,
                        None => return self.parse_float(start),
                    }
                    i += 1;
                }
            }
            Some(_) => {
                self.pos = i;
                return Err(self.error(INVALID_NUMBER));
            }
            None => {
                self.pos = i;
                return Err(self.error(EOF_VALUE));
            }
        }
        if let Some(b'.' | b'e' | b'E' | b'0'..=b'9') = input.get(i) {
            return self.parse_float(start);
        }
        self.pos = i;
        Ok(if positive {
            Number::U64(significand)
        } else {
            let neg = (significand as i64).wrapping_neg();
            // -0 and values below i64::MIN are floats, as in serde_json.
            if neg >= 0 {
                Number::F64(-(significand as f64))
            } else {
                Number::I64(neg)
            }
        })
    }

    /// Parses the number at `start` as a float. The token is found by the
    /// grammar and converted by serde_json itself, so the value (and the
    /// out-of-range error for results that overflow) is serde_json's bit for
    /// bit, whatever its float features.
    #[cold]
    #[inline(never)]
    fn parse_float(&mut self, start: usize) -> Result<Number> {
        let end = scan_number(self.input, start)?;
        match serde_json::from_slice::<f64>(&self.input[start..end]) {
            Ok(f) => {
                self.pos = end;
                Ok(Number::F64(f))
            }
            Err(_) => {
                self.pos = end;
                Err(self.error(NUMBER_OUT_OF_RANGE))
            }
        }
    }

    /// serde_json's `deserialize_number`: integer-typed and float hints.
    fn deserialize_number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'-' | b'0'..=b'9') => self.parse_number()?.visit(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    /// The digits of a 128-bit integer (no fraction or exponent), with the
    /// sign already consumed.
    fn scan_integer128(&mut self) -> Result<&'de str> {
        let input = self.input;
        let start = self.pos;
        match input.get(start) {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error(INVALID_NUMBER));
                }
            }
            Some(b'1'..=b'9') => {
                self.pos += 1;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => {
                self.pos += 1;
                return Err(self.error(INVALID_NUMBER));
            }
        }
        // Digits only: always ASCII.
        std::str::from_utf8(&input[start..self.pos]).map_err(|_| self.error(INVALID_NUMBER))
    }

    fn deserialize_i128_any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let negative = match self.parse_ws() {
            Some(b'-') => {
                self.pos += 1;
                true
            }
            Some(_) => false,
            None => return Err(self.error(EOF_VALUE)),
        };
        let digits = self.scan_integer128()?;
        let parsed = if negative {
            format!("-{digits}").parse::<i128>()
        } else {
            digits.parse::<i128>()
        };
        match parsed {
            Ok(n) => visitor.visit_i128(n),
            Err(_) => Err(self.error(NUMBER_OUT_OF_RANGE)),
        }
    }

    fn deserialize_u128_any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'-') => return Err(self.error(NUMBER_OUT_OF_RANGE)),
            Some(_) => {}
            None => return Err(self.error(EOF_VALUE)),
        }
        let digits = self.scan_integer128()?;
        match digits.parse::<u128>() {
            Ok(n) => visitor.visit_u128(n),
            Err(_) => Err(self.error(NUMBER_OUT_OF_RANGE)),
        }
    }

    /// Parses a string body (the opening quote consumed). Returns the raw
    /// bytes when the string has no escape, else `None` with the unescaped
    /// bytes in `scratch`. With `validate`, control characters and lone
    /// surrogates are errors (text); without, they pass (bytes).
    #[inline]
    fn parse_str_bytes(&mut self, validate: bool) -> Result<Option<&'de [u8]>> {
        let input = self.input;
        let mut start = self.pos;
        let mut copied = false;
        loop {
            let i = if validate {
                find_special::<true>(input, self.pos)
            } else {
                find_special::<false>(input, self.pos)
            };
            self.pos = i;
            match input.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    if !copied {
                        return Ok(Some(&input[start..i]));
                    }
                    self.scratch.extend_from_slice(&input[start..i]);
                    return Ok(None);
                }
                Some(b'\\') => {
                    if !copied {
                        self.scratch.clear();
                        copied = true;
                    }
                    self.scratch.extend_from_slice(&input[start..i]);
                    self.pos = i + 1;
                    self.parse_escape(validate)?;
                    start = self.pos;
                }
                Some(_) => return Err(self.error(CONTROL_CHARACTER)),
                None => return Err(self.error(EOF_STRING)),
            }
        }
    }

    /// Parses a string (the opening quote consumed) as UTF-8 text.
    #[inline]
    fn parse_str<'s>(&'s mut self) -> Result<Str<'de, 's>> {
        match self.parse_str_bytes(true)? {
            Some(bytes) => match utf8(bytes) {
                Some(s) => Ok(Str::Borrowed(s)),
                None => Err(self.error(INVALID_UNICODE)),
            },
            None => match utf8(&self.scratch) {
                Some(s) => Ok(Str::Copied(s)),
                None => Err(Error::syntax(INVALID_UNICODE, self.pos)),
            },
        }
    }

    /// Decodes one escape (the backslash consumed) into `scratch`.
    fn parse_escape(&mut self, validate: bool) -> Result<()> {
        let Some(c) = self.peek() else {
            return Err(self.error(EOF_STRING));
        };
        self.pos += 1;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => b'\x08',
            b'f' => b'\x0c',
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.parse_unicode_escape(validate),
            _ => return Err(self.error(INVALID_ESCAPE)),
        };
        self.scratch.push(byte);
        Ok(())
    }

    fn decode_hex_escape(&mut self) -> Result<u16> {
        match self.input.get(self.pos..self.pos + 4) {
            Some(h) => {
                self.pos += 4;
                decode_hex4(h).ok_or_else(|| self.error(INVALID_ESCAPE))
            }
            None => {
                self.pos = self.input.len();
                Err(self.error(EOF_STRING))
            }
        }
    }

    /// Decodes `\uXXXX` (and a following low surrogate escape), as
    /// serde_json's `parse_unicode_escape` does.
    #[cold]
    fn parse_unicode_escape(&mut self, validate: bool) -> Result<()> {
        let mut n = self.decode_hex_escape()?;
        if validate && (0xDC00..=0xDFFF).contains(&n) {
            return Err(self.error(LONE_SURROGATE));
        }
        loop {
            if !(0xD800..=0xDBFF).contains(&n) {
                push_wtf8(n as u32, &mut self.scratch);
                return Ok(());
            }
            let n1 = n;
            match self.peek() {
                Some(b'\\') => self.pos += 1,
                Some(_) if validate => {
                    self.pos += 1;
                    return Err(self.error(UNEXPECTED_END_OF_HEX_ESCAPE));
                }
                Some(_) => {
                    push_wtf8(n1 as u32, &mut self.scratch);
                    return Ok(());
                }
                None => return Err(self.error(EOF_STRING)),
            }
            match self.peek() {
                Some(b'u') => self.pos += 1,
                Some(_) if validate => {
                    self.pos += 1;
                    return Err(self.error(UNEXPECTED_END_OF_HEX_ESCAPE));
                }
                Some(_) => {
                    push_wtf8(n1 as u32, &mut self.scratch);
                    // Not `\u`: a simple escape, handled without recursion.
                    return self.parse_escape(validate);
                }
                None => return Err(self.error(EOF_STRING)),
            }
            let n2 = self.decode_hex_escape()?;
            if !(0xDC00..=0xDFFF).contains(&n2) {
                if validate {
                    return Err(self.error(LONE_SURROGATE));
                }
                push_wtf8(n1 as u32, &mut self.scratch);
                n = n2;
                continue;
            }
            let c = ((((n1 - 0xD800) as u32) << 10) | (n2 - 0xDC00) as u32) + 0x1_0000;
            push_wtf8(c, &mut self.scratch);
            return Ok(());
        }
    }

    /// `]` after a decoded array's elements.
    fn end_seq(&mut self) -> Result<()> {
        match self.parse_ws() {
            Some(b']') => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => Err(self.error(TRAILING_CHARACTERS)),
            Some(_) => Err(self.error(TRAILING_CHARACTERS)),
            None => Err(self.error(EOF_LIST)),
        }
    }

    /// `}` after a decoded object's entries.
    fn end_map(&mut self) -> Result<()> {
        match self.parse_ws() {
            Some(b'}') => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => Err(self.error(TRAILING_COMMA)),
            Some(_) => Err(self.error(TRAILING_CHARACTERS)),
            None => Err(self.error(EOF_OBJECT)),
        }
    }

    /// Decodes the array at the current `[` through `visitor`.
    #[inline]
    fn visit_array<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        self.pos += 1;
        let ret = visitor.visit_seq(SeqAccess {
            de: self,
            first: true,
        });
        self.remaining_depth += 1;
        let value = ret?;
        self.end_seq()?;
        Ok(value)
    }

    /// Decodes the object at the current `{` through `visitor`.
    #[inline]
    fn visit_object<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        self.pos += 1;
        let ret = visitor.visit_map(MapAccess {
            de: self,
            first: true,
        });
        self.remaining_depth += 1;
        let value = ret?;
        self.end_map()?;
        Ok(value)
    }

    /// Parses the `:` between an object key and its value.
    #[inline]
    fn parse_object_colon(&mut self) -> Result<()> {
        match self.parse_ws() {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(EXPECTED_COLON)),
            None => Err(self.error(EOF_OBJECT)),
        }
    }
}

macro_rules! forward_number {
    ($($method:ident)*) => {
        $(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.deserialize_number(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str()? {
                    Str::Borrowed(s) => visitor.visit_borrowed_str(s),
                    Str::Copied(s) => visitor.visit_str(s),
                }
            }
            Some(b'{') => self.visit_object(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(b'-' | b'0'..=b'9') => self.parse_number()?.visit(visitor),
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.parse_ident(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.parse_ident(b"false")?;
                visitor.visit_bool(false)
            }
            Some(_) => Err(self.error(EXPECTED_VALUE)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b't') => {
                self.parse_ident(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.parse_ident(b"false")?;
                visitor.visit_bool(false)
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    forward_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i128_any(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_u128_any(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str()? {
                    Str::Borrowed(s) => visitor.visit_borrowed_str(s),
                    Str::Copied(s) => visitor.visit_str(s),
                }
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str_bytes(false)? {
                    Some(b) => visitor.visit_borrowed_bytes(b),
                    None => visitor.visit_bytes(&self.scratch),
                }
            }
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_unit()
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => self.visit_object(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => self.visit_object(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let ret = visitor.visit_enum(VariantAccess { de: self });
                self.remaining_depth += 1;
                let value = ret?;
                match self.parse_ws() {
                    Some(b'}') => {
                        self.pos += 1;
                        Ok(value)
                    }
                    Some(_) => Err(self.error(EXPECTED_VALUE)),
                    None => Err(self.error(EOF_OBJECT)),
                }
            }
            Some(b'"') => visitor.visit_enum(UnitVariantAccess { de: self }),
            Some(_) => Err(self.error(EXPECTED_VALUE)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match skip_value(self.input, self.pos, &mut self.frames, &mut self.specials) {
            Ok(end) => {
                self.pos = end;
                visitor.visit_unit()
            }
            Err(ScanError(message, at)) => {
                self.pos = at.min(self.input.len());
                Err(Error::syntax(message, at))
            }
        }
    }
}

struct SeqAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let de = &mut *self.de;
        match de.parse_ws() {
            Some(b']') => return Ok(None),
            Some(_) if self.first => self.first = false,
            Some(b',') => {
                de.pos += 1;
                match de.parse_ws() {
                    Some(b']') => return Err(de.error(TRAILING_COMMA)),
                    Some(_) => {}
                    None => return Err(de.error(EOF_VALUE)),
                }
            }
            Some(_) => return Err(de.error(EXPECTED_LIST_COMMA_OR_END)),
            None => return Err(de.error(EOF_LIST)),
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

struct MapAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let de = &mut *self.de;
        match de.parse_ws() {
            Some(b'}') => return Ok(None),
            Some(b'"') if self.first => self.first = false,
            Some(_) if self.first => return Err(de.error(KEY_MUST_BE_STRING)),
            Some(b',') => {
                de.pos += 1;
                match de.parse_ws() {
                    Some(b'"') => {}
                    Some(b'}') => return Err(de.error(TRAILING_COMMA)),
                    Some(_) => return Err(de.error(KEY_MUST_BE_STRING)),
                    None => return Err(de.error(EOF_VALUE)),
                }
            }
            Some(_) => return Err(de.error(EXPECTED_OBJECT_COMMA_OR_END)),
            None => return Err(de.error(EOF_OBJECT)),
        }
        seed.deserialize(MapKey { de: &mut *self.de }).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.parse_object_colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// `{"Variant": value}`.
struct VariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        match self.de.parse_ws() {
            Some(b'"') => {}
            Some(b'}') => return Err(self.de.error(EXPECTED_VALUE)),
            Some(_) => return Err(self.de.error(KEY_MUST_BE_STRING)),
            None => return Err(self.de.error(EOF_OBJECT)),
        }
        let value = seed.deserialize(MapKey { de: &mut *self.de })?;
        self.de.parse_object_colon()?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
}

/// `"Variant"`.
struct UnitVariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

/// An object key, positioned at its opening quote. Keys are always decoded
/// as text (numbers and booleans inside the quotes for those hints), as in
/// serde_json.
struct MapKey<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> MapKey<'_, 'de> {
    /// A number inside quotes: `"12"`.
    fn quoted<V: Visitor<'de>>(
        self,
        visitor: V,
        parse: fn(&mut Deserializer<'de>, V) -> Result<V::Value>,
    ) -> Result<V::Value> {
        let de = self.de;
        de.pos += 1;
        match de.peek() {
            Some(b'0'..=b'9' | b'-') => {}
            _ => return Err(de.error(EXPECTED_NUMERIC_KEY)),
        }
        let value = parse(de, visitor)?;
        match de.peek() {
            Some(b'"') => de.pos += 1,
            _ => return Err(de.error(EXPECTED_QUOTE)),
        }
        Ok(value)
    }
}

macro_rules! quoted_number {
    ($($method:ident => $parse:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.quoted(visitor, Deserializer::$parse)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for MapKey<'_, 'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.pos += 1;
        match self.de.parse_str()? {
            Str::Borrowed(s) => visitor.visit_borrowed_str(s),
            Str::Copied(s) => visitor.visit_str(s),
        }
    }

    quoted_number! {
        deserialize_i8 => deserialize_number,
        deserialize_i16 => deserialize_number,
        deserialize_i32 => deserialize_number,
        deserialize_i64 => deserialize_number,
        deserialize_i128 => deserialize_i128_any,
        deserialize_u8 => deserialize_number,
        deserialize_u16 => deserialize_number,
        deserialize_u32 => deserialize_number,
        deserialize_u64 => deserialize_number,
        deserialize_u128 => deserialize_u128_any,
        deserialize_f32 => deserialize_number,
        deserialize_f64 => deserialize_number,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let de = self.de;
        de.pos += 1;
        match de.peek() {
            Some(b't') => {
                de.parse_ident(b"true\"")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                de.parse_ident(b"false\"")?;
                visitor.visit_bool(false)
            }
            Some(_) => {
                de.parse_str()?;
                Err(de.invalid_type(&visitor))
            }
            None => Err(de.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_enum(self.de, name, variants, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
