//! Name resolution that checks every address it hands out. The HTTP client connects only
//! to the addresses this resolver returned, so a name that resolves to a public address
//! when checked and to a private one a moment later (DNS rebinding) still reaches nothing
//! private: the check and the connection use the same answer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::outbound::address::{Refusal, check, is_loopback};

pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Where addresses come from: the system's resolver, or a fixed table (tests, and the
/// seam through which they play a hostile DNS server).
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo`, with /etc/hosts).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Answers from a table that can change between two lookups (as a hostile DNS server's
/// can); names not in the table go to the system's resolver.
#[derive(Default)]
pub struct FixedLookup {
    answers: Mutex<HashMap<String, Vec<IpAddr>>>,
}

impl FixedLookup {
    pub fn set(&self, host: &str, addrs: &[IpAddr]) {
        self.answers
            .lock()
            .expect("lookup table")
            .insert(host.to_ascii_lowercase(), addrs.to_vec());
    }
}

impl Lookup for FixedLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        let fixed = self
            .answers
            .lock()
            .expect("lookup table")
            .get(&host.to_ascii_lowercase())
            .cloned();
        match fixed {
            Some(addrs) => Box::pin(async move { Ok(addrs) }),
            None => SystemLookup.lookup(host),
        }
    }
}

/// Resolves `host` and checks every address. With `loopback_only` (the local exception for
/// `localhost`), only its loopback addresses are kept; otherwise one non-public address
/// refuses the whole name, since a client may pick any of them.
pub async fn resolve_checked(
    lookup: &dyn Lookup,
    host: &str,
    loopback_only: bool,
) -> Result<Vec<IpAddr>, Refusal> {
    let addrs = lookup
        .lookup(host.to_string())
        .await
        .map_err(|e| Refusal::Unresolvable(e.to_string()))?;
    let addrs: Vec<IpAddr> = if loopback_only {
        addrs.into_iter().filter(|ip| is_loopback(*ip)).collect()
    } else {
        for ip in &addrs {
            check(*ip)?;
        }
        addrs
    };
    if addrs.is_empty() {
        return Err(Refusal::Unresolvable("no address".into()));
    }
    Ok(addrs)
}

/// The HTTP client's resolver: every connection goes through [`resolve_checked`].
pub struct GuardedResolver {
    pub lookup: Arc<dyn Lookup>,
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.lookup.clone();
        let host = name.as_str().to_string();
        let loopback_only = self.allow_loopback && host == "localhost";
        Box::pin(async move {
            let addrs = resolve_checked(lookup.as_ref(), &host, loopback_only).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn one_private_address_refuses_the_name() {
        let lookup = FixedLookup::default();
        lookup.set("mixed.test", &[ip("203.0.113.7"), ip("10.1.2.3")]);
        let refused = resolve_checked(&lookup, "mixed.test", false).await;
        assert_eq!(
            refused,
            Err(Refusal::Forbidden {
                address: ip("10.1.2.3"),
                range: "a private address"
            })
        );
        lookup.set("public.test", &[ip("203.0.113.7")]);
        assert_eq!(
            resolve_checked(&lookup, "public.test", false).await,
            Ok(vec![ip("203.0.113.7")])
        );
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_is_refused_without_the_exception() {
        let refused = resolve_checked(&SystemLookup, "localhost", false).await;
        assert!(
            matches!(
                refused,
                Err(Refusal::Forbidden {
                    range: "a loopback address",
                    ..
                })
            ),
            "{refused:?}"
        );
        let allowed = resolve_checked(&SystemLookup, "localhost", true)
            .await
            .unwrap();
        assert!(allowed.iter().all(|a| is_loopback(*a)));
    }

    #[tokio::test]
    async fn the_loopback_exception_keeps_only_loopback_addresses() {
        let lookup = FixedLookup::default();
        lookup.set("localhost", &[ip("10.0.0.1"), ip("127.0.0.1")]);
        assert_eq!(
            resolve_checked(&lookup, "localhost", true).await,
            Ok(vec![ip("127.0.0.1")])
        );
        lookup.set("localhost", &[ip("10.0.0.1")]);
        assert!(resolve_checked(&lookup, "localhost", true).await.is_err());
    }

    #[tokio::test]
    async fn names_that_do_not_resolve_are_refused() {
        let lookup = FixedLookup::default();
        lookup.set("empty.test", &[]);
        assert!(matches!(
            resolve_checked(&lookup, "empty.test", false).await,
            Err(Refusal::Unresolvable(_))
        ));
        assert!(matches!(
            resolve_checked(&SystemLookup, "no-such-host.invalid", false).await,
            Err(Refusal::Unresolvable(_))
        ));
    }
}
