//! The decoder's error: a message and the byte offset where it was found.
//! Messages are short and do not follow serde_json's wording.

use std::borrow::Cow;
use std::fmt;

use serde::de;

/// A JSON syntax error or a type mismatch, with the byte offset where it was
/// found.
pub struct Error(Box<ErrorImpl>);

pub(crate) struct ErrorImpl {
    message: Cow<'static, str>,
    offset: Option<usize>,
}

impl Error {
    pub(crate) fn syntax(message: &'static str, offset: usize) -> Self {
        Error(Box::new(ErrorImpl {
            message: Cow::Borrowed(message),
            offset: Some(offset),
        }))
    }

    /// Gives an error raised by a visitor (which knows no position) the
    /// position where decoding stopped.
    #[cold]
    pub(crate) fn at(mut self, offset: usize) -> Self {
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

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) const EOF_VALUE: &str = "EOF while parsing a value";
pub(crate) const EOF_STRING: &str = "EOF while parsing a string";
pub(crate) const EOF_LIST: &str = "EOF while parsing a list";
pub(crate) const EOF_OBJECT: &str = "EOF while parsing an object";
pub(crate) const EXPECTED_VALUE: &str = "expected value";
pub(crate) const EXPECTED_IDENT: &str = "expected ident";
pub(crate) const EXPECTED_COLON: &str = "expected `:`";
pub(crate) const EXPECTED_LIST_COMMA_OR_END: &str = "expected `,` or `]`";
pub(crate) const EXPECTED_OBJECT_COMMA_OR_END: &str = "expected `,` or `}`";
pub(crate) const EXPECTED_NUMERIC_KEY: &str =
    "invalid value: expected key to be a number in quotes";
pub(crate) const EXPECTED_QUOTE: &str = "expected closing double quote";
pub(crate) const KEY_MUST_BE_STRING: &str = "key must be a string";
pub(crate) const TRAILING_COMMA: &str = "trailing comma";
pub(crate) const TRAILING_CHARACTERS: &str = "trailing characters";
pub(crate) const INVALID_NUMBER: &str = "invalid number";
pub(crate) const NUMBER_OUT_OF_RANGE: &str = "number out of range";
pub(crate) const INVALID_ESCAPE: &str = "invalid escape";
pub(crate) const CONTROL_CHARACTER: &str =
    "control character (\\u0000-\\u001F) found while parsing a string";
pub(crate) const LONE_SURROGATE: &str = "lone leading surrogate in hex escape";
pub(crate) const UNEXPECTED_END_OF_HEX_ESCAPE: &str = "unexpected end of hex escape";
pub(crate) const INVALID_UNICODE: &str = "invalid unicode code point";
pub(crate) const RECURSION_LIMIT: &str = "recursion limit exceeded";

/// A syntax error found by the free scanning functions: message and offset.
pub(crate) struct ScanError(pub(crate) &'static str, pub(crate) usize);

impl From<ScanError> for Error {
    #[cold]
    fn from(ScanError(message, offset): ScanError) -> Self {
        Error::syntax(message, offset)
    }
}
