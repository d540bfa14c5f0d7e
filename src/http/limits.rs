//! Connection limits: a cap per client address and a global one. What is over
//! them is refused at once: a queued connection would wait behind those that
//! hold the slots, which is all a slow or never-reading client needs to keep
//! Prometheus out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

pub use crate::config::{
    DEFAULT_MAX_CONNECTIONS as MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT as MAX_CONNECTIONS_PER_CLIENT,
};

/// Beyond the global cap, a client that holds no connection yet still gets
/// one of this many extra slots: a flood from many addresses at once does not
/// lock out a scraper that connects afresh.
const RESERVE: usize = 64;

/// Counts connections per client and in all.
#[derive(Debug)]
pub struct ConnectionLimits {
    global: usize,
    per_client: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; frees its slot when dropped.
#[derive(Debug)]
pub struct Admitted {
    limits: Arc<ConnectionLimits>,
    client: IpAddr,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client holds its share already.
    PerClient,
    /// The server holds all it serves.
    Global,
}

impl ConnectionLimits {
    /// At most `global` connections, `per_client` of them from one address.
    pub fn new(global: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            global: global.max(1),
            per_client: per_client.max(1),
            held: Mutex::default(),
        })
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refused> {
        let client = client_of(peer);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.by_client.get(&client).copied().unwrap_or(0);
        if mine >= self.per_client {
            return Err(Refused::PerClient);
        }
        let room = if mine == 0 {
            self.global + RESERVE
        } else {
            self.global
        };
        if held.total >= room {
            return Err(Refused::Global);
        }
        held.total += 1;
        *held.by_client.entry(client).or_insert(0) += 1;
        Ok(Admitted {
            limits: Arc::clone(self),
            client,
        })
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

/// The address a limit counts: IPv4 as is, IPv6 by its /64, the block one
/// host usually gets (and can pick any address from).
pub fn client_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_client_over_its_share_is_refused_and_others_still_get_in() {
        let limits = ConnectionLimits::new(4, 2);
        let a = [limits.admit(ip("10.0.0.1")), limits.admit(ip("10.0.0.1"))];
        assert!(a.iter().all(Result::is_ok));
        assert_eq!(
            limits.admit(ip("10.0.0.1")).unwrap_err(),
            Refused::PerClient
        );
        let b = limits.admit(ip("10.0.0.2"));
        assert!(b.is_ok());
        drop(a);
        assert_eq!(limits.held(), 1);
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn the_global_cap_keeps_a_reserve_for_new_clients() {
        let limits = ConnectionLimits::new(2, 2);
        let _a = [limits.admit(ip("10.0.0.1")), limits.admit(ip("10.0.0.1"))];
        let b = limits.admit(ip("10.0.0.2")).expect("a first connection");
        assert_eq!(limits.admit(ip("10.0.0.2")).unwrap_err(), Refused::Global);
        drop(b);
        assert_eq!(limits.held(), 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let limits = ConnectionLimits::new(10, 1);
        let _a = limits.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8::2")).unwrap_err(),
            Refused::PerClient
        );
        assert!(limits.admit(ip("2001:db8:0:1::1")).is_ok());
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
