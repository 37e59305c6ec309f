//! The document's free-form values: JSON the wire types hold as `serde_json::Value` because
//! linkbox keeps it as the client sent it. Each is a named schema that says what it is, so a
//! generator makes a map (`{ [key: string]: unknown }`, a dict-backed class) of it rather than
//! an empty object type; the wire types point at them with `#[schema(value_type = ...)]`.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// An object with any members, described by `description`.
fn any_members(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some(description))
        .into()
}

macro_rules! free_form {
    ($(#[$doc:meta] $name:ident => $schema:expr;)*) => {$(
        #[$doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}

free_form! {
    /// A link's `metadata`.
    Metadata => any_members(
        "Any key/value pairs the partner attaches to a link; returned as sent in the link's \
         detail and in every webhook about it.",
    );
    /// The user data linkbox keeps for an M2M user.
    StoredUserData => any_members(
        "The end user's data as linkbox keeps it: the userData of the user's links merged with \
         every fulfilled data request. It has the shape of UserData; members linkbox does not \
         know are kept as sent.",
    );
    /// The body of a webhook delivery.
    WebhookBody => any_members(
        "The exact JSON body sent to the receiver: {event, timestamp, data}, one of the \
         payloads listed under this document's webhooks.",
    );
    /// What a fault answers with.
    FaultBody => OneOfBuilder::new()
        .item(any_members("A JSON object, answered as JSON."))
        .item(
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
                .description(Some("A JSON array, answered as JSON.")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Text, answered as text/plain.")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .description(Some(
            "Any JSON value but null: a string is answered as text/plain, anything else as JSON.",
        ))
        .into();
    /// What one side of a shadow-mode comparison answered at a difference's place.
    DriftValue => OneOfBuilder::new()
        .item(any_members("A JSON object."))
        .item(
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
                .description(Some("A JSON array.")),
        )
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "The value one side answered at the difference's place, as JSON: null where that \
             side had nothing there (a missing field), the status code for a status \
             difference, a header's text for a header difference.",
        ))
        .into();
}
