//! Unit tests of the PSS checks.
