//! Domain operations: everything more than one surface does — the M2M API, the Leaf API,
//! the control API, the hosted pages and the seeder all call here, so they can never
//! disagree. Nothing here knows warp or HTTP status codes: operations return domain errors
//! ([`Error`]) and each surface renders them in its own envelope.
//!
//! - [`identity`]: who is calling, resolved once per request.
//! - [`tokens`]: Leaf `id_token`s, issued and verified.
//! - [`m2m`]: playing the M2M end user — open a link, complete or cancel a transfer.
//! - [`leaf`]: playing the Leaf end user — count an access, connect a provider.
//! - [`events`]: the documented M2M webhook events, built and queued.
//! - [`reset`]: forgetting a tenant, or everything.
//! - [`seed`]: deterministic fake data.

pub mod events;
pub mod identity;
pub mod leaf;
pub mod m2m;
pub mod reset;
pub mod seed;
pub mod tokens;

use std::borrow::Cow;

use crate::store::leaf::LeafError;
use crate::store::m2m::{LinkError, OperationError};

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Operation(#[from] OperationError),
    #[error(transparent)]
    Leaf(#[from] LeafError),
    /// A value the caller chose is not acceptable; the message names the field.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
}

impl Error {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Error {
        Error::Invalid(message.into())
    }
}

/// Whether the URL `text` is written as the URL parser reads it: `scheme://` and then its
/// host (not a slash), and no space or control character anywhere. The parser mends
/// `https:///x`, `https:x` and `https://\x` into `https://x/`, trims spaces and control
/// characters off both ends and drops tabs and newlines inside, so a URL it reads may have
/// been sent as something else; the URL as sent is what gets stored and echoed.
pub fn writes_host(text: &str) -> bool {
    !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text
            .split_once(':')
            .and_then(|(_, rest)| rest.strip_prefix("//"))
            .and_then(|rest| rest.chars().next())
            .is_some_and(|first| !matches!(first, '/' | '\\') && !first.is_ascii_control())
}
