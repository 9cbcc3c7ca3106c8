//! The webhook's certificates: generating a CA and a serving certificate
//! ([`generate`]), and planning their installation and rotation in the
//! cluster ([`rotate`]).

mod generate;
pub mod rotate;

pub use generate::*;
