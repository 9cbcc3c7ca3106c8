//! Log output: the line format ([`format`]) and the server's batched writer
//! ([`writer`]).

pub mod format;
pub mod writer;
