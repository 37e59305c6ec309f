//! Deterministic fake data for QA (`POST /_sandbox/seed`, `linkbox seed`) and the newcomer
//! demo (`linkbox serve --seed N`): realistic M2M end users and Leaf farmers (crate `fake`),
//! links in a mix of states.
//!
//! Every random choice — names, emails, CURP-like ids, dates of birth, bank accounts, farms,
//! states, amounts, ages — comes from one ChaCha8 generator seeded with `rngSeed`, so the
//! same seed gives the same *data*. Ids (`linkId`, `userId`, magic-link ids, Leaf user ids)
//! stay random: the store mints them, as it does for every other link. Times are relative
//! to the sandbox clock at seeding. Seeding sends no webhooks: it writes history, it does
//! not replay it. A seed draws all of its links first, then makes them oldest first, so a
//! list's newest-first order by creation is its order by `createdAt` too.

use std::collections::BTreeMap;
use std::sync::Arc;

use fake::Fake;
use fake::RngExt;
use fake::faker::address::en::{BuildingNumber, CityName, StateAbbr, StreetName};
use fake::faker::internet::en::FreeEmailProvider;
use fake::faker::name::en::{FirstName as EnFirstName, LastName as EnLastName};
use fake::faker::name::pt_br::{FirstName, LastName};
use fake::faker::phone_number::en::CellNumber;
use fake::rand::SeedableRng;
use linkbox_contracts::leaf::{AllowedProvider, LinkSettings, Provider};
use linkbox_contracts::m2m::{DEFAULT_FLOW, Language, OperationAmount};
use linkbox_contracts::sandbox::{SeedRequest, SeedResult};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::app::App;
use crate::store::leaf::{Account, LeafError, LinkKind, LinkOwner, NewMagicLink, UserFields};
use crate::store::m2m::{LinkError, NewLink, NewOperation, Partner};
use crate::store::quota::StorageFull;

/// Most links one request seeds.
pub const MAX_COUNT: u32 = SeedRequest::MAX_COUNT;
/// Most links per API `linkbox serve --seed N` starts with: what the default tenant budget
/// holds with room to spare ([`SEEDED_LINK_MOST`] each).
pub const MAX_DEMO_COUNT: u32 = 100_000;

/// A seed for a request that names none: below 2^53, so that a client in JavaScript (whose
/// numbers are doubles) reads the echoed `rngSeed` exactly and can seed the same data again.
pub fn random_seed() -> u64 {
    rand::random::<u64>() >> 11
}

/// Why a seed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error(
        "The count field must be between {} and {}",
        SeedRequest::COUNT.min,
        SeedRequest::COUNT.max
    )]
    Count,
    #[error("The mix field has an unknown state {0:?}; known: {1}")]
    UnknownState(String, &'static str),
    #[error("The mix field must give at least one state a weight above 0")]
    EmptyMix,
    #[error("The mix field's weights must add up to at most {}", u32::MAX)]
    MixTooHeavy,
    /// The tenant has no room for `count` more seeded links (`--max-tenant-mib`).
    #[error(transparent)]
    StorageFull(#[from] StorageFull),
    /// The store refused one of the seed's links part way: the links before it stay.
    #[error(
        "The seed stopped part way: a link could not be made ({0}); the links made before it stay"
    )]
    Refused(String),
}

/// The most one seeded link, with its user, is counted as ([`crate::store::quota`]): a
/// bound above what the generator makes (about 610 bytes for M2M, 590 for Leaf), so a
/// seed the tenant's budget admits up front does not stop half way.
pub const SEEDED_LINK_MOST: u64 = 2048;

const M2M_STATES: [&str; 6] = [
    "created",
    "opened",
    "completed",
    "cancelled",
    "revoked",
    "expired",
];
const M2M_WEIGHTS: [u32; 6] = [3, 3, 2, 1, 1, 2];
const LEAF_STATES: [&str; 5] = [
    "provider",
    "authentication",
    "fileUpload",
    "usedUp",
    "expired",
];
const LEAF_WEIGHTS: [u32; 5] = [4, 3, 2, 1, 1];

/// Weights per state, in the order of `states`.
fn weights(
    states: &'static [&'static str],
    defaults: &[u32],
    mix: Option<&BTreeMap<String, u32>>,
) -> Result<Vec<u32>, SeedError> {
    let Some(mix) = mix else {
        return Ok(defaults.to_vec());
    };
    let known = if states.len() == M2M_STATES.len() {
        "created, opened, completed, cancelled, revoked, expired"
    } else {
        "provider, authentication, fileUpload, usedUp, expired"
    };
    if let Some(unknown) = mix.keys().find(|key| !states.contains(&key.as_str())) {
        return Err(SeedError::UnknownState(unknown.clone(), known));
    }
    let weights: Vec<u32> = states
        .iter()
        .map(|state| mix.get(*state).copied().unwrap_or(0))
        .collect();
    if weights.iter().all(|weight| *weight == 0) {
        return Err(SeedError::EmptyMix);
    }
    // `pick` draws from `0..sum` in `u32`, so the draw for a given seed stays what it was;
    // weights are relative, and no mix needs a sum past that.
    if weights
        .iter()
        .try_fold(0u32, |sum, weight| sum.checked_add(*weight))
        .is_none()
    {
        return Err(SeedError::MixTooHeavy);
    }
    Ok(weights)
}

fn pick(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.random_range(0..total);
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

/// Checks a seed request's count and mix for `api` (`m2m` or `leaf`; any other is left to
/// the caller to refuse), before anything is made for it.
pub fn check(api: &str, count: u32, mix: Option<&BTreeMap<String, u32>>) -> Result<(), SeedError> {
    check_count(count)?;
    match api {
        "m2m" => weights(&M2M_STATES, &M2M_WEIGHTS, mix).map(drop),
        "leaf" => weights(&LEAF_STATES, &LEAF_WEIGHTS, mix).map(drop),
        _ => Ok(()),
    }
}

fn check_count(count: u32) -> Result<(), SeedError> {
    if SeedRequest::COUNT.contains(count.into()) {
        Ok(())
    } else {
        Err(SeedError::Count)
    }
}

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn letters(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect()
}

/// The first ASCII letter of `name`, upper case (`X` when there is none).
fn initial(name: &str) -> char {
    name.chars()
        .find(char::is_ascii_alphabetic)
        .map_or('X', |c| c.to_ascii_uppercase())
}

/// Seeds `count` M2M links for `partner`.
pub fn seed_m2m(
    app: &App,
    partner: &Arc<Partner>,
    count: u32,
    rng_seed: u64,
    mix: Option<&BTreeMap<String, u32>>,
) -> Result<SeedResult, SeedError> {
    check_count(count)?;
    seed_m2m_all(app, partner, count, rng_seed, mix)
}

/// [`seed_m2m`] of any count, in one draw: `linkbox serve --seed N`.
fn seed_m2m_all(
    app: &App,
    partner: &Arc<Partner>,
    count: u32,
    rng_seed: u64,
    mix: Option<&BTreeMap<String, u32>>,
) -> Result<SeedResult, SeedError> {
    let weights = weights(&M2M_STATES, &M2M_WEIGHTS, mix)?;
    partner.allows(u64::from(count) * SEEDED_LINK_MOST)?;
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let now = app.clock.now();
    let mut result = SeedResult {
        api: "m2m".into(),
        rng_seed,
        created: Vec::new(),
        states: Vec::new(),
    };
    // Every draw first, in the order a seed has always drawn them, then the links made
    // oldest first: a list is newest first by creation, and so by `createdAt` too.
    let mut plans: Vec<M2mPlan> = (0..count)
        .map(|_| m2m_plan(&mut rng, &weights, now))
        .collect();
    plans.sort_by_key(|plan| plan.created_at);
    for plan in plans {
        let M2mPlan {
            state,
            mut link,
            expires_minutes,
            created_at,
            age,
            later,
        } = plan;
        link.flow = app.settings.default_flow.as_str().into();
        link.expires_in = Some(Duration::minutes(expires_minutes));
        let created = create_unique(partner, link, created_at, now)?;
        let id = created.link_id;
        let step = |minutes: i64| created_at + Duration::minutes(minutes).min(age);
        match later {
            M2mLater::Open => {
                let _ = partner.open_link(&id, step(2));
            }
            M2mLater::Operate { operation, cancel } => {
                let _ = partner.open_link(&id, step(2));
                let _ = partner.create_operation(&id, operation, step(4));
                if cancel {
                    let _ = partner.cancel_operation(&id, step(6));
                }
            }
            M2mLater::Revoke(reason) => {
                let _ = partner.revoke_link(&id, Some(reason.into()), step(3));
            }
            M2mLater::Nothing => {}
        }
        result.created.push(id);
        result.states.push(state.to_owned());
    }
    Ok(result)
}

/// One seeded M2M link, drawn before any is made.
struct M2mPlan {
    state: &'static str,
    link: NewLink,
    expires_minutes: i64,
    created_at: OffsetDateTime,
    age: Duration,
    later: M2mLater,
}

/// What happens to a seeded M2M link after its create.
enum M2mLater {
    Nothing,
    Open,
    Operate {
        operation: NewOperation,
        cancel: bool,
    },
    Revoke(&'static str),
}

/// Draws one M2M link of a seed: its state, data, age and what follows its create.
fn m2m_plan(rng: &mut ChaCha8Rng, weights: &[u32], now: OffsetDateTime) -> M2mPlan {
    let state = M2M_STATES[pick(rng, weights)];
    let link = fake_m2m_link(rng);
    let expires_minutes: i64 = [60, 240, 1440, 10080][rng.random_range(0..4usize)];
    let age = if state == "expired" {
        Duration::minutes(expires_minutes + rng.random_range(1..2880i64))
    } else {
        Duration::minutes(rng.random_range(0..expires_minutes / 2))
    };
    let later = match state {
        "opened" => M2mLater::Open,
        "completed" | "cancelled" => {
            let send = f64::from(rng.random_range(2000..200_000u32)) / 100.0;
            let fee = 2.99;
            let rate = f64::from(rng.random_range(1650..2050u32)) / 100.0;
            M2mLater::Operate {
                operation: NewOperation {
                    amount: OperationAmount {
                        send,
                        receive: ((send - fee) * rate * 100.0).round() / 100.0,
                        fee,
                        send_currency: "USD".into(),
                        receive_currency: "MXN".into(),
                    },
                },
                cancel: state == "cancelled",
            }
        }
        "revoked" => M2mLater::Revoke(
            ["customer request", "duplicate link", "fraud review"][rng.random_range(0..3usize)],
        ),
        _ => M2mLater::Nothing,
    };
    M2mPlan {
        state,
        link,
        expires_minutes,
        created_at: now - age,
        age,
        later,
    }
}

/// Creates `new` at `created_at`, its `referenceId` suffixed `-2`, `-3`, … while an active
/// link holds it (a seed of the same `rngSeed` again): the first variant free, found by the
/// partner past those an earlier seed found held, so the hundredth seed of a fixed seed
/// tries one variant a link, not a hundred. Another create may take that variant in
/// between, and each time it does one more is tried: no more than the partner's links.
///
/// A variant is held by a link active at `now`, the seed's instant, not at the new link's
/// backdated `created_at`: an earlier seed's link of the same age was still active then,
/// and every re-seed would suffix the references the docs promise it reuses.
fn create_unique(
    partner: &Partner,
    new: NewLink,
    created_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<linkbox_contracts::m2m::CreatedLink, SeedError> {
    let most = partner.link_count() + 2;
    for _ in 0..most {
        let Some(reference_id) = partner.free_reference(&new.reference_id, now) else {
            break;
        };
        let mut candidate = NewLink {
            reference_id,
            ..new.clone()
        };
        let metadata = candidate.metadata.take();
        match partner.create_link_judged(candidate, metadata.as_ref(), created_at, now) {
            Ok(created) => return Ok(created),
            Err(LinkError::ActiveLinkExists) => continue,
            Err(LinkError::StorageFull(full)) => return Err(full.into()),
            Err(error) => return Err(SeedError::Refused(error.to_string())),
        }
    }
    Err(SeedError::Refused(format!(
        "no referenceId {}-N was free (a bug)",
        new.reference_id
    )))
}

/// A Mexican end user sending money home: full or partial CIP data, a bank account or a
/// cash pick-up.
fn fake_m2m_link(rng: &mut ChaCha8Rng) -> NewLink {
    let first: String = FirstName().fake_with_rng(rng);
    let second: String = FirstName().fake_with_rng(rng);
    let last: String = LastName().fake_with_rng(rng);
    let second_last: String = LastName().fake_with_rng(rng);
    let year = rng.random_range(1955..=2005u32);
    let month = rng.random_range(1..=12u32);
    let day = rng.random_range(1..=28u32);
    let sex = if rng.random_bool(0.5) { 'H' } else { 'M' };
    let state = ["DF", "JC", "NL", "PL", "GT", "MC", "VZ", "OC"][rng.random_range(0..8usize)];
    let curp = format!(
        "{}{}{}{}{:02}{month:02}{day:02}{sex}{state}{}{}",
        initial(&last),
        'X',
        initial(&second_last),
        initial(&first),
        year % 100,
        letters(rng, 3),
        digits(rng, 2)
    );
    let payment = if rng.random_bool(0.8) {
        json!({"type": "bank_account", "bankAccount": {"country": "MX", "accountNumber": digits(rng, 18)}})
    } else {
        json!({"type": "cash", "cash": {"provider": "OXXO", "reference": digits(rng, 10)}})
    };
    let mut user = json!({
        "name": {"firstName": first, "secondName": second, "lastName": last,
                 "secondLastName": second_last},
        "idNumber": curp,
        "idType": "CURP",
        "dob": format!("{year:04}-{month:02}-{day:02}"),
        "paymentMethod": payment,
    });
    // Two in five users lack CIP fields, so opening their links asks for data.
    if rng.random_bool(0.4)
        && let Some(object) = user.as_object_mut()
    {
        object.remove("dob");
        if rng.random_bool(0.5) {
            object.remove("idNumber");
        }
    }
    let language = if rng.random_bool(0.6) {
        Language::Es
    } else {
        Language::En
    };
    let campaign = ["spring-promo", "referral", "organic"][rng.random_range(0..3usize)];
    NewLink {
        reference_id: format!("cust-{}", digits(rng, 8)),
        expires_in: None,
        user_data: Some(user),
        metadata: Some(json!({
            "orderId": format!("ORD-{}", digits(rng, 6)),
            "campaign": campaign,
        })),
        flow: DEFAULT_FLOW.into(),
        theme: rng.random_bool(0.3).then(|| "dark".to_owned()),
        language: Some(language),
        callback_url: None,
    }
}

/// Seeds `count` Leaf magic links (each with its own farmer) for `account`.
pub fn seed_leaf(
    app: &App,
    account: &Arc<Account>,
    count: u32,
    rng_seed: u64,
    mix: Option<&BTreeMap<String, u32>>,
) -> Result<SeedResult, SeedError> {
    check_count(count)?;
    seed_leaf_all(app, account, count, rng_seed, mix)
}

/// [`seed_leaf`] of any count, in one draw: `linkbox serve --seed N`.
fn seed_leaf_all(
    app: &App,
    account: &Arc<Account>,
    count: u32,
    rng_seed: u64,
    mix: Option<&BTreeMap<String, u32>>,
) -> Result<SeedResult, SeedError> {
    let weights = weights(&LEAF_STATES, &LEAF_WEIGHTS, mix)?;
    account.allows(u64::from(count) * SEEDED_LINK_MOST)?;
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let now = app.clock.now();
    let mut result = SeedResult {
        api: "leaf".into(),
        rng_seed,
        created: Vec::new(),
        states: Vec::new(),
    };
    // Every draw first, in the order a seed has always drawn them, then the links made
    // oldest first (each with its farmer): a list is newest first by `createdAt` too.
    let mut plans: Vec<LeafPlan> = (0..count)
        .map(|_| leaf_plan(&mut rng, &weights, account.max_usage, now))
        .collect();
    plans.sort_by_key(|plan| plan.created_at);
    for plan in plans {
        let LeafPlan {
            state,
            farmer,
            link,
            created_at,
            age,
            uses,
            connect,
        } = plan;
        let user = create_user_unique(account, farmer)?;
        let Ok(created) =
            account.create_magic_link(LinkOwner::Existing(user.clone()), link, created_at)
        else {
            continue;
        };
        for use_number in 0..uses {
            let at = created_at + Duration::seconds(i64::from(use_number) + 1).min(age);
            let _ = account.access_magic_link(&created.id, at);
        }
        if connect
            && let Ok(link) = account.find_magic_link(&created.id)
            && let Some(provider) = super::leaf::allowed_providers(&link).first()
        {
            let _ = account.connect_provider(&user, *provider, created_at.min(now));
        }
        result.created.push(created.id);
        result.states.push(state.to_owned());
    }
    Ok(result)
}

/// One seeded Leaf link and its farmer, drawn before any is made.
struct LeafPlan {
    state: &'static str,
    farmer: UserFields,
    link: NewMagicLink,
    created_at: OffsetDateTime,
    age: Duration,
    /// Visits of its page.
    uses: u32,
    /// Whether its farmer connects the first provider it allows (after a visit).
    connect: bool,
}

/// Draws one Leaf link of a seed: its state, farmer, kind, settings, age and visits.
fn leaf_plan(
    rng: &mut ChaCha8Rng,
    weights: &[u32],
    max_usage: u32,
    now: OffsetDateTime,
) -> LeafPlan {
    let state = LEAF_STATES[pick(rng, weights)];
    let (farmer, farm) = fake_farmer(rng);
    let kind = match state {
        "authentication" => LinkKind::Authentication(random_provider(rng)),
        "fileUpload" => LinkKind::FileUpload,
        _ => LinkKind::Provider(if rng.random_bool(0.4) {
            vec![AllowedProvider::All]
        } else {
            let mut picked: Vec<AllowedProvider> = Provider::ALL
                .into_iter()
                .filter(|_| rng.random_bool(0.4))
                .map(AllowedProvider::from)
                .collect();
            if picked.is_empty() {
                picked.push(AllowedProvider::JohnDeere);
            }
            picked
        }),
    };
    let expires_in = Duration::seconds(rng.random_range(900..=7 * 24 * 3600i64));
    let age = if state == "expired" {
        expires_in + Duration::minutes(rng.random_range(1..2880i64))
    } else {
        Duration::seconds(rng.random_range(0..=expires_in.whole_seconds() / 2))
    };
    let colors = [
        "#F5F5F5", "#E8F5E9", "#FFF8E1", "#E3F2FD", "#FBE9E7", "#2E7D32",
    ];
    let settings = LinkSettings {
        background_color: colors[rng.random_range(0..colors.len())].to_owned(),
        company_name: Some(farm),
        show_leaf_user_name: rng.random_bool(0.5),
        disconnect_enabled: rng.random_bool(0.3),
        ..LinkSettings::default()
    };
    let uses = match state {
        "usedUp" => max_usage,
        "expired" => rng.random_range(0..=max_usage),
        _ => rng.random_range(0..max_usage),
    };
    let connect = uses > 0 && rng.random_bool(0.5);
    LeafPlan {
        state,
        farmer,
        link: NewMagicLink {
            kind,
            expires_in,
            settings,
        },
        created_at: now - age,
        age,
        uses,
        connect,
    }
}

fn random_provider(rng: &mut ChaCha8Rng) -> Provider {
    Provider::ALL[rng.random_range(0..Provider::ALL.len())]
}

/// Creates the Leaf user `fields`, its `externalId` suffixed `-2`, `-3`, … while another
/// user holds it (a seed of the same `rngSeed` again): the first variant free, found as
/// [`create_unique`] finds a `referenceId`'s. Returns the user's id.
fn create_user_unique(account: &Account, fields: UserFields) -> Result<String, SeedError> {
    let Some(base) = fields.external_id.clone() else {
        return account
            .create_user(fields)
            .map(|user| user.id)
            .map_err(refused_user);
    };
    let most = account.user_count() + 2;
    for _ in 0..most {
        let Some(external_id) = account.free_external_id(&base) else {
            break;
        };
        let candidate = UserFields {
            external_id: Some(external_id),
            ..fields.clone()
        };
        match account.create_user(candidate) {
            Ok(user) => return Ok(user.id),
            Err(LeafError::ExternalIdTaken) => continue,
            Err(error) => return Err(refused_user(error)),
        }
    }
    Err(SeedError::Refused(format!(
        "no externalId {base}-N was free (a bug)"
    )))
}

/// Why a seeded user could not be made.
fn refused_user(error: LeafError) -> SeedError {
    match error {
        LeafError::StorageFull(full) => full.into(),
        error => SeedError::Refused(error.to_string()),
    }
}

/// A farmer in the US Midwest and the name of their farm.
fn fake_farmer(rng: &mut ChaCha8Rng) -> (UserFields, String) {
    let first: String = EnFirstName().fake_with_rng(rng);
    let last: String = EnLastName().fake_with_rng(rng);
    let provider: String = FreeEmailProvider().fake_with_rng(rng);
    let email = format!(
        "{}.{}@{provider}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase()
    )
    .replace(' ', "");
    let street: String = StreetName().fake_with_rng(rng);
    let number: String = BuildingNumber().fake_with_rng(rng);
    let city: String = CityName().fake_with_rng(rng);
    let state: String = StateAbbr().fake_with_rng(rng);
    let phone: String = CellNumber().fake_with_rng(rng);
    let farm_last: String = EnLastName().fake_with_rng(rng);
    let farm = format!(
        "{farm_last} {}",
        [
            "Family Farms",
            "Acres",
            "Ranch",
            "Grain Co.",
            "Orchards",
            "Dairy"
        ][rng.random_range(0..6usize)]
    );
    let fields = UserFields {
        name: format!("{first} {last}"),
        email,
        phone: Some(phone),
        address: Some(format!("{number} {street}, {city}, {state}")),
        external_id: Some(format!("farm-{}", digits(rng, 6))),
    };
    (fields, farm)
}

/// The demo tenants of `linkbox serve --seed N`.
pub struct Demo {
    pub key: String,
    pub username: String,
    pub password: String,
    pub token: String,
    pub public_url: String,
    /// Whether links were seeded: `false` when the state already held some.
    pub seeded: bool,
}

impl Demo {
    /// What `serve` prints after its `listening on` line.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.seeded {
            lines.push(String::from(
                "--seed: nothing seeded, the state file already holds links",
            ));
        }
        lines.extend([
            format!("demo M2M key: {}", self.key),
            format!(
                "demo Leaf account: username {} password {}",
                self.username, self.password
            ),
            format!("demo Leaf token: {}", self.token),
            format!(
                "dashboard: {}/_sandbox/ui (paste the key or the token)",
                self.public_url
            ),
        ]);
        lines
    }
}

/// Where the demo's webhook deliveries go: the discard port on loopback, where nothing
/// listens, so each attempt fails and the dashboard has deliveries to replay.
pub const DEMO_WEBHOOK_URL: &str = "http://127.0.0.1:9/linkbox-demo-hooks";

/// Deliveries the demo makes: `link.created` of its first links, to [`DEMO_WEBHOOK_URL`].
pub const DEMO_DELIVERIES: usize = 3;

/// Queues `link.created` for the first [`DEMO_DELIVERIES`] of `created` (link ids), to a
/// loopback URL that refuses them. Seeding through the control API sends nothing; only the
/// demo of `serve --seed` does this, so its dashboard shows failed deliveries to replay.
fn demo_deliveries(app: &App, partner: &Arc<Partner>, created: &[String]) {
    for link_id in created.iter().take(DEMO_DELIVERIES) {
        let Ok(detail) = partner.link(link_id) else {
            continue;
        };
        let link = linkbox_contracts::m2m::CreatedLink {
            link_id: detail.item.link_id.clone(),
            reference_id: detail.item.reference_id.clone(),
            status: detail.item.status,
            url: detail.item.url.clone(),
            token: detail.token.clone(),
            expires_at: detail.item.expires_at.clone(),
            created_at: detail.item.created_at.clone(),
        };
        super::events::link_created(
            app,
            partner,
            link,
            detail.metadata.clone(),
            Some(DEMO_WEBHOOK_URL.to_owned()),
            app.clock.now(),
        );
    }
}

/// The demo partner's key in open mode.
pub const DEMO_KEY: &str = "m2m_test_demo0000000000000000000000000000";
/// The demo Leaf account in open mode.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo";

/// Seeds `count` links per API for the demo partner and Leaf account: in open mode
/// [`DEMO_KEY`] and `demo`/`demo`; with a config file, the first configured partner and
/// Leaf account.
pub fn demo(app: &App, count: u32, rng_seed: u64) -> anyhow::Result<Demo> {
    let settings = &app.settings;
    let key = settings
        .partners
        .first()
        .and_then(|partner| partner.keys.first().cloned())
        .unwrap_or_else(|| DEMO_KEY.to_owned());
    let (username, password) = settings
        .leaf_accounts
        .first()
        .map(|account| (account.username.clone(), account.password.clone()))
        .unwrap_or_else(|| (DEMO_USER.to_owned(), DEMO_PASSWORD.to_owned()));
    let partner = app
        .store
        .m2m()
        .authenticate(&key)
        .map_err(|error| anyhow::anyhow!("demo partner: {error}"))?;
    let account = app
        .store
        .leaf()
        .account(&username)
        .ok_or_else(|| anyhow::anyhow!("demo Leaf account {username} is not configured"))?;
    // A state file that already holds links is not seeded again on every restart.
    let seeded = !app
        .store
        .m2m()
        .all()
        .iter()
        .any(|partner| partner.link_count() > 0);
    if seeded {
        // All `count` in one draw, past a seed request's most: made oldest first as a whole.
        let seeded = seed_m2m_all(app, &partner, count, rng_seed, None)?;
        seed_leaf_all(app, &account, count, rng_seed, None)?;
        demo_deliveries(app, &partner, &seeded.created);
    }
    let token = super::tokens::issue(app.store.leaf(), &username, true, app.clock.now())
        .map_err(|_| anyhow::anyhow!("the demo token did not sign"))?;
    Ok(Demo {
        key,
        username,
        password,
        token,
        public_url: settings.public_url.clone(),
        seeded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkbox_contracts::leaf::Widget;

    /// A sandbox in memory with the default settings.
    fn sandbox() -> App {
        App::new(crate::config::Settings::resolve(
            crate::config::Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ))
    }

    #[test]
    fn the_demo_queues_deliveries_to_a_failing_loopback_url() {
        let app = sandbox();
        demo(&app, 5, 1).expect("demo");
        let deliveries = app.webhooks.deliveries(crate::webhooks::Visible::All);
        assert_eq!(deliveries.len(), DEMO_DELIVERIES);
    }

    #[test]
    fn a_demo_past_one_request_is_seeded_whole_and_listed_newest_first() {
        let app = sandbox();
        demo(&app, 1500, 3).expect("demo");
        let partner = app.store.m2m().authenticate(DEMO_KEY).expect("partner");
        let filter = crate::store::m2m::LinkFilter::default();
        let (page, total) = partner.list_links(&filter, 1, 100, app.clock.now());
        assert_eq!(total, 1500);
        let created: Vec<String> = page
            .into_iter()
            .map(|item| item.into_view().created_at)
            .collect();
        assert!(
            created.windows(2).all(|pair| pair[0] >= pair[1]),
            "{created:?}"
        );
        let account = app.store.leaf().account(DEMO_USER).expect("account");
        let mut leaf = Vec::new();
        for widget in [Widget::Provider, Widget::Authentication, Widget::FileUpload] {
            let (links, _) = account.list_magic_links(widget, None, None);
            let times: Vec<String> = links.into_iter().map(|link| link.created_at).collect();
            assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
            leaf.extend(times);
        }
        assert_eq!(leaf.len(), 1500);
    }

    /// A QA job that seeds a shared tenant with a fixed seed, again and again, gets every
    /// link and user it asks for each time, past the 99 suffixes seeding once stopped at.
    #[test]
    fn the_same_seed_again_and_again_makes_every_link_each_time() {
        let app = sandbox();
        let partner = app
            .store
            .m2m()
            .authenticate("m2m_test_reseedreseedreseedreseedreseed00")
            .expect("partner");
        let account = app.store.leaf().account("reseeder").expect("account");
        let created = BTreeMap::from([(String::from("created"), 1)]);
        for round in 1..=120 {
            let m2m = seed_m2m(&app, &partner, 3, 5, Some(&created)).expect("seeded");
            assert_eq!(m2m.created.len(), 3, "round {round}");
            let leaf = seed_leaf(&app, &account, 2, 5, None).expect("seeded");
            assert_eq!(leaf.created.len(), 2, "round {round}");
        }
        assert_eq!(partner.link_count(), 360);
        assert_eq!(account.user_count(), 240);
    }

    /// A re-seed gives a `referenceId` whose earlier links are all expired or revoked by now
    /// to that same end user, whatever the earlier link was at the new one's backdated
    /// creation; one whose earlier link is still active takes a suffix.
    #[test]
    fn a_reseed_reuses_the_references_whose_links_are_over_now() {
        let app = sandbox();
        let partner = app
            .store
            .m2m()
            .authenticate("m2m_test_overoveroveroveroveroveroverover")
            .expect("partner");
        let references = |seeded: &SeedResult| -> Vec<String> {
            let link = |id: &String| partner.link(id).expect("seeded").item.reference_id;
            seeded.created.iter().map(link).collect()
        };
        for (state, reused) in [("expired", true), ("revoked", true), ("created", false)] {
            let mix = BTreeMap::from([(String::from(state), 1)]);
            let first = references(&seed_m2m(&app, &partner, 5, 11, Some(&mix)).expect("m2m"));
            let users = partner.snapshot().users.len();
            let again = references(&seed_m2m(&app, &partner, 5, 11, Some(&mix)).expect("m2m"));
            if reused {
                assert_eq!(again, first, "{state}");
                assert_eq!(partner.snapshot().users.len(), users, "{state}");
            } else {
                assert!(
                    again.iter().all(|reference| reference.ends_with("-2")),
                    "{state}: {again:?}"
                );
                assert_eq!(partner.snapshot().users.len(), users + 5, "{state}");
            }
        }
    }

    /// Each seed of a fixed `rngSeed` again gives every link the next suffix of its
    /// `referenceId`, and every farmer the next of its `externalId`, each found in a look-up
    /// or two: not by trying every suffix the seeds before it took.
    #[test]
    fn the_same_seed_again_takes_the_next_suffix_without_trying_the_earlier_ones() {
        let app = sandbox();
        let partner = app
            .store
            .m2m()
            .authenticate("m2m_test_suffixessuffixessuffixessuffixes")
            .expect("partner");
        let account = app.store.leaf().account("suffixer").expect("account");
        let created = BTreeMap::from([(String::from("created"), 1)]);
        let references = |seeded: &SeedResult| -> Vec<String> {
            let link = |id: &String| partner.link(id).expect("seeded").item.reference_id;
            seeded.created.iter().map(link).collect()
        };
        let bases = references(&seed_m2m(&app, &partner, 20, 9, Some(&created)).expect("m2m"));
        seed_leaf(&app, &account, 20, 9, None).expect("leaf");
        let filter = crate::store::leaf::UserFilter::default();
        let farms: Vec<String> = account
            .list_users(&filter, 0, 20)
            .0
            .into_iter()
            .filter_map(|user| user.external_id)
            .collect();
        assert_eq!(farms.len(), 20);
        for round in 2..=60 {
            let looked_up = partner.references_looked_up();
            let seeded = seed_m2m(&app, &partner, 20, 9, Some(&created)).expect("m2m");
            let suffixed: Vec<String> =
                bases.iter().map(|base| format!("{base}-{round}")).collect();
            assert_eq!(references(&seeded), suffixed, "round {round}");
            let tried = partner.references_looked_up() - looked_up;
            assert!(
                tried <= 2 * 20,
                "round {round}: {tried} look-ups for 20 links"
            );

            let looked_up = account.external_ids_looked_up();
            seed_leaf(&app, &account, 20, 9, None).expect("leaf");
            let page = u32::try_from(round - 1).expect("small");
            let (users, _) = account.list_users(&filter, page, 20);
            let external: Vec<String> = users
                .into_iter()
                .filter_map(|user| user.external_id)
                .collect();
            let suffixed: Vec<String> =
                farms.iter().map(|farm| format!("{farm}-{round}")).collect();
            assert_eq!(external, suffixed, "round {round}");
            let tried = account.external_ids_looked_up() - looked_up;
            assert!(
                tried <= 2 * 20,
                "round {round}: {tried} look-ups for 20 users"
            );
        }
    }

    #[test]
    fn a_random_seed_is_one_javascript_holds_exactly() {
        for _ in 0..1000 {
            assert!(random_seed() < 1 << 53);
        }
    }

    #[test]
    fn a_mix_whose_weights_overflow_is_refused_not_drawn_from() {
        let heavy = BTreeMap::from([
            (String::from("created"), u32::MAX),
            (String::from("opened"), 1),
        ]);
        assert_eq!(
            weights(&M2M_STATES, &M2M_WEIGHTS, Some(&heavy)),
            Err(SeedError::MixTooHeavy)
        );
        let full = BTreeMap::from([
            (String::from("created"), u32::MAX - 1),
            (String::from("opened"), 1),
        ]);
        let drawn = weights(&M2M_STATES, &M2M_WEIGHTS, Some(&full)).expect("fits");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(pick(&mut rng, &drawn) < 2);
    }

    #[test]
    fn the_same_seed_draws_the_same_people() {
        let one = fake_m2m_link(&mut ChaCha8Rng::seed_from_u64(7));
        let two = fake_m2m_link(&mut ChaCha8Rng::seed_from_u64(7));
        let other = fake_m2m_link(&mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(one.user_data, two.user_data);
        assert_eq!(one.reference_id, two.reference_id);
        assert_ne!(one.user_data, other.user_data);
        let farmer = fake_farmer(&mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(farmer, fake_farmer(&mut ChaCha8Rng::seed_from_u64(7)));
    }

    #[test]
    fn curp_like_ids_have_eighteen_characters() {
        for seed in 0..20 {
            let link = fake_m2m_link(&mut ChaCha8Rng::seed_from_u64(seed));
            if let Some(id) = link
                .user_data
                .as_ref()
                .and_then(|data| data["idNumber"].as_str())
            {
                assert_eq!(id.len(), 18, "{id}");
            }
        }
    }

    #[test]
    fn mixes_name_known_states_with_some_weight() {
        let mut mix = BTreeMap::new();
        mix.insert("revoked".to_owned(), 1);
        assert_eq!(
            weights(&M2M_STATES, &M2M_WEIGHTS, Some(&mix)),
            Ok(vec![0, 0, 0, 0, 1, 0])
        );
        mix.insert("bogus".to_owned(), 1);
        assert!(matches!(
            weights(&M2M_STATES, &M2M_WEIGHTS, Some(&mix)),
            Err(SeedError::UnknownState(..))
        ));
        let zero: BTreeMap<String, u32> = [("created".to_owned(), 0)].into();
        assert_eq!(
            weights(&M2M_STATES, &M2M_WEIGHTS, Some(&zero)),
            Err(SeedError::EmptyMix)
        );
        assert_eq!(check_count(0), Err(SeedError::Count));
    }
}
