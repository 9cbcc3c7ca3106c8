//! `fastjson` against serde_json, one binary: the differential property
//! tests over generated, mutated and real Kubernetes JSON, and the edge cases
//! with their expected outcomes.

mod corpus;
mod differential;
mod edge_cases;
