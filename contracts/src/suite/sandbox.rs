//! Cases of linkbox's own control API (`sandbox.md`): few, and all local.

use super::Case;

/// Every control-API case.
pub fn cases() -> Vec<Case> {
    Vec::new()
}
