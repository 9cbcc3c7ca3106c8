//! The decoder's state and its token readers: literals, numbers (floats
//! converted by serde_json on their own bytes), strings (borrowed unless
//! escaped), and the hand-off of skipped values to the scanner.

use serde::de::{self, Expected, Visitor};

use crate::de::{MapAccess, SeqAccess};
use crate::error::*;
use crate::scan::*;

/// A parsed number, as serde_json hands it to visitors.
pub(crate) enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Number {
    pub(crate) fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Number::U64(n) => visitor.visit_u64(n),
            Number::I64(n) => visitor.visit_i64(n),
            Number::F64(n) => visitor.visit_f64(n),
        }
    }
}

/// A decoded string: borrowed from the input, or unescaped into scratch.
pub(crate) enum Str<'de, 's> {
    Borrowed(&'de str),
    Copied(&'s str),
}

pub(crate) struct Deserializer<'de> {
    pub(crate) input: &'de [u8],
    pub(crate) pos: usize,
    /// Unescaped string bytes.
    pub(crate) scratch: Vec<u8>,
    /// Nesting still allowed for decoded (not skipped) containers.
    pub(crate) remaining_depth: u8,
    /// The skipper's frame stack, kept to reuse its allocation.
    pub(crate) frames: Vec<u8>,
    /// The skipper's last window: the next skipped value often starts in it.
    pub(crate) specials: Specials,
}

impl<'de> Deserializer<'de> {
    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Skips whitespace and peeks at the next byte.
    #[inline(always)]
    pub(crate) fn parse_ws(&mut self) -> Option<u8> {
        match self.input.get(self.pos) {
            Some(&b) if !is_ws(b) => Some(b),
            _ => {
                self.pos = skip_ws(self.input, self.pos);
                self.peek()
            }
        }
    }

    #[cold]
    pub(crate) fn error(&self, message: &'static str) -> Error {
        Error::syntax(message, self.pos)
    }

    /// A type mismatch: the value at the current position does not fit `exp`.
    #[cold]
    pub(crate) fn invalid_type(&self, exp: &dyn Expected) -> Error {
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
    pub(crate) fn parse_ident(&mut self, ident: &[u8]) -> Result<()> {
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
    pub(crate) fn enter(&mut self) -> Result<()> {
        if self.remaining_depth <= 1 {
            return Err(self.error(RECURSION_LIMIT));
        }
        self.remaining_depth -= 1;
        Ok(())
    }

    /// Parses a number at the current position (a `-` or a digit).
    #[inline]
    pub(crate) fn parse_number(&mut self) -> Result<Number> {
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
    pub(crate) fn parse_float(&mut self, start: usize) -> Result<Number> {
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
    pub(crate) fn deserialize_number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'-' | b'0'..=b'9') => self.parse_number()?.visit(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    /// The digits of a 128-bit integer (no fraction or exponent), with the
    /// sign already consumed.
    pub(crate) fn scan_integer128(&mut self) -> Result<&'de str> {
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

    pub(crate) fn deserialize_i128_any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
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

    pub(crate) fn deserialize_u128_any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
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
    pub(crate) fn parse_str_bytes(&mut self, validate: bool) -> Result<Option<&'de [u8]>> {
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
    pub(crate) fn parse_str<'s>(&'s mut self) -> Result<Str<'de, 's>> {
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
    pub(crate) fn parse_escape(&mut self, validate: bool) -> Result<()> {
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

    pub(crate) fn decode_hex_escape(&mut self) -> Result<u16> {
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
    pub(crate) fn parse_unicode_escape(&mut self, validate: bool) -> Result<()> {
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
    pub(crate) fn end_seq(&mut self) -> Result<()> {
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
    pub(crate) fn end_map(&mut self) -> Result<()> {
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
    pub(crate) fn visit_array<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
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
    pub(crate) fn visit_object<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
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
    pub(crate) fn parse_object_colon(&mut self) -> Result<()> {
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
