//! Extra TCP ports forwarded from the host's loopback to the guest
//! (`basalt boot --forward HOST:GUEST`), beside the ssh forward: QEMU user
//! networking's `hostfwd=tcp:127.0.0.1:HOST-:GUEST`.

use std::fmt;
use std::str::FromStr;

/// One `HOST:GUEST` forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Port on 127.0.0.1.
    pub host: u16,
    /// Port on the guest.
    pub guest: u16,
}

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Forward, String> {
        let (h, g) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not HOST:GUEST (two port numbers)"))?;
        let port = |what: &str, v: &str| -> Result<u16, String> {
            match v.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("{what} port {v:?} in {s:?} is not 1-65535")),
                Ok(p) => Ok(p),
            }
        };
        Ok(Forward {
            host: port("host", h)?,
            guest: port("guest", g)?,
        })
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.guest)
    }
}

/// The `-netdev user` option text for `forwards` (each with a leading comma).
pub fn hostfwd_options(forwards: &[Forward]) -> String {
    forwards
        .iter()
        .map(|f| format!(",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        for (text, want) in [
            ("8080:80", Ok((8080, 80))),
            ("2379:2379", Ok((2379, 2379))),
            ("80", Err("is not HOST:GUEST")),
            ("0:80", Err("host port \"0\"")),
            ("80:70000", Err("guest port \"70000\"")),
            ("a:80", Err("host port \"a\"")),
            (":80", Err("host port \"\"")),
        ] {
            let got = text.parse::<Forward>().map(|f| (f.host, f.guest));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (g, w) => panic!("{text}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn netdev_text() {
        let fw = [
            Forward {
                host: 8080,
                guest: 80,
            },
            Forward {
                host: 9000,
                guest: 9,
            },
        ];
        assert_eq!(
            hostfwd_options(&fw),
            ",hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:9000-:9"
        );
        assert_eq!(hostfwd_options(&[]), "");
        assert_eq!(fw[0].to_string(), "8080:80");
    }
}
