//! `GET /healthz`: is the bridge up, and can it reach RabbitMQ?

use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `/healthz` body. Never contains the AMQP URL or credentials.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Health {
    /// Always `"ok"` (the bridge answered).
    pub bridge: &'static str,
    /// `"up"` or `"down"`.
    pub broker: &'static str,
    /// RabbitMQ's version from its `connection.start` server properties.
    pub version: Option<String>,
    /// Why the broker is down (or `null`).
    pub detail: Option<String>,
}

/// Default time budget for one probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes the broker: TCP connect, AMQP protocol header, `connection.start`
/// (for the version), then a full lapin login. Bounded by `timeout`.
pub async fn probe(amqp_url: &str, timeout: Duration) -> Health {
    let result = tokio::time::timeout(timeout, probe_inner(amqp_url)).await;
    let outcome = match result {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    match outcome {
        Ok(version) => Health {
            bridge: "ok",
            broker: "up",
            version,
            detail: None,
        },
        Err(detail) => Health {
            bridge: "ok",
            broker: "down",
            version: None,
            detail: Some(detail),
        },
    }
}

async fn probe_inner(amqp_url: &str) -> Result<Option<String>, String> {
    let uri: lapin::uri::AMQPUri = amqp_url
        .parse()
        .map_err(|e: String| format!("invalid AMQP URL: {}", redact(&e, amqp_url)))?;
    let host = uri.authority.host.clone();
    let port = uri.authority.port;
    let version = server_version(&host, port).await?;
    // Full login: catches wrong credentials or vhost.
    let conn = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| format!("login failed: {}", redact(&e.to_string(), amqp_url)))?;
    let _ = conn.close(200, "healthz".into()).await;
    Ok(version)
}

/// Never leak the URL (it may carry a password) in a message.
fn redact(msg: &str, amqp_url: &str) -> String {
    msg.replace(amqp_url, "<amqp-url>")
}

/// Reads RabbitMQ's `version` server property from `connection.start`.
async fn server_version(host: &str, port: u16) -> Result<Option<String>, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    stream
        .write_all(b"AMQP\x00\x00\x09\x01")
        .await
        .map_err(|e| format!("cannot talk to {host}:{port}: {e}"))?;
    let mut header = [0u8; 7];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("no AMQP greeting from {host}:{port}: {e}"))?;
    if header[0] != 1 {
        return Err(format!(
            "{host}:{port} did not answer with an AMQP method frame"
        ));
    }
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    if size > 1 << 20 {
        return Err(format!("{host}:{port}: implausible frame size {size}"));
    }
    let mut payload = vec![0u8; size];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("truncated AMQP greeting from {host}:{port}: {e}"))?;
    Ok(find_long_string(&payload, b"version"))
}

/// Finds `key` followed by a long-string value in an encoded field table.
fn find_long_string(payload: &[u8], key: &[u8]) -> Option<String> {
    let mut needle = Vec::with_capacity(key.len() + 2);
    needle.push(u8::try_from(key.len()).ok()?);
    needle.extend_from_slice(key);
    needle.push(b'S');
    let pos = payload.windows(needle.len()).position(|w| w == needle)?;
    let start = pos + needle.len();
    let len_bytes = payload.get(start..start + 4)?;
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
    let value = payload.get(start + 4..start + 4 + len)?;
    String::from_utf8(value.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_version_in_a_table() {
        let mut t = vec![0u8, 10, 0, 10, 0, 9];
        t.extend_from_slice(&[7]);
        t.extend_from_slice(b"productS");
        t.extend_from_slice(&8u32.to_be_bytes());
        t.extend_from_slice(b"RabbitMQ");
        t.extend_from_slice(&[7]);
        t.extend_from_slice(b"versionS");
        t.extend_from_slice(&6u32.to_be_bytes());
        t.extend_from_slice(b"3.10.8");
        assert_eq!(find_long_string(&t, b"version").as_deref(), Some("3.10.8"));
        assert_eq!(find_long_string(&t[..t.len() - 2], b"version"), None);
    }
}
