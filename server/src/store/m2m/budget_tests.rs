//! The partner's storage budget (`--max-tenant-mib`): the count kept as the state changes
//! is the count rebuilt from the state, and a write past the budget changes nothing.

use serde_json::json;

use super::tests_support::{NOW, amount, new_link, partner, partner_with};
use super::{LinkError, RestoreError};
use crate::config::Options;

fn with_metadata(reference_id: &str, bytes: usize) -> super::NewLink {
    super::NewLink {
        metadata: Some(json!({"blob": "x".repeat(bytes)})),
        ..new_link(reference_id)
    }
}

/// Every write that adds to a partner's state, one after another: the count kept along
/// the way is what a restore of the same state counts from scratch.
#[test]
fn the_count_kept_as_the_state_changes_is_the_count_rebuilt_from_it() {
    let partner = partner();
    assert_eq!(partner.stored(), 0);
    let mut first = with_metadata("u1", 300);
    first.user_data = Some(
        json!({"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R1"}}, "firstName": "Ana"}),
    );
    first.theme = Some("dark".into());
    first.callback_url = Some("https://partner.example/hook".into());
    let first = partner.create_link(first, NOW).expect("link");
    let after_one = partner.stored();
    assert!(after_one > 300 + 40, "{after_one}");
    partner
        .revoke_link(&first.link_id, Some("a reason of some length".into()), NOW)
        .expect("revoke");
    assert_eq!(partner.stored(), after_one + 23);
    // A returning user: its userData merged, growing and shrinking a field.
    let mut again = new_link("u1");
    again.user_data = Some(json!({"firstName": "A much longer first name", "lastName": "L"}));
    let again = partner.create_link(again, NOW).expect("returning user");
    let opened = partner.open_link(&again.link_id, NOW).expect("open");
    let request = opened.data_request.expect("incomplete user data");
    partner
        .fulfil_data_request(
            &request.data_request_id,
            "u1",
            json!({"dob": "1990-01-01", "firstName": "B"}),
            NOW,
        )
        .expect("fulfil");
    partner
        .create_operation(&again.link_id, amount(), NOW)
        .expect("operation");
    partner
        .create_link(with_metadata("u2", 50), NOW)
        .expect("second user");
    let kept = partner.stored();
    partner.restore(partner.snapshot()).expect("restore");
    assert_eq!(partner.stored(), kept, "rebuilt from the same state");
    partner.reset();
    assert_eq!(partner.stored(), 0);
}

/// A create, a revoke and a fulfil that would pass the budget are refused before they
/// change anything; a reset makes room again.
#[test]
fn writes_past_the_budget_are_refused_and_change_nothing() {
    let partner = partner_with(Options {
        max_tenant_mib: Some(1),
        ..Options::default()
    });
    let mut made = 0;
    let refused = loop {
        match partner.create_link(with_metadata(&format!("u{made}"), 100_000), NOW) {
            Ok(_) => made += 1,
            Err(error) => break error,
        }
        assert!(
            made < 20,
            "a 1 MiB budget holds fewer than 20 links of 100 kB"
        );
    };
    assert_eq!(
        made, 10,
        "ten links of 100 kB fit in 1 MiB, the eleventh does not"
    );
    let LinkError::StorageFull(full) = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(full.limit_mib, 1);
    assert!(
        refused.to_string().contains("--max-tenant-mib"),
        "{refused}"
    );
    let before = partner.snapshot();
    let stored = partner.stored();
    // Refused whatever the user: a new one, or a returning one with userData to merge.
    let mut returning = with_metadata("u0", 100_000);
    returning.user_data = Some(json!({"paymentMethod": {"type": "cash"}}));
    assert!(matches!(
        partner.create_link(returning, NOW),
        Err(LinkError::StorageFull(_))
    ));
    assert_eq!(
        partner.snapshot(),
        before,
        "a refused create changes nothing"
    );
    assert_eq!(partner.stored(), stored);
    // Small writes still fit until they do not: the budget is counted, not a link count.
    let link = partner.link_count();
    assert!(partner.create_link(new_link("small"), NOW).is_ok());
    assert_eq!(partner.link_count(), link + 1);
    let id = partner.snapshot().links[0].link_id.clone();
    assert!(matches!(
        partner.revoke_link(&id, Some("r".repeat(200_000)), NOW),
        Err(LinkError::StorageFull(_))
    ));
    assert!(partner.link(&id).expect("kept").revoked_at.is_none());
    partner.reset();
    assert!(
        partner
            .create_link(with_metadata("u0", 100_000), NOW)
            .is_ok()
    );
}

/// A snapshot whose state would pass the budget is refused whole.
#[test]
fn a_snapshot_past_the_budget_is_not_restored() {
    let roomy = partner();
    for n in 0..12 {
        roomy
            .create_link(with_metadata(&format!("u{n}"), 100_000), NOW)
            .expect("link");
    }
    let snapshot = roomy.snapshot();
    let tight = partner_with(Options {
        max_tenant_mib: Some(1),
        ..Options::default()
    });
    tight.create_link(new_link("kept"), NOW).expect("link");
    let before = tight.snapshot();
    let refused = tight.restore(snapshot).expect_err("past the budget");
    assert!(
        matches!(refused, RestoreError::StorageFull(_)),
        "{refused:?}"
    );
    assert_eq!(tight.snapshot(), before);
}

/// A partner's webhook URL counts against its budget in a snapshot's restore and under a
/// fulfil, as it does when set; a revoke that adds nothing goes through at a full budget.
#[test]
fn the_webhook_url_counts_in_a_restore_and_a_fulfil() {
    let partner = partner_with(Options {
        max_tenant_mib: Some(1),
        ..Options::default()
    });
    let opened = {
        let mut link = new_link("waiting");
        link.user_data = Some(json!({"firstName": "Ana"}));
        let link = partner.create_link(link, NOW).expect("link");
        partner.open_link(&link.link_id, NOW).expect("open")
    };
    let request = opened.data_request.expect("incomplete user data");
    let url = format!("https://hooks.example/{}", "a".repeat(60_000));
    partner.set_webhook_url(Some(url.clone())).expect("set");
    let mut made = 0;
    while partner
        .create_link(with_metadata(&format!("u{made}"), 50_000), NOW)
        .is_ok()
    {
        made += 1;
    }
    let full = partner.stored();
    // Only the URL is left to add: a restore of the same state with it longer is past.
    let mut longer = partner.snapshot();
    longer.webhook_url = Some(format!("{url}{}", "b".repeat(60_000)));
    let refused = partner.restore(longer).expect_err("past the budget");
    assert!(
        matches!(refused, RestoreError::StorageFull(_)),
        "{refused:?}"
    );
    assert_eq!(partner.stored(), full);
    // A fulfil that fits beside the links but not beside the URL too.
    let room = 1024 * 1024 - full;
    let fulfil = partner.fulfil_data_request(
        &request.data_request_id,
        "waiting",
        json!({"dob": "1990-01-01", "note": "n".repeat(room as usize + 1)}),
        NOW,
    );
    assert!(
        matches!(fulfil, Err(LinkError::StorageFull(_))),
        "{fulfil:?}"
    );
    assert!(partner.stored() <= 1024 * 1024, "{}", partner.stored());
    // Nothing added, nothing refused.
    let id = partner.snapshot().links[0].link_id.clone();
    partner
        .revoke_link(&id, None, NOW)
        .expect("a revoke adds nothing");
}
