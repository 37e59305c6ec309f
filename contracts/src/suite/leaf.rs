//! Cases of the Leaf magic-link API, one per behaviour of `leaf.md`.

use super::Case;

/// Every Leaf case.
pub fn cases() -> Vec<Case> {
    Vec::new()
}
