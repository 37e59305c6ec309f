//! HTTP plumbing shared by every API: the connection loop with its limits and graceful
//! shutdown, request bodies read under a size limit, raw query strings, JSON responses.
//!
//! Nothing here knows an API's error shape: body and query problems come back as values
//! ([`BodyError`]) for each API to render in its own envelope.

mod serve;

pub use serve::serve;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use warp::Filter;
use warp::reply::Response;

/// Marks a response whose connection is to be closed without sending it (an injected
/// `drop` fault); the connection loop honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropConnection;

/// Why a request body could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the limit")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
}

/// The request's body, read whole unless it exceeds `limit` bytes. Never rejects: an
/// oversized or broken body is a value for the handler to answer in its API's shape.
pub fn body(
    limit: usize,
) -> impl Filter<Extract = (Result<Bytes, BodyError>,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .then(move |headers: HeaderMap, stream| read_limited(headers, stream, limit))
        .or(warp::any().map(|| Err(BodyError::Unreadable)))
        .unify()
}

async fn read_limited<S, B>(headers: HeaderMap, stream: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(64 * 1024) as usize);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let len = part.len();
            body.extend_from_slice(part);
            chunk.advance(len);
        }
    }
    Ok(body.freeze())
}

/// The raw query string, empty when there is none.
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Decodes a query string into its pairs, in order.
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// A JSON response with `status` and `content_type`.
pub fn json_with(
    status: StatusCode,
    content_type: &'static str,
    body: &impl Serialize,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|error| {
        tracing::error!(%error, "response did not serialize");
        b"{}".to_vec()
    });
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// An `application/json` response.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    json_with(status, "application/json", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters_and_any_case() {
        assert!(is_json(&with_content_type("application/json")));
        assert!(is_json(&with_content_type(
            "Application/JSON; charset=utf-8"
        )));
        assert!(is_json(&with_content_type("application/merge-patch+json")));
        assert!(!is_json(&with_content_type("text/plain")));
        assert!(!is_json(&with_content_type("application/jsonp")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn query_pairs_are_percent_decoded_in_order() {
        assert_eq!(
            query_pairs("a=1&referenceId=user%2012&a=2"),
            [
                ("a".into(), "1".into()),
                ("referenceId".into(), "user 12".into()),
                ("a".into(), "2".into())
            ]
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_even_without_a_length() {
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, warp::Error>(Bytes::from_static(b"12345")),
            Ok(Bytes::from_static(b"6789")),
        ]);
        assert_eq!(
            read_limited(HeaderMap::new(), chunks, 8).await,
            Err(BodyError::TooLarge)
        );
        let chunks =
            futures_util::stream::iter(vec![Ok::<_, warp::Error>(Bytes::from_static(b"1234"))]);
        assert_eq!(
            read_limited(HeaderMap::new(), chunks, 8).await,
            Ok(Bytes::from_static(b"1234"))
        );
    }
}
