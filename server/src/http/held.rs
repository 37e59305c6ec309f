//! Answers held whole in memory while they are sent: one larger than
//! [`crate::bodies::PIECE_BYTES`] is counted against `--max-bodies-mib` in its caller's
//! share, as its request's body would be, and handed to hyper in pieces
//! ([`crate::bodies::Pieces`]); one that cannot be held is answered as a body that cannot
//! be (503, `Retry-After: 1`, in its API's envelope). Answers at or under the size, and
//! answers sent as they are made (no length known), pass as they are.

use std::sync::Arc;

use http::{HeaderValue, header};
use warp::Reply;
use warp::reply::Response;

use crate::bodies::{Bodies, PIECE_BYTES, Pieces, Refused, Share};

/// Whether `response`'s body is held whole and larger than one piece: the only check an
/// answer at or under [`PIECE_BYTES`] pays.
pub(super) fn is_large(response: &Response) -> bool {
    hyper::body::Body::size_hint(response.body())
        .exact()
        .is_some_and(|size| size > PIECE_BYTES as u64)
}

/// `response` (a large one: [`is_large`]) with its body counted in `share` (`None`: every
/// caller without a tenant together) and sent in pieces, its `Content-Length` kept; or,
/// when it cannot be held, `refuse`'s answer, which keeps what the connection was told
/// (to close it, CORS).
pub(super) async fn held(
    response: Response,
    bodies: &Arc<Bodies>,
    share: Option<Share>,
    refuse: impl FnOnce(Refused) -> Response,
) -> Response {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    // A body of known length is one buffer (`Full`): collected at once, without a copy.
    let whole = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::error!(%error, "a response body could not be read");
            return Response::from_parts(parts, bytes::Bytes::new().into());
        }
    };
    let length = whole.len();
    match Pieces::new(whole, bodies.hold(share)) {
        Ok(pieces) => {
            let body = warp::reply::stream(futures_util::stream::iter(
                pieces.map(Ok::<_, std::convert::Infallible>),
            ))
            .into_response()
            .into_body();
            let mut response = Response::from_parts(parts, body);
            // Pieces have no length of their own: hyper sends this one (no chunked coding).
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            response
        }
        Err(refused) => {
            tracing::debug!(length, ?refused, "an answer could not be held; refused");
            let mut refusal = refuse(refused);
            for (name, value) in &parts.headers {
                if name == header::CONNECTION
                    || name == header::VARY
                    || name.as_str().starts_with("access-control-")
                {
                    refusal.headers_mut().append(name, value.clone());
                }
            }
            refusal.extensions_mut().extend(parts.extensions);
            refusal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http_body_util::BodyExt;

    fn refusal(_: Refused) -> Response {
        let mut response = Response::new("busy".into());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    }

    #[tokio::test]
    async fn a_large_answer_goes_out_in_pieces_with_its_length_and_is_counted_meanwhile() {
        let bodies = Bodies::new(16);
        let size = 5 * PIECE_BYTES / 2;
        let small = Response::new(vec![b'x'; PIECE_BYTES].into());
        assert!(!is_large(&small), "one piece is not counted");
        let large = Response::new(vec![b'y'; size].into());
        assert!(is_large(&large));
        let response = held(large, &bodies, None, refusal).await;
        assert_eq!(response.headers()[header::CONTENT_LENGTH], size.to_string());
        assert_eq!(bodies.held(), size as u64);
        let mut body = response.into_body();
        let mut pieces = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("a frame").into_data().expect("data");
            pieces.push(data.len());
        }
        assert_eq!(pieces, [PIECE_BYTES, PIECE_BYTES, PIECE_BYTES / 2]);
        assert_eq!(bodies.held(), 0);
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_held_is_refused_keeping_what_the_connection_was_told() {
        let bodies = Bodies::new(16);
        let mut holding = bodies.hold(None);
        holding.grow(4 * 1024 * 1024 - 100).expect("room");
        let mut large = Response::new(vec![b'y'; 4 * PIECE_BYTES].into());
        large
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let response = held(large, &bodies, None, refusal).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(bodies.held(), 4 * 1024 * 1024 - 100);
        // Another caller's share has room.
        let large = Response::new(vec![b'y'; 4 * PIECE_BYTES].into());
        let response = held(large, &bodies, Some(Share::default()), refusal).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
