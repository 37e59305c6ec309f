//! One request as every handler sees it: method, path, query, headers, the path's
//! parameters, the caller resolved once by the serving layer, and the body — read only
//! when, and as far as, the handler asks for it.
//!
//! The body lives in a [`BodySlot`] the serving layer keeps a handle on, so that whatever a
//! handler leaves unread (an early refusal, an oversized body) can be drained after the
//! answer and the connection stays usable for the client's next request.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use http::{HeaderMap, Method};
use parking_lot::Mutex;

use super::{BodyError, Params, read_limited};
use crate::app::App;
use crate::ops::identity::Caller;

/// The body, not yet read; a chunk that could not be read is an I/O error.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Where a request's body waits, shared between the request and the serving layer: the
/// part no handler has read yet, which the serving layer takes back to drain
/// ([`BodySlot::take`]), and the body a handler read whole, which the journal keeps
/// ([`BodySlot::read_whole`]). A request without a body (most of them) shares nothing and
/// allocates nothing; one with a body, one allocation for both.
#[derive(Clone, Default)]
pub struct BodySlot(Option<Arc<Mutex<Slot>>>);

struct Slot {
    unread: Option<BodyStream>,
    read: Option<Bytes>,
    /// Why the body could not be had, once a read found out: a second read gives the same
    /// answer instead of reading on from where the first stopped.
    refused: Option<BodyError>,
}

impl BodySlot {
    fn new(body: Option<BodyStream>) -> BodySlot {
        BodySlot(body.map(|body| {
            Arc::new(Mutex::new(Slot {
                unread: Some(body),
                read: None,
                refused: None,
            }))
        }))
    }

    /// The part of the body nobody has read yet, if any.
    pub fn take(&self) -> Option<BodyStream> {
        self.0.as_ref()?.lock().unread.take()
    }

    /// Puts back what is left of a body taken from this slot.
    fn put(&self, body: BodyStream) {
        if let Some(slot) = &self.0 {
            slot.lock().unread = Some(body);
        }
    }

    /// Keeps the body a handler read whole.
    fn keep(&self, body: Bytes) {
        if let Some(slot) = &self.0 {
            slot.lock().read = Some(body);
        }
    }

    /// What an earlier read of the body came to, if one was made: the body read whole, or
    /// why it could not be had.
    fn settled(&self) -> Option<Result<Bytes, BodyError>> {
        let slot = self.0.as_ref()?.lock();
        match (&slot.read, slot.refused) {
            (_, Some(error)) => Some(Err(error)),
            (Some(body), None) => Some(Ok(body.clone())),
            (None, None) => None,
        }
    }

    /// Remembers why the body could not be had.
    fn refuse(&self, error: BodyError) {
        if let Some(slot) = &self.0 {
            slot.lock().refused = Some(error);
        }
    }

    /// The body a handler read whole with [`Request::body`], if one did.
    pub fn read_whole(&self) -> Option<Bytes> {
        self.0.as_ref()?.lock().read.take()
    }
}

/// A request on its way to its handler.
///
/// Its fields live in one box: a request is moved into each step of the pipeline and into
/// its route's future, and an `async fn` keeps a copy of what it was given as well as the
/// value it works on. Boxed, each of those is a pointer instead of 296 bytes, and a
/// request's future, which is copied whole when it is boxed and moved, is a quarter of the
/// size (`http::tests::a_request_future_stays_small`). The box is one allocation.
pub struct Request(Box<Parts>);

/// What a [`Request`] holds; its fields are read and set through the request itself.
pub struct Parts {
    pub app: App,
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub caller: Caller,
    /// The HTTP version it came in (HTTP/1.1 unless told: [`Request::with_version`]).
    pub version: http::Version,
    params: Params,
    body: BodySlot,
    /// What the body read whole holds of [`crate::bodies`]: let go with the request.
    held: Option<crate::bodies::Hold>,
}

impl std::ops::Deref for Request {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl std::ops::DerefMut for Request {
    fn deref_mut(&mut self) -> &mut Parts {
        &mut self.0
    }
}

/// How long a request body may take to arrive, whole. [design]
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Request {
    pub fn new(
        app: App,
        method: Method,
        path: String,
        query: String,
        headers: HeaderMap,
        caller: Caller,
        body: Option<BodyStream>,
    ) -> Request {
        Request(Box::new(Parts {
            app,
            method,
            path,
            query,
            headers,
            caller,
            version: http::Version::HTTP_11,
            params: Params::default(),
            body: BodySlot::new(body),
            held: None,
        }))
    }

    /// The request's fields, out of their box, for a handler that keeps some of them.
    pub fn into_parts(self) -> Parts {
        *self.0
    }

    /// The request as it came in over `version`.
    pub fn with_version(mut self, version: http::Version) -> Request {
        self.version = version;
        self
    }

    /// The request with the path parameters its route found.
    pub fn with_params(mut self, params: Params) -> Request {
        self.params = params;
        self
    }

    /// The path parameters its route found.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The path parameter `name` (`""` when the route has none by that name).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    /// Whether the request came with a body: one already at its end when it arrived (a
    /// `GET` without one, `Content-Length: 0`) is none.
    pub fn has_body(&self) -> bool {
        self.body.0.is_some()
    }

    /// The body, read whole unless it exceeds `limit` bytes or takes longer than
    /// [`BODY_READ_TIMEOUT`] to arrive (a client trickling a byte at a time). An oversized,
    /// late or broken body is a value for the handler to answer in its API's shape; a second
    /// call finds it empty.
    pub async fn body(&mut self, limit: usize) -> Result<Bytes, BodyError> {
        let share = self.caller.body_share();
        self.body_of(limit, share).await
    }

    /// [`Request::body`], held in `share` ([`crate::bodies`]) whatever credentials the
    /// request carries: an upload to a hosted page, which carries none, is its link's
    /// account's.
    pub async fn body_of(
        &mut self,
        limit: usize,
        share: Option<crate::bodies::Share>,
    ) -> Result<Bytes, BodyError> {
        // Read already (in a shared sandbox, before the request's transaction: see
        // `http::answer`): the same answer again.
        if let Some(settled) = self.body.settled() {
            return settled;
        }
        // The head waits in memory with its body, as long as it takes to arrive: counted
        // with it. Uncounted, a stranger's heads of 64 KiB, each declaring a body it never
        // sent, held some 13 MB per HTTP/2 connection (a hundred streams) for 30 s, on as
        // many connections as it opened.
        let Some(mut stream) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let mut hold = self.app.bodies.hold(share);
        if let Err(refused) = hold.grow(self.head_bytes()) {
            let error = BodyError::Busy(refused);
            self.body.put(stream);
            self.body.refuse(error);
            return Err(error);
        }
        let read = tokio::time::timeout(
            BODY_READ_TIMEOUT,
            read_limited(&self.headers, &mut stream, limit, &mut hold),
        )
        .await
        .unwrap_or(Err(BodyError::Late));
        if matches!(
            read,
            Err(BodyError::TooLarge
                | BodyError::PastShare(_)
                | BodyError::Busy(_)
                | BodyError::Late)
        ) {
            // What is left is the serving layer's to drain or, as for a late body, which
            // does not come whole in the moment it waits, to close the connection on.
            self.body.put(stream);
        }
        // What a refused body held is let go now (`hold` dropped); a body read whole is
        // held as long as the request.
        match &read {
            Ok(bytes) => {
                self.body.keep(bytes.clone());
                self.held = Some(hold);
            }
            Err(error) => self.body.refuse(*error),
        }
        read
    }

    /// A hold of the request's head in its caller's share of the bodies' bound, for a wait
    /// that is not its body's (a fault's delay): the head waits in memory as long.
    pub fn hold_head(&self) -> Result<crate::bodies::Hold, crate::bodies::Refused> {
        let mut hold = self.app.bodies.hold(self.caller.body_share());
        hold.grow(self.head_bytes())?;
        Ok(hold)
    }

    /// The bytes of the request's head as it came: its target and its fields, each with
    /// its separators.
    fn head_bytes(&self) -> u64 {
        let fields: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        (self.path.len() + self.query.len() + fields) as u64
    }

    /// The body stream itself, for a handler that reads it piece by piece (multipart).
    pub fn take_body(&mut self) -> Option<BodyStream> {
        self.body.take()
    }

    /// A handle on the body that outlives the request, for taking back what the handler
    /// did not read.
    pub fn body_slot(&self) -> BodySlot {
        self.body.clone()
    }
}
