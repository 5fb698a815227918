//! DHCPv4 messages (RFC 2131, options RFC 2132): just what /init needs to
//! lease an address for fetching EC2 user-data: DISCOVER, OFFER, REQUEST,
//! ACK/NAK. Pure encoding and decoding; the socket work is in `net.rs`.

use std::net::Ipv4Addr;

/// BOOTP fixed header length (RFC 2131 figure 1), before the magic cookie.
const HEADER_LEN: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
const HLEN_ETHERNET: u8 = 6;
/// "Broadcast" flag: ask the server to broadcast its reply, since we have
/// no address to receive unicast on yet (RFC 2131 4.1).
const FLAG_BROADCAST: u16 = 0x8000;

// Options (RFC 2132).
const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETER_LIST: u8 = 55;
const OPT_END: u8 = 255;

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Ack = 5,
    Nak = 6,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            _ => return None,
        })
    }
}

/// What a server's reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    pub your_ip: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub lease_secs: Option<u32>,
}

/// A client message: DISCOVER, or REQUEST for `requested` from `server`.
pub fn client_message(
    kind: MessageType,
    xid: u32,
    mac: [u8; 6],
    requested: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Vec<u8> {
    let mut m = vec![0u8; HEADER_LEN];
    m[0] = OP_REQUEST;
    m[1] = HTYPE_ETHERNET;
    m[2] = HLEN_ETHERNET;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    m[28..34].copy_from_slice(&mac);
    m.extend_from_slice(&MAGIC_COOKIE);
    m.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, kind as u8]);
    if let Some((ip, server)) = requested {
        m.extend_from_slice(&[OPT_REQUESTED_IP, 4]);
        m.extend_from_slice(&ip.octets());
        m.extend_from_slice(&[OPT_SERVER_ID, 4]);
        m.extend_from_slice(&server.octets());
    }
    m.extend_from_slice(&[OPT_PARAMETER_LIST, 2, OPT_SUBNET_MASK, OPT_ROUTER]);
    m.push(OPT_END);
    // Some servers drop BOOTP messages shorter than 300 bytes.
    m.resize(m.len().max(300), OPT_PAD);
    m
}

fn ip4(v: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// Parse a server reply addressed to `mac`; `None` for anything else
/// (other clients' replies, requests, malformed packets).
pub fn parse_reply(p: &[u8], mac: [u8; 6]) -> Option<Reply> {
    if p.len() < HEADER_LEN + 4 || p[0] != OP_REPLY || p[28..34] != mac {
        return None;
    }
    if p[HEADER_LEN..HEADER_LEN + 4] != MAGIC_COOKIE {
        return None;
    }
    let xid = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let your_ip = ip4(&p[16..20])?;
    let (mut kind, mut server_id, mut netmask, mut router, mut lease) =
        (None, None, None, None, None);
    let mut i = HEADER_LEN + 4;
    while i < p.len() {
        let code = p[i];
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            i += 1;
            continue;
        }
        let len = usize::from(*p.get(i + 1)?);
        let v = p.get(i + 2..i + 2 + len)?;
        match code {
            OPT_MESSAGE_TYPE => kind = v.first().copied().and_then(MessageType::from_u8),
            OPT_SERVER_ID => server_id = ip4(v),
            OPT_SUBNET_MASK => netmask = ip4(v),
            OPT_ROUTER => router = ip4(v),
            OPT_LEASE_TIME => {
                lease = v
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes)
            }
            _ => {}
        }
        i += 2 + len;
    }
    Some(Reply {
        kind: kind?,
        xid,
        your_ip,
        server_id,
        netmask,
        router,
        lease_secs: lease,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// A server reply built field by field from RFC 2131's layout.
    fn reply(kind: u8, xid: u32, mac: [u8; 6], opts: &[(u8, &[u8])]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = OP_REPLY;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[16..20].copy_from_slice(&[169, 254, 169, 15]);
        p[28..34].copy_from_slice(&mac);
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, kind, OPT_PAD]);
        for (c, v) in opts {
            p.push(*c);
            p.push(u8::try_from(v.len()).unwrap());
            p.extend_from_slice(v);
        }
        p.push(OPT_END);
        p
    }

    #[test]
    fn client_messages() {
        let d = client_message(MessageType::Discover, 0xdeadbeef, MAC, None);
        assert_eq!(d.len(), 300);
        assert_eq!(&d[..4], &[1, 1, 6, 0]);
        assert_eq!(&d[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&d[10..12], &[0x80, 0]);
        assert_eq!(&d[28..34], &MAC);
        assert_eq!(&d[236..243], &[99, 130, 83, 99, 53, 1, 1]);
        let r = client_message(
            MessageType::Request,
            7,
            MAC,
            Some((Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2))),
        );
        assert_eq!(
            &r[240..255],
            &[53, 1, 3, 50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]
        );
    }

    #[test]
    fn replies_table() {
        let full = reply(
            2,
            9,
            MAC,
            &[
                (OPT_SUBNET_MASK, &[255, 255, 255, 0]),
                (OPT_ROUTER, &[169, 254, 169, 2, 1, 1, 1, 1]),
                (OPT_SERVER_ID, &[169, 254, 169, 2]),
                (OPT_LEASE_TIME, &[0, 1, 81, 128]),
            ],
        );
        let got = parse_reply(&full, MAC).unwrap();
        assert_eq!(
            got,
            Reply {
                kind: MessageType::Offer,
                xid: 9,
                your_ip: Ipv4Addr::new(169, 254, 169, 15),
                server_id: Some(Ipv4Addr::new(169, 254, 169, 2)),
                netmask: Some(Ipv4Addr::new(255, 255, 255, 0)),
                router: Some(Ipv4Addr::new(169, 254, 169, 2)),
                lease_secs: Some(86400),
            }
        );
        assert_eq!(
            parse_reply(&reply(5, 9, MAC, &[]), MAC).unwrap().kind,
            MessageType::Ack
        );
        let mut other = MAC;
        other[5] = 0;
        let mut bad_cookie = full.clone();
        bad_cookie[236] = 0;
        let mut truncated_opt = reply(2, 9, MAC, &[]);
        truncated_opt.pop();
        truncated_opt.extend_from_slice(&[OPT_ROUTER, 8, 1]);
        let rejects: Vec<(&str, Vec<u8>)> = vec![
            ("other client", reply(2, 9, other, &[])),
            (
                "client op",
                client_message(MessageType::Discover, 9, MAC, None),
            ),
            ("bad cookie", bad_cookie),
            ("short", full[..100].to_vec()),
            ("unknown type", reply(8, 9, MAC, &[])),
            ("truncated option", truncated_opt),
        ];
        for (what, p) in rejects {
            assert_eq!(parse_reply(&p, MAC), None, "{what}");
        }
    }
}
