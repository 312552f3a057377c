//! Rootfs files as blobs of [`REPOSITORY`] in the cluster registry, through distribution's
//! blob API only: `HEAD` to learn whether it is there, `POST` + `PUT ?digest=` (a monolithic
//! upload the registry verifies against the digest) to push, `GET` to fetch.

use super::http::{Body, Client};
use installer_proto::fanout::{BlobRef, REPOSITORY};
use std::io::Read;
use std::net::SocketAddr;

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Uploaded now, this many bytes.
    Uploaded(u64),
    /// The registry had it.
    Present,
}

/// Pushes `content` (`len` bytes) as the blob `blob` names.
pub(crate) fn push(
    client: &Client,
    addr: SocketAddr,
    blob: &BlobRef,
    len: u64,
    content: &mut dyn Read,
) -> Result<Pushed, String> {
    let digest = blob.digest();
    let blob_url = format!("/v2/{REPOSITORY}/blobs/{digest}");
    let head = client.request(addr, "HEAD", &blob_url, None)?;
    match head.status {
        200 => return Ok(Pushed::Present),
        404 => {}
        other => return Err(refused("HEAD", &digest, other)),
    }
    let start = client.request(
        addr,
        "POST",
        &format!("/v2/{REPOSITORY}/blobs/uploads/"),
        None,
    )?;
    if start.status != 202 {
        return Err(refused("starting the upload of", &digest, start.status));
    }
    let location = start
        .location
        .ok_or_else(|| format!("the registry started an upload of {digest} without a Location"))?;
    let target = upload_target(&location, &digest)?;
    let done = client.request(addr, "PUT", &target, Some(Body { len, from: content }))?;
    match done.status {
        201 => Ok(Pushed::Uploaded(len)),
        other => Err(refused("uploading", &digest, other)),
    }
}

/// Fetches the blob `blob` names; the body, at most `size` bytes (the plan's size: a
/// registry cannot make this host read more). The caller checks the content's hash.
pub(crate) fn fetch(
    client: &Client,
    addr: SocketAddr,
    blob: &BlobRef,
    size: u64,
) -> Result<Box<dyn Read + Send>, String> {
    let digest = blob.digest();
    let got = client.request(
        addr,
        "GET",
        &format!("/v2/{REPOSITORY}/blobs/{digest}"),
        None,
    )?;
    if got.status != 200 {
        return Err(refused("GET", &digest, got.status));
    }
    if let Some(n) = got.content_length
        && n != size
    {
        return Err(format!(
            "{addr} offered {n} bytes for {digest}; the plan says {size}"
        ));
    }
    Ok(Box::new(got.body.take(size)))
}

fn refused(what: &str, digest: &str, status: u16) -> String {
    let why = match status {
        401 | 403 => " (the registry refused the credentials)",
        404 => " (not in the registry)",
        _ => "",
    };
    format!("{what} {digest}: the registry answered {status}{why}")
}

/// The `PUT` target of an upload at `location` (a path, or an absolute URL on this
/// registry): the location with the digest added to its query.
fn upload_target(location: &str, digest: &str) -> Result<String, String> {
    let path = match location.find("://") {
        Some(i) => {
            let after = &location[i + 3..];
            after.find('/').map(|j| &after[j..]).unwrap_or("/")
        }
        None => location,
    };
    if !path.starts_with('/') {
        return Err(format!(
            "the registry's upload location {location:?} is not a path"
        ));
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    Ok(format!("{path}{sep}digest={digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_target_adds_the_digest_to_what_the_registry_said() {
        assert_eq!(
            upload_target("/v2/r/blobs/uploads/u1?_state=abc", "sha256:00").unwrap(),
            "/v2/r/blobs/uploads/u1?_state=abc&digest=sha256:00"
        );
        assert_eq!(
            upload_target("https://sea.hub:5000/v2/r/blobs/uploads/u1", "sha256:00").unwrap(),
            "/v2/r/blobs/uploads/u1?digest=sha256:00"
        );
        assert!(upload_target("v2/relative", "sha256:00").is_err());
    }
}
