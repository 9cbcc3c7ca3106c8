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

//!
//! The writer half, [`write_str`] and its siblings, writes JSON strings byte
//! for byte as `serde_json::to_writer` does, scanned for the characters that
//! need escaping 16 bytes at a time.
//!
//! This crate holds all the `unsafe` code and SIMD of floe-guard (SSE2
//! intrinsics and one `from_utf8_unchecked` on bytes already checked), so
//! the application crate can forbid `unsafe`. Each device is justified by a
//! measured row in the application's `docs/performance.md`, and held equal
//! to serde_json by `tests/differential.rs`, `tests/edge_cases.rs`, the
//! writer's property tests and the `fastjson_differential` fuzz target.

mod de;
mod error;
mod parse;
mod scan;
mod ser;

use serde::de::Deserialize;

pub use error::Error;
pub use ser::{needs_escape, write_str, write_str_content, write_str_to_string};

use error::TRAILING_CHARACTERS;
use parse::Deserializer;
use scan::Specials;

/// Decodes a `T` from the JSON text `input`; only whitespace may follow it.
///
/// Accepts exactly what `serde_json::from_slice::<T>` accepts and gives the
/// same value.
pub fn from_slice<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, Error> {
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
