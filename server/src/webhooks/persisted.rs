//! How deliveries are written to the state file (`webhook_deliveries`, one row per delivery,
//! its body, attempts and schedule), and read back so pending retries go on after a restart.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use linkbox_contracts::m2m::events;
use linkbox_contracts::sandbox::DeliveryStatus;
use linkbox_contracts::timefmt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Attempt, Delivery, DeliveryId, Webhooks};
use crate::persist::{Changes, Table};
use crate::store::m2m::Partner;

/// An attempt's error read back: the fixed text it most often is shares the one copy
/// ([`super::NO_URL`]); any other is its own.
fn kept_error(text: &str) -> Cow<'static, str> {
    if text == super::NO_URL {
        Cow::Borrowed(super::NO_URL)
    } else {
        Cow::Owned(text.to_owned())
    }
}

/// A `webhook_deliveries` row as read back. Absent options are left out of it (a row of
/// version 3's first files spells them `null`, which reads the same).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    pub event: String,
    /// The exact body sent.
    pub body: Body,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptRow>,
    /// Attempts made before the ones kept (absent: none).
    #[serde(default)]
    pub earlier_attempts: usize,
    /// Index into the retry schedule of the next attempt.
    pub step: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow<S = String> {
    pub at: S,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<S>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<S>,
    pub duration_ms: u64,
}

/// A `webhook_deliveries` row as written, borrowed from the delivery: [`DeliveryRow`]'s
/// fields. A body known to be a JSON object is added after them as the text it is
/// ([`crate::persist::document`]), so writing a row does not parse it again to prove what
/// its delivery already knows; any other body is this row's string.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowOut<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
    status: DeliveryStatus,
    attempts: Vec<AttemptRow<Cow<'a, str>>>,
    #[serde(skip_serializing_if = "is_zero")]
    earlier_attempts: usize,
    step: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
}

/// A delivery's exact body, in its row. A JSON object (every event's body) is written as
/// the object itself, byte for byte, rather than as a string holding it: no escaping to do
/// or undo, and about a tenth of the row smaller (the rows of a state file under load are
/// mostly deliveries). Anything else, and every body in older files, is a JSON string;
/// both read back to the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub text: String,
    /// Whether `text` is known to be one JSON object, so a row may hold it as itself: it
    /// was read as one, or (an older file's string) checked once when read.
    pub object: bool,
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if raw.get().starts_with('{') {
            return Ok(Body {
                text: raw.get().to_owned(),
                object: true,
            });
        }
        let text: String = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        let object = text.starts_with('{')
            && serde_json::from_str::<&RawValue>(&text).is_ok_and(|raw| raw.get() == text);
        Ok(Body { text, object })
    }
}

/// The body as a field its row adds as the text it is, when it is known to be an object
/// (otherwise it is the row's string, [`RowOut::body`]).
fn raw_body(body: &str, object: bool) -> Option<(&'static str, Option<&str>)> {
    object.then_some(("body", Some(body)))
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

pub(super) fn put(changes: &mut Changes, delivery: &Delivery) {
    let (body, object) = match std::str::from_utf8(&delivery.body) {
        Ok(text) => (Cow::Borrowed(text), delivery.body_is_object),
        // None is not UTF-8 (linkbox writes them), but one that lost bytes here would no
        // longer be the object it was.
        Err(_) => (String::from_utf8_lossy(&delivery.body), false),
    };
    let row = RowOut {
        event: delivery.event,
        callback_url: delivery.callback_url.as_deref(),
        status: delivery.status,
        attempts: delivery
            .attempts
            .iter()
            .map(|attempt| AttemptRow {
                at: Cow::Owned(timefmt::nanos(attempt.at)),
                url: attempt.url.as_deref().map(Cow::Borrowed),
                status_code: attempt.status_code,
                error: attempt.error.as_deref().map(Cow::Borrowed),
                duration_ms: attempt.duration_ms,
            })
            .collect(),
        earlier_attempts: delivery.earlier_attempts,
        step: delivery.step,
        next_attempt_at: delivery.next_attempt_at.map(timefmt::nanos),
        created_at: timefmt::nanos(delivery.created_at),
        body: (!object).then_some(&*body),
    };
    changes.put_with_raw(
        Table::WebhookDeliveries,
        &delivery.partner.slug,
        delivery.id.text(),
        delivery.seq,
        &row,
        raw_body(&body, object).as_slice(),
    );
}

pub(super) fn delete(changes: &mut Changes, deliveries: &[Delivery]) {
    for delivery in deliveries {
        changes.delete(
            Table::WebhookDeliveries,
            &delivery.partner.slug,
            delivery.id.text(),
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
        let id = DeliveryId::parse(&id)
            .ok_or_else(|| format!("delivery {id}: not a delivery id (whd_ and 12 hex digits)"))?;
        let attempts = row
            .attempts
            .iter()
            .map(|attempt| {
                Ok(Attempt {
                    at: time(&attempt.at)?,
                    url: attempt.url.clone(),
                    status_code: attempt.status_code,
                    error: attempt.error.as_deref().map(kept_error),
                    duration_ms: attempt.duration_ms,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let body_is_object = row.body.object;
        let body: bytes::Bytes = row.body.text.into_bytes().into();
        let delivery = Delivery {
            seq,
            partner,
            event,
            link: super::link_of(&body),
            body,
            body_is_object,
            callback_url: row.callback_url,
            status: row.status,
            attempts,
            earlier_attempts: row.earlier_attempts,
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
        if deliveries.contains(delivery.id) {
            let kept_at = deliveries.update(delivery.id, |kept| {
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
        // The next delivery made here comes after this one, wherever it was lifted to: in a
        // sandbox shared by replicas, another replica's row arrives with that replica's
        // seq, and a new delivery given the same seq as a kept one would be mistaken for it
        // by the engine's indexes (the kept one sent again, attempt after attempt, and the
        // new one never).
        self.shared
            .next_seq
            .fetch_max(kept_at + 1, Ordering::Relaxed);
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
            if let Some(delivery) = DeliveryId::parse(id).and_then(|id| deliveries.get(id)) {
                put(changes, delivery);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document of a failed `link.created` delivery with `body`, which the delivery
    /// knows to be a JSON object or not.
    fn written(body: &str, object: bool) -> String {
        written_after(body, object, 0)
    }

    /// [`written`], for a delivery that had `earlier` attempts before the one it keeps.
    fn written_after(body: &str, object: bool, earlier: usize) -> String {
        let row = RowOut {
            event: events::LINK_CREATED,
            callback_url: None,
            status: DeliveryStatus::Failed,
            attempts: vec![AttemptRow {
                at: Cow::Borrowed("2026-02-10T12:00:00.000000000Z"),
                url: None,
                status_code: None,
                error: Some(Cow::Borrowed("no webhook URL")),
                duration_ms: 0,
            }],
            earlier_attempts: earlier,
            step: 1,
            next_attempt_at: None,
            created_at: "2026-02-10T12:00:00.000000000Z".to_owned(),
            body: (!object).then_some(body),
        };
        let raw = raw_body(body, object);
        let doc = crate::persist::document(&row, raw.as_slice()).expect("a document");
        serde_json::from_str::<serde_json::Value>(&doc).expect("the document is JSON");
        doc
    }

    /// A row holding the JSON object `body`, as read back.
    fn row(body: &str) -> DeliveryRow {
        serde_json::from_str(&written(body, true)).expect("the row reads back")
    }

    #[test]
    fn the_usual_error_reads_back_as_the_one_shared_text() {
        assert!(matches!(
            kept_error(super::super::NO_URL),
            Cow::Borrowed(text) if text == super::super::NO_URL
        ));
        let other = kept_error("connection refused");
        assert!(matches!(&other, Cow::Owned(text) if text == "connection refused"));
    }

    #[test]
    fn an_object_body_is_kept_as_itself_and_read_back_byte_for_byte() {
        // Spacing and key order a parse and re-serialization would not keep.
        let body = r#"{"event":"link.created","data":{"z":1,"a":"é \"q\""},"timestamp":"t"}"#;
        let doc = written(body, true);
        assert!(doc.contains(&format!(r#""body":{body}"#)), "{doc}");
        assert!(!doc.contains("null"), "absent options are left out: {doc}");
        let back: DeliveryRow = serde_json::from_str(&doc).unwrap();
        assert_eq!(back.body.text, body);
        assert!(back.body.object);
        assert_eq!(back.event, events::LINK_CREATED);
        assert_eq!(back.status, DeliveryStatus::Failed);
        assert_eq!(back.step, 1);
        assert_eq!(back.attempts[0].error.as_deref(), Some("no webhook URL"));
        assert_eq!(back.created_at, "2026-02-10T12:00:00.000000000Z");
    }

    /// A delivery that dropped attempts past the bound says how many, and only then.
    #[test]
    fn the_attempts_made_before_those_kept_are_written_and_read_back() {
        let body = r#"{"event":"link.created","data":{}}"#;
        assert!(!written(body, true).contains("earlierAttempts"));
        let doc = written_after(body, true, 70);
        assert!(doc.contains(r#""earlierAttempts":70"#), "{doc}");
        let back: DeliveryRow = serde_json::from_str(&doc).expect("reads back");
        assert_eq!(back.earlier_attempts, 70);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_kept_as_a_string() {
        for body in [
            r#"{"cut": "#,
            "[1,2]",
            "plain text",
            r#"{"a":1} "#,
            r#"{"a":1}"#,
        ] {
            let doc = written(body, false);
            let back: DeliveryRow = serde_json::from_str(&doc).unwrap();
            assert_eq!(back.body.text, body, "{doc}");
            // Read back as a string, it is an object again only if it is exactly one.
            assert_eq!(back.body.object, body == r#"{"a":1}"#, "{doc}");
            let again = written(&back.body.text, back.body.object);
            let again: DeliveryRow = serde_json::from_str(&again).unwrap();
            assert_eq!(again.body, back.body);
        }
    }

    #[test]
    fn a_row_of_an_older_file_reads_back() {
        let doc = r#"{"event":"link.created","body":"{\"event\":\"link.created\",\"data\":{}}","callbackUrl":null,"status":"failed","attempts":[{"at":"2026-02-10T12:00:00.000000000Z","url":null,"statusCode":null,"error":"no webhook URL","durationMs":0}],"step":1,"nextAttemptAt":null,"createdAt":"2026-02-10T12:00:00.000000000Z"}"#;
        let back: DeliveryRow = serde_json::from_str(doc).unwrap();
        assert_eq!(back.body.text, r#"{"event":"link.created","data":{}}"#);
        assert!(back.body.object, "an object held as a string is still one");
        assert_eq!(back.callback_url, None);
        assert_eq!(back.attempts[0].status_code, None);
        assert_eq!(back.earlier_attempts, 0);
        let again = written(&back.body.text, back.body.object);
        assert!(again.contains(r#""body":{"event""#), "{again}");
        let again: DeliveryRow = serde_json::from_str(&again).unwrap();
        assert_eq!(again.body, back.body);
    }

    /// In a sandbox shared by replicas, a row read back keeps the seq the replica that wrote
    /// it gave it, lifted past those kept here. A delivery made here afterwards comes after
    /// it: with the same seq, the engine took the kept (settled) one for it, sending that
    /// again attempt after attempt, and never the new one.
    #[test]
    fn a_delivery_made_after_a_row_read_back_has_a_seq_of_its_own() {
        use super::super::tests::{NOW, about, partner, url};
        let webhooks = Webhooks::new();
        let partner = partner();
        let mine = webhooks.enqueue(&partner, "link.created", about("link_a"), url(), NOW);
        // Another replica's settled delivery, written at the seq that replica had: 0.
        let body = r#"{"event":"link.created","data":{"linkId":"link_b"}}"#;
        let kept = webhooks.restore("whd_00000000002a".to_owned(), 0, partner.clone(), row(body));
        assert_eq!(kept, Ok(1), "lifted past the delivery kept here");
        let new = webhooks.enqueue(&partner, "link.created", about("link_c"), url(), NOW);
        let due: Vec<_> = webhooks
            .take_due(NOW)
            .into_iter()
            .map(|job| job.id)
            .collect();
        assert_eq!(
            due,
            [mine, new],
            "the two pending deliveries, not the settled one"
        );
    }

    #[test]
    fn a_row_reads_back_under_its_id_and_a_row_without_a_delivery_id_is_refused() {
        let webhooks = Webhooks::new();
        let partner = super::super::tests::partner();
        let body = r#"{"event":"link.created","data":{"linkId":"link_a"}}"#;
        let kept = webhooks.restore("whd_00000000002a".to_owned(), 3, partner.clone(), row(body));
        assert_eq!(kept, Ok(3));
        let shown = webhooks.deliveries(super::super::Visible::All);
        assert_eq!(shown[0].id, "whd_00000000002a");
        for id in ["whd_00000000002A", "whd_42", "delivery-1"] {
            let refused = webhooks.restore(id.to_owned(), 4, partner.clone(), row(body));
            let reason = refused.expect_err(id);
            assert!(reason.contains("not a delivery id"), "{reason}");
        }
        assert_eq!(webhooks.deliveries(super::super::Visible::All).len(), 1);
    }
}
