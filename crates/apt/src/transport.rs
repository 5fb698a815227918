//! Fetching `http://`, `https://` and `file://` URLs.
//!
//! Network fetches use bounded timeouts and are retried with exponential backoff
//! (no jitter, so behaviour is reproducible) when the failure looks transient:
//! connection problems, timeouts, HTTP 408/429/5xx. A 404/410 is reported as
//! [`Error::NotFound`] so callers can fall back (for example from a by-hash path).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// How many attempts a transient failure gets, and the first backoff delay.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// An HTTP(S) + file client. Cheap to clone; share one between threads.
#[derive(Clone)]
pub struct Transport {
    agent: ureq::Agent,
    attempts: u32,
    first_backoff: Duration,
}

/// Why one attempt failed, and whether retrying could help.
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) transient: bool,
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport {
    /// A transport with the default timeouts (connect 15 s, per read 60 s) and retries.
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_resolve(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .max_redirects(5)
            .user_agent(concat!("basalt/", env!("CARGO_PKG_VERSION")))
            .build();
        Transport {
            agent: config.into(),
            attempts: ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
        }
    }

    /// Same transport with a different retry policy (tests use short delays).
    pub fn with_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.first_backoff = first_backoff;
        self
    }

    /// Opens `url` for reading (one attempt, no retry).
    pub(crate) fn open(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, Failure> {
        if let Some(path) = url.strip_prefix("file://") {
            let path = PathBuf::from(path);
            return match std::fs::File::open(&path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure {
                    error: Error::NotFound { url: url.into() },
                    transient: false,
                }),
                Err(e) => Err(Failure {
                    error: Error::Fetch {
                        url: url.into(),
                        msg: e.to_string(),
                    },
                    transient: false,
                }),
            };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure {
                error: Error::BadUrl {
                    url: url.into(),
                    msg: "only http://, https:// and file:// URLs are supported".into(),
                },
                transient: false,
            });
        }
        let resp = self.agent.get(url).call().map_err(|e| {
            let transient = matches!(
                e,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_)
                    | ureq::Error::BodyStalled
            );
            Failure {
                error: Error::Fetch {
                    url: url.into(),
                    msg: e.to_string(),
                },
                transient,
            }
        })?;
        let status = resp.status().as_u16();
        match status {
            200 => Ok(Box::new(resp.into_body().into_reader())),
            404 | 410 => Err(Failure {
                error: Error::NotFound { url: url.into() },
                transient: false,
            }),
            _ => Err(Failure {
                error: Error::Fetch {
                    url: url.into(),
                    msg: format!("HTTP status {status}"),
                },
                transient: status == 408 || status == 429 || status >= 500,
            }),
        }
    }

    /// Runs `attempt` (which opens and consumes one URL) until it succeeds, fails
    /// permanently, or runs out of attempts. `attempt` must start from scratch each time.
    pub(crate) fn retry<T>(
        &self,
        mut attempt: impl FnMut(&Self) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut delay = self.first_backoff;
        let mut n = 1;
        loop {
            match attempt(self) {
                Ok(v) => return Ok(v),
                Err(f) if f.transient && n < self.attempts => {
                    log::info!("{} (attempt {n} of {}), retrying", f.error, self.attempts);
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                    n += 1;
                }
                Err(f) => {
                    return Err(match f.error {
                        Error::Fetch { url: u, msg } if n > 1 => Error::Fetch {
                            url: u,
                            msg: format!("{msg} (after {n} attempts)"),
                        },
                        other => other,
                    });
                }
            }
        }
    }

    /// Fetches `url` fully into memory, refusing bodies larger than `limit` bytes.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        self.retry(|t| {
            let reader = t.open(url)?;
            let mut buf = Vec::new();
            reader
                .take(limit.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(|e| read_failure(url, &e))?;
            if u64::try_from(buf.len()).unwrap_or(u64::MAX) > limit {
                return Err(Failure {
                    error: Error::Fetch {
                        url: url.into(),
                        msg: format!("larger than the {limit}-byte limit"),
                    },
                    transient: false,
                });
            }
            Ok(buf)
        })
    }
}

/// A read error in the middle of a body: transient (the connection may have dropped).
pub(crate) fn read_failure(url: &str, e: &std::io::Error) -> Failure {
    Failure {
        error: Error::Fetch {
            url: url.into(),
            msg: format!("reading body: {e}"),
        },
        transient: true,
    }
}
