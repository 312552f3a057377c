#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use super::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

fn names(ips: &[&str]) -> Names {
    Names {
        dns: vec!["sea.hub".into()],
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
    }
}

/// A TLS handshake in memory: a client trusting only `ca` talks to a server presenting
/// `tls`'s certificate, for `name`. `Ok` when the client accepts the server.
fn handshake(ca: &str, tls: &RegistryTls, name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let chain = vec![CertificateDer::from_pem_slice(tls.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.expose().as_bytes()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), server_name).unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            client.writer().write_all(b"ping").unwrap();
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut got = [0u8; 4];
            server.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn the_server_certificate_is_trusted_through_the_ca_for_each_name_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = TlsStore::new(dir.path(), "prod");
    let mut wanted = names(&["10.0.0.2", "10.0.0.3"]);
    wanted.dns.push("registry.example.com".into());
    let tls = ensure(&store, &wanted, false).unwrap();
    for name in ["sea.hub", "registry.example.com", "10.0.0.2", "10.0.0.3"] {
        handshake(&tls.ca_pem, &tls, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(handshake(&tls.ca_pem, &tls, "other.hub").is_err());
    assert!(handshake(&tls.ca_pem, &tls, "10.0.0.9").is_err());
    // Another cluster's CA does not vouch for it.
    let other = ensure(&TlsStore::new(dir.path(), "other"), &wanted, false).unwrap();
    assert!(handshake(&other.ca_pem, &tls, "sea.hub").is_err());
}

#[test]
fn the_material_is_private_and_reused_until_names_grow_or_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let store = TlsStore::new(&dir.path().join("state"), "prod");
    let first = ensure(&store, &names(&["10.0.0.2"]), false).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.dir()), 0o700);
    for key in [
        "ca.key",
        "server.key",
        "ca.crt",
        "server.crt",
        "server.json",
    ] {
        assert_eq!(mode(&store.dir().join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&dir.path().join("state")), 0o700);

    let again = ensure(&store, &names(&["10.0.0.2"]), false).unwrap();
    assert_eq!(again.ca_pem, first.ca_pem);
    assert_eq!(again.cert_pem, first.cert_pem);
    assert_eq!(again.key_pem.expose(), first.key_pem.expose());

    // A name more: the same CA issues a new server certificate that covers it.
    let grown = ensure(&store, &names(&["10.0.0.2", "10.0.0.4"]), false).unwrap();
    assert_eq!(grown.ca_pem, first.ca_pem);
    assert_ne!(grown.cert_pem, first.cert_pem);
    handshake(&first.ca_pem, &grown, "10.0.0.4").unwrap();
    // Fewer names: the stored one still covers them.
    let fewer = ensure(&store, &names(&[]), false).unwrap();
    assert_eq!(fewer.cert_pem, grown.cert_pem);

    let rotated = ensure(&store, &names(&["10.0.0.2"]), true).unwrap();
    assert_ne!(rotated.ca_pem, first.ca_pem);
    assert!(handshake(&first.ca_pem, &rotated, "sea.hub").is_err());
    handshake(&rotated.ca_pem, &rotated, "sea.hub").unwrap();
}

#[test]
fn the_key_never_prints() {
    let dir = tempfile::tempdir().unwrap();
    let tls = ensure(&TlsStore::new(dir.path(), "c"), &names(&[]), false).unwrap();
    let shown = format!("{tls:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}
