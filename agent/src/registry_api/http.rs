//! One request per connection to the cluster registry, over plain HTTP or over TLS verified
//! with the cluster CA (the same trust every runtime on the host is given) and the registry
//! domain as the server name — whatever address the connection goes to. Credentials from
//! the plan go in an `Authorization` header, never into a log or an error.

use installer_proto::plan::RegistryPlan;
use installer_proto::secret::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The longest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// How the registry is spoken to.
pub(crate) struct Client {
    domain: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header value, with the plan's credentials.
    authorization: Option<Secret>,
    /// How long a connect may take; reads and writes may stall for `io_timeout`.
    connect_timeout: Duration,
    io_timeout: Duration,
}

/// A request body: its length and where its bytes come from.
pub(crate) struct Body<'a> {
    /// Exactly this many bytes are sent.
    pub len: u64,
    /// The bytes.
    pub from: &'a mut dyn Read,
}

/// A response: its status, the headers asked about, and the body (bounded by its
/// `Content-Length`, or to the end of the connection).
pub(crate) struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// `Location`, when sent.
    pub location: Option<String>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// The body.
    pub body: Box<dyn Read + Send>,
}

impl Client {
    /// The client for `registry`: TLS with its CA as the only root when it has TLS material.
    pub(crate) fn new(registry: &RegistryPlan) -> Result<Client, String> {
        let tls = match &registry.tls {
            Some(tls) => Some(Arc::new(client_config(&tls.ca_pem)?)),
            None => None,
        };
        Ok(Client {
            domain: registry.domain.clone(),
            port: registry.port,
            tls,
            authorization: registry
                .auth
                .as_ref()
                .map(|a| Secret::new(format!("Basic {}", crate::steps::registry_trust::basic(a)))),
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(30),
        })
    }

    /// The same client, giving up on a stalled read or write after `timeout`.
    pub(crate) fn with_io_timeout(mut self, timeout: Duration) -> Client {
        self.io_timeout = timeout;
        self
    }

    /// The registry's port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// One request to `addr`. `target` is the path and query; `body`, when given, is sent
    /// with its length. An error says why no response came.
    pub(crate) fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        target: &str,
        body: Option<Body<'_>>,
    ) -> Result<Response, String> {
        let sock = TcpStream::connect_timeout(&addr, self.connect_timeout)
            .map_err(|e| format!("nothing answered at {addr}: {e}"))?;
        let _ = sock.set_read_timeout(Some(self.io_timeout));
        let _ = sock.set_write_timeout(Some(self.io_timeout));
        let _ = sock.set_nodelay(true);
        let mut conn: Box<dyn ReadWrite> = match &self.tls {
            None => Box::new(sock),
            Some(config) => {
                let name = ServerName::try_from(self.domain.clone())
                    .map_err(|e| format!("{}: {e}", self.domain))?;
                let tls = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(tls, sock))
            }
        };
        let scheme = if self.tls.is_some() { "TLS with " } else { "" };
        let io_err = |e: io::Error| format!("{scheme}{addr}: {e}");
        let authorization = self
            .authorization
            .as_ref()
            .map(|a| format!("Authorization: {}\r\n", a.expose()))
            .unwrap_or_default();
        let length = match &body {
            Some(b) => format!(
                "Content-Length: {}\r\nContent-Type: application/octet-stream\r\n",
                b.len
            ),
            None if method == "POST" || method == "PUT" => "Content-Length: 0\r\n".to_string(),
            None => String::new(),
        };
        // Held as a secret: the head carries the credentials.
        let head = Secret::new(format!(
            "{method} {target} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: installer-agent\r\nConnection: close\r\n{authorization}{length}\r\n",
            self.domain, self.port
        ));
        conn.write_all(head.expose().as_bytes()).map_err(io_err)?;
        if let Some(b) = body {
            let sent = io::copy(&mut b.from.take(b.len), &mut conn).map_err(io_err)?;
            if sent != b.len {
                return Err(format!("the body ended after {sent} of {} bytes", b.len));
            }
        }
        conn.flush().map_err(io_err)?;
        let (head, rest) = read_head(&mut conn).map_err(io_err)?;
        let parsed = parse_head(&head)
            .ok_or_else(|| format!("{addr} answered something that is not HTTP"))?;
        let body: Box<dyn Read + Send> = {
            let chained = io::Cursor::new(rest).chain(conn);
            match (method, parsed.content_length) {
                ("HEAD", _) => Box::new(io::empty()),
                (_, Some(n)) => Box::new(chained.take(n)),
                (_, None) => Box::new(chained),
            }
        };
        Ok(Response {
            status: parsed.status,
            location: parsed.location,
            content_length: parsed.content_length,
            body,
        })
    }
}

/// A connection, plain or TLS.
trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// Reads up to the end of the response head; the head and what was read past it.
fn read_head(from: &mut impl Read) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("the response head is too long"));
        }
        match from.read(&mut chunk)? {
            // A peer that closes early: what came is all there is.
            0 => return Ok((buf, Vec::new())),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a response head says.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    location: Option<String>,
    content_length: Option<u64>,
}

/// Parses a response head; `None` when it is not HTTP. A head cut short after its status
/// line still gives the status (a probe needs no more).
fn parse_head(head: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(_) => {}
        Err(_) => return None,
    }
    let status = response.code?;
    let value = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_string())
    };
    Some(Head {
        status,
        location: value("location"),
        content_length: value("content-length").and_then(|v| v.parse().ok()),
    })
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

    /// A reader that hands out one byte per read, as a slow or fragmenting peer does.
    struct ByteByByte<'a>(&'a [u8]);

    impl Read for ByteByByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
    fn a_head_that_arrives_in_pieces_is_read_whole_and_the_rest_kept() {
        let wire = b"HTTP/1.1 202 Accepted\r\nLocation: /v2/x/blobs/uploads/u?_state=s\r\nContent-Length: 3\r\n\r\nabc";
        let (head, rest) = read_head(&mut ByteByByte(wire)).unwrap();
        assert_eq!(
            rest, b"",
            "one byte at a time: nothing is read past the head"
        );
        assert_eq!(
            parse_head(&head),
            Some(Head {
                status: 202,
                location: Some("/v2/x/blobs/uploads/u?_state=s".into()),
                content_length: Some(3),
            })
        );
        let (head, rest) = read_head(&mut &wire[..]).unwrap();
        assert_eq!(rest, b"abc", "bytes read past the head belong to the body");
        assert!(head.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn a_head_cut_after_the_status_line_still_gives_the_status_and_junk_is_not_http() {
        let (head, _) = read_head(&mut ByteByByte(b"HTTP/1.0 401 X\r\n")).unwrap();
        assert_eq!(parse_head(&head).map(|h| h.status), Some(401));
        let (head, _) = read_head(&mut ByteByByte(b"SSH-2.0-OpenSSH\r\n")).unwrap();
        assert_eq!(parse_head(&head), None);
    }
}
