//! The documented M2M events and their `data`, built from store views and queued on the
//! webhook queue for the engine to deliver. Every event carries the link's `metadata` when
//! it has one \[doc\], and goes to the link's `callbackUrl` when it has one. Its
//! `timestamp` is when it happened on the sandbox clock; `link.created`'s is the create's
//! own instant, so it reads the same as the link's `createdAt` \[design\].

use std::sync::Arc;

use linkbox_contracts::m2m::{
    CreatedLink, DataRequestEvent, DeviceInfo, LinkCreatedEvent, LinkDetail, LinkOpenedEvent,
    OperationCancelledEvent, OperationCreatedEvent, events,
};
use linkbox_contracts::sandbox::OperationView;
use linkbox_contracts::timefmt;
use serde_json::Value;
use time::OffsetDateTime;

use crate::app::App;
use crate::store::m2m::{DataRequestView, Partner};
use crate::webhooks::EventData;

/// Every event names its link.
macro_rules! about_a_link {
    ($($event:ty),+) => {
        $(impl EventData for $event {
            fn link_id(&self) -> Option<&str> {
                Some(&self.link_id)
            }
        })+
    };
}

impl EventData for LinkCreatedEvent {
    fn link_id(&self) -> Option<&str> {
        Some(&self.link_id)
    }

    /// The create's own instant, as the link's `createdAt` already spells it.
    fn timestamp(&self) -> Option<&str> {
        Some(&self.created_at)
    }
}

about_a_link!(
    LinkOpenedEvent,
    DataRequestEvent,
    OperationCreatedEvent,
    OperationCancelledEvent
);

/// `link.created`, on every create, stamped with the create's own instant `now`.
pub fn link_created(
    app: &App,
    partner: &Arc<Partner>,
    link: CreatedLink,
    metadata: Option<Value>,
    callback_url: Option<String>,
    now: OffsetDateTime,
) {
    let data = LinkCreatedEvent {
        link_id: link.link_id,
        reference_id: link.reference_id,
        url: link.url,
        status: link.status,
        expires_at: link.expires_at,
        created_at: link.created_at,
        metadata,
    };
    app.webhooks
        .enqueue(partner, events::LINK_CREATED, data, callback_url, now);
}

/// `link.opened`, on the first open only.
pub fn link_opened(app: &App, partner: &Arc<Partner>, link: &LinkDetail, device: DeviceInfo) {
    let now = app.clock.now();
    let data = LinkOpenedEvent {
        link_id: link.item.link_id.clone(),
        reference_id: link.item.reference_id.clone(),
        opened_at: link
            .item
            .opened_at
            .clone()
            .unwrap_or_else(|| timefmt::millis(now)),
        device_info: device,
        metadata: link.metadata.clone(),
    };
    app.webhooks.enqueue(
        partner,
        events::LINK_OPENED,
        data,
        link.callback_url.clone(),
        now,
    );
}

/// `user.data_request`, when an open finds the user's CIP data incomplete.
pub fn data_request(
    app: &App,
    partner: &Arc<Partner>,
    link: &LinkDetail,
    request: &DataRequestView,
) {
    let data = DataRequestEvent {
        data_request_id: request.data_request_id.clone(),
        reference_id: request.reference_id.clone(),
        link_id: request.link_id.clone(),
        required_fields: request.required_fields.clone(),
        reply_endpoint: reply_endpoint(app, &request.data_request_id),
        expires_at: timefmt::millis(request.expires_at),
        metadata: link.metadata.clone(),
    };
    let now = app.clock.now();
    app.webhooks.enqueue(
        partner,
        events::USER_DATA_REQUEST,
        data,
        link.callback_url.clone(),
        now,
    );
}

/// `operation.created`, when the end user completes a transfer.
pub fn operation_created(
    app: &App,
    partner: &Arc<Partner>,
    link: &LinkDetail,
    operation: &OperationView,
) {
    let data = OperationCreatedEvent {
        operation_id: operation.operation_id.clone(),
        reference_id: operation.reference_id.clone(),
        link_id: operation.link_id.clone(),
        amount: operation.amount.clone(),
        status: operation.status,
        created_at: operation.created_at.clone(),
        metadata: link.metadata.clone(),
    };
    let now = app.clock.now();
    app.webhooks.enqueue(
        partner,
        events::OPERATION_CREATED,
        data,
        link.callback_url.clone(),
        now,
    );
}

/// `operation.cancelled`, when the end user cancels it.
pub fn operation_cancelled(
    app: &App,
    partner: &Arc<Partner>,
    link: &LinkDetail,
    operation: &OperationView,
) {
    let now = app.clock.now();
    let data = OperationCancelledEvent {
        operation_id: operation.operation_id.clone(),
        reference_id: operation.reference_id.clone(),
        link_id: operation.link_id.clone(),
        cancelled_at: operation
            .cancelled_at
            .clone()
            .unwrap_or_else(|| timefmt::millis(now)),
        metadata: link.metadata.clone(),
    };
    app.webhooks.enqueue(
        partner,
        events::OPERATION_CANCELLED,
        data,
        link.callback_url.clone(),
        now,
    );
}

/// The full URL of `PUT /partner/data-requests/{id}` on this sandbox.
pub fn reply_endpoint(app: &App, data_request_id: &str) -> String {
    format!(
        "{}/partner/data-requests/{data_request_id}",
        app.settings.public_url
    )
}
