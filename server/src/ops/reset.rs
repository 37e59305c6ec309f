//! Forgetting: a partner forgets its links, users, data requests, operations, webhook
//! deliveries, journal entries and faults (its webhook URL and secret stay, like portal
//! settings); a Leaf account forgets its users and magic links; admin forgets everything, in
//! both APIs — open-mode partners and Leaf accounts themselves too, so `--max-tenants`
//! counts from none again — and puts the clock back on real time.

use super::identity::Scope;
use crate::app::App;

/// What a reset forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgot {
    /// One tenant's state.
    Tenant,
    /// Everything.
    All,
}

/// Forgets what `scope` owns.
pub fn reset(app: &App, scope: &Scope) -> Forgot {
    let forgot = match scope {
        Scope::Tenant(partner) => {
            partner.reset();
            app.webhooks.forget_tenant(&partner.slug);
            Forgot::Tenant
        }
        Scope::Leaf(account, _) => {
            account.reset();
            Forgot::Tenant
        }
        Scope::Admin => {
            app.store.m2m().reset_all();
            app.store.leaf().reset_all();
            app.webhooks.forget_all();
            app.clock.reset();
            Forgot::All
        }
    };
    app.journal.clear(scope.slug());
    app.faults.clear(scope.slug());
    forgot
}
