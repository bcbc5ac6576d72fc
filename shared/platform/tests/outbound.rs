//! The guard on outgoing webhook requests, against real sockets on loopback: every
//! forbidden range, in every spelling a resolver accepts, by address and by name, at the
//! check and again at the request; redirects; timeouts.

#[path = "support/receiver.rs"]
mod receiver;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::outbound::address::Refusal;
use platform::outbound::resolver::FixedLookup;
use platform::outbound::{Outbound, Policy};
use receiver::{Receiver, Reply};

fn deployed() -> Policy {
    Policy::default()
}

fn local() -> Policy {
    Policy {
        allow_loopback: true,
        timeout: Duration::from_secs(10),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn forbidden(result: Result<url::Url, Refusal>) -> &'static str {
    match result {
        Err(Refusal::Forbidden { range, .. }) => range,
        other => panic!("expected a forbidden address, got {other:?}"),
    }
}

#[tokio::test]
async fn addresses_in_every_forbidden_range_are_refused_in_every_spelling() {
    let outbound = Outbound::new(deployed());
    // (URL, the range it must be refused as). The url crate reads IPv4 numbers as a
    // resolver does: decimal, octal, hex, and shortened forms all become dotted quads.
    let cases = [
        ("https://0.0.0.0/", "a \"this network\" address"),
        ("https://0/", "a \"this network\" address"),
        ("https://10.0.0.1/", "a private address"),
        ("https://012.0.0.1/", "a private address"),
        ("https://0xa000001/", "a private address"),
        (
            "https://100.64.0.1/",
            "a shared (carrier-grade NAT) address",
        ),
        (
            "https://100.127.255.254/",
            "a shared (carrier-grade NAT) address",
        ),
        ("https://127.0.0.1/", "a loopback address"),
        ("https://127.1/", "a loopback address"),
        ("https://2130706433/", "a loopback address"),
        ("https://0x7f000001/", "a loopback address"),
        ("https://0x7f.0.0.1/", "a loopback address"),
        ("https://0177.0.0.1/", "a loopback address"),
        ("https://0177.1/", "a loopback address"),
        ("https://127.0.0.1./", "a loopback address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "a link-local (cloud metadata) address",
        ),
        (
            "https://2852039166/",
            "a link-local (cloud metadata) address",
        ),
        ("https://172.16.0.1/", "a private address"),
        ("https://172.31.255.255/", "a private address"),
        ("https://192.168.1.1/", "a private address"),
        ("https://0xc0a80101/", "a private address"),
        ("https://[::1]/", "a loopback address"),
        ("https://[0:0:0:0:0:0:0:1]/", "a loopback address"),
        ("https://[::]/", "the unspecified address"),
        ("https://[fc00::1]/", "a unique local address"),
        ("https://[fd00:ec2::254]/", "a unique local address"),
        ("https://[fe80::1]/", "a link-local address"),
        (
            "https://[::ffff:127.0.0.1]/",
            "an IPv6 form of a non-public IPv4 address",
        ),
        (
            "https://[::ffff:7f00:1]/",
            "an IPv6 form of a non-public IPv4 address",
        ),
        (
            "https://[::ffff:a9fe:a9fe]/",
            "an IPv6 form of a non-public IPv4 address",
        ),
        (
            "https://[::ffff:10.0.0.1]/",
            "an IPv6 form of a non-public IPv4 address",
        ),
        (
            "https://[::ffff:192.168.0.1]/",
            "an IPv6 form of a non-public IPv4 address",
        ),
    ];
    for (url, range) in cases {
        assert_eq!(forbidden(outbound.check(url).await), range, "{url}");
        let outcome = outbound.post(url, &[], b"{}".to_vec()).await;
        assert_eq!(outcome.status, None, "{url}");
        assert!(outcome.error.unwrap().starts_with("refused"), "{url}");
    }
}

#[tokio::test]
async fn names_resolving_to_forbidden_ranges_are_refused() {
    let lookup = Arc::new(FixedLookup::default());
    let outbound = Outbound::with_lookup(deployed(), lookup.clone());
    for (name, address, range) in [
        ("zero.test", "0.1.2.3", "a \"this network\" address"),
        ("ten.test", "10.0.0.1", "a private address"),
        (
            "cgnat.test",
            "100.64.0.1",
            "a shared (carrier-grade NAT) address",
        ),
        ("loop.test", "127.0.0.53", "a loopback address"),
        (
            "metadata.test",
            "169.254.169.254",
            "a link-local (cloud metadata) address",
        ),
        ("corp.test", "172.20.0.1", "a private address"),
        ("home.test", "192.168.0.10", "a private address"),
        ("six.test", "::1", "a loopback address"),
        ("ula.test", "fd12:3456::1", "a unique local address"),
        ("link.test", "fe80::abcd", "a link-local address"),
        (
            "mapped.test",
            "::ffff:10.0.0.1",
            "an IPv6 form of a non-public IPv4 address",
        ),
    ] {
        lookup.set(name, &[ip(address)]);
        let url = format!("https://{name}/hook");
        assert_eq!(forbidden(outbound.check(&url).await), range, "{name}");
    }
    // One bad address among good ones refuses the name: a client may pick any of them.
    lookup.set("mixed.test", &[ip("203.0.113.7"), ip("10.9.9.9")]);
    assert_eq!(
        forbidden(outbound.check("https://mixed.test/").await),
        "a private address"
    );
    lookup.set("public.test", &[ip("203.0.113.7")]);
    assert!(outbound.check("https://public.test/").await.is_ok());
    // The system resolver: localhost comes from /etc/hosts.
    assert_eq!(
        forbidden(outbound.check("https://localhost/").await),
        "a loopback address"
    );
}

#[tokio::test]
async fn a_name_that_turns_private_after_the_check_reaches_nothing() {
    let target = Receiver::start(Reply::Status(200)).await;
    let lookup = Arc::new(FixedLookup::default());
    let outbound = Outbound::with_lookup(deployed(), lookup.clone());
    // Saved while the name pointed somewhere public...
    lookup.set("rebind.test", &[ip("203.0.113.7")]);
    let url = format!("https://rebind.test:{}/hook", target.port());
    assert!(outbound.check(&url).await.is_ok());
    // ...then the DNS answer changes to the shop's own host.
    lookup.set("rebind.test", &[ip("127.0.0.1")]);
    let outcome = outbound.post(&url, &[], b"{}".to_vec()).await;
    assert_eq!(outcome.status, None);
    let error = outcome.error.unwrap();
    assert!(error.contains("127.0.0.1, a loopback address"), "{error}");
    assert_eq!(
        target.connections(),
        0,
        "the receiver behind the name was reached"
    );
}

#[tokio::test]
async fn only_https_without_credentials_is_accepted() {
    let lookup = Arc::new(FixedLookup::default());
    lookup.set("hooks.example", &[ip("203.0.113.7")]);
    let outbound = Outbound::with_lookup(deployed(), lookup);
    assert!(outbound.check("https://hooks.example/in").await.is_ok());
    for (url, refusal) in [
        ("http://hooks.example/in", Refusal::NotHttps),
        ("ftp://hooks.example/in", Refusal::NotHttps),
        ("https://user:pw@hooks.example/in", Refusal::Credentials),
        ("https://user@hooks.example/in", Refusal::Credentials),
        ("not a url", Refusal::Invalid),
        ("/relative", Refusal::Invalid),
        ("https://", Refusal::Invalid),
    ] {
        assert_eq!(outbound.check(url).await.unwrap_err(), refusal, "{url}");
    }
}

#[tokio::test]
async fn the_local_exception_allows_only_the_developers_own_loopback_receiver() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    let port = receiver.port();
    let local = Outbound::new(local());
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
    ] {
        assert!(local.check(&url).await.is_ok(), "{url}");
        let outcome = local.post(&url, &[], b"{}".to_vec()).await;
        assert_eq!(outcome.status, Some(204), "{url}: {outcome:?}");
        assert!(outcome.succeeded());
    }
    assert_eq!(receiver.requests().len(), 3);
    // Nothing else private, not even other loopback spellings.
    for url in [
        format!("http://[::1]:{port}/hook"),
        format!("http://127.0.0.2:{port}/hook"),
        "http://10.0.0.1/hook".to_string(),
        "https://192.168.1.1/hook".to_string(),
        "http://example.com/hook".to_string(),
    ] {
        assert!(local.check(&url).await.is_err(), "{url}");
        assert_eq!(
            local.post(&url, &[], b"{}".to_vec()).await.status,
            None,
            "{url}"
        );
    }
    assert_eq!(receiver.requests().len(), 3);
    // The deployed policy refuses the developer's receiver too.
    let deployed = Outbound::new(deployed());
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("https://localhost:{port}/hook"),
    ] {
        assert!(deployed.check(&url).await.is_err(), "{url}");
        assert_eq!(deployed.post(&url, &[], b"{}".to_vec()).await.status, None);
    }
    assert_eq!(receiver.connections(), 3);
}

#[tokio::test]
async fn headers_and_body_arrive_as_sent() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let outbound = Outbound::new(local());
    let headers = [("webhook-id", "42".to_string())];
    let outcome = outbound
        .post(&receiver.url(), &headers, br#"{"a":1}"#.to_vec())
        .await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let request = &receiver.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("webhook-id"), Some("42"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.body, br#"{"a":1}"#);
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let redirecting = Receiver::start(Reply::Redirect(elsewhere.url())).await;
    let outbound = Outbound::new(local());
    let outcome = outbound.post(&redirecting.url(), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.status, Some(302));
    assert!(!outcome.succeeded());
    assert_eq!(outcome.error.as_deref(), Some("redirects are not followed"));
    assert_eq!(redirecting.requests().len(), 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let silent = Receiver::start(Reply::Hang).await;
    let outbound = Outbound::new(Policy {
        allow_loopback: true,
        timeout: Duration::from_millis(500),
    });
    let outcome = outbound.post(&silent.url(), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("no answer within 0.5 s"));
    assert!(outcome.duration >= Duration::from_millis(500));
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
    assert_eq!(silent.requests().len(), 1);
}

#[tokio::test]
async fn error_statuses_are_failures_with_their_code() {
    let failing = Receiver::start(Reply::Status(503)).await;
    let outbound = Outbound::new(local());
    let outcome = outbound.post(&failing.url(), &[], b"{}".to_vec()).await;
    assert_eq!(outcome.status, Some(503));
    assert!(!outcome.succeeded());
    // Nothing listens on a closed port: a transport error, with its reason.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = outbound
        .post(&format!("http://127.0.0.1:{closed}/"), &[], b"{}".to_vec())
        .await;
    assert_eq!(outcome.status, None);
    assert!(outcome.error.unwrap().to_lowercase().contains("refused"));
}

#[test]
fn policy_comes_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(Policy::from_env(&env(&[])).unwrap(), Policy::default());
    let policy = Policy::from_env(&env(&[
        ("WEBHOOK_ALLOW_LOOPBACK", "true"),
        ("WEBHOOK_TIMEOUT_SECONDS", "3"),
    ]))
    .unwrap();
    assert!(policy.allow_loopback);
    assert_eq!(policy.timeout, Duration::from_secs(3));
    assert!(Policy::from_env(&env(&[("WEBHOOK_ALLOW_LOOPBACK", "yes")])).is_err());
    assert!(Policy::from_env(&env(&[("WEBHOOK_TIMEOUT_SECONDS", "0")])).is_err());
    assert!(Policy::from_env(&env(&[("WEBHOOK_TIMEOUT_SECONDS", "31")])).is_err());
}
