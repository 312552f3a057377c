//! One `GET /v2/` against the local registry, over plain HTTP or over TLS verified with the
//! cluster CA (the same trust every runtime on the host is given), with the server name
//! checked against the registry domain. Its answer is the status code, or why there was
//! none — a certificate the CA did not issue is said as such, not as a timeout.

use super::http::Client;
use installer_proto::plan::RegistryPlan;
use std::net::SocketAddr;
use std::time::Duration;

/// How the registry is asked.
pub(crate) struct Probe {
    client: Client,
}

impl Probe {
    /// The probe for `registry`: TLS with its CA as the only root when it has TLS material.
    pub(crate) fn new(registry: &RegistryPlan) -> Result<Probe, String> {
        Ok(Probe {
            client: Client::new(registry)?.with_io_timeout(Duration::from_secs(3)),
        })
    }

    /// One request to `addr`; the HTTP status code, or why no answer came.
    pub(crate) fn once(&self, addr: SocketAddr) -> Result<u16, String> {
        self.client
            .request(addr, "GET", "/v2/", None)
            .map(|r| r.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::plan::RegistryTls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A CA and a certificate it issued for `name`: (CA PEM, cert PEM, key PEM).
    fn issue(name: &str) -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    }

    /// Serves one TLS connection on loopback answering `HTTP/1.0 <code>`.
    fn serve_once(cert_pem: &str, key_pem: &str, code: u16) -> SocketAddr {
        let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            let mut buf = [0u8; 512];
            if tls.read(&mut buf).is_ok() {
                // In pieces, each its own TLS record, as a server may send it.
                for piece in ["HTTP/1.0 ".to_string(), format!("{code} X\r\n\r\n")] {
                    let _ = tls.write_all(piece.as_bytes());
                    let _ = tls.flush();
                }
            }
        });
        addr
    }

    fn registry(ca_pem: Option<String>) -> RegistryPlan {
        RegistryPlan {
            domain: "sea.hub".into(),
            port: 5000,
            deploy: false,
            tls: ca_pem.map(|ca_pem| RegistryTls {
                ca_pem,
                server: None,
            }),
            auth: None,
        }
    }

    #[test]
    fn a_registry_serving_the_clusters_certificate_answers() {
        let (ca, cert, key) = issue("sea.hub");
        let addr = serve_once(&cert, &key, 401);
        let probe = Probe::new(&registry(Some(ca))).unwrap();
        assert_eq!(probe.once(addr), Ok(401));
    }

    #[test]
    fn a_certificate_of_another_ca_or_name_is_refused_and_said_so() {
        let (_, cert, key) = issue("sea.hub");
        let (other_ca, _, _) = issue("sea.hub");
        let addr = serve_once(&cert, &key, 200);
        let err = Probe::new(&registry(Some(other_ca)))
            .unwrap()
            .once(addr)
            .unwrap_err();
        assert!(err.contains("certificate"), "{err}");

        let (ca, cert, key) = issue("other.hub");
        let addr = serve_once(&cert, &key, 200);
        let err = Probe::new(&registry(Some(ca)))
            .unwrap()
            .once(addr)
            .unwrap_err();
        assert!(err.contains("certificate"), "{err}");
    }

    #[test]
    fn plain_http_is_asked_without_tls_and_with_the_credentials() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = sock.read(&mut buf).unwrap();
            sock.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        assert_eq!(Probe::new(&registry(None)).unwrap().once(addr), Ok(200));
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /v2/ HTTP/1.1\r\nHost: sea.hub:5000\r\n"),
            "{request}"
        );
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused() {
        assert!(Probe::new(&registry(Some("nope".into()))).is_err());
    }
}
