//! Fixtures shared by the unit tests of the M2M store's submodules.

use std::sync::Arc;

use linkbox_contracts::m2m as wire;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{NewLink, NewOperation, Partner, Partners};
use crate::config::{Options, Settings};

pub const KEY: &str = "m2m_test_0123456789abcdefghijklmnopqrstuv";
pub const NOW: OffsetDateTime = datetime!(2026-02-10 12:00 UTC);

/// A fresh open-mode partner.
pub fn partner() -> Arc<Partner> {
    partner_with(Options::default())
}

/// A fresh open-mode partner of a sandbox started with `options`.
pub fn partner_with(options: Options) -> Arc<Partner> {
    let settings = Settings::resolve(options, ([127, 0, 0, 1], 8642).into());
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

/// A transfer of 100 USD less a fee of 3.
pub fn amount() -> NewOperation {
    NewOperation {
        amount: wire::OperationAmount {
            send: 100.0,
            receive: 97.0,
            fee: 3.0,
            send_currency: "USD".into(),
            receive_currency: "USD".into(),
        },
    }
}
