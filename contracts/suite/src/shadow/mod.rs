//! Shadow comparison: one request answered twice — by the vendor's deployment (the upstream)
//! and by linkbox's own sandbox — and the differences between the two answers that the
//! contract says matter.
//!
//! `linkbox serve --shadow-m2m URL` / `--shadow-leaf URL` forwards a partner's own traffic
//! upstream, applies the same request to a shadow tenant, and hands both answers to
//! [`compare`]. The comparison knows the contract: which fields are generated (ids, tokens,
//! URLs, timestamps) and are compared by format and relation, never by value; which are
//! enums, echoes of the request or documented constants and are compared by equality; and
//! which headers are documented. Each [`Difference`] names its [`Rule`] and, where the
//! contract has one, the fact of `docs/contract/` it contradicts, so the report can say
//! whether the vendor drifted from its docs (`[doc]`) or linkbox guessed wrong (`[design]`).
//!
//! [`pairs`] reads the ids two answers to the same request minted, so that later requests
//! naming the upstream's ids can be rewritten to the shadow's.
//!
//! # What "same" means
//! - Status first: when the statuses differ, that is the one difference of the exchange
//!   (the bodies of a 201 and a 400 are not comparable).
//! - Media type: `Content-Type` without its parameters, case-insensitive.
//! - JSON bodies: the keys at every level, the JSON type of each value, then values by kind
//!   (`formats::Kind`): ids and tokens by their documented pattern (`linkbox_contracts`'
//!   `*_PATTERN`s, UUIDs, base64url, JWT), or where the contract has none by *shape* — same
//!   length, and every character that is not a letter or digit at the same place;
//!   timestamps parsed as RFC 3339 by `time`, with the same number of fraction digits and the
//!   same zone form (`Z` is not `+00:00`); URLs parsed by `url`, with the same scheme (`http` and `https` alike: a shadowing
//!   linkbox serves its pages over http) and the
//!   object's own id in their path; everything else by equality, where a string that is an
//!   upstream id equals its shadow id, and a string embedding ids (a Leaf problem's `path`, a
//!   `Location`) is compared with every known upstream id replaced, host-independent.
//! - Relations, per side: `expiresAt - createdAt` equal on both sides within one second;
//!   `openedAt`, `revokedAt`, `lastAccessedAt`, ... not before `createdAt`. A Leaf create
//!   answer has no `createdAt`: its `Date` header stands in (within two seconds).
//! - Lists: items paired by mapped id (items one side alone holds are ignored), pointed at as
//!   `/data/items/*/...` (M2M) or `/*/...` (Leaf) so that one drift is one difference
//!   whatever the item; echoed `page`/`limit` by equality; totals never by value, only each
//!   side's own arithmetic (`totalPages`, items per page, `X-Total-Count`, `Link` rels).
//! - Headers: `Location`, `Link`, `X-Total-Count`, `Retry-After`, `Allow`, and on Leaf
//!   answers `WWW-Authenticate` — present on one side only, malformed on one side only, or
//!   (`Allow`, `Link` rels outside lists, and `WWW-Authenticate`'s schemes) different; every
//!   other header is ignored.
//! - `HEAD`: its GET without the body (RFC 9110 §9.3.2) — status, media type and the
//!   documented headers by the GET's rules and facts (a Leaf page's `Link` against its own
//!   `X-Total-Count`), no body on either side, and no ids learnt.
//!
//! One exchange reports a (rule, pointer) once. Each difference looks up its fact in
//! `table`, whose ids are checked at compile time.

mod formats;
mod routes;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::Api;
use formats::Kind;
use routes::Family;

/// One answer: status, headers (names lowercase) and body bytes as received.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// One request as the client sent it (upstream ids, not rewritten), and both answers.
pub struct Exchange<'a> {
    pub api: Api,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: Option<&'a Value>,
    pub upstream: Answer<'a>,
    pub linkbox: Answer<'a>,
    /// The shadow's id for an id the upstream minted, when one is known: list answers are
    /// compared on the items both sides know.
    pub shadow_id: &'a dyn Fn(&str) -> Option<String>,
}

/// What a difference breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The status codes differ.
    Status,
    /// The media types (`Content-Type` without parameters) differ.
    MediaType,
    /// A field the upstream sent is missing from linkbox's answer.
    MissingField,
    /// linkbox's answer has a field the upstream did not send.
    UnexpectedField,
    /// A value has a different JSON type.
    Type,
    /// An enum, echoed value or documented constant differs.
    Value,
    /// A generated value (id, token, URL, timestamp) has a different format.
    Format,
    /// A relation between generated values (`expiresAt - createdAt`, ...) differs.
    Relation,
    /// A documented header differs or is missing.
    Header,
    /// A list's paging arithmetic differs.
    Paging,
}

impl Rule {
    /// The rule's name in reports: `status`, `media-type`, `missing-field`, ...
    pub fn name(self) -> &'static str {
        match self {
            Rule::Status => "status",
            Rule::MediaType => "media-type",
            Rule::MissingField => "missing-field",
            Rule::UnexpectedField => "unexpected-field",
            Rule::Type => "type",
            Rule::Value => "value",
            Rule::Format => "format",
            Rule::Relation => "relation",
            Rule::Header => "header",
            Rule::Paging => "paging",
        }
    }
}

/// One difference between the two answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub rule: Rule,
    /// A JSON pointer into the body (`/data/expiresAt`), or `header:<name>`, or empty for the
    /// status and media type.
    pub pointer: String,
    /// What the upstream answered there (`null` when absent).
    pub upstream: Value,
    /// What linkbox answered there (`null` when absent).
    pub linkbox: Value,
    /// The fact of `docs/contract/` this contradicts, when the contract has one.
    pub fact: Option<&'static str>,
    /// `[doc]` or `[design]`: the fact's source (`[design]` when no fact is known).
    pub doc: bool,
}

/// The endpoint a request is for, as a template: `POST /partner/links/{linkId}/revoke`. A path
/// no route serves keeps its segments, but those that look generated become `{id}`.
pub fn endpoint(api: Api, method: &str, path: &str) -> String {
    routes::resolve(api, method, path).0
}

/// Whether a request to `path` creates something new (a link, a user): what it adds is held
/// only by the side that made it when the other refused it.
pub fn creates(api: Api, method: &str, path: &str) -> bool {
    matches!(
        routes::resolve(api, method, path).1,
        routes::Family::M2mCreate | routes::Family::LeafLinkCreate | routes::Family::LeafUserCreate
    )
}

/// The fact of `docs/contract/` a status that differs at `endpoint` (`POST /partner/links`)
/// contradicts, if the contract has one: what the suite's report blames for one answer many
/// cases met. `answer` is the body that came with the status `got`, `request` the one sent:
/// they tell which situation the case was (no key or a bad one, for a 401).
pub(crate) fn status_fact(
    api: Api,
    endpoint: &str,
    expected: u16,
    got: u16,
    answer: Option<&Value>,
    request: Option<&Value>,
) -> Option<&'static str> {
    table::fact(&table::Query {
        api,
        endpoint,
        rule: Rule::Status,
        pointer: "",
        statuses: (got, expected),
        upstream: &Value::Null,
        linkbox: &Value::Null,
        bodies: (answer, None),
        request,
    })
}

/// Every difference the contract cares about between the two answers to one request.
/// The most differences one exchange yields: an answer of a hundred thousand fields the
/// other lacks is that many, of which a report keeps a few hundred; past this many the rest
/// are passed over (the caller can tell from the count), so one answer costs a comparison
/// its walk and no more.
pub const MAX_FOUND: usize = 500;

pub fn compare(exchange: &Exchange<'_>) -> Vec<Difference> {
    let head = is_head(exchange.method);
    // A HEAD is its GET without the body (RFC 9110 §9.3.2): the GET's rules and facts hold
    // for what it has, the status and headers.
    let method = if head { "GET" } else { exchange.method };
    let (endpoint, family) = routes::resolve(exchange.api, method, exchange.path);
    let (upstream, linkbox) = (&exchange.upstream, &exchange.linkbox);
    // Neither side of a HEAD has a body to compare: the vendor's HEAD answer has none, and
    // linkbox's would be dropped on the way out.
    let (up_body, lb_body) = match head {
        true => (None, None),
        false => (json(upstream.body), json(linkbox.body)),
    };
    let mut run = Run {
        exchange,
        endpoint,
        family,
        bodies: (up_body.as_ref(), lb_body.as_ref()),
        local: Vec::new(),
        out: Vec::new(),
        seen: std::collections::HashSet::new(),
    };
    if upstream.status != linkbox.status {
        run.push(
            Rule::Status,
            "",
            upstream.status.into(),
            linkbox.status.into(),
        );
        return run.out;
    }
    let (up_type, lb_type) = (
        media_type(header(upstream, "content-type")),
        media_type(header(linkbox, "content-type")),
    );
    if up_type != lb_type {
        run.push(
            Rule::MediaType,
            "",
            text_or_null(up_type.as_deref()),
            text_or_null(lb_type.as_deref()),
        );
    }
    if head {
        run.headers();
        if family.is_list() && exchange.api == Api::Leaf {
            run.leaf_paging(None);
        }
        return run.out;
    }
    if let (Some(up), Some(lb)) = (&up_body, &lb_body)
        && is_success(upstream.status)
        && !family.is_list()
    {
        collect_pairs(exchange.api, family, "", false, up, lb, &mut run.local);
    }
    run.headers();
    match (&up_body, &lb_body) {
        (Some(up), Some(lb)) => {
            if family.is_list() && up.is_array() && lb.is_array() {
                run.leaf_list(up, lb);
            } else {
                let mut pointer = String::new();
                run.value(&mut pointer, "", false, up, lb);
            }
        }
        (None, None) => {}
        // A body that is not JSON under another media type: the media type said it.
        _ if up_type != lb_type => {}
        _ => {
            let as_value = |answer: &Answer<'_>, body: &Option<Value>| {
                body.clone().unwrap_or_else(|| raw_text(answer.body))
            };
            run.push(
                Rule::Type,
                "",
                as_value(upstream, &up_body),
                as_value(linkbox, &lb_body),
            );
        }
    }
    run.out
}

/// The generated ids (and tokens) both answers to one request minted at the same place,
/// as `(upstream, linkbox)`: a created link's `linkId` and `token`, a Leaf `id_token`, a magic
/// link's `id` and `leafUserId`... Only for 2xx JSON answers of endpoints that are not lists;
/// arrays inside one answer are paired by index.
pub fn pairs(exchange: &Exchange<'_>) -> Vec<(String, String)> {
    let (_, family) = routes::resolve(exchange.api, exchange.method, exchange.path);
    if is_head(exchange.method)
        || family.is_list()
        || !is_success(exchange.upstream.status)
        || !is_success(exchange.linkbox.status)
    {
        return Vec::new();
    }
    let (Some(upstream), Some(linkbox)) =
        (json(exchange.upstream.body), json(exchange.linkbox.body))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_pairs(
        exchange.api,
        family,
        "",
        false,
        &upstream,
        &linkbox,
        &mut out,
    );
    out
}

fn collect_pairs(
    api: Api,
    family: Family,
    key: &str,
    in_credentials: bool,
    upstream: &Value,
    linkbox: &Value,
    out: &mut Vec<(String, String)>,
) {
    match (upstream, linkbox) {
        (Value::Object(up), Value::Object(lb)) => {
            for (name, up_value) in up {
                if let Some(lb_value) = lb.get(name) {
                    let credentials = in_credentials || name.ends_with("Credentials");
                    collect_pairs(api, family, name, credentials, up_value, lb_value, out);
                }
            }
        }
        (Value::Array(up), Value::Array(lb)) => {
            for (up_value, lb_value) in up.iter().zip(lb) {
                collect_pairs(api, family, key, in_credentials, up_value, lb_value, out);
            }
        }
        (Value::String(up), Value::String(lb)) => {
            if let Kind::Id(format) = formats::kind(api, family, key, in_credentials)
                && format.is_mapped()
                && !out.iter().any(|(known, _)| known == up)
            {
                out.push((up.clone(), lb.clone()));
            }
        }
        _ => {}
    }
}

/// One comparison under way.
struct Run<'e> {
    exchange: &'e Exchange<'e>,
    endpoint: String,
    family: Family,
    /// The two answers' JSON bodies, upstream and linkbox's: an error's situation is read off
    /// them.
    bodies: (Option<&'e Value>, Option<&'e Value>),
    /// Ids minted by this very exchange, before the server has learnt them.
    local: Vec<(String, String)>,
    out: Vec<Difference>,
    /// Each (rule, pointer) in `out`: an answer of a hundred thousand fields linkbox lacks
    /// is that many differences, and a scan of `out` for each made the comparison
    /// quadratic (400,000 fields: 396 s of a serving thread).
    seen: std::collections::HashSet<(Rule, String)>,
}

/// Keys whose value is checked against `createdAt` of the same object: never before it.
const NOT_BEFORE_CREATED: [&str; 5] = [
    "openedAt",
    "revokedAt",
    "lastAccessedAt",
    "fulfilledAt",
    "updatedAt",
];

/// What separates the ids a string embeds (paths, queries, header lists).
const DELIMITERS: [char; 7] = ['/', '?', '&', '=', '#', ',', ' '];

impl Run<'_> {
    /// [`Run::push`] for field `key` of the object at `pointer` (left as it was).
    fn push_field(
        &mut self,
        rule: Rule,
        pointer: &mut String,
        key: &str,
        upstream: Value,
        linkbox: Value,
    ) {
        let len = pointer.len();
        push_key(pointer, key);
        self.push(rule, pointer, upstream, linkbox);
        pointer.truncate(len);
    }

    fn push(&mut self, rule: Rule, pointer: &str, upstream: Value, linkbox: Value) {
        // One drift shared by several list items is one difference.
        if self.out.len() >= MAX_FOUND || !self.seen.insert((rule, pointer.to_owned())) {
            return;
        }
        let fact = table::fact(&table::Query {
            api: self.exchange.api,
            endpoint: &self.endpoint,
            rule,
            pointer,
            statuses: (self.exchange.upstream.status, self.exchange.linkbox.status),
            upstream: &upstream,
            linkbox: &linkbox,
            bodies: self.bodies,
            request: self.exchange.body,
        });
        self.out.push(Difference {
            rule,
            pointer: pointer.to_owned(),
            upstream,
            linkbox,
            fact,
            doc: fact.is_some_and(table::is_doc),
        });
    }

    /// The shadow's id for an upstream id, from this exchange or from what the server knows.
    fn shadow(&self, id: &str) -> Option<String> {
        self.local
            .iter()
            .find(|(up, _)| up == id)
            .map(|(_, lb)| lb.clone())
            .or_else(|| (self.exchange.shadow_id)(id))
    }

    /// `text` with every token that is a known upstream id replaced by its shadow id.
    fn replace_ids(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut start = 0;
        for (at, c) in text.char_indices() {
            if DELIMITERS.contains(&c) {
                self.push_token(&text[start..at], &mut out);
                out.push(c);
                start = at + c.len_utf8();
            }
        }
        self.push_token(&text[start..], &mut out);
        out
    }

    fn push_token(&self, token: &str, out: &mut String) {
        match (!token.is_empty()).then(|| self.shadow(token)).flatten() {
            Some(shadow) => out.push_str(&shadow),
            None => out.push_str(token),
        }
    }

    /// Equal, or equal once the upstream's ids are the shadow's.
    fn same_text(&self, upstream: &str, linkbox: &str) -> bool {
        upstream == linkbox
            || self.shadow(upstream).as_deref() == Some(linkbox)
            || upstream.contains(DELIMITERS) && self.replace_ids(upstream) == linkbox
    }

    fn value(
        &mut self,
        pointer: &mut String,
        key: &str,
        in_credentials: bool,
        upstream: &Value,
        linkbox: &Value,
    ) {
        match (upstream, linkbox) {
            (Value::Object(up), Value::Object(lb)) => {
                self.object(pointer, in_credentials, up, lb);
            }
            (Value::Array(up), Value::Array(lb)) => {
                if up.len() != lb.len() {
                    self.push(Rule::Value, pointer, upstream.clone(), linkbox.clone());
                    return;
                }
                for (index, (up_item, lb_item)) in up.iter().zip(lb).enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&index.to_string());
                    self.value(pointer, key, in_credentials, up_item, lb_item);
                    pointer.truncate(len);
                }
            }
            _ if json_type(upstream) != json_type(linkbox) => {
                self.push(Rule::Type, pointer, upstream.clone(), linkbox.clone());
            }
            (Value::String(up), Value::String(lb)) => {
                let kind = formats::kind(self.exchange.api, self.family, key, in_credentials);
                let same = match kind {
                    Kind::Id(format) => formats::same_id_format(format, up, lb),
                    Kind::Time => formats::same_time_form(up, lb),
                    Kind::Url => formats::same_url_form(up, lb),
                    Kind::Embeds | Kind::Plain => self.same_text(up, lb),
                };
                if !same {
                    let rule = match kind {
                        Kind::Id(_) | Kind::Time | Kind::Url => Rule::Format,
                        Kind::Embeds | Kind::Plain => Rule::Value,
                    };
                    self.push(rule, pointer, upstream.clone(), linkbox.clone());
                }
            }
            _ => {
                if upstream != linkbox {
                    self.push(Rule::Value, pointer, upstream.clone(), linkbox.clone());
                }
            }
        }
    }

    fn object(
        &mut self,
        pointer: &mut String,
        in_credentials: bool,
        upstream: &Map<String, Value>,
        linkbox: &Map<String, Value>,
    ) {
        let len = pointer.len();
        for (key, up_value) in upstream {
            push_key(pointer, key);
            match linkbox.get(key) {
                None => self.push(Rule::MissingField, pointer, up_value.clone(), Value::Null),
                Some(lb_value) => {
                    let credentials = in_credentials || key.ends_with("Credentials");
                    self.field(pointer, key, credentials, up_value, lb_value);
                }
            }
            pointer.truncate(len);
        }
        for (key, lb_value) in linkbox {
            if !upstream.contains_key(key) {
                self.push_field(
                    Rule::UnexpectedField,
                    pointer,
                    key,
                    Value::Null,
                    lb_value.clone(),
                );
            }
        }
        self.relations(pointer, upstream, linkbox);
        if self.family == Family::M2mList && pointer == "/data" {
            self.m2m_paging(upstream, linkbox);
        }
    }

    /// One field both sides have; lists and totals have their own rules.
    fn field(
        &mut self,
        pointer: &mut String,
        key: &str,
        in_credentials: bool,
        upstream: &Value,
        linkbox: &Value,
    ) {
        if self.family == Family::M2mList {
            match (pointer.as_str(), upstream, linkbox) {
                ("/data/items", Value::Array(up), Value::Array(lb)) => {
                    self.items(pointer, "linkId", up, lb);
                    return;
                }
                ("/data/pagination/total" | "/data/pagination/totalPages", _, _) => {
                    if json_type(upstream) != json_type(linkbox) {
                        self.push(Rule::Type, pointer, upstream.clone(), linkbox.clone());
                    }
                    return;
                }
                _ => {}
            }
        }
        self.value(pointer, key, in_credentials, upstream, linkbox);
    }

    /// The items both sides know, item against item at `{pointer}/*`.
    fn items(&mut self, pointer: &mut String, id_key: &str, upstream: &[Value], linkbox: &[Value]) {
        let by_id: HashMap<&str, &Value> = linkbox
            .iter()
            .filter_map(|item| Some((item.get(id_key)?.as_str()?, item)))
            .collect();
        let len = pointer.len();
        pointer.push_str("/*");
        for up_item in upstream {
            let Some(up_id) = up_item.get(id_key).and_then(Value::as_str) else {
                continue;
            };
            let Some(lb_item) = self
                .shadow(up_id)
                .and_then(|id| by_id.get(id.as_str()).copied())
            else {
                continue;
            };
            self.value(pointer, "", false, up_item, lb_item);
        }
        pointer.truncate(len);
    }

    /// Relations between the timestamps of one object, and its URL naming its own id.
    fn relations(
        &mut self,
        pointer: &mut String,
        upstream: &Map<String, Value>,
        linkbox: &Map<String, Value>,
    ) {
        let (lifetimes, tolerance) = match (lifetime(upstream), lifetime(linkbox)) {
            (Some(up), Some(lb)) => (Some((up, lb)), time::Duration::SECOND),
            // A Leaf create answer has no `createdAt`: its `Date` header stands in, whole
            // seconds only, hence one more second of tolerance.
            _ if pointer.is_empty() && self.family == Family::LeafLinkCreate => (
                date_lifetime(&self.exchange.upstream, upstream)
                    .zip(date_lifetime(&self.exchange.linkbox, linkbox)),
                time::Duration::seconds(2),
            ),
            _ => (None, time::Duration::SECOND),
        };
        if let Some((up, lb)) = lifetimes
            && (up - lb).abs() > tolerance
        {
            self.push_field(
                Rule::Relation,
                pointer,
                "expiresAt",
                up.whole_seconds().into(),
                lb.whole_seconds().into(),
            );
        }
        for key in NOT_BEFORE_CREATED {
            if not_before_created(upstream, key) != not_before_created(linkbox, key) {
                self.push_field(
                    Rule::Relation,
                    pointer,
                    key,
                    upstream.get(key).cloned().unwrap_or(Value::Null),
                    linkbox.get(key).cloned().unwrap_or(Value::Null),
                );
            }
        }
        let (url_key, id_key) = match self.exchange.api {
            Api::M2m => ("url", "linkId"),
            _ => ("link", "id"),
        };
        if let (Some(up), Some(lb)) = (
            names_own_id(upstream, url_key, id_key),
            names_own_id(linkbox, url_key, id_key),
        ) && up != lb
        {
            self.push_field(
                Rule::Format,
                pointer,
                url_key,
                upstream.get(url_key).cloned().unwrap_or(Value::Null),
                linkbox.get(url_key).cloned().unwrap_or(Value::Null),
            );
        }
    }

    /// `totalPages == ceil(total / limit)` and at most `limit` items, on each side.
    fn m2m_paging(&mut self, upstream: &Map<String, Value>, linkbox: &Map<String, Value>) {
        let consistent = |data: &Map<String, Value>| {
            let pagination = data.get("pagination");
            let number = |name: &str| pagination.and_then(|p| p.get(name)).and_then(Value::as_u64);
            let items = data
                .get("items")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            match (number("limit"), number("total"), number("totalPages")) {
                (Some(limit), Some(total), Some(pages)) if limit > 0 => {
                    pages == total.div_ceil(limit) && items as u64 <= limit
                }
                _ => true,
            }
        };
        if consistent(upstream) != consistent(linkbox) {
            let pagination =
                |data: &Map<String, Value>| data.get("pagination").cloned().unwrap_or(Value::Null);
            self.push(
                Rule::Paging,
                "/data/pagination",
                pagination(upstream),
                pagination(linkbox),
            );
        }
    }

    /// A Leaf list: a bare array, its items paired by id, and each side's paging headers
    /// consistent with its own items.
    fn leaf_list(&mut self, upstream: &Value, linkbox: &Value) {
        let (Some(up), Some(lb)) = (upstream.as_array(), linkbox.as_array()) else {
            return;
        };
        let mut pointer = String::new();
        self.items(&mut pointer, "id", up, lb);
        self.leaf_paging(Some((up.len() as u64, lb.len() as u64)));
    }

    /// Each side's Leaf paging headers consistent with the query and with its own items
    /// (`items`: how many each side answered; `None` for a HEAD, which has no items to
    /// count, so only `Link` against `X-Total-Count` is checked).
    fn leaf_paging(&mut self, items: Option<(u64, u64)>) {
        let query: HashMap<String, String> =
            url::form_urlencoded::parse(self.exchange.query.as_bytes())
                .into_owned()
                .collect();
        if !query.contains_key("page") && !query.contains_key("size") {
            return;
        }
        let page = query
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0);
        let size = query
            .get("size")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::from(linkbox_contracts::leaf::DEFAULT_PAGE_SIZE));
        let sides = [
            (&self.exchange.upstream, items.map(|(up, _)| up)),
            (&self.exchange.linkbox, items.map(|(_, lb)| lb)),
        ];
        let [up_check, lb_check] = sides.map(|(answer, items)| {
            let total = header(answer, linkbox_contracts::leaf::TOTAL_COUNT_HEADER)
                .and_then(|t| t.trim().parse::<u64>().ok());
            let count_ok = total.zip(items).is_none_or(|(total, items)| total >= items);
            let size_ok = items.is_none_or(|items| items <= size);
            let link_ok = match (total, header(answer, "link").and_then(link_rels)) {
                (Some(total), Some(rels)) => rels == expected_rels(page, size, total),
                _ => true,
            };
            (count_ok, size_ok, link_ok)
        });
        let header_value = |answer: &Answer<'_>, name: &str| text_or_null(header(answer, name));
        if up_check.0 != lb_check.0 {
            self.push(
                Rule::Paging,
                "header:x-total-count",
                header_value(&self.exchange.upstream, "x-total-count"),
                header_value(&self.exchange.linkbox, "x-total-count"),
            );
        }
        if up_check.1 != lb_check.1
            && let Some((up, lb)) = items
        {
            self.push(Rule::Paging, "", up.into(), lb.into());
        }
        if up_check.2 != lb_check.2 {
            self.push(
                Rule::Paging,
                "header:link",
                header_value(&self.exchange.upstream, "link"),
                header_value(&self.exchange.linkbox, "link"),
            );
        }
    }

    /// The documented headers.
    fn headers(&mut self) {
        let (up, lb) = (&self.exchange.upstream, &self.exchange.linkbox);
        for &name in documented_headers(self.exchange.api) {
            let (up_value, lb_value) = (header(up, name), header(lb, name));
            let differs = match (up_value, lb_value) {
                (None, None) => false,
                (Some(_), None) | (None, Some(_)) => true,
                (Some(u), Some(l)) => match name {
                    "location" => !self.same_location(u, l),
                    "link" => match (link_rels(u), link_rels(l)) {
                        (Some(ur), Some(lr)) => !self.family.is_list() && ur != lr,
                        (ur, lr) => ur.is_some() != lr.is_some(),
                    },
                    "x-total-count" | "retry-after" => {
                        u.trim().parse::<u64>().is_ok() != l.trim().parse::<u64>().is_ok()
                    }
                    // The fact is the scheme (`Bearer`); a realm or an error description
                    // is each side's own words.
                    "www-authenticate" => auth_schemes(u) != auth_schemes(l),
                    _ => methods(u) != methods(l),
                },
            };
            if differs {
                let pointer = format!("header:{name}");
                self.push(
                    Rule::Header,
                    &pointer,
                    text_or_null(up_value),
                    text_or_null(lb_value),
                );
            }
        }
    }

    /// Two `Location`s name the same thing: path and query equal once the upstream's ids are
    /// the shadow's, whatever the host.
    fn same_location(&self, upstream: &str, linkbox: &str) -> bool {
        let local = |text: &str| {
            let base = url::Url::parse("http://shadow.invalid/").ok()?;
            let url = base.join(text).ok()?;
            Some(url[url::Position::BeforePath..].to_owned())
        };
        match (local(upstream), local(linkbox)) {
            (Some(up), Some(lb)) => self.same_text(&up, &lb),
            (up, lb) => up.is_none() && lb.is_none(),
        }
    }
}

/// The headers the contract documents: `WWW-Authenticate` on a 401 is a Leaf fact
/// (LEAF-AUTH-WWW-AUTHENTICATE); the M2M contract says nothing of it.
fn documented_headers(api: Api) -> &'static [&'static str] {
    match api {
        Api::Leaf => &[
            "location",
            "link",
            "x-total-count",
            "retry-after",
            "allow",
            "www-authenticate",
        ],
        _ => &["location", "link", "x-total-count", "retry-after", "allow"],
    }
}

fn push_key(pointer: &mut String, key: &str) {
    pointer.push('/');
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn is_head(method: &str) -> bool {
    method.eq_ignore_ascii_case("HEAD")
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn header<'a>(answer: &Answer<'a>, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// `Content-Type` without its parameters, lowercase.
fn media_type(value: Option<&str>) -> Option<String> {
    value.map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
}

fn text_or_null<S: AsRef<str>>(text: Option<S>) -> Value {
    text.map_or(Value::Null, |t| Value::String(t.as_ref().to_owned()))
}

fn json(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A body that is not JSON, as text for the report (at most 200 characters).
fn raw_text(body: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(body).chars().take(200).collect())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn instant(object: &Map<String, Value>, key: &str) -> Option<time::OffsetDateTime> {
    formats::timestamp(object.get(key)?.as_str()?).map(|(at, _)| at)
}

/// `expiresAt - createdAt`, when both parse.
fn lifetime(object: &Map<String, Value>) -> Option<time::Duration> {
    Some(instant(object, "expiresAt")? - instant(object, "createdAt")?)
}

/// `expiresAt` less the answer's `Date` header (RFC 7231's IMF-fixdate, an RFC 2822 date to
/// `time`).
fn date_lifetime(answer: &Answer<'_>, object: &Map<String, Value>) -> Option<time::Duration> {
    let date = time::OffsetDateTime::parse(
        header(answer, "date")?,
        &time::format_description::well_known::Rfc2822,
    )
    .ok()?;
    Some(instant(object, "expiresAt")? - date)
}

/// `key` is not before `createdAt` (true when either is absent, null or unparsable).
fn not_before_created(object: &Map<String, Value>, key: &str) -> bool {
    // `key` first: it is mostly absent or null, and then `createdAt` need not be parsed.
    let Some(at) = instant(object, key) else {
        return true;
    };
    instant(object, "createdAt").is_none_or(|created| at >= created)
}

/// Whether the object's URL has its own id among its path segments; `None` when either is
/// missing or the URL does not parse.
fn names_own_id(object: &Map<String, Value>, url_key: &str, id_key: &str) -> Option<bool> {
    let id = object.get(id_key)?.as_str()?;
    let segments = formats::url_segments(object.get(url_key)?.as_str()?);
    if segments.is_empty() {
        return None;
    }
    Some(segments.iter().any(|segment| segment == id))
}

/// The `rel`s of a `Link` header, sorted; `None` when an entry has none.
fn link_rels(value: &str) -> Option<Vec<String>> {
    let mut rels = Vec::new();
    for entry in value.split(',').filter(|e| !e.trim().is_empty()) {
        let rel = entry.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("rel")
                .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
        })?;
        rels.push(rel);
    }
    rels.sort();
    Some(rels)
}

/// The rels a Leaf page should carry: `next` and `prev` where they apply, `first` and `last`
/// always (JHipster's paging headers).
fn expected_rels(page: u64, size: u64, total: u64) -> Vec<String> {
    let last = total.div_ceil(size.max(1)).saturating_sub(1);
    let mut rels = vec!["first".to_owned(), "last".to_owned()];
    if page < last {
        rels.push("next".to_owned());
    }
    if page > 0 {
        rels.push("prev".to_owned());
    }
    rels.sort();
    rels
}

/// The auth schemes of a `WWW-Authenticate` header's challenges, lowercase and sorted
/// (RFC 9110 §11.6.1): its comma-separated elements outside quoted strings, each opening with
/// a scheme, or with a parameter (`name=value`) of the challenge before it.
fn auth_schemes(value: &str) -> Vec<String> {
    let mut elements = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                elements.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    elements.push(&value[start..]);
    let mut schemes: Vec<String> = elements
        .into_iter()
        .filter_map(|element| element.split_whitespace().next())
        .filter(|first| !first.contains('='))
        .map(str::to_ascii_lowercase)
        .collect();
    schemes.sort();
    schemes.dedup();
    schemes
}

/// The methods of an `Allow` header, uppercase and sorted.
fn methods(value: &str) -> Vec<String> {
    let mut methods: Vec<String> = value
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
    methods.sort();
    methods
}
