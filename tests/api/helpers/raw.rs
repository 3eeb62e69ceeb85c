//! A keep-alive HTTP/1.1 connection written and read by hand.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// One keep-alive connection spoken by hand, so that several requests provably share it.
pub struct RawConn(BufReader<std::net::TcpStream>);

impl RawConn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        // A safety net so a broken server fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        RawConn(BufReader::new(stream))
    }

    /// Sends a JSON POST with a bearer token; the answer is read by [`RawConn::answer`].
    pub fn post_json(&mut self, path: &str, host: &str, token: &str, body: &Value) {
        use std::io::Write;
        let body = body.to_string();
        write!(
            self.0.get_mut(),
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
        )
        .unwrap();
        self.0.get_mut().flush().unwrap();
    }

    /// Sends a request with exactly the given headers (and `Host`, `Content-Length`),
    /// as a client that writes its own HTTP would; the answer is read by
    /// [`RawConn::answer`].
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        use std::io::Write;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.0.get_mut().write_all(head.as_bytes()).unwrap();
        self.0.get_mut().flush().unwrap();
    }

    /// Reads one answer: status, `Retry-After` and the JSON body.
    pub fn answer(&mut self) -> (u16, Option<String>, Value) {
        use std::io::Read;
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (mut length, mut retry_after) = (0, None);
        loop {
            line.clear();
            self.0.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(": ") else {
                break;
            };
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap(),
                "retry-after" => retry_after = Some(value.to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    /// Whether the server has closed the connection: a read finds its end (or a reset)
    /// within `within`. Waits at most `within` when it is still open.
    pub fn is_closed(&mut self, within: Duration) -> bool {
        use std::io::ErrorKind;
        self.0.get_ref().set_read_timeout(Some(within)).unwrap();
        let closed = match self.0.fill_buf() {
            Ok(buf) => buf.is_empty(),
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
        self.0
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        closed
    }
}
