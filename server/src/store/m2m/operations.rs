//! Operations: the transfer an end user completes (or cancels) in the widget, played through
//! the control API. A link holds at most one live operation; its id is the link's
//! `operationId`.

use linkbox_contracts::m2m::{LinkStatus, OperationAmount, OperationStatus};
use linkbox_contracts::sandbox::OperationView;
use linkbox_contracts::timefmt;
use time::OffsetDateTime;

use super::{Partner, PartnerState, ids};

/// Why an operation could not be created or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    #[error("Link not found")]
    LinkNotFound,
    #[error("The link is revoked")]
    Revoked,
    #[error("The link has expired")]
    Expired,
    #[error("The link has not been opened: open it first")]
    NotOpened,
    #[error("The link already has an operation; cancel it first")]
    OperationExists,
    #[error("The link has no operation to cancel")]
    NoOperation,
}

/// A validated operation request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    pub amount: OperationAmount,
}

pub(super) struct Operation {
    pub(super) suffix: [u8; 6],
    pub(super) amount: OperationAmount,
    pub(super) created_at: OffsetDateTime,
    pub(super) cancelled_at: Option<OffsetDateTime>,
}

impl Partner {
    /// Completes a transfer on an opened, live link; the operation id becomes the link's
    /// `operationId`.
    pub fn create_operation(
        &self,
        link_id: &str,
        new: NewOperation,
        now: OffsetDateTime,
    ) -> Result<OperationView, OperationError> {
        let mut state = self.state.lock();
        let index = self.live_link(&state, link_id, now)?;
        if state.links[index].status != LinkStatus::Opened {
            return Err(OperationError::NotOpened);
        }
        if state
            .operations
            .get(&(index as u32))
            .is_some_and(|operation| operation.cancelled_at.is_none())
        {
            return Err(OperationError::OperationExists);
        }
        let state = &mut *state;
        let suffix = state
            .minted_operations
            .next(self.minter(super::IdKind::Operation), || {
                state.operations.values().map(|operation| operation.suffix)
            });
        let operation = Operation {
            suffix,
            amount: new.amount,
            created_at: now,
            cancelled_at: None,
        };
        let operation_id = self.operation_id(&operation);
        let link = &mut state.links[index];
        let counted = link.weight();
        link.set_extra(
            |extras| &mut extras.operation_id,
            Some(operation_id.as_str().into()),
        );
        // An id of a fixed length: no budget to check, only the count to keep.
        state.stored = state.stored.saturating_sub(counted) + link.weight();
        state.operations.insert(index as u32, operation);
        self.record(|changes| {
            self.put_link(changes, state, index);
            self.put_operation(changes, state, index);
        });
        Ok(self.operation_view(state, index))
    }

    /// Cancels the link's live operation.
    pub fn cancel_operation(
        &self,
        link_id: &str,
        now: OffsetDateTime,
    ) -> Result<OperationView, OperationError> {
        let mut state = self.state.lock();
        let index = self.live_link(&state, link_id, now)?;
        match state.operations.get_mut(&(index as u32)) {
            Some(operation) if operation.cancelled_at.is_none() => {
                operation.cancelled_at = Some(now);
            }
            _ => return Err(OperationError::NoOperation),
        }
        self.record(|changes| self.put_operation(changes, &state, index));
        Ok(self.operation_view(&state, index))
    }

    /// The link's latest operation, live or cancelled, if it has had one.
    pub fn operation(&self, link_id: &str) -> Option<OperationView> {
        let state = self.state.lock();
        let index = self.find_link(&state, link_id).ok()?;
        state
            .operations
            .contains_key(&(index as u32))
            .then(|| self.operation_view(&state, index))
    }

    fn live_link(
        &self,
        state: &PartnerState,
        link_id: &str,
        now: OffsetDateTime,
    ) -> Result<usize, OperationError> {
        let index = self
            .find_link(state, link_id)
            .map_err(|_| OperationError::LinkNotFound)?;
        let link = &state.links[index];
        if link.status == LinkStatus::Revoked {
            return Err(OperationError::Revoked);
        }
        if link.is_expired(now) {
            return Err(OperationError::Expired);
        }
        Ok(index)
    }

    pub(super) fn operation_id(&self, operation: &Operation) -> String {
        format!("op_{}_{}", self.slug, ids::fmt_alnum6(&operation.suffix))
    }

    /// The view of link `index`'s operation, which must exist.
    pub(super) fn operation_view(&self, state: &PartnerState, index: usize) -> OperationView {
        let link = &state.links[index];
        let operation = &state.operations[&(index as u32)];
        OperationView {
            operation_id: self.operation_id(operation),
            link_id: self.link_id(link.suffix),
            reference_id: state.users[link.user as usize].reference_id.to_string(),
            amount: operation.amount.clone(),
            status: if operation.cancelled_at.is_some() {
                OperationStatus::Cancelled
            } else {
                OperationStatus::Completed
            },
            created_at: timefmt::millis(operation.created_at),
            cancelled_at: operation.cancelled_at.map(timefmt::millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{NOW, amount, new_link, partner};
    use super::*;

    #[test]
    fn an_operation_needs_an_opened_link_and_sets_its_operation_id() {
        let partner = partner();
        let link = partner.create_link(new_link("u1"), NOW).expect("link");
        assert_eq!(
            partner.create_operation(&link.link_id, amount(), NOW).err(),
            Some(OperationError::NotOpened)
        );
        partner.open_link(&link.link_id, NOW).expect("open");
        let operation = partner
            .create_operation(&link.link_id, amount(), NOW)
            .expect("operation");
        let slug_prefix = format!("op_{}_", partner.slug);
        assert!(operation.operation_id.starts_with(&slug_prefix));
        assert_eq!(operation.operation_id.len(), slug_prefix.len() + 6);
        let detail = partner.link(&link.link_id).expect("detail");
        assert_eq!(detail.item.operation_id, Some(operation.operation_id));
        assert_eq!(
            partner.create_operation(&link.link_id, amount(), NOW).err(),
            Some(OperationError::OperationExists)
        );
    }

    #[test]
    fn cancelling_needs_a_live_operation_and_allows_a_new_one() {
        let partner = partner();
        let link = partner.create_link(new_link("u1"), NOW).expect("link");
        partner.open_link(&link.link_id, NOW).expect("open");
        assert_eq!(
            partner.cancel_operation(&link.link_id, NOW).err(),
            Some(OperationError::NoOperation)
        );
        partner
            .create_operation(&link.link_id, amount(), NOW)
            .expect("operation");
        let cancelled = partner
            .cancel_operation(&link.link_id, NOW)
            .expect("cancel");
        assert_eq!(cancelled.status, OperationStatus::Cancelled);
        assert!(
            partner
                .create_operation(&link.link_id, amount(), NOW)
                .is_ok()
        );
    }
}
