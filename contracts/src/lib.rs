//! The wire contract of the two vendor APIs linkbox reproduces: request and response types
//! with serde, `schemars` and `utoipa` derives, and the documented constants (bounds, enums,
//! error codes and messages) that the server validates with and the schemas are built from.
//!
//! # Layout
//! - [`m2m`]: LeapFinancial's M2M partner-link API (`/partner/...`).
//! - [`leaf`]: Leaf Agriculture's magic-link API (`/api/authenticate`, `/services/...`).
//! - [`openapi`]: the OpenAPI 3.1 document built from these types.
//! - [`patterns`]: the patterns request schemas hold text to.
//! - [`schemas`]: the JSON Schema of every wire type, one file each.
//! - [`sandbox`]: linkbox's own control API (`/_sandbox/...`).
//! - [`timefmt`]: the timestamp formats both vendors put on the wire.
//! - [`json`]: the JSON text of a body, in a buffer sized for it.
//!
//! Everything here is data: no I/O, no HTTP client, no server logic. The server, the generated
//! schemas and the contract suite (the `linkbox-suite` crate in `contracts/suite`) all read
//! the same constants, so a bound changes in exactly one place.

pub mod json;
pub mod leaf;
pub mod m2m;
pub mod openapi;
pub mod patterns;
pub mod sandbox;
pub mod schemas;
pub mod timefmt;
