//! The webhook's certificates: generating a CA and a serving certificate
//! ([`generate`]), reading them back ([`inspect`]), the Secrets that hold
//! them ([`secret`]), and planning their installation and rotation in the
//! cluster ([`rotate`]).

mod generate;
pub mod inspect;
pub mod rotate;
pub mod secret;

pub use generate::*;
