//! `linkbox seed` against a running sandbox: the built binary, over a real socket.

use std::net::SocketAddr;
use std::process::{Command, Output};

use linkbox::{App, Options, Settings};
use tokio::net::TcpListener;

/// A sandbox on a free loopback port, served in this process.
async fn serving(options: Options) -> (SocketAddr, App) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = App::new(Settings::resolve(options, addr));
    tokio::spawn(linkbox::serve(
        listener,
        app.clone(),
        std::future::pending(),
    ));
    (addr, app)
}

/// `linkbox seed --api m2m` of `count` links by `key` against `addr`, run to its end.
async fn seed_m2m(addr: SocketAddr, key: &'static str, count: u32, rng_seed: u32) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_linkbox"))
            .args([
                "seed",
                "--target",
                &format!("http://{addr}"),
                "--api",
                "m2m",
            ])
            .args(["--count", &count.to_string(), "--key", key])
            .args(["--rng-seed", &rng_seed.to_string()])
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkbox_seed_prints_one_created_id_per_line_in_batches() {
    let (addr, app) = serving(Options::default()).await;
    let key = "m2m_test_cli00000000000000000000000000000";
    let output = seed_m2m(addr, key, 150, 9).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let ids: Vec<&str> = stdout.lines().collect();
    assert_eq!(ids.len(), 150);
    assert!(ids.iter().all(|id| id.starts_with("link_p")), "{stdout}");
    // stderr is a pipe here, where no bar can be drawn: a line a batch says how far it got.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("seeded 100/150 links"), "{stderr}");
    assert!(stderr.contains("seeded 150/150 links"), "{stderr}");
    let partner = app.store.m2m().authenticate(key).expect("partner");
    assert_eq!(partner.link_count(), 150);
}

/// A seed of many batches refused part-way (the partner's storage budget full) says that
/// the batches before the refused one were stored, and printed their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkbox_seed_refused_part_way_says_what_was_stored() {
    let (addr, app) = serving(Options {
        max_tenant_mib: Some(1),
        ..Options::default()
    })
    .await;
    let key = "m2m_test_cli00000000000000000000000000001";
    let output = seed_m2m(addr, key, 5000, 3).await;
    assert!(!output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .count();
    let stored = app
        .store
        .m2m()
        .authenticate(key)
        .expect("partner")
        .link_count();
    assert!(printed > 0 && printed < 5000, "{printed} printed");
    assert_eq!(stored, printed);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the {printed} links of the batches before it were stored"
        )),
        "{stderr}"
    );
}

#[test]
fn linkbox_seed_fails_clearly_without_a_sandbox() {
    let output = Command::new(env!("CARGO_BIN_EXE_linkbox"))
        .args([
            "seed",
            "--target",
            "http://127.0.0.1:9",
            "--api",
            "leaf",
            "--count",
            "1",
        ])
        .args(["--token", "x"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("linkbox:"));
}
