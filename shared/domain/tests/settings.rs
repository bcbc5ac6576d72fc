//! `ORDER_HOLD_SECONDS` and `MAX_PENDING_ORDERS`: read at cold start, within their bounds.

use std::time::Duration;

use domain::settings::{DEFAULT_MAX_PENDING_ORDERS, OrderLimits};
use platform::config::ConfigError;

fn load(name: &'static str, value: Option<&str>) -> Result<OrderLimits, ConfigError> {
    let value = value.map(str::to_string);
    OrderLimits::from_vars(&move |asked| (asked == name).then(|| value.clone()).flatten())
}

#[test]
fn the_pending_order_cap_defaults_to_ten_and_is_bounded() {
    let cap = |value| load("MAX_PENDING_ORDERS", value).map(|l| l.max_pending);
    assert_eq!(DEFAULT_MAX_PENDING_ORDERS, 10);
    assert_eq!(cap(None).unwrap(), 10);
    assert_eq!(cap(Some("1")).unwrap(), 1);
    assert_eq!(cap(Some("10000")).unwrap(), 10_000);
    for bad in ["0", "10001", "-1", "ten", "2.5", ""] {
        match cap(Some(bad)) {
            Err(ConfigError::Invalid { name, reason }) => {
                assert_eq!(name, "MAX_PENDING_ORDERS", "{bad:?}");
                assert!(reason.contains("1 and 10000"), "{reason}");
            }
            Err(other) => panic!("{bad:?}: {other}"),
            Ok(_) => panic!("{bad:?} was accepted"),
        }
    }
}

#[test]
fn the_stock_hold_defaults_to_thirty_minutes_and_is_bounded() {
    let hold = |value| load("ORDER_HOLD_SECONDS", value).map(|l| l.hold);
    assert_eq!(hold(None).unwrap(), Duration::from_secs(1800));
    assert_eq!(hold(Some("5")).unwrap(), Duration::from_secs(5));
    assert_eq!(hold(Some("604800")).unwrap(), Duration::from_secs(604_800));
    for bad in ["0", "604801", "-5", "soon", "1.5"] {
        match hold(Some(bad)) {
            Err(ConfigError::Invalid { name, .. }) => assert_eq!(name, "ORDER_HOLD_SECONDS"),
            Err(other) => panic!("{bad:?}: {other}"),
            Ok(_) => panic!("{bad:?} was accepted"),
        }
    }
}
