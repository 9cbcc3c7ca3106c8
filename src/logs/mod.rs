//! Log output: the line format ([`format`]). The server writes its lines
//! through `tracing-appender`'s non-blocking writer (see `main.rs`).

pub mod format;
