//! How deliveries are written to the state file (`webhook_deliveries`, one row per delivery,
//! its body, attempts and schedule), and read back so pending retries go on after a restart.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use linkbox_contracts::m2m::events;
use linkbox_contracts::sandbox::DeliveryStatus;
use linkbox_contracts::timefmt;
use serde::{Deserialize, Serialize};

use super::{Attempt, Delivery, Webhooks};
use crate::persist::{Changes, Table};
use crate::store::m2m::Partner;

/// A `webhook_deliveries` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    pub event: String,
    /// The exact body sent, as text (it is JSON).
    pub body: String,
    pub callback_url: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRow>,
    /// Index into the retry schedule of the next attempt.
    pub step: usize,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow {
    pub at: String,
    pub url: Option<String>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

pub(super) fn put(changes: &mut Changes, delivery: &Delivery) {
    let row = DeliveryRow {
        event: delivery.event.to_owned(),
        body: String::from_utf8_lossy(&delivery.body).into_owned(),
        callback_url: delivery.callback_url.clone(),
        status: delivery.status,
        attempts: delivery
            .attempts
            .iter()
            .map(|attempt| AttemptRow {
                at: timefmt::nanos(attempt.at),
                url: attempt.url.clone(),
                status_code: attempt.status_code,
                error: attempt.error.clone(),
                duration_ms: attempt.duration_ms,
            })
            .collect(),
        step: delivery.step,
        next_attempt_at: delivery.next_attempt_at.map(timefmt::nanos),
        created_at: timefmt::nanos(delivery.created_at),
    };
    changes.put(
        Table::WebhookDeliveries,
        &delivery.partner.slug,
        delivery.id.clone(),
        delivery.seq,
        &row,
    );
}

pub(super) fn delete(changes: &mut Changes, deliveries: &[Delivery]) {
    for delivery in deliveries {
        changes.delete(
            Table::WebhookDeliveries,
            &delivery.partner.slug,
            delivery.id.clone(),
            delivery.seq,
        );
    }
}

pub(super) fn forget_tenant(changes: &mut Changes, slug: &str) {
    changes.clear_tenant(Table::WebhookDeliveries, &Arc::from(slug));
}

pub(super) fn forget_all(changes: &mut Changes) {
    changes.clear_table(Table::WebhookDeliveries);
}

/// The `&'static` name of a documented event.
fn event_name(event: &str) -> Option<&'static str> {
    [
        events::LINK_CREATED,
        events::LINK_OPENED,
        events::USER_DATA_REQUEST,
        events::OPERATION_CREATED,
        events::OPERATION_CANCELLED,
    ]
    .into_iter()
    .find(|known| *known == event)
}

impl Webhooks {
    /// Puts back a delivery read from the state file or a shared database, after those
    /// already restored (rows come in queue order); one with a kept id replaces it in place.
    /// Attempts in flight when the process stopped are simply due. Gives the seq the
    /// delivery is kept at, which is `seq` unless the row was out of queue order.
    pub fn restore(
        &self,
        id: String,
        seq: u64,
        partner: Arc<Partner>,
        row: DeliveryRow,
    ) -> Result<u64, String> {
        let time = |text: &str| {
            timefmt::parse(text).ok_or_else(|| format!("delivery {id}: timestamp {text:?}"))
        };
        let event = event_name(&row.event)
            .ok_or_else(|| format!("delivery {id}: unknown event {:?}", row.event))?;
        let attempts = row
            .attempts
            .iter()
            .map(|attempt| {
                Ok(Attempt {
                    at: time(&attempt.at)?,
                    url: attempt.url.clone(),
                    status_code: attempt.status_code,
                    error: attempt.error.clone(),
                    duration_ms: attempt.duration_ms,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let body: bytes::Bytes = row.body.into_bytes().into();
        let delivery = Delivery {
            seq,
            partner,
            event,
            link: super::link_of(&body),
            body,
            callback_url: row.callback_url,
            status: row.status,
            attempts,
            step: row.step,
            next_attempt_at: row.next_attempt_at.as_deref().map(time).transpose()?,
            in_flight: false,
            created_at: time(&row.created_at)?,
            id,
        };
        self.shared.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
        let mut deliveries = self.shared.deliveries.lock();
        // A delivery already kept (a shared database's newer row of it) is replaced in its
        // place in the queue; one this process is attempting stays in flight.
        if deliveries.contains(&delivery.id) {
            let id = delivery.id.clone();
            let kept_at = deliveries.update(&id, |kept| {
                let (seq, in_flight) = (kept.seq, kept.in_flight);
                *kept = delivery;
                kept.seq = seq;
                kept.in_flight = in_flight;
                seq
            });
            drop(deliveries);
            self.shared.wake.notify_one();
            return Ok(kept_at.unwrap_or(seq));
        }
        // Rows come in queue order; a hand-edited file's stray seq is lifted to keep it so.
        let mut delivery = delivery;
        if let Some(last) = deliveries.last_seq() {
            delivery.seq = delivery.seq.max(last + 1);
        }
        let kept_at = delivery.seq;
        deliveries.push(delivery);
        drop(deliveries);
        self.shared.wake.notify_one();
        Ok(kept_at)
    }

    /// Writes delivery `id` again at the seq it is kept at, and deletes its row at `from`:
    /// a file keys rows by position, and this one was restored at another.
    pub fn rewrite(&self, tenant: &Arc<str>, id: &str, from: u64) {
        let deliveries = self.shared.deliveries.lock();
        self.shared.sink.record(|changes| {
            changes.delete(Table::WebhookDeliveries, tenant, id, from);
            if let Some(delivery) = deliveries.get(id) {
                put(changes, delivery);
            }
        });
    }
}
