//! An EC2-style instance metadata service on the host's loopback, for
//! trying user-data locally: IMDSv2 (`PUT /latest/api/token` with a TTL
//! header, then requests carrying `X-aws-ec2-metadata-token`) with the
//! IMDSv1 fallback (no token at all) unless `require_token`. A request with
//! a wrong or expired token gets 401, as on EC2.
//!
//! Served paths: `/latest/user-data`, `/latest/meta-data/` (listing),
//! `/latest/meta-data/instance-id`, `/latest/meta-data/hostname`. Each
//! request is recorded (method, path, status, whether a token came with it)
//! so tests can tell v2 from v1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// EC2 accepts token lifetimes of 1 s to 6 h.
const MAX_TTL: u64 = 21600;
/// Bound on a request head, and on how long a client may take to send it.
const MAX_HEAD: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the service serves.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub user_data: Vec<u8>,
    pub instance_id: String,
    pub hostname: String,
    /// Refuse IMDSv1 (tokenless) requests with 401, as
    /// `HttpTokens=required` does.
    pub require_token: bool,
    /// Offer IMDSv2 tokens. Without, `PUT /latest/api/token` gets 404, as
    /// from the v1-only EC2-compatible services of other clouds; clients
    /// must fall back to tokenless requests.
    pub token_api: bool,
}

/// One request as the service saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub with_token: bool,
}

#[derive(Debug)]
struct State {
    meta: Metadata,
    /// Issued tokens and when they expire.
    tokens: Vec<(String, Instant)>,
    log: Vec<Logged>,
    issued: u64,
}

/// A running service; it stops accepting when dropped (the thread ends at
/// the next connection attempt or process exit).
#[derive(Debug)]
pub struct Imds {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(std::io::Error::other("malformed request line"));
    };
    let (method, path) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(std::io::Error::other("request head cut short"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(Request {
        method,
        path,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

impl State {
    fn token_ok(&mut self, t: &str) -> bool {
        let now = Instant::now();
        self.tokens.retain(|(_, exp)| *exp > now);
        self.tokens.iter().any(|(k, _)| k == t)
    }

    /// (status, body) for one request.
    fn answer(&mut self, req: &Request) -> (u16, Vec<u8>) {
        if req.path == TOKEN_PATH {
            if !self.meta.token_api {
                return (404, Vec::new());
            }
            if req.method != "PUT" {
                return (405, Vec::new());
            }
            let ttl = req.header(TTL_HEADER).and_then(|v| v.parse::<u64>().ok());
            let Some(ttl) = ttl.filter(|t| (1..=MAX_TTL).contains(t)) else {
                return (400, b"missing or invalid TTL header\n".to_vec());
            };
            // Tokens need only be unguessable to other guests, and there are none:
            // a digest of the instance and a counter keeps runs reproducible.
            self.issued += 1;
            let token = hex::encode(Sha256::digest(
                format!("{}:{}", self.meta.instance_id, self.issued).as_bytes(),
            ));
            self.tokens
                .push((token.clone(), Instant::now() + Duration::from_secs(ttl)));
            return (200, token.into_bytes());
        }
        if req.method != "GET" {
            return (405, Vec::new());
        }
        match req.header(TOKEN_HEADER).map(str::to_string) {
            Some(t) if !self.token_ok(&t) => return (401, Vec::new()),
            None if self.meta.require_token => return (401, Vec::new()),
            _ => {}
        }
        match req.path.as_str() {
            "/latest/user-data" => (200, self.meta.user_data.clone()),
            "/latest/meta-data" | "/latest/meta-data/" => (200, b"hostname\ninstance-id".to_vec()),
            "/latest/meta-data/instance-id" => (200, self.meta.instance_id.clone().into_bytes()),
            "/latest/meta-data/hostname" => (200, self.meta.hostname.clone().into_bytes()),
            _ => (404, Vec::new()),
        }
    }
}

fn serve_one(state: &Mutex<State>, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let req = read_request(&stream)?;
    let (status, body) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let (status, body) = s.answer(&req);
        let with_token = req.header(TOKEN_HEADER).is_some();
        eprintln!(
            "basalt boot: metadata service: {} {} -> {status}{}",
            req.method,
            req.path,
            if with_token { " (IMDSv2 token)" } else { "" }
        );
        s.log.push(Logged {
            method: req.method.clone(),
            path: req.path.clone(),
            status,
            with_token,
        });
        (status, body)
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

impl Imds {
    /// Listen on 127.0.0.1 (a free port) and serve from a thread.
    pub fn start(meta: Metadata) -> std::io::Result<Imds> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            meta,
            tokens: Vec::new(),
            log: Vec::new(),
            issued: 0,
        }));
        let s = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if Arc::strong_count(&s) == 1 {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    if let Err(e) = serve_one(&s, conn) {
                        eprintln!("basalt imds: {e}");
                    }
                });
            }
        });
        Ok(Imds { addr, state })
    }

    /// Requests served so far (for tests; `basalt boot` prints each one
    /// as it is served).
    #[allow(dead_code)]
    pub fn log(&self) -> Vec<Logged> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .log
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(addr: SocketAddr, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    fn meta(require_token: bool) -> Metadata {
        Metadata {
            user_data: b"#!/bin/sh\necho hi\n".to_vec(),
            instance_id: "i-0123".into(),
            hostname: "h".into(),
            require_token,
            token_api: true,
        }
    }

    #[test]
    fn v2_then_v1_and_errors() {
        let imds = Imds::start(meta(false)).unwrap();
        let a = imds.addr;
        let (st, token) = call(
            a,
            "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
        );
        assert_eq!(st, 200);
        assert_eq!(token.len(), 64);
        let cases: Vec<(String, u16, &str)> = vec![
            (
                format!("GET /latest/user-data HTTP/1.1\r\nX-aws-ec2-metadata-token: {token}\r\n\r\n"),
                200,
                "#!/bin/sh\necho hi\n",
            ),
            ("GET /latest/user-data HTTP/1.1\r\n\r\n".into(), 200, "#!/bin/sh"),
            (
                "GET /latest/user-data HTTP/1.1\r\nX-aws-ec2-metadata-token: forged\r\n\r\n".into(),
                401,
                "",
            ),
            ("PUT /latest/api/token HTTP/1.1\r\n\r\n".into(), 400, "TTL"),
            (
                "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 99999\r\n\r\n".into(),
                400,
                "TTL",
            ),
            ("GET /latest/api/token HTTP/1.1\r\n\r\n".into(), 405, ""),
            ("GET /latest/meta-data/instance-id HTTP/1.1\r\n\r\n".into(), 200, "i-0123"),
            ("GET /latest/nothing HTTP/1.1\r\n\r\n".into(), 404, ""),
        ];
        for (raw, want, body) in &cases {
            let (st, b) = call(a, raw);
            assert_eq!(st, *want, "{raw}");
            assert!(b.contains(body), "{raw}: {b:?}");
        }
        let log = imds.log();
        assert_eq!(log.len(), cases.len() + 1);
        assert_eq!(
            log[1],
            Logged {
                method: "GET".into(),
                path: "/latest/user-data".into(),
                status: 200,
                with_token: true
            }
        );
        assert!(!log[2].with_token);
    }

    #[test]
    fn v1_refused_when_tokens_required() {
        let imds = Imds::start(meta(true)).unwrap();
        let (st, _) = call(imds.addr, "GET /latest/user-data HTTP/1.1\r\n\r\n");
        assert_eq!(st, 401);
    }

    #[test]
    fn v1_only_service_has_no_token_api() {
        let imds = Imds::start(Metadata {
            token_api: false,
            ..meta(false)
        })
        .unwrap();
        let (st, _) = call(
            imds.addr,
            "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
        );
        assert_eq!(st, 404);
        let (st, body) = call(imds.addr, "GET /latest/user-data HTTP/1.1\r\n\r\n");
        assert_eq!((st, body.as_str()), (200, "#!/bin/sh\necho hi\n"));
    }
}
