//! One `GET /v2/` against the local registry, over plain HTTP or over TLS verified with the
//! cluster CA (the same trust every runtime on the host is given), with the server name
//! checked against the registry domain. Its answer is the status code, or why there was
//! none — a certificate the CA did not issue is said as such, not as a timeout.

use installer_proto::plan::RegistryPlan;
use installer_proto::secret::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// How the registry is asked.
pub(crate) struct Probe {
    domain: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header value, with the plan's credentials.
    authorization: Option<Secret>,
}

impl Probe {
    /// The probe for `registry`: TLS with its CA as the only root when it has TLS material.
    pub(crate) fn new(registry: &RegistryPlan) -> Result<Probe, String> {
        let tls = match &registry.tls {
            Some(tls) => Some(Arc::new(client_config(&tls.ca_pem)?)),
            None => None,
        };
        Ok(Probe {
            domain: registry.domain.clone(),
            port: registry.port,
            tls,
            authorization: registry
                .auth
                .as_ref()
                .map(|a| Secret::new(format!("Basic {}", super::registry_trust::basic(a)))),
        })
    }

    /// One request to `addr`; the HTTP status code, or why no answer came.
    pub(crate) fn once(&self, addr: SocketAddr) -> Result<u16, String> {
        let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("nothing answered at {addr}: {e}"))?;
        let timeout = Some(Duration::from_secs(3));
        let _ = sock.set_read_timeout(timeout);
        let _ = sock.set_write_timeout(timeout);
        let authorization = self
            .authorization
            .as_ref()
            .map(|a| format!("Authorization: {}\r\n", a.expose()))
            .unwrap_or_default();
        // Held as a secret: the request carries the credentials.
        let request = Secret::new(format!(
            "GET /v2/ HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: installer-agent\r\n{authorization}\r\n",
            self.domain, self.port
        ));
        let request = request.expose();
        let mut head = [0u8; 64];
        let n = match &self.tls {
            None => {
                sock.write_all(request.as_bytes())
                    .map_err(|e| format!("{addr}: {e}"))?;
                read_status_line(&mut sock, &mut head).map_err(|e| format!("{addr}: {e}"))?
            }
            Some(config) => {
                let name = ServerName::try_from(self.domain.clone())
                    .map_err(|e| format!("{}: {e}", self.domain))?;
                let mut conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                let tls_err = |e: std::io::Error| format!("TLS with {addr}: {e}");
                tls.write_all(request.as_bytes()).map_err(tls_err)?;
                read_status_line(&mut tls, &mut head).map_err(tls_err)?
            }
        };
        let text = String::from_utf8_lossy(&head[..n]);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("{addr} answered something that is not HTTP"))
    }
}

/// Reads into `head` until it holds a whole status line, is full, or the peer closed; the
/// number of bytes read. One read is not enough: a server may send the status line in
/// pieces (several TLS records, several segments).
fn read_status_line(from: &mut impl Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() && !head[..n].contains(&b'\n') {
        match from.read(&mut head[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// A client that trusts `ca_pem` and nothing else.
fn client_config(ca_pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| format!("the registry CA in the plan: {e}"))?;
    roots
        .add(ca)
        .map_err(|e| format!("the registry CA in the plan: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::plan::RegistryTls;
    use rustls::pki_types::PrivateKeyDer;
    use std::net::TcpListener;

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
            request.starts_with("GET /v2/ HTTP/1.0\r\nHost: sea.hub:5000\r\n"),
            "{request}"
        );
    }

    /// A reader that hands out one byte per read, as a slow or fragmenting peer does.
    struct ByteByByte<'a>(&'a [u8]);

    impl Read for ByteByByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !buf.is_empty() => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_status_line_that_arrives_in_pieces_is_read_whole() {
        let mut head = [0u8; 64];
        let n = read_status_line(
            &mut ByteByByte(b"HTTP/1.1 401 Unauthorized\r\nX: y\r\n"),
            &mut head,
        )
        .unwrap();
        assert_eq!(&head[..n], b"HTTP/1.1 401 Unauthorized\r\n");
        let n = read_status_line(&mut ByteByByte(b"HTTP/1.1"), &mut head).unwrap();
        assert_eq!(
            &head[..n],
            b"HTTP/1.1",
            "a peer that closes early ends the read"
        );
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused() {
        assert!(Probe::new(&registry(Some("nope".into()))).is_err());
    }
}
