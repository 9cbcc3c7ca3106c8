//! Helpers shared by the integration tests: the upstream PSS corpus, the
//! in-process TLS server and its client, the server as a child process, and
//! the fake Kubernetes API server.

pub mod certs_apiserver;
pub mod corpus;
pub mod fake_apiserver;
pub mod reliability;
pub mod server;
