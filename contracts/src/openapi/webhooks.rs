//! The five M2M webhooks under the document's `webhooks`: what linkbox POSTs to a partner's
//! receiver, with the three signing headers and one payload schema per event. utoipa's derive
//! describes only the paths a server answers, so these are built here.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{
    ContentBuilder, OpenApi, PathItem, PathsBuilder, Ref, Required, ResponseBuilder,
};
use utoipa::{Modify, ToSchema};

use crate::m2m::{self, events};

/// One webhook: its event name, operation id, payload schema name, `data` schema, and when it is sent.
struct Webhook {
    event: &'static str,
    operation_id: &'static str,
    payload: &'static str,
    data: String,
    when: &'static str,
}

fn webhooks() -> [Webhook; 5] {
    [
        Webhook {
            event: events::LINK_CREATED,
            operation_id: "linkCreatedWebhook",
            payload: "LinkCreatedWebhook",
            data: m2m::LinkCreatedEvent::name().into_owned(),
            when: "Sent when a link is created.",
        },
        Webhook {
            event: events::LINK_OPENED,
            operation_id: "linkOpenedWebhook",
            payload: "LinkOpenedWebhook",
            data: m2m::LinkOpenedEvent::name().into_owned(),
            when: "Sent the first time the end user opens a link; later opens send nothing.",
        },
        Webhook {
            event: events::USER_DATA_REQUEST,
            operation_id: "dataRequestWebhook",
            payload: "DataRequestWebhook",
            data: m2m::DataRequestEvent::name().into_owned(),
            when: "Sent when the end user opens a link and their data lacks fields the \
                   transfer needs. Answer it with PUT /partner/data-requests/{dataRequestId} \
                   (the payload's replyEndpoint) before the link expires.",
        },
        Webhook {
            event: events::OPERATION_CREATED,
            operation_id: "operationCreatedWebhook",
            payload: "OperationCreatedWebhook",
            data: m2m::OperationCreatedEvent::name().into_owned(),
            when: "Sent when the end user completes a transfer in the widget.",
        },
        Webhook {
            event: events::OPERATION_CANCELLED,
            operation_id: "operationCancelledWebhook",
            payload: "OperationCancelledWebhook",
            data: m2m::OperationCancelledEvent::name().into_owned(),
            when: "Sent when the end user cancels the transfer.",
        },
    ]
}

/// How every webhook is delivered, after the event's own sentence.
const DELIVERY: &str = "linkbox POSTs the payload as JSON to the link's callbackUrl, or else to \
    the partner's webhook URL. Verify X-M2M-Signature before trusting the body. Any 2xx answer \
    acknowledges the delivery; any other answer, or none within 30 seconds, is retried after \
    1 minute, 5 minutes, 30 minutes and 2 hours, then the delivery is marked failed.";

/// Adds the webhooks and their payload schemas.
pub struct Webhooks;

impl Modify for Webhooks {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut paths = PathsBuilder::new();
        let components = openapi.components.get_or_insert_with(Default::default);
        for webhook in webhooks() {
            components
                .schemas
                .insert(webhook.payload.to_owned(), payload_schema(&webhook).into());
            paths = paths.path(
                webhook.event,
                PathItem::new(HttpMethod::Post, operation(&webhook)),
            );
        }
        openapi.webhooks = Some(paths.build());
    }
}

/// `{"event", "timestamp", "data"}` for one event.
fn payload_schema(webhook: &Webhook) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "The body of every {} webhook. {}",
            webhook.event, webhook.when
        )))
        .property(
            "event",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([webhook.event]))
                .description(Some(
                    "The event's name; the same as the X-M2M-Event header.",
                )),
        )
        .required("event")
        .property(
            "timestamp",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some(
                    "When the event happened, on the sandbox clock: ISO 8601 UTC with exactly \
                     three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).",
                )),
        )
        .required("timestamp")
        .property("data", Ref::from_schema_name(webhook.data.clone()))
        .required("data")
}

fn header(name: &str, pattern: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        ))
}

fn operation(webhook: &Webhook) -> OperationBuilder {
    let event_pattern = format!("^{}$", webhook.event.replace('.', "\\."));
    OperationBuilder::new()
        // A tag of their own: generators that group operations by tag (openapi-generator)
        // would otherwise write the webhooks' group over the M2M API's, file for file.
        .tag(super::WEBHOOKS_TAG)
        .operation_id(Some(webhook.operation_id))
        .summary(Some(format!("The {} webhook", webhook.event)))
        .description(Some(format!("{} {DELIVERY}", webhook.when)))
        .parameter(header(
            "X-M2M-Event",
            &event_pattern,
            &format!("The event's name: {}.", webhook.event),
        ))
        .parameter(header(
            "X-M2M-Timestamp",
            "^[0-9]+$",
            "When the delivery attempt was signed, in Unix seconds.",
        ))
        .parameter(header(
            "X-M2M-Signature",
            "^sha256=[0-9a-f]{64}$",
            "sha256= followed by the lowercase hex HMAC-SHA256, keyed with the partner's \
             webhook secret, of the X-M2M-Timestamp value, a dot, and the raw body.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(webhook.payload)))
                        .build(),
                )
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("Acknowledged; any 2xx status does. Anything else is retried."),
        )
}
