//! What the pipeline does to a response after its handler: a HEAD answer loses its body
//! but keeps the GET's headers and length, and whatever of the request body the handler
//! left unread is drained so that the connection stays usable for the client's next
//! request. A body past [`DRAIN_LIMIT`], one that does not arrive within
//! [`DRAIN_TIMEOUT`], or one its client waits to be asked for (`Expect: 100-continue`) is
//! not waited for: the answer says `Connection: close` instead, and the close lingers
//! ([`BodyLeftUnread`]).

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use http::{HeaderValue, Method, header};
use hyper::body::Body as _;
use warp::reply::Response;

use crate::wire::{BodySlot, DropConnection};

/// The most of an unread body drained to keep a connection: the small rest of an early
/// answer's request. A larger one is not read at all (a stranger refused for their key is
/// not read ten megabytes first, nor told `100 Continue`): the connection closes instead.
pub(super) const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long the rest of an unread body may take to arrive before the answer goes out with
/// the connection closing: long enough for a body sent in a write of its own just after
/// its head, short enough that an answer is not held back for one that is not coming.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// The GET answer as a HEAD answer: same status and headers, `Content-Length` of the body
/// it would have had, no body.
pub(super) fn head(method: &Method, mut response: Response) -> Response {
    if method != Method::HEAD {
        return response;
    }
    if let Some(length) = response.body().size_hint().exact() {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = bytes::Bytes::new().into();
    response
}

/// Reads and discards what is left of the request body, or marks `response` as the last
/// on its connection. A client that sent `Expect: 100-continue` (`waits`) and was not read
/// from is not asked for its body now: hyper's `100 Continue` goes out on the body's first
/// read, and the answer is already known.
pub(super) async fn drain(
    slot: &BodySlot,
    declared: Option<u64>,
    waits: bool,
    mut response: Response,
) -> Response {
    if response.extensions().get::<DropConnection>().is_some() {
        return response;
    }
    let Some(mut stream) = slot.take() else {
        return response;
    };
    if waits || declared.is_some_and(|length| length > DRAIN_LIMIT) {
        return close(response);
    }
    let discard = async {
        let mut seen: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len() as u64;
            if seen > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    // Most requests have nothing left (or no body at all): no timer for them.
    let mut discard = std::pin::pin!(discard);
    if let Some(drained) = discard.as_mut().now_or_never() {
        return if drained { response } else { close(response) };
    }
    match tokio::time::timeout(DRAIN_TIMEOUT, discard).await {
        Ok(true) => response,
        _ => {
            response = close(response);
            response
        }
    }
}

/// The most of an unread HTTP/2 body read and discarded after its answer went out: the
/// largest body any route takes (a snapshot), so a client sending one to its end sees the
/// stream end as it expects.
const DRAIN_BEHIND_LIMIT: u64 = 64 * 1024 * 1024;
/// How long that may take.
const DRAIN_BEHIND_TIMEOUT: Duration = Duration::from_secs(10);

/// What an HTTP/2 request left of its body, read and discarded while its answer goes out,
/// up to [`DRAIN_BEHIND_LIMIT`] for [`DRAIN_BEHIND_TIMEOUT`]: nothing of it is held, and
/// no other stream waits for it. Dropped unread, the stream is reset (`NO_ERROR`) after
/// the answer, which RFC 9113 allows but some clients (curl 7.88) report as a failure
/// instead of the answer: a 401 for a refused key, or a 413.
pub(super) fn drain_behind(slot: &BodySlot) {
    let Some(mut stream) = slot.take() else {
        return;
    };
    tokio::spawn(async move {
        let discard = async {
            let mut seen: u64 = 0;
            while let Some(Ok(chunk)) = stream.next().await {
                seen += chunk.len() as u64;
                if seen > DRAIN_BEHIND_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_BEHIND_TIMEOUT, discard).await;
    });
}

/// Marks a response sent with part of its request's body unread: its connection's close
/// lingers ([`super::unparsed`]) whether or not the rest has arrived yet, so a client that
/// sends it a moment later reads the answer instead of a reset.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLeftUnread;

fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response.extensions_mut().insert(BodyLeftUnread);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_answer_keeps_the_length_and_drops_the_body() {
        let response = head(&Method::HEAD, Response::new("twelve bytes".into()));
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "12");
        assert_eq!(response.body().size_hint().exact(), Some(0));
        let response = head(&Method::GET, Response::new("twelve bytes".into()));
        assert_eq!(response.body().size_hint().exact(), Some(12));
    }
}
