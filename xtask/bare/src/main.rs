//! The bare reference of `cargo xtask bench`: warp on tokio's multi-threaded runtime, with
//! nothing between the connection and one route that answers `GET /` with
//! `{"status":"ok"}` as `application/json` — what linkbox's own health endpoint answers.
//! Whatever linkbox does on top of this is what the ratio to this row measures.
//!
//! It also answers any `POST` with the same body (status 201, the body left unread beyond
//! what hyper reads anyway): the bench sends it the create-link requests, so what the
//! generator and the kernel spend on a request of that shape is measured apart from what
//! linkbox does with it.
//!
//! `bench-bare [ADDR]` binds ADDR (default `127.0.0.1:0`) and prints
//! `listening on http://ADDR` on its first line, as `linkbox serve` does.

use std::net::SocketAddr;

use warp::Filter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let health = warp::get().and(warp::path::end()).map(|| {
        warp::http::Response::builder()
            .header("content-type", "application/json")
            .body("{\"status\":\"ok\"}")
    });
    let post = warp::post().map(|| {
        warp::http::Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .body("{\"status\":\"ok\"}")
    });
    let route = health.or(post);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    warp::serve(route).incoming(listener).run().await;
    Ok(())
}
