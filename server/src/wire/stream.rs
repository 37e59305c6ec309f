//! JSON bodies sent as they are made, for answers too large to hold at once.
//!
//! A page of a hundred links can carry a hundred copies of a user's data of megabytes: as
//! one buffer, a single `GET` of it held hundreds of megabytes (and gigabytes of parsed
//! trees) on a serving thread for seconds, and a few at once could take the machine's
//! memory. Sent as made ([`json_array`]), such a body is its items one after the other,
//! each made when the client has read what came before: a response holds a few items at a
//! time, however many it sends. Items heavy to make are made off the serving threads, in
//! their tenant's turn ([`crate::offload`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use tokio::sync::mpsc;
use warp::Reply;
use warp::reply::Response;

use crate::offload;

/// Light items gathered into one piece of the body before it is sent: a piece per item of
/// a hundred bytes would be a write, and a chunk's framing, each.
const PIECE_BYTES: usize = 64 * 1024;

/// Pieces made ahead of what the client has read, at most.
const PIECES_AHEAD: usize = 2;

/// What the maker sends the body: a piece, or the end. A body whose maker stopped before
/// its end fails, so the client sees a cut connection rather than a complete-looking
/// truncated document.
enum Piece {
    Data(Bytes),
    End,
}

/// `head` and `tail` of a JSON document whose array at `marker` (e.g. `"items":[]`) is
/// empty: everything up to and including the `[`, and everything from the `]`. `None`
/// when the marker is not in the document.
pub fn around(document: &[u8], marker: &[u8]) -> Option<(Bytes, Bytes)> {
    let at = document
        .windows(marker.len())
        .position(|window| window == marker)?;
    let open = at + marker.iter().position(|&byte| byte == b'[')? + 1;
    Some((
        Bytes::copy_from_slice(&document[..open]),
        Bytes::copy_from_slice(&document[open..]),
    ))
}

/// An `application/json` response with `status` whose body is `head`, each of `items` as
/// `render` writes it, commas between, then `tail`: sent as it is made. An item whose
/// `weight` is heavy ([`offload::is_heavy`]) is rendered off the serving threads, in
/// `whose` turn. The body has no length; it goes out in chunks.
pub fn json_array<T, W, R>(
    status: StatusCode,
    (head, tail): (Bytes, Bytes),
    items: Vec<T>,
    whose: Option<Arc<str>>,
    weight: W,
    render: R,
) -> Response
where
    T: Send + 'static,
    W: Fn(&T) -> usize + Send + 'static,
    R: Fn(T) -> Vec<u8> + Clone + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel(PIECES_AHEAD);
    tokio::spawn(async move {
        let send = |piece: Piece| {
            let sender = sender.clone();
            async move { sender.send(piece).await.is_ok() }
        };
        let mut gathered = BytesMut::from(&head[..]);
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                gathered.extend_from_slice(b",");
            }
            if offload::is_heavy(weight(&item)) {
                // What was gathered goes first: the client reads it while this one is made.
                if !send(Piece::Data(gathered.split().freeze())).await {
                    return;
                }
                let render = render.clone();
                let text = offload::run(whose.clone(), move || render(item)).await;
                if !send(Piece::Data(text.into())).await {
                    return;
                }
            } else {
                gathered.extend_from_slice(&render(item));
                if gathered.len() >= PIECE_BYTES
                    && !send(Piece::Data(gathered.split().freeze())).await
                {
                    return;
                }
            }
        }
        gathered.extend_from_slice(&tail);
        if send(Piece::Data(gathered.freeze())).await {
            send(Piece::End).await;
        }
    });
    let mut ended = false;
    let body = futures_util::stream::poll_fn(move |context| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        receiver.poll_recv(context).map(|piece| match piece {
            Some(Piece::Data(bytes)) => Some(Ok(bytes)),
            Some(Piece::End) => {
                ended = true;
                None
            }
            None => {
                ended = true;
                Some(Err(std::io::Error::other(
                    "the body's maker stopped before its end",
                )))
            }
        })
    });
    let mut response = warp::reply::stream(body).into_response();
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn around_splits_at_the_array_and_keeps_both_brackets() {
        let (head, tail) =
            around(br#"{"data":{"items":[],"n":1}}"#, br#""items":[]"#).expect("found");
        assert_eq!(&head[..], br#"{"data":{"items":["#);
        assert_eq!(&tail[..], br#"],"n":1}}"#);
        assert!(around(b"{}", br#""items":[]"#).is_none());
    }

    async fn body_of(response: Response) -> Result<Vec<u8>, String> {
        response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes().to_vec())
            .map_err(|error| error.to_string())
    }

    /// Light and heavy items alike come out in order, commas between, the whole a JSON
    /// document; the heavy one is made off the caller's thread.
    #[tokio::test]
    async fn items_come_out_in_order_between_head_and_tail() {
        let caller = std::thread::current().id();
        let items: Vec<usize> = vec![3, offload::HEAVY_BYTES, 5, 0];
        let response = json_array(
            StatusCode::OK,
            (
                Bytes::from_static(b"{\"items\":["),
                Bytes::from_static(b"]}"),
            ),
            items,
            None,
            |size| *size,
            move |size| {
                let here = std::thread::current().id() == caller;
                assert_eq!(here, !offload::is_heavy(size), "item of {size}");
                serde_json::to_vec(&"x".repeat(size)).expect("a string")
            },
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = body_of(response).await.expect("a whole body");
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let lengths: Vec<usize> = parsed["items"]
            .as_array()
            .expect("an array")
            .iter()
            .map(|item| item.as_str().map_or(usize::MAX, str::len))
            .collect();
        assert_eq!(lengths, [3, offload::HEAVY_BYTES, 5, 0]);
    }

    #[tokio::test]
    async fn no_items_is_an_empty_array() {
        let response = json_array(
            StatusCode::OK,
            (Bytes::from_static(b"["), Bytes::from_static(b"]")),
            Vec::<u8>::new(),
            None,
            |_| 0,
            |_| Vec::new(),
        );
        assert_eq!(body_of(response).await.expect("a body"), b"[]");
    }

    /// Many light items are sent in pieces, not as one buffer: the body is made as it is
    /// read.
    #[tokio::test]
    async fn light_items_go_out_in_pieces_as_they_are_read() {
        let items: Vec<u32> = (0..4_000).collect();
        let response = json_array(
            StatusCode::OK,
            (Bytes::from_static(b"["), Bytes::from_static(b"]")),
            items,
            None,
            |_| 0,
            |n| format!("\"{n:0>60}\"").into_bytes(),
        );
        let mut body = response.into_body();
        let mut pieces = 0;
        let mut whole = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("a frame").into_data().expect("data");
            assert!(data.len() <= PIECE_BYTES + 64, "a piece of {}", data.len());
            whole.extend_from_slice(&data);
            pieces += 1;
        }
        assert!(pieces > 3, "{pieces} pieces");
        let parsed: Vec<String> = serde_json::from_slice(&whole).expect("JSON");
        assert_eq!(parsed.len(), 4_000);
    }

    /// A maker that stops before the end (an item whose rendering panicked) leaves the body
    /// failed, not cut short into a complete-looking document.
    #[tokio::test]
    async fn a_maker_that_stops_early_fails_the_body() {
        let response = json_array(
            StatusCode::OK,
            (Bytes::from_static(b"["), Bytes::from_static(b"]")),
            vec![1u8, 2],
            None,
            |_| 0,
            |n| {
                assert!(n < 2, "the second item cannot be made");
                b"1".to_vec()
            },
        );
        assert!(body_of(response).await.is_err());
    }
}
