//! Outgoing HTTP to addresses chosen by users (webhook receivers), guarded against server
//! side request forgery: a webhook is never a way into the shop's own network.
//!
//! - Only `https` URLs, without credentials. Locally (`WEBHOOK_ALLOW_LOOPBACK=true`, which
//!   `make run` sets) `http://127.0.0.1:<port>` and `http://localhost:<port>` are allowed
//!   too, and nothing else private. A deployed stack sets it from its `WebhookAllowLoopback`
//!   parameter, false unless `make test-deployed` sets it for the emulator, whose functions
//!   run on the receiver's machine; `make deploy` refuses it on AWS.
//! - IPv4 addresses are read as the URL standard reads them (the `url` crate turns
//!   `2130706433`, `0x7f.1` and `0177.0.0.1` into `127.0.0.1`), then checked like any other.
//! - Every address a name resolves to is checked when the URL is saved ([`Outbound::check`])
//!   and again on every connection: the client's resolver is [`GuardedResolver`], so it
//!   connects only to addresses that passed the check (no DNS rebinding in between).
//! - Redirects are never followed: a 3xx is a failed attempt.
//! - No proxy: a proxy would resolve names itself.

pub mod address;
pub mod resolver;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use url::{Host, Url};

use crate::config::ConfigError;
use crate::outbound::address::{Refusal, check};
use crate::outbound::resolver::{GuardedResolver, Lookup, SystemLookup, resolve_checked};

/// How long a receiver has to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The local exception: `http(s)://127.0.0.1:<port>` and `http(s)://localhost:<port>`.
    pub allow_loopback: bool,
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Policy {
    /// `WEBHOOK_ALLOW_LOOPBACK` (`true`/`false`, default false) and
    /// `WEBHOOK_TIMEOUT_SECONDS` (1 to 30, default 10).
    pub fn from_env(var: &impl Fn(&str) -> Option<String>) -> Result<Policy, ConfigError> {
        let allow_loopback = match var("WEBHOOK_ALLOW_LOOPBACK").as_deref() {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "WEBHOOK_ALLOW_LOOPBACK",
                    reason: "must be true or false".into(),
                });
            }
        };
        let timeout = match var("WEBHOOK_TIMEOUT_SECONDS") {
            None => DEFAULT_TIMEOUT,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=30).contains(s))
                .map(Duration::from_secs)
                .ok_or(ConfigError::Invalid {
                    name: "WEBHOOK_TIMEOUT_SECONDS",
                    reason: "must be a whole number of seconds between 1 and 30".into(),
                })?,
        };
        Ok(Policy {
            allow_loopback,
            timeout,
        })
    }
}

/// What one request came to: the status a receiver answered, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// Longest error text kept for an attempt.
const MAX_ERROR_CHARS: usize = 500;

/// The guarded HTTP client. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct Outbound {
    /// Built on the first request sent: building it reads every root certificate the
    /// system has (several milliseconds), and a process that only checks URLs (the events
    /// function saving an endpoint) never sends one. Shared by every clone.
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    lookup: Arc<dyn Lookup>,
    policy: Policy,
}

/// Where a checked URL points: an address already checked, or a name to resolve and check.
enum Destination {
    Address,
    Name { host: String, loopback_only: bool },
}

impl Outbound {
    pub fn new(policy: Policy) -> Self {
        Self::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// With another source of DNS answers (tests play a hostile DNS server through it).
    pub fn with_lookup(policy: Policy, lookup: Arc<dyn Lookup>) -> Self {
        Self {
            client: Arc::default(),
            lookup,
            policy,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .dns_resolver(GuardedResolver {
                        lookup: self.lookup.clone(),
                        allow_loopback: self.policy.allow_loopback,
                    })
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .timeout(self.policy.timeout)
                    .user_agent("shop-webhooks/1")
                    .build()
                    .map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The check made when a URL is saved: its form, and every address its host has now.
    pub async fn check(&self, url: &str) -> Result<Url, Refusal> {
        let (url, destination) = self.destination(url)?;
        if let Destination::Name {
            host,
            loopback_only,
        } = destination
        {
            resolve_checked(self.lookup.as_ref(), &host, loopback_only).await?;
        }
        Ok(url)
    }

    /// POSTs `body` as JSON. Never follows a redirect; gives up after the policy's timeout.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Outcome {
        let started = Instant::now();
        let url = match self.destination(url) {
            Ok((url, _)) => url,
            Err(refusal) => {
                return Outcome {
                    status: None,
                    error: Some(format!("refused: the URL {refusal}")),
                    duration: started.elapsed(),
                };
            }
        };
        let client = match self.client() {
            Ok(client) => client,
            Err(err) => {
                return Outcome {
                    status: None,
                    error: Some(format!("the HTTP client could not start: {err}")),
                    duration: started.elapsed(),
                };
            }
        };
        let mut request = client.post(url).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let result = request.body(body).send().await;
        let duration = started.elapsed();
        match result {
            Ok(response) => {
                let status = response.status();
                let error = status
                    .is_redirection()
                    .then(|| "redirects are not followed".to_string());
                Outcome {
                    status: Some(status.as_u16()),
                    error,
                    duration,
                }
            }
            Err(err) => Outcome {
                status: None,
                error: Some(self.describe(&err)),
                duration,
            },
        }
    }

    fn describe(&self, err: &reqwest::Error) -> String {
        if err.is_timeout() {
            return format!("no answer within {} s", self.policy.timeout.as_secs_f32());
        }
        // The chain holds the reason (a refusal by the resolver, a refused connection, a
        // certificate problem) below generic wrappers.
        let mut parts: Vec<String> = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(err);
        while let Some(e) = source {
            let text = e.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = e.source();
        }
        let text = parts.join(": ");
        text.chars().take(MAX_ERROR_CHARS).collect()
    }

    fn destination(&self, text: &str) -> Result<(Url, Destination), Refusal> {
        let url = Url::parse(text).map_err(|_| Refusal::Invalid)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        let web = matches!(url.scheme(), "http" | "https");
        let local = self.policy.allow_loopback
            && web
            && match url.host() {
                Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
                Some(Host::Domain(name)) => name == "localhost",
                _ => false,
            };
        if url.scheme() != "https" && !local {
            return Err(Refusal::NotHttps);
        }
        let destination = match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) if !local => {
                check(IpAddr::V4(ip))?;
                Destination::Address
            }
            Some(Host::Ipv6(ip)) => {
                check(IpAddr::V6(ip))?;
                Destination::Address
            }
            Some(Host::Ipv4(_)) => Destination::Address,
            Some(Host::Domain(name)) => Destination::Name {
                host: name.to_string(),
                loopback_only: local,
            },
        };
        Ok((url, destination))
    }
}
