//! A partner's whole M2M state as the control API shows it (`GET /_sandbox/snapshot`), its
//! restore (`PUT`), its reset, and the tenant lookups the control API needs.
//!
//! A snapshot keeps ids as the partner saw them, so it restores only into the partner whose
//! slug they embed. The webhook secret and the rate-limit windows are not part of it: the
//! secret is shown once [doc], and windows are not state a test sets up.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use linkbox_contracts::m2m::{CIP_FIELDS, LinkStatus, OperationStatus};
use linkbox_contracts::sandbox::{
    M2mSnapshot, OperationView, RawJson, SnapshotDataRequest, SnapshotLink, SnapshotUser,
};
use linkbox_contracts::{m2m as wire, timefmt};
use time::OffsetDateTime;
use uuid::Uuid;

use super::compact::Compact;
use super::operations::Operation;
use super::persisted::{LinkDoc, UserDoc};
use super::{
    DataRequest, Extras, IdKind, Link, Partner, PartnerState, Partners, RestoreError, User, ids,
    user_input,
};
use crate::persist::Table;
use crate::store::stamp::{MaybeStamp, Stamp};

/// Snapshot format version.
pub(super) const VERSION: u32 = 1;

impl Partners {
    /// The tenant (partner slug) a key names, without creating a partner or checking
    /// suspension: for recording and scoping, not for authorizing.
    pub fn tenant_of(&self, key: &str) -> Option<Arc<str>> {
        if !wire::is_test_key(key) {
            return None;
        }
        self.lookup(key).slug()
    }
}

/// A snapshot read into the state it restores and checked ([`Partner::rebuilt`]), for
/// the partner of its slug.
pub struct Rebuilt {
    slug: Arc<str>,
    state: PartnerState,
}

impl Partner {
    /// Forgets every link, user, data request and operation, and the rate-limit windows;
    /// keeps the webhook URL and secret (portal settings).
    pub fn reset(&self) {
        let mut state = self.state.lock();
        // Nothing kept is nothing to forget, in a state file or a shared database either: a
        // reset by a key that never wrote leaves no trace (a shared database's tenant row
        // made for it is dropped again), so made-up keys cannot pile rows up.
        let held = !(state.links.is_empty()
            && state.users.is_empty()
            && state.data_requests.is_empty()
            && state.operations.is_empty());
        let webhook_url = state.webhook_url.take();
        let webhook_secret = std::mem::take(&mut state.webhook_secret);
        *state = PartnerState {
            webhook_url,
            webhook_secret,
            ..PartnerState::default()
        };
        if held {
            self.record(|changes| self.clear_state(changes));
        }
    }

    /// Forgets the partner whole, its webhook URL and secret too, and its row in the state
    /// file: what the admin reset does to an open-mode partner, which the table then drops
    /// ([`super::Partners::reset_all`]).
    pub(super) fn forget(&self) {
        let mut state = self.state.lock();
        *state = PartnerState::default();
        super::webhook_url_changed();
        self.record(|changes| {
            self.clear_state(changes);
            changes.delete(Table::M2mPartners, &self.slug, &*self.slug, 0);
        });
    }

    /// The partner's whole state.
    pub fn snapshot(&self) -> M2mSnapshot {
        let state = self.state.lock();
        let users = state
            .users
            .iter()
            .map(|user| self.snapshot_user(user))
            .collect();
        let links = state
            .links
            .iter()
            .map(|link| self.snapshot_link(&state, link))
            .collect();
        let mut data_requests: Vec<&DataRequest> = state.data_requests.values().collect();
        data_requests.sort_by_key(|request| (request.link, request.suffix));
        let data_requests = data_requests
            .into_iter()
            .map(|request| self.snapshot_data_request(&state, request))
            .collect();
        let mut operation_links: Vec<u32> = state.operations.keys().copied().collect();
        operation_links.sort_unstable();
        let operations = operation_links
            .into_iter()
            .map(|index| self.operation_view(&state, index as usize))
            .collect();
        M2mSnapshot {
            version: VERSION,
            partner: self.slug.to_string(),
            webhook_url: state.webhook_url.clone(),
            users,
            links,
            data_requests,
            operations,
        }
    }

    /// Replaces the partner's state with `snapshot`; on any error nothing changes.
    pub fn restore(&self, snapshot: M2mSnapshot) -> Result<(), RestoreError> {
        self.restore_rebuilt(self.rebuilt(snapshot)?)
    }

    /// `snapshot` read into the state it restores, checked as a restore into this partner
    /// (or a partner of its slug: a new key's stranger, before a refused snapshot makes it
    /// real) would check it; nothing changes.
    pub fn rebuilt(&self, snapshot: M2mSnapshot) -> Result<Rebuilt, RestoreError> {
        let state = self.rebuild(snapshot).map_err(RestoreError::Invalid)?;
        // Counted as the partner's state is, its webhook URL too.
        let holds = self.stored();
        self.budget
            .allows(holds, state.counted().saturating_sub(holds))?;
        Ok(Rebuilt {
            slug: self.slug.clone(),
            state,
        })
    }

    /// Replaces the partner's state with a snapshot [`Partner::rebuilt`] read; on any
    /// error (the partner's budget, or a snapshot read for another slug) nothing changes.
    pub fn restore_rebuilt(&self, rebuilt: Rebuilt) -> Result<(), RestoreError> {
        if rebuilt.slug != self.slug {
            return Err(RestoreError::Invalid(format!(
                "The snapshot belongs to partner {:?}, not to the caller's partner {:?}",
                rebuilt.slug, self.slug
            )));
        }
        let restored = rebuilt.state;
        // What the restore adds over what the partner holds now (nothing when it is
        // smaller), admitted under the lock the restore then holds.
        let mut state = self.state.lock();
        let holds = state.counted();
        self.budget
            .admits(holds, restored.counted().saturating_sub(holds))?;
        let webhook_secret = std::mem::take(&mut state.webhook_secret);
        *state = PartnerState {
            webhook_secret,
            ..restored
        };
        super::webhook_url_changed();
        self.replace_rows(&state);
        Ok(())
    }

    /// Writes every row of the partner's state again, at the positions they have now.
    pub fn rewrite(&self) {
        self.replace_rows(&self.state.lock());
    }

    /// Replaces the partner's rows with `state`'s, under the lock that guards it: its own
    /// row too, since a snapshot carries the webhook URL, in the same change as the rest.
    fn replace_rows(&self, state: &PartnerState) {
        self.record(|changes| {
            self.clear_state(changes);
            self.put_settings(changes, state);
            self.put_all(changes, state);
        });
    }

    /// The state `snapshot` holds, checked whole: refused, naming what is wrong, when it is
    /// not one the API could have made. These checks are a restore's alone; a state file
    /// ([`Load`]) is read back as it was written, whatever it holds.
    fn rebuild(&self, snapshot: M2mSnapshot) -> Result<PartnerState, String> {
        if snapshot.version != VERSION {
            return Err(format!(
                "Unsupported snapshot version {}: expected {VERSION}",
                snapshot.version
            ));
        }
        if snapshot.partner != *self.slug {
            return Err(format!(
                "The snapshot belongs to partner {:?}, not to the caller's partner {:?}",
                snapshot.partner, self.slug
            ));
        }
        let mut state = PartnerState {
            webhook_url: snapshot.webhook_url,
            ..PartnerState::default()
        };
        for user in &snapshot.users {
            acceptable(user)?;
        }
        for link in &snapshot.links {
            possible(link)?;
        }
        // Merged, the later would replace the earlier without a word.
        let operations = snapshot.operations.iter();
        if let Some(twice) = repeated(operations.map(|operation| &operation.operation_id)) {
            return Err(format!("operationId {twice:?} appears twice"));
        }
        let requests = snapshot.data_requests.iter();
        if let Some(twice) = repeated(requests.map(|request| &request.data_request_id)) {
            return Err(format!("dataRequestId {twice:?} appears twice"));
        }
        // Ids and tokens are minted once: two users with one id, or two links with one
        // token, would each answer for the other.
        if let Some(twice) = repeated(snapshot.users.iter().map(|user| &user.user_id)) {
            return Err(format!("userId {twice:?} appears twice"));
        }
        let mut tokens = std::collections::HashSet::new();
        if let Some(link) = snapshot
            .links
            .iter()
            .find(|link| Uuid::parse_str(&link.token).is_ok_and(|token| !tokens.insert(token)))
        {
            return Err(format!(
                "Link {}: token {:?} is another link's",
                link.link_id, link.token
            ));
        }
        let links: HashMap<&str, &SnapshotLink> = snapshot
            .links
            .iter()
            .map(|link| (link.link_id.as_str(), link))
            .collect();
        operations_of_their_links(&links, &snapshot.operations)?;
        data_requests_of_first_opens(&links, &snapshot.data_requests)?;
        let mut merge = Merge::new(self, true);
        for user in &snapshot.users {
            merge.user(&mut state, user.into())?;
        }
        for link in &snapshot.links {
            merge.link(&mut state, link.into())?;
        }
        merge.rest(&mut state, snapshot.data_requests, snapshot.operations)?;
        // Every link's operationId names one of the snapshot's operations.
        if let Some((_, link)) = state.links.iter().enumerate().find(|(index, link)| {
            link.operation_id().is_some()
                && u32::try_from(*index).is_ok_and(|index| !state.operations.contains_key(&index))
        }) {
            return Err(format!(
                "Link {} names operationId {:?}, which is not among the snapshot's operations",
                self.link_id(link.suffix),
                link.operation_id().unwrap_or_default()
            ));
        }
        for link in state.links.iter() {
            self.possible_times(link)?;
        }
        // A user is made by a create of its first link, and links are never deleted.
        if let Some(user) = state.users.iter().find(|user| user.links.is_empty()) {
            return Err(format!(
                "User {} has no link, and only a link's create makes a user",
                self.user_id(user)
            ));
        }
        Ok(state)
    }

    /// Whether `link`'s expiry and revoke reason are ones the API could have written: a
    /// link expires after it is created (its lifetime is positive), and only a revoke gives
    /// a reason.
    ///
    /// What the sandbox clock may have done is not judged: it moves back as well as forward,
    /// so a link opened or revoked after a move back carries an `openedAt` or `revokedAt`
    /// before its `createdAt`, and a user may hold two links whose lifetimes overlap (a
    /// create after a move back, a re-seed's returning user), each made by API calls. A
    /// snapshot of such a sandbox restores.
    fn possible_times(&self, link: &Link) -> Result<(), String> {
        if link.expires_at.at() <= link.created_at.at() {
            return Err(format!(
                "Link {}: expiresAt is not after createdAt",
                self.link_id(link.suffix)
            ));
        }
        // Every create gives a lifetime of `expiresInMinutes` (or a default of that range);
        // the clock's moves do not change one.
        let lifetime = link.expires_at.at() - link.created_at.at();
        let minutes = |minutes: u32| time::Duration::minutes(i64::from(minutes));
        if !(minutes(wire::EXPIRES_IN_MINUTES_MIN)..=minutes(wire::EXPIRES_IN_MINUTES_MAX))
            .contains(&lifetime)
        {
            return Err(format!(
                "Link {}: expiresAt is {lifetime} after createdAt, and a link lives {} to {} minutes",
                self.link_id(link.suffix),
                wire::EXPIRES_IN_MINUTES_MIN,
                wire::EXPIRES_IN_MINUTES_MAX
            ));
        }
        if link.status != LinkStatus::Revoked && link.revoke_reason().is_some() {
            return Err(format!(
                "Link {}: revokeReason is set, but the link is not revoked",
                self.link_id(link.suffix)
            ));
        }
        Ok(())
    }

    /// Puts rows a shared database changed since this copy's version onto the copy: each
    /// user, link, data request and operation replaces the one with its id, or joins (new
    /// ones come in creation order). On `Err` the copy may be half changed: read it back
    /// whole.
    pub fn apply_rows(
        &self,
        users: Vec<UserDoc<'_>>,
        links: Vec<LinkDoc<'_>>,
        data_requests: Vec<SnapshotDataRequest>,
        operations: Vec<OperationView>,
    ) -> Result<(), String> {
        let mut state = self.state.lock();
        // Rows of another replica may revoke or end links, and rename users, unseen.
        state.numbered.clear();
        let mut merge = Merge::new(self, false);
        for user in users {
            merge.user(&mut state, user)?;
        }
        for link in links {
            merge.link(&mut state, link)?;
        }
        merge.rest(&mut state, data_requests, operations)
    }

    fn parse_link_id(&self, link_id: &str) -> Result<u64, String> {
        ids::suffix_of(link_id, "link", &self.slug)
            .and_then(ids::parse_hex48)
            .ok_or_else(|| format!("Invalid linkId {link_id:?}"))
    }

    fn user_id(&self, user: &User) -> String {
        format!("user_{}_{}", self.slug, ids::fmt_alnum6(&user.suffix))
    }

    pub(super) fn snapshot_user(&self, user: &User) -> SnapshotUser {
        SnapshotUser {
            user_id: self.user_id(user),
            reference_id: user.reference_id.to_string(),
            user_data: user
                .data
                .as_ref()
                .map(|data| RawJson::from(data.raw().to_owned())),
        }
    }

    pub(super) fn snapshot_link(&self, state: &PartnerState, link: &Link) -> SnapshotLink {
        SnapshotLink {
            link_id: self.link_id(link.suffix),
            reference_id: state.users[link.user as usize].reference_id.to_string(),
            status: link.status,
            token: link.token.to_string(),
            flow: link.flow.to_string(),
            theme: link.theme().map(str::to_owned),
            language: link.language,
            callback_url: link.callback_url().map(str::to_owned),
            metadata: link
                .metadata
                .as_ref()
                .map(|metadata| RawJson::from(metadata.raw().to_owned())),
            created_at: timefmt::millis(link.created_at.at()),
            expires_at: timefmt::millis(link.expires_at.at()),
            opened_at: link.opened_at.get().map(timefmt::millis),
            revoked_at: link.revoked_at.get().map(timefmt::millis),
            revoke_reason: link.revoke_reason().map(str::to_owned),
            operation_id: link.operation_id().map(str::to_owned),
        }
    }

    /// A user's row: [`Partner::snapshot_user`]'s document, its text borrowed from the state
    /// and its `userData` written as the compact text it is kept as (no parse, no tree).
    pub(super) fn user_doc<'a>(&self, user: &'a User) -> UserDoc<'a> {
        UserDoc {
            user_id: Cow::Owned(self.user_id(user)),
            reference_id: Cow::Borrowed(&user.reference_id),
            user_data: user.data.as_ref().map(|data| Cow::Borrowed(data.raw())),
        }
    }

    /// A link's row: [`Partner::snapshot_link`]'s document, like [`Partner::user_doc`].
    pub(super) fn link_doc<'a>(&self, state: &'a PartnerState, link: &'a Link) -> LinkDoc<'a> {
        LinkDoc {
            link_id: Cow::Owned(self.link_id(link.suffix)),
            reference_id: Cow::Borrowed(&state.users[link.user as usize].reference_id),
            status: link.status,
            token: Cow::Owned(ids::uuid_text(&link.token)),
            flow: Cow::Borrowed(&link.flow),
            theme: link.theme().map(Cow::Borrowed),
            language: link.language,
            callback_url: link.callback_url().map(Cow::Borrowed),
            metadata: link
                .metadata
                .as_ref()
                .map(|metadata| Cow::Borrowed(metadata.raw())),
            created_at: Cow::Owned(timefmt::millis(link.created_at.at())),
            expires_at: Cow::Owned(timefmt::millis(link.expires_at.at())),
            opened_at: link
                .opened_at
                .get()
                .map(|at| Cow::Owned(timefmt::millis(at))),
            revoked_at: link
                .revoked_at
                .get()
                .map(|at| Cow::Owned(timefmt::millis(at))),
            revoke_reason: link.revoke_reason().map(Cow::Borrowed),
            operation_id: link.operation_id().map(Cow::Borrowed),
        }
    }

    pub(super) fn snapshot_data_request(
        &self,
        state: &PartnerState,
        request: &DataRequest,
    ) -> SnapshotDataRequest {
        SnapshotDataRequest {
            data_request_id: format!("dr_{}_{}", self.slug, ids::fmt_hex48(request.suffix)),
            link_id: self.link_id(state.links[request.link as usize].suffix),
            required_fields: request.required_fields.clone(),
            fulfilled_at: request.fulfilled_at.map(timefmt::millis),
        }
    }
}

/// Items one piece of a streamed snapshot holds at most.
const PIECE_ITEMS: usize = 256;

/// A snapshot being written piece by piece ([`Partner::snapshot_pieces`]): each piece is
/// serialized under the partner's lock from its live state, so the extra memory is one
/// piece, not the document. A change of the partner between two pieces ends the stream
/// with [`SnapshotChanged`] rather than writing a document that mixes two states.
pub struct SnapshotPieces {
    partner: Arc<Partner>,
    changes: u64,
    section: Section,
    next: usize,
    /// Data requests in snapshot order: (link index, suffix).
    data_requests: Vec<(u32, u64)>,
    /// Links with an operation, in order.
    operations: Vec<u32>,
    written: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Head,
    Users,
    Links,
    DataRequests,
    Operations,
    Done,
}

/// The partner changed while its snapshot was being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the partner changed while its snapshot was being written; take it again")]
pub struct SnapshotChanged;

impl Partner {
    /// The partner's snapshot as JSON pieces, byte for byte what serializing
    /// [`Partner::snapshot`] writes.
    pub fn snapshot_pieces(self: &Arc<Self>) -> SnapshotPieces {
        let state = self.state.lock();
        let mut data_requests: Vec<(u32, u64)> = state
            .data_requests
            .values()
            .map(|request| (request.link, request.suffix))
            .collect();
        data_requests.sort_unstable();
        let mut operations: Vec<u32> = state.operations.keys().copied().collect();
        operations.sort_unstable();
        SnapshotPieces {
            partner: self.clone(),
            changes: self.changes.load(Ordering::Relaxed),
            section: Section::Head,
            next: 0,
            data_requests,
            operations,
            written: 0,
        }
    }

    /// The size of the largest snapshot written of this partner so far.
    pub fn largest_snapshot(&self) -> usize {
        self.largest_snapshot.load(Ordering::Relaxed)
    }

    /// The size of the snapshot a `GET` would write now. Writing it takes about a second
    /// per half a million links, so it is measured at most once per state of the partner:
    /// asked again before any change, the last measure is the answer.
    pub fn snapshot_size_now(self: &Arc<Self>) -> usize {
        let changes = self.changes.load(Ordering::Relaxed);
        let (measured_at, size) = *self.measured_snapshot.lock();
        if measured_at == changes {
            return size;
        }
        let size = self
            .snapshot_pieces()
            .map(|piece| piece.map_or(0, |piece| piece.len()))
            .sum();
        *self.measured_snapshot.lock() = (changes, size);
        size
    }
}

impl SnapshotPieces {
    /// The next piece, `None` once the document is complete.
    fn next_piece(&mut self) -> Option<Result<Vec<u8>, SnapshotChanged>> {
        if self.section == Section::Done {
            return None;
        }
        let partner = self.partner.clone();
        let state = partner.state.lock();
        if partner.changes.load(Ordering::Relaxed) != self.changes {
            self.section = Section::Done;
            return Some(Err(SnapshotChanged));
        }
        let mut out = Vec::new();
        let written = match self.section {
            Section::Head => {
                out.extend_from_slice(br#"{"version":"#);
                let head = (|| {
                    serde_json::to_writer(&mut out, &VERSION)?;
                    out.extend_from_slice(br#","partner":"#);
                    serde_json::to_writer(&mut out, &*partner.slug)?;
                    out.extend_from_slice(br#","webhookUrl":"#);
                    serde_json::to_writer(&mut out, &state.webhook_url)?;
                    out.extend_from_slice(br#","users":["#);
                    Ok::<_, serde_json::Error>(())
                })();
                self.advance(Section::Users);
                head
            }
            Section::Users => self.items(
                &mut out,
                state.users.len(),
                b"],\"links\":[",
                |index, out| {
                    serde_json::to_writer(out, &partner.snapshot_user(&state.users[index]))
                },
            ),
            Section::Links => self.items(
                &mut out,
                state.links.len(),
                b"],\"dataRequests\":[",
                |index, out| {
                    serde_json::to_writer(out, &partner.snapshot_link(&state, &state.links[index]))
                },
            ),
            Section::DataRequests => {
                let keys = std::mem::take(&mut self.data_requests);
                let result = self.items(
                    &mut out,
                    keys.len(),
                    b"],\"operations\":[",
                    |index, out| match state.data_requests.get(&keys[index].1) {
                        Some(request) => serde_json::to_writer(
                            out,
                            &partner.snapshot_data_request(&state, request),
                        ),
                        None => serde_json::to_writer(out, &()),
                    },
                );
                self.data_requests = keys;
                result
            }
            Section::Operations => {
                let links = std::mem::take(&mut self.operations);
                let result = self.items(&mut out, links.len(), b"]}", |index, out| {
                    serde_json::to_writer(
                        out,
                        &partner.operation_view(&state, links[index] as usize),
                    )
                });
                self.operations = links;
                result
            }
            Section::Done => return None,
        };
        drop(state);
        if written.is_err() {
            // Serializing plain values into memory does not fail; if it ever did, the
            // document could not be trusted either.
            self.section = Section::Done;
            return Some(Err(SnapshotChanged));
        }
        self.written += out.len();
        if self.section == Section::Done {
            self.partner
                .largest_snapshot
                .fetch_max(self.written, Ordering::Relaxed);
        }
        Some(Ok(out))
    }

    /// Up to [`PIECE_ITEMS`] items of the current section, `,`-separated, then `close`
    /// and the next section once the section is exhausted.
    fn items(
        &mut self,
        out: &mut Vec<u8>,
        len: usize,
        close: &[u8],
        mut write: impl FnMut(usize, &mut Vec<u8>) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        let end = len.min(self.next + PIECE_ITEMS);
        for index in self.next..end {
            if index > 0 {
                out.push(b',');
            }
            write(index, out)?;
        }
        self.next = end;
        if end >= len {
            out.extend_from_slice(close);
            let next = match self.section {
                Section::Head => Section::Users,
                Section::Users => Section::Links,
                Section::Links => Section::DataRequests,
                Section::DataRequests => Section::Operations,
                Section::Operations | Section::Done => Section::Done,
            };
            self.advance(next);
        }
        Ok(())
    }

    fn advance(&mut self, section: Section) {
        self.section = section;
        self.next = 0;
    }
}

impl Iterator for SnapshotPieces {
    type Item = Result<bytes::Bytes, SnapshotChanged>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_piece().map(|piece| piece.map(bytes::Bytes::from))
    }
}

/// Rows being put onto a partner's state, each checked as a snapshot restore checks it.
/// `strict` (a snapshot or a state file, onto an empty state): an id seen twice is refused.
/// Otherwise (a shared database's newer rows) a row whose id the state holds replaces it.
struct Merge<'p> {
    partner: &'p Partner,
    strict: bool,
    /// The link each `operationId` met so far is the operation of.
    operation_links: HashMap<Box<str>, u32>,
}

impl<'p> Merge<'p> {
    fn new(partner: &'p Partner, strict: bool) -> Merge<'p> {
        Merge {
            partner,
            strict,
            operation_links: HashMap::new(),
        }
    }

    fn user(&mut self, state: &mut PartnerState, doc: UserDoc<'_>) -> Result<(), String> {
        let user = self.user_of(doc)?;
        self.add_user(state, user)
    }

    fn link(&mut self, state: &mut PartnerState, doc: LinkDoc<'_>) -> Result<(), String> {
        let link = self.link_of(state, doc)?;
        self.add_link(state, link)
    }

    /// A user row, checked on its own.
    fn user_of(&self, doc: UserDoc<'_>) -> Result<User, String> {
        let suffix = ids::suffix_of(&doc.user_id, "user", &self.partner.slug)
            .and_then(|text| <[u8; 6]>::try_from(text.as_bytes()).ok())
            .filter(|bytes| bytes.iter().all(u8::is_ascii_alphanumeric))
            .ok_or_else(|| format!("Invalid userId {:?}", doc.user_id))?;
        Ok(User {
            suffix,
            reference_id: doc.reference_id.into(),
            data: doc.user_data.map(|raw| Compact::from_raw(raw.into_owned())),
            links: super::UserLinks::new(),
        })
    }

    /// Adds `user`, or (not strict) replaces the data of the user with its `referenceId`.
    fn add_user(&mut self, state: &mut PartnerState, user: User) -> Result<(), String> {
        // Strict, a repeated `referenceId` is found by the insert below: one lookup a user.
        if !self.strict
            && let Some(index) = state.user_of(&user.reference_id)
        {
            let kept = &mut state.users[index as usize];
            if kept.suffix != user.suffix {
                return Err(format!("referenceId {:?} appears twice", user.reference_id));
            }
            let counted = kept.weight();
            kept.data = user.data;
            state.stored = state.stored.saturating_sub(counted) + kept.weight();
            return Ok(());
        }
        let index = u32::try_from(state.users.len()).map_err(|_| "too many users".to_owned())?;
        if state.index_user(&user.reference_id, index).is_some() {
            return Err(format!("referenceId {:?} appears twice", user.reference_id));
        }
        state
            .minted_users
            .past(self.partner.minter(IdKind::User), &user.suffix);
        state.stored += user.weight();
        state.users.push(user);
        Ok(())
    }

    /// A link row, checked on its own and against the users added so far.
    fn link_of(&self, state: &PartnerState, doc: LinkDoc<'_>) -> Result<Link, String> {
        let (reference_id, mut link) = self.partner.link_from(doc)?;
        link.user = user_of_link(state, &reference_id, self.partner, link.suffix)?;
        Ok(link)
    }

    /// Adds `link`, or (not strict) replaces the link with its id.
    fn add_link(&mut self, state: &mut PartnerState, link: Link) -> Result<(), String> {
        // Strict, a repeated id is found by the insert below: one lookup a link.
        let existing = if self.strict {
            None
        } else {
            state.link_at(link.suffix)
        };
        let index = match existing {
            Some(index) => index,
            None => u32::try_from(state.links.len()).map_err(|_| "too many links".to_owned())?,
        };
        if let Some(operation_id) = link.operation_id() {
            self.operation_links.insert(operation_id.into(), index);
        }
        match existing {
            Some(index) => {
                if state.links[index as usize].user != link.user {
                    return Err(format!(
                        "Link {} changed its referenceId",
                        self.partner.link_id(link.suffix)
                    ));
                }
                let counted = state.links[index as usize].weight();
                state.stored = state.stored.saturating_sub(counted) + link.weight();
                state.links[index as usize] = link;
            }
            None => {
                if state.index_link(link.suffix, index).is_some() {
                    return Err(format!(
                        "linkId {:?} appears twice",
                        self.partner.link_id(link.suffix)
                    ));
                }
                state.users[link.user as usize].links.push(index);
                state.stored += link.weight();
                state.links.push(link);
            }
        }
        Ok(())
    }

    /// Adds the data requests and operations, once the links they name are in.
    fn rest(
        &mut self,
        state: &mut PartnerState,
        data_requests: Vec<SnapshotDataRequest>,
        operations: Vec<OperationView>,
    ) -> Result<(), String> {
        let slug = &self.partner.slug;
        for request in data_requests {
            let suffix = ids::suffix_of(&request.data_request_id, "dr", slug)
                .and_then(ids::parse_hex48)
                .ok_or_else(|| format!("Invalid dataRequestId {:?}", request.data_request_id))?;
            let link = self.partner.parse_link_id(&request.link_id)?;
            let link = state.link_at(link).ok_or_else(|| {
                format!(
                    "Data request {} names an unknown link",
                    request.data_request_id
                )
            })?;
            state.data_requests.insert(
                suffix,
                DataRequest {
                    suffix,
                    link,
                    required_fields: request.required_fields,
                    fulfilled_at: request.fulfilled_at.as_deref().map(time_of).transpose()?,
                },
            );
        }
        for operation in operations {
            let suffix = ids::suffix_of(&operation.operation_id, "op", slug)
                .and_then(|text| <[u8; 6]>::try_from(text.as_bytes()).ok())
                .ok_or_else(|| format!("Invalid operationId {:?}", operation.operation_id))?;
            // The link whose operationId it is: among the rows just merged, or (an operation
            // changed without its link) among the links kept.
            let link = match self.operation_links.get(operation.operation_id.as_str()) {
                Some(link) => Some(*link),
                None => state
                    .links
                    .iter()
                    .position(|link| link.operation_id() == Some(operation.operation_id.as_str()))
                    .and_then(|index| u32::try_from(index).ok()),
            }
            .ok_or_else(|| {
                format!(
                    "Operation {} is not the operationId of any link",
                    operation.operation_id
                )
            })?;
            let cancelled_at = operation.cancelled_at.as_deref().map(time_of).transpose()?;
            if (operation.status == OperationStatus::Cancelled) != cancelled_at.is_some() {
                return Err(format!(
                    "Operation {}: status and cancelledAt disagree",
                    operation.operation_id
                ));
            }
            state.operations.insert(
                link,
                Operation {
                    suffix,
                    amount: operation.amount,
                    created_at: time_of(&operation.created_at)?,
                    cancelled_at,
                },
            );
            // Mint on past every id held, whoever minted it.
            state
                .minted_operations
                .past(self.partner.minter(IdKind::Operation), &suffix);
        }
        Ok(())
    }
}

/// Whether a snapshot's link is one the API could have made: its `theme` and `revokeReason`
/// no longer than a request body, its `token` a UUID v4, its status agreeing with its
/// timestamps (an opened link has `openedAt`, a revoked one `revokedAt`, a created one
/// neither), and its `metadata` an object. A restore of one it could not is refused, naming
/// it, rather than served.
fn possible(link: &linkbox_contracts::sandbox::SnapshotLink) -> Result<(), String> {
    // Each came in one request's body, which the API takes up to its limit.
    let most = linkbox_contracts::m2m::MAX_BODY_BYTES;
    for (field, text) in [
        ("theme", &link.theme),
        ("revokeReason", &link.revoke_reason),
    ] {
        if text.as_ref().is_some_and(|text| text.len() > most) {
            return Err(format!(
                "Link {}: {field} is longer than a request body may be ({} MiB)",
                link.link_id,
                most / (1024 * 1024)
            ));
        }
    }
    if !Uuid::parse_str(&link.token).is_ok_and(|token| token.get_version_num() == 4) {
        return Err(format!(
            "Link {}: token {:?} is not a UUID v4, as every link's is",
            link.link_id, link.token
        ));
    }
    let (opened, revoked) = (link.opened_at.is_some(), link.revoked_at.is_some());
    let agrees = match link.status {
        linkbox_contracts::m2m::LinkStatus::Created => !opened && !revoked,
        linkbox_contracts::m2m::LinkStatus::Opened => opened && !revoked,
        linkbox_contracts::m2m::LinkStatus::Revoked => revoked,
    };
    if !agrees {
        return Err(format!(
            "Link {}: status {:?} disagrees with openedAt and revokedAt",
            link.link_id,
            link.status.as_str()
        ));
    }
    let Some(metadata) = &link.metadata else {
        return Ok(());
    };
    // As a create's body is held to, counted in its text before it is read: a link's
    // metadata is read back as a tree on every read of it, where a megabyte of small
    // values takes some 120 MB.
    let most = crate::bodies::MAX_JSON_VALUES;
    if crate::bodies::holds_more_values_than(metadata.get().as_bytes(), most) {
        return Err(format!(
            "Link {}: metadata holds more JSON values than the limit of {most} a create is held to",
            link.link_id
        ));
    }
    match metadata.parse() {
        Ok(value) if value.is_object() => Ok(()),
        Ok(_) => Err(format!("Link {}: metadata must be an object", link.link_id)),
        Err(error) => Err(format!("Link {}: metadata: {error}", link.link_id)),
    }
}

/// The first id of `ids` that one before it already was.
fn repeated<'a>(mut ids: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let mut seen = std::collections::HashSet::new();
    ids.find(|id| !seen.insert(id.as_str()))
}

/// Whether a snapshot's user is one the API could have made: its `referenceId` one a
/// create accepts, and its `userData` of the shape every request that writes it is held to
/// ([`user_input`]). A restore of one it could not is refused, naming it.
fn acceptable(user: &SnapshotUser) -> Result<(), String> {
    if let Some(refusal) = user_input::reference_id_refusal(&user.reference_id) {
        return Err(format!("User {}: {refusal}", user.user_id));
    }
    if let Some(data) = &user.user_data {
        let refused = |refusal: String| format!("User {}: {refusal}", user.user_id);
        // Counted in its text before it is read, as a link's metadata is ([`possible`]).
        let most = crate::bodies::MAX_JSON_VALUES;
        if crate::bodies::holds_more_values_than(data.get().as_bytes(), most) {
            return Err(refused(format!(
                "userData holds more JSON values than the limit of {most} a request is held to"
            )));
        }
        let data = data
            .parse()
            .map_err(|error| refused(format!("userData: {error}")))?;
        user_input::check_kept_user_data(&data).map_err(refused)?;
    }
    Ok(())
}

/// Whether each operation's id is one the API mints (`op_<slug>_<6 alnum>`) and its
/// `linkId` and `referenceId` are those of the link whose `operationId` it is, as the API
/// shows an operation. An operation no link names is left
/// to the merge, which refuses it.
fn operations_of_their_links(
    by_id: &HashMap<&str, &SnapshotLink>,
    operations: &[OperationView],
) -> Result<(), String> {
    for operation in operations {
        let id = &operation.operation_id;
        if !id.rsplit_once('_').is_some_and(|(_, suffix)| {
            suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        }) {
            return Err(format!(
                "Invalid operationId {id:?}: an operation's id ends in 6 letters or digits"
            ));
        }
        let Some(link) = by_id.get(operation.link_id.as_str()) else {
            return Err(format!(
                "Operation {}: linkId {} is not among the snapshot's links",
                operation.operation_id, operation.link_id
            ));
        };
        if link.operation_id.as_deref() != Some(operation.operation_id.as_str()) {
            return Err(format!(
                "Operation {}: linkId {} is not the link whose operationId it is",
                operation.operation_id, operation.link_id
            ));
        }
        if link.reference_id != operation.reference_id {
            return Err(format!(
                "Operation {}: referenceId {:?} is not its link's, {:?}",
                operation.operation_id, operation.reference_id, link.reference_id
            ));
        }
        if link.opened_at.is_none() {
            return Err(format!(
                "Operation {}: its link {} was never opened, and only an opened link makes one",
                operation.operation_id, operation.link_id
            ));
        }
    }
    Ok(())
}

/// Whether each data request is one a link's first open could have made: its link was
/// opened, no other request names that link (only the first open makes one), and its
/// `requiredFields` are CIP fields, each once, at least one (the fields the user's data
/// lacked). A request naming a link the snapshot lacks is left to the merge, which refuses
/// it.
fn data_requests_of_first_opens(
    by_id: &HashMap<&str, &SnapshotLink>,
    requests: &[SnapshotDataRequest],
) -> Result<(), String> {
    let mut requested = std::collections::HashSet::new();
    for request in requests {
        let id = &request.data_request_id;
        if let Some(link) = by_id.get(request.link_id.as_str()) {
            if link.opened_at.is_none() {
                return Err(format!(
                    "Data request {id}: its link {} was never opened, and only a first open makes one",
                    link.link_id
                ));
            }
            if !requested.insert(link.link_id.as_str()) {
                return Err(format!(
                    "Data request {id}: link {} already has one, and only its first open makes one",
                    link.link_id
                ));
            }
        }
        let fields = &request.required_fields;
        if fields.is_empty() {
            return Err(format!(
                "Data request {id}: requiredFields is empty; a request asks for at least one CIP field"
            ));
        }
        if let Some(field) = fields
            .iter()
            .find(|field| !CIP_FIELDS.contains(&field.as_str()))
        {
            return Err(format!(
                "Data request {id}: requiredFields names {field:?}, which is not a CIP field ({})",
                CIP_FIELDS.join(", ")
            ));
        }
        if let Some(twice) = repeated(fields.iter()) {
            return Err(format!(
                "Data request {id}: requiredFields names {twice:?} twice"
            ));
        }
    }
    Ok(())
}

/// The index of the user with `reference_id`, which link `suffix` names.
fn user_of_link(
    state: &PartnerState,
    reference_id: &str,
    partner: &Partner,
    suffix: u64,
) -> Result<u32, String> {
    state.user_of(reference_id).ok_or_else(|| {
        format!(
            "Link {} names an unknown referenceId",
            partner.link_id(suffix)
        )
    })
}

impl Partner {
    /// A link row checked on its own, and the `referenceId` of the user it names (its
    /// `user` is left for the caller to find).
    fn link_from<'a>(&self, doc: LinkDoc<'a>) -> Result<(Cow<'a, str>, Link), String> {
        let suffix = self.parse_link_id(&doc.link_id)?;
        let optional_time = |text: Option<Cow<'_, str>>| text.as_deref().map(time_of).transpose();
        let link = Link {
            suffix,
            user: 0,
            status: doc.status,
            token: Uuid::parse_str(&doc.token)
                .map_err(|_| format!("Invalid token of link {}", doc.link_id))?,
            flow: Arc::from(&*doc.flow),
            language: doc.language,
            metadata: doc.metadata.map(|raw| Compact::from_raw(raw.into_owned())),
            created_at: Stamp::of(time_of(&doc.created_at)?),
            expires_at: Stamp::of(time_of(&doc.expires_at)?),
            opened_at: MaybeStamp::of(optional_time(doc.opened_at)?),
            revoked_at: MaybeStamp::of(optional_time(doc.revoked_at)?),
            extras: Extras {
                theme: doc.theme.map(Into::into),
                callback_url: doc.callback_url.map(Into::into),
                revoke_reason: doc.revoke_reason.map(Into::into),
                operation_id: doc.operation_id.map(Into::into),
            }
            .boxed(),
        };
        Ok((doc.reference_id, link))
    }
}

/// A partner's users read back from a state file, put together with its links
/// ([`LoadLinks`]) into its state. Rows come in the file's key order, not creation order:
/// each is checked and made compact as it comes (nothing of its text is kept), and each kind
/// is put in creation order (its rows' positions) at the end. The whole is checked as a
/// snapshot restore checks it.
pub struct Load<'p> {
    merge: Merge<'p>,
    state: PartnerState,
    users: Positioned<User>,
    /// Some user's or link's position is not the index it gets (a row set aside left a
    /// gap, say): the partner's rows are to be written again ([`Load::finish`]).
    moved: bool,
}

/// Items taken in any order with their positions, handed back in position order (ties in
/// the order taken). Only the small `(position, index)` pairs are sorted: each item moves
/// once, however large.
struct Positioned<T> {
    items: Vec<Option<T>>,
    order: Vec<(u64, u32)>,
}

impl<T> Default for Positioned<T> {
    fn default() -> Self {
        Positioned {
            items: Vec::new(),
            order: Vec::new(),
        }
    }
}

impl<T> Positioned<T> {
    fn push(&mut self, position: u64, item: T) -> Result<(), String> {
        let index = u32::try_from(self.items.len()).map_err(|_| "too many rows".to_owned())?;
        self.order.push((position, index));
        self.items.push(Some(item));
        Ok(())
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    /// Sorts now, so that [`Positioned::into_sorted`] has next to nothing left to do.
    fn sort(&mut self) {
        self.order.sort_unstable();
    }

    /// Whether the positions are exactly 0, 1, 2, … once sorted: the indexes the items get.
    fn in_place(&mut self) -> bool {
        self.sort();
        self.order
            .iter()
            .enumerate()
            .all(|(rank, &(position, _))| position == rank as u64)
    }

    fn into_sorted(self) -> impl Iterator<Item = T> {
        let Positioned {
            mut items,
            mut order,
        } = self;
        // Next to free when `sort` ran: the pattern-defeating sort finds sorted input.
        order.sort_unstable();
        order
            .into_iter()
            .filter_map(move |(_, index)| items[index as usize].take())
    }
}

/// A partner's links read back from a state file, for [`Load::finish`]. Filled on its own
/// (on another thread, say), while the users are read: the user a link names is found at
/// the end.
pub struct LoadLinks<'p> {
    partner: &'p Partner,
    links: Positioned<(Box<str>, Link)>,
    /// Each link's `user` is set ([`Load::resolve`]).
    resolved: bool,
}

impl Partner {
    /// Starts putting the partner's rows read back from a state file together.
    pub fn load(&self) -> Load<'_> {
        Load {
            merge: Merge::new(self, true),
            state: PartnerState::default(),
            users: Positioned::default(),
            moved: false,
        }
    }

    /// Starts collecting the partner's links read back from a state file.
    pub fn load_links(&self) -> LoadLinks<'_> {
        LoadLinks {
            partner: self,
            links: Positioned::default(),
            resolved: false,
        }
    }
}

impl LoadLinks<'_> {
    /// Takes the link row at `position`.
    pub fn link(&mut self, position: u64, doc: LinkDoc<'_>) -> Result<(), String> {
        let (reference_id, link) = self.partner.link_from(doc)?;
        self.links.push(position, (reference_id.into(), link))
    }
}

impl Load<'_> {
    /// The partner's slug.
    pub fn slug(&self) -> &str {
        &self.merge.partner.slug
    }

    /// Takes the user row at `position`.
    pub fn user(&mut self, position: u64, doc: UserDoc<'_>) -> Result<(), String> {
        let user = self.merge.user_of(doc)?;
        self.users.push(position, user)
    }

    /// Adds the users taken so far, in creation order. [`Load::finish`] does it if this
    /// was not called, but called while the links are still being read it saves that time.
    pub fn add_users(&mut self) -> Result<(), String> {
        let mut users = std::mem::take(&mut self.users);
        self.moved |= !users.in_place();
        self.state.users.reserve_exact(users.len());
        self.state.reserve_indexes(users.len(), 0);
        for user in users.into_sorted() {
            self.merge.add_user(&mut self.state, user)?;
        }
        Ok(())
    }

    /// Finds the user each of `links` names, among the users added ([`Load::add_users`]),
    /// and puts them in creation order: work [`Load::finish`] then skips, done here on the
    /// thread that read the links while this one was busy with the rest.
    pub fn resolve(&self, links: &mut LoadLinks<'_>) -> Result<(), String> {
        let partner = self.merge.partner;
        for (reference_id, link) in links.links.items.iter_mut().flatten() {
            link.user = user_of_link(&self.state, reference_id, partner, link.suffix)?;
        }
        links.links.sort();
        links.resolved = true;
        Ok(())
    }

    /// Adds the users and `links` taken, then `data_requests` and `operations`, and makes
    /// the result the partner's state (its webhook settings, restored with its row, are
    /// kept). Writes nothing: these are the rows the file holds. On `Err` the partner is
    /// unchanged.
    ///
    /// `Ok(true)` when some user's or link's position was not the index it now has: a file
    /// keys rows by position, so the caller writes the partner's rows again
    /// ([`Partner::rewrite`]) before anything else changes them.
    pub fn finish(
        mut self,
        links: LoadLinks<'_>,
        data_requests: Vec<SnapshotDataRequest>,
        operations: Vec<OperationView>,
    ) -> Result<bool, String> {
        self.add_users()?;
        let partner = self.merge.partner;
        let LoadLinks {
            mut links,
            resolved,
            ..
        } = links;
        let moved = self.moved || !links.in_place();
        self.state.links.reserve_exact(links.len());
        self.state.reserve_indexes(0, links.len());
        for (reference_id, mut link) in links.into_sorted() {
            if !resolved {
                link.user = user_of_link(&self.state, &reference_id, partner, link.suffix)?;
            }
            self.merge.add_link(&mut self.state, link)?;
        }
        self.merge
            .rest(&mut self.state, data_requests, operations)?;
        let mut state = partner.state.lock();
        let webhook_url = state.webhook_url.take();
        let webhook_secret = std::mem::take(&mut state.webhook_secret);
        *state = PartnerState {
            webhook_url,
            webhook_secret,
            ..self.state
        };
        partner.changes.fetch_add(1, Ordering::Relaxed);
        Ok(moved)
    }
}

/// A snapshot's timestamp, in UTC. Its UTC reading must fall in the years 0000 to 9999,
/// the ones RFC 3339 can write: `9999-12-31T23:59:59-23:59` parses, but is in the year
/// 10000 in UTC, and could be neither kept as a moment nor shown again.
fn time_of(text: &str) -> Result<OffsetDateTime, String> {
    let at = timefmt::parse(text).ok_or_else(|| format!("Invalid timestamp {text:?}"))?;
    at.checked_to_offset(time::UtcOffset::UTC)
        .filter(|at| (0..=9999).contains(&at.year()))
        .ok_or_else(|| {
            format!("Invalid timestamp {text:?}: in UTC it must fall in the years 0000 to 9999")
        })
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{KEY, NOW, new_link, partner};
    use super::*;
    use serde_json::json;

    #[test]
    fn positioned_items_come_back_in_position_order_ties_as_taken() {
        let mut items = Positioned::default();
        for (position, item) in [(5, "e"), (1, "a"), (3, "c1"), (3, "c2"), (2, "b")] {
            items.push(position, item).unwrap();
        }
        assert_eq!(items.len(), 5);
        let sorted: Vec<&str> = items.into_sorted().collect();
        assert_eq!(sorted, ["a", "b", "c1", "c2", "e"]);
    }

    #[test]
    fn a_snapshot_restores_to_an_equal_snapshot_after_a_reset() {
        let partner = partner();
        let mut first = new_link("u1");
        first.metadata = Some(json!({"orderId": "A1"}));
        let link = partner.create_link(first, NOW).expect("link");
        partner.open_link(&link.link_id, NOW).expect("open");
        partner.create_link(new_link("u2"), NOW).expect("link");
        partner
            .set_webhook_url(Some("http://127.0.0.1:9/hooks".into()))
            .expect("room");
        let before = partner.snapshot();
        assert_eq!(before.links.len(), 2);
        assert_eq!(before.data_requests.len(), 1);
        partner.reset();
        assert_eq!(partner.link_count(), 0);
        assert_eq!(
            partner.webhook_url().as_deref(),
            Some("http://127.0.0.1:9/hooks")
        );
        partner.restore(before.clone()).expect("restore");
        assert_eq!(partner.snapshot(), before);
        assert!(partner.link(&link.link_id).is_ok());
    }

    /// A row is written from the state, its text borrowed and its JSON added as the text it
    /// is kept as; what it writes is the document a snapshot holds for the same link or
    /// user, field for field, whichever optional fields are set, and reads back as one.
    #[test]
    fn rows_are_the_snapshot_documents() {
        use serde_json::value::RawValue;

        let partner = partner();
        let mut full = new_link("u1");
        full.metadata = Some(json!({"orderId": "A1", "note": "a \"quoted\" é", "n": [1, 2.5]}));
        full.user_data = Some(json!({"name": {"firstName": "María"}, "idType": "CURP"}));
        full.theme = Some("dark".into());
        full.language = Some(wire::Language::Es);
        full.callback_url = Some("http://127.0.0.1:9/hooks".into());
        let opened = partner.create_link(full, NOW).expect("link");
        partner.open_link(&opened.link_id, NOW).expect("open");
        let revoked = partner.create_link(new_link("u2"), NOW).expect("link");
        partner
            .revoke_link(&revoked.link_id, Some("fraud \"suspected\"".into()), NOW)
            .expect("revoke");
        partner.create_link(new_link("u3"), NOW).expect("link");
        let state = partner.state.lock();
        assert_eq!(state.links.len(), 3);
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("JSON");
        for link in state.links.iter() {
            let row = partner.link_doc(&state, link);
            let metadata = row.metadata.as_deref().map(RawValue::get);
            let doc = crate::persist::document(&row, &row.raw()).expect("row");
            let snapshot = serde_json::to_value(partner.snapshot_link(&state, link));
            assert_eq!(json(&doc), snapshot.expect("snapshot"), "{doc}");
            let back: LinkDoc<'_> = serde_json::from_str(&doc).expect("reads back");
            assert_eq!(back.metadata.as_deref().map(RawValue::get), metadata);
        }
        for user in state.users.iter() {
            let row = partner.user_doc(user);
            let doc = crate::persist::document(&row, &row.raw()).expect("row");
            let snapshot = serde_json::to_value(partner.snapshot_user(user));
            assert_eq!(json(&doc), snapshot.expect("snapshot"), "{doc}");
        }
        let first = partner.link_doc(&state, &state.links[0]);
        assert_eq!(
            first.metadata.as_deref().map(RawValue::get),
            Some(r#"{"n":[1,2.5],"note":"a \"quoted\" é","orderId":"A1"}"#),
            "kept compact, as it is written"
        );
    }

    fn streamed(partner: &Arc<Partner>) -> Result<Vec<u8>, SnapshotChanged> {
        let mut out = Vec::new();
        for piece in partner.snapshot_pieces() {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    #[test]
    fn the_streamed_snapshot_is_the_serialized_snapshot_byte_for_byte() {
        let partner = partner();
        assert_eq!(
            streamed(&partner).expect("stream"),
            serde_json::to_vec(&partner.snapshot()).expect("json")
        );
        for n in 0..(2 * PIECE_ITEMS + 3) {
            let mut link = new_link(&format!("u{n}"));
            link.metadata = Some(json!({"n": n, "text": "a \"quoted\" value"}));
            let created = partner.create_link(link, NOW).expect("link");
            if n % 3 == 0 {
                partner.open_link(&created.link_id, NOW).expect("open");
            }
        }
        partner
            .set_webhook_url(Some("http://127.0.0.1:9/hooks".into()))
            .expect("room");
        let bytes = streamed(&partner).expect("stream");
        assert_eq!(
            bytes,
            serde_json::to_vec(&partner.snapshot()).expect("json")
        );
        assert_eq!(partner.largest_snapshot(), bytes.len());
    }

    /// The size a `GET` would write now is measured once per state of the partner.
    #[test]
    fn the_snapshot_size_is_measured_once_per_state() {
        let partner = partner();
        for n in 0..3 {
            partner
                .create_link(new_link(&format!("u{n}")), NOW)
                .expect("link");
        }
        let size = partner.snapshot_size_now();
        assert_eq!(size, streamed(&partner).expect("stream").len());
        // Asked again before a change, the answer is the last measure, not a new one.
        *partner.measured_snapshot.lock() = (partner.changes.load(Ordering::Relaxed), 7);
        assert_eq!(partner.snapshot_size_now(), 7);
        partner.create_link(new_link("u3"), NOW).expect("link");
        assert!(partner.snapshot_size_now() > size);
    }

    #[test]
    fn a_change_between_pieces_ends_the_stream_instead_of_mixing_states() {
        let partner = partner();
        for n in 0..(PIECE_ITEMS + 1) {
            partner
                .create_link(new_link(&format!("u{n}")), NOW)
                .expect("link");
        }
        let mut pieces = partner.snapshot_pieces();
        assert!(pieces.next().is_some_and(|piece| piece.is_ok()));
        partner.create_link(new_link("late"), NOW).expect("link");
        assert_eq!(pieces.next(), Some(Err(SnapshotChanged)));
        assert_eq!(pieces.next(), None);
    }

    #[test]
    fn a_snapshot_of_another_partner_is_refused_and_changes_nothing() {
        let partner = partner();
        partner.create_link(new_link("u1"), NOW).expect("link");
        let mut foreign = partner.snapshot();
        foreign.partner = "someoneelse".into();
        foreign.links.clear();
        assert!(partner.restore(foreign).is_err());
        assert_eq!(partner.link_count(), 1);
    }

    /// RFC 3339 lets `-23:59` carry the last minute of 9999 into the year 10000 in UTC,
    /// which no moment the store keeps can hold and no timestamp can show: such a snapshot
    /// is refused whole. Another offset is read as its moment, shown in UTC.
    #[test]
    fn a_snapshot_timestamp_past_9999_in_utc_is_refused_and_changes_nothing() {
        let partner = partner();
        let link = partner.create_link(new_link("u1"), NOW).expect("link");
        partner.open_link(&link.link_id, NOW).expect("open");
        let before = partner.snapshot();
        for past in ["9999-12-31T23:59:59.999-23:59", "0000-01-01T00:00:00+00:01"] {
            let mut broken = before.clone();
            broken.links[0].expires_at = past.into();
            let refused = partner.restore(broken).expect_err(past).to_string();
            assert!(refused.contains("years 0000 to 9999"), "{refused}");
            assert_eq!(partner.snapshot(), before, "{past}");
        }
        // The link's own expiry, written at +05:00.
        let expires = timefmt::parse(&before.links[0].expires_at).expect("a time");
        let mut shifted = before.clone();
        shifted.links[0].expires_at = expires
            .to_offset(time::macros::offset!(+5))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats");
        assert!(shifted.links[0].expires_at.ends_with("+05:00"));
        partner.restore(shifted).expect("restore");
        assert_eq!(
            partner.snapshot().links[0].expires_at,
            before.links[0].expires_at
        );
    }

    /// A field no request body could have carried is refused, naming it.
    #[test]
    fn a_field_longer_than_a_request_body_is_refused() {
        let partner = partner();
        partner.create_link(new_link("u1"), NOW).expect("link");
        let before = partner.snapshot();
        let mut broken = before.clone();
        broken.links[0].theme = Some("x".repeat(linkbox_contracts::m2m::MAX_BODY_BYTES + 1));
        let refused = partner.restore(broken).expect_err("too long").to_string();
        assert!(
            refused.contains("theme is longer than a request body"),
            "{refused}"
        );
        assert_eq!(partner.snapshot(), before);
    }

    /// A restored `userId` at the end of the id space sends the next count past it, where
    /// counts repeat ids issued before: a new user still gets an id no user holds.
    #[test]
    fn a_restored_last_user_id_does_not_make_the_next_one_repeat() {
        let partner = partner();
        partner.create_link(new_link("u1"), NOW).expect("link");
        partner.create_link(new_link("u2"), NOW).expect("link");
        let mut snapshot = partner.snapshot();
        let last = partner
            .minter(IdKind::User)
            .mint(crate::store::ids::ALNUM6_SPACE - 1);
        let mut extra = snapshot.users[0].clone();
        extra.reference_id = "last".into();
        extra.user_id = format!("user_{}_{}", partner.slug, ids::fmt_alnum6(&last));
        snapshot.users.push(extra);
        // Its link: only a link's create makes a user.
        let mut link = snapshot.links[0].clone();
        link.reference_id = "last".into();
        link.link_id = format!("link_{}_0123456789ab", partner.slug);
        link.token = Uuid::new_v4().to_string();
        snapshot.links.push(link);
        partner.restore(snapshot).expect("restore");
        for n in 0..3 {
            partner
                .create_link(new_link(&format!("new{n}")), NOW)
                .expect("link");
        }
        let ids: Vec<String> = partner
            .snapshot()
            .users
            .into_iter()
            .map(|user| user.user_id)
            .collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 6);
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    }

    /// What the API makes with the clock moved back restores: a link opened and one revoked
    /// before they were created, and a user with two links whose lifetimes overlap (a
    /// re-seed's returning user makes those). A reason on a link not revoked, which nothing
    /// makes, is refused and changes nothing; a state file holding one still loads as it was
    /// written: the restore's checks are not a load's.
    #[test]
    fn what_a_moved_clock_leaves_restores_and_a_stray_revoke_reason_does_not() {
        let partner = partner();
        let earlier = NOW - time::Duration::minutes(1);
        let opened = partner.create_link(new_link("u1"), NOW).expect("link");
        partner.open_link(&opened.link_id, earlier).expect("open");
        let revoked = partner.create_link(new_link("u2"), NOW).expect("link");
        partner
            .revoke_link(&revoked.link_id, Some("moved".into()), earlier)
            .expect("revoke");
        partner.create_link(new_link("u3"), NOW).expect("link");
        let mut moved = partner.snapshot();
        let mut overlapping = moved
            .links
            .iter()
            .find(|link| link.reference_id == "u3")
            .cloned()
            .expect("u3's link");
        // Another link id of the same partner: its last hex digit changed.
        let last = if overlapping.link_id.ends_with('0') {
            "1"
        } else {
            "0"
        };
        overlapping.link_id.pop();
        overlapping.link_id.push_str(last);
        overlapping.token = "6f1c2a3b-0000-4000-8000-000000000000".into();
        moved.links.push(overlapping);
        partner.reset();
        partner.restore(moved.clone()).expect("made by API calls");
        assert_eq!(partner.snapshot(), moved);

        let mut stray = moved.clone();
        let index = stray
            .links
            .iter()
            .position(|link| link.link_id == opened.link_id)
            .expect("the opened link");
        stray.links[index].revoke_reason = Some("never revoked".into());
        let refused = partner.restore(stray.clone()).expect_err("a stray reason");
        assert!(refused.to_string().contains(&opened.link_id), "{refused}");
        assert_eq!(partner.snapshot(), moved, "nothing changed");

        let loaded = super::super::tests_support::partner();
        let mut load = loaded.load();
        for (position, user) in stray.users.iter().enumerate() {
            load.user(position as u64, user.into()).expect("user row");
        }
        let mut links = loaded.load_links();
        for (position, link) in stray.links.iter().enumerate() {
            links.link(position as u64, link.into()).expect("link row");
        }
        load.finish(links, stray.data_requests.clone(), stray.operations.clone())
            .expect("a state file loads as it was written");
        assert_eq!(loaded.snapshot(), stray);
    }

    #[test]
    fn tenant_of_names_the_open_mode_slug_without_creating_a_partner() {
        let settings = crate::config::Settings::resolve(
            crate::config::Options::default(),
            ([127, 0, 0, 1], 1).into(),
        );
        let partners = Partners::new(&settings);
        assert_eq!(
            partners.tenant_of(KEY).as_deref(),
            Some(&*super::super::open_mode_slug(KEY))
        );
        assert!(partners.all().is_empty());
        assert_eq!(partners.tenant_of("m2m_live_x"), None);
    }
}
