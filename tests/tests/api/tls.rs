//! TLS for the tests that need it: a throwaway private CA with a certificate for
//! `127.0.0.1`, and a TLS terminator in front of any loopback server (linkbox for the
//! contract suite's HTTPS target, a webhook receiver for an https receiver).

use std::net::SocketAddr;
use std::sync::Arc;

/// A throwaway CA and a certificate it signed for `127.0.0.1`: (CA PEM, server config).
pub fn private_ca() -> (String, Arc<tokio_rustls::rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use tokio_rustls::rustls;

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "linkbox test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()).into();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![server_cert.der().clone()], key)
    .expect("server config");
    (ca_cert.pem(), Arc::new(config))
}

/// A TLS terminator on `127.0.0.1:0` forwarding each connection's bytes to `upstream`;
/// returns its `https://` base URL.
pub async fn front(
    upstream: SocketAddr,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://{addr}")
}
