//! Fixtures shared by the unit tests of the M2M store's submodules.

use std::sync::Arc;

use linkbox_contracts::m2m as wire;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{NewLink, Partner, Partners};
use crate::config::{Options, Settings};

pub const KEY: &str = "m2m_test_0123456789abcdefghijklmnopqrstuv";
pub const NOW: OffsetDateTime = datetime!(2026-02-10 12:00 UTC);

/// A fresh open-mode partner.
pub fn partner() -> Arc<Partner> {
    let settings = Settings::resolve(Options::default(), ([127, 0, 0, 1], 8642).into());
    Partners::new(&settings)
        .authenticate(KEY)
        .expect("open mode accepts test keys")
}

/// A create request for `reference_id` with nothing else.
pub fn new_link(reference_id: &str) -> NewLink {
    NewLink {
        reference_id: reference_id.into(),
        flow: wire::DEFAULT_FLOW.into(),
        ..NewLink::default()
    }
}
