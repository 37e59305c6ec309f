//! Cases of linkbox's own control API (`sandbox.md`): a few, all local. They pin down what
//! partners' tests rely on — health, the clock, reset, playing the end user, the journal and
//! the webhook log — not every corner of it.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Ctx, Failure, Reply};
use super::{Case, local_case};

async fn clock(cx: &Ctx, change: Option<Value>) -> Result<Reply, Failure> {
    let reply = match change {
        Some(change) => {
            cx.control(Method::POST, "/_sandbox/clock")
                .json(&change)
                .send()
                .await?
        }
        None => cx.control(Method::GET, "/_sandbox/clock").send().await?,
    };
    reply.status(200)?;
    Ok(reply)
}

fn number(reply: &Reply, pointer: &str) -> Result<i64, Failure> {
    reply
        .get(pointer)?
        .as_i64()
        .ok_or_else(|| reply.failure(format!("body {pointer}"), "an integer", &reply.text))
}

/// Every control-API case.
pub fn cases() -> Vec<Case> {
    vec![
        local_case!(
            "sandbox.health",
            Sandbox,
            ["SANDBOX-HEALTH"],
            |cx| async move {
                // Health answers anyone: no key, no token.
                let reply = cx
                    .control(Method::GET, "/_sandbox/health")
                    .no_auth()
                    .send()
                    .await?;
                reply.status(200)?.eq("/status", json!("ok"))?;
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.read",
            Sandbox,
            ["SANDBOX-CLOCK-READ"],
            |cx| async move {
                let reply = clock(&cx, None).await?;
                reply.timestamp("/now", 3)?.get("/offsetSeconds")?;
                reply.get("/frozen")?;
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.advance",
            Sandbox,
            ["SANDBOX-CLOCK-ADVANCE"],
            |cx| async move {
                let before = number(&clock(&cx, None).await?, "/offsetSeconds")?;
                let after = clock(&cx, Some(json!({"advanceSeconds": 3600}))).await?;
                let offset = number(&after, "/offsetSeconds")?;
                if !(3599..=3601).contains(&(offset - before)) {
                    return Err(after.failure("offsetSeconds change", 3600, offset - before));
                }
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.set-to",
            Sandbox,
            ["SANDBOX-CLOCK-SET-TO"],
            |cx| async move {
                let reply = clock(&cx, Some(json!({"setTo": "2099-01-01T00:00:00.000Z"}))).await?;
                let now = reply.string("/now")?;
                if !now.starts_with("2099-01-01T00:00:0") {
                    return Err(reply.failure("body /now", "2099-01-01T00:00:0x", now));
                }
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.bad-change-400",
            Sandbox,
            ["SANDBOX-CLOCK-BAD-CHANGE"],
            |cx| async move {
                for change in [
                    json!({"advanceSeconds": 1, "frozen": false}),
                    json!({"setTo": "tomorrow"}),
                ] {
                    let reply = cx
                        .control(Method::POST, "/_sandbox/clock")
                        .json(&change)
                        .send()
                        .await?;
                    reply.status(400)?.content_type("application/json")?;
                    reply.eq("/error/code", json!("INVALID_REQUEST"))?;
                    reply.string("/error/message")?;
                }
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.frozen",
            Sandbox,
            ["SANDBOX-CLOCK-FROZEN"],
            |cx| async move {
                let first = clock(&cx, Some(json!({"frozen": true}))).await?;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let second = clock(&cx, None).await?;
                clock(&cx, Some(json!({"frozen": false}))).await?;
                first.eq("/frozen", json!(true))?;
                second.eq("/now", first.json["now"].clone())?;
                Ok(())
            }
        ),
        local_case!(
            "sandbox.clock.stamps-m2m-timestamps",
            Sandbox,
            ["SANDBOX-CLOCK-STAMPS"],
            |cx| async move {
                // Every timestamp the M2M API writes is the sandbox clock's reading.
                let at = "2026-02-10T12:00:00.000Z";
                clock(&cx, Some(json!({"frozen": true}))).await?;
                let stamped = async {
                    clock(&cx, Some(json!({"setTo": at}))).await?;
                    let reference = cx.mark("ref");
                    let link = cx
                        .create_link(json!({"referenceId": reference, "expiresInMinutes": 120}))
                        .await?;
                    let id = link["linkId"].as_str().unwrap_or_default().to_owned();
                    let detail = cx
                        .m2m(Method::GET, &format!("/partner/links/{id}"))
                        .send()
                        .await?;
                    detail.eq("/data/createdAt", json!(at))?;
                    detail.eq("/data/expiresAt", json!("2026-02-10T14:00:00.000Z"))?;
                    let opened = cx.open_link(&id).await?;
                    let request = opened.string("/dataRequest/dataRequestId")?;
                    cx.m2m(Method::PUT, &format!("/partner/data-requests/{request}"))
                        .json(&json!({"referenceId": reference, "userData": {"dob": "1990-01-01"}}))
                        .send()
                        .await?
                        .status(200)?
                        .eq("/data/fulfilledAt", json!(at))?;
                    cx.m2m(Method::POST, &format!("/partner/links/{id}/revoke"))
                        .send()
                        .await?
                        .status(200)?
                        .eq("/data/revokedAt", json!(at))?;
                    let detail = cx
                        .m2m(Method::GET, &format!("/partner/links/{id}"))
                        .send()
                        .await?;
                    detail.eq("/data/openedAt", json!(at))?;
                    Ok(())
                }
                .await;
                clock(&cx, Some(json!({"frozen": false}))).await?;
                stamped
            }
        ),
        local_case!(
            "sandbox.reset.forgets-the-partner-links",
            Sandbox,
            ["SANDBOX-RESET"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                cx.control(Method::POST, "/_sandbox/reset")
                    .send()
                    .await?
                    .status_in(200..=204)?;
                let id = link["linkId"].as_str().unwrap_or_default();
                let reply = cx
                    .m2m(Method::GET, &format!("/partner/links/{id}"))
                    .send()
                    .await?;
                reply.m2m_code(404, "RESOURCE_NOT_FOUND")?;
                Ok(())
            }
        ),
        local_case!(
            "sandbox.m2m.open-first-time-only",
            Sandbox,
            ["SANDBOX-M2M-OPEN"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let id = link["linkId"].as_str().unwrap_or_default();
                let first = cx.open_link(id).await?;
                first
                    .eq("/status", json!("opened"))?
                    .eq("/firstOpen", json!(true))?;
                cx.open_link(id).await?.eq("/firstOpen", json!(false))?;
                Ok(())
            }
        ),
        local_case!(
            "sandbox.journal.records-partner-requests",
            Sandbox,
            ["SANDBOX-JOURNAL"],
            |cx| async move {
                cx.m2m(Method::GET, "/partner/links?limit=3")
                    .send()
                    .await?
                    .status(200)?;
                let reply = cx.control(Method::GET, "/_sandbox/requests").send().await?;
                reply.status(200)?;
                let found = reply.json["requests"].as_array().is_some_and(|entries| {
                    entries
                        .iter()
                        .any(|entry| entry["path"] == "/partner/links" && entry["status"] == 200)
                });
                if !found {
                    return Err(reply.failure(
                        "body /requests",
                        "GET /partner/links 200",
                        &reply.text,
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "sandbox.webhooks.link-created-delivery",
            Sandbox,
            ["SANDBOX-WEBHOOKS"],
            |cx| async move {
                // Port 9 on loopback: nothing listens; the delivery is recorded all the same.
                let body = json!({"referenceId": cx.mark("ref"), "callbackUrl": "http://127.0.0.1:9/hook"});
                let link = cx.create_link(body).await?;
                let reply = cx.control(Method::GET, "/_sandbox/webhooks").send().await?;
                reply.status(200)?;
                let found = reply.json["deliveries"]
                    .as_array()
                    .is_some_and(|deliveries| {
                        deliveries.iter().any(|delivery| {
                            delivery["event"] == "link.created"
                                && delivery["payload"]["data"]["linkId"] == link["linkId"]
                        })
                    });
                if !found {
                    return Err(reply.failure(
                        "body /deliveries",
                        "a link.created delivery",
                        &reply.text,
                    ));
                }
                Ok(())
            }
        ),
    ]
}
