//! `MAX_PENDING_ORDERS`: read with the rest of the configuration, within its bounds.

use platform::config::{Config, ConfigError, DEFAULT_MAX_PENDING_ORDERS};

async fn load(max_pending: Option<&str>) -> Result<Config, ConfigError> {
    let max_pending = max_pending.map(str::to_string);
    Config::load_from(move |name| match name {
        "DATABASE_URL" => Some("mysql://root@127.0.0.1:3306/shop".into()),
        "JWT_SECRET" => Some("a-signing-key-long-enough-for-the-check-0123".into()),
        "MAX_PENDING_ORDERS" => max_pending.clone(),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn the_pending_order_cap_defaults_to_ten_and_is_bounded() {
    assert_eq!(DEFAULT_MAX_PENDING_ORDERS, 10);
    assert_eq!(load(None).await.unwrap().max_pending_orders, 10);
    assert_eq!(load(Some("1")).await.unwrap().max_pending_orders, 1);
    assert_eq!(
        load(Some("10000")).await.unwrap().max_pending_orders,
        10_000
    );
    for bad in ["0", "10001", "-1", "ten", "2.5", ""] {
        match load(Some(bad)).await {
            Err(ConfigError::Invalid { name, reason }) => {
                assert_eq!(name, "MAX_PENDING_ORDERS", "{bad:?}");
                assert!(reason.contains("1 and 10000"), "{reason}");
            }
            Err(other) => panic!("{bad:?}: {other}"),
            Ok(_) => panic!("{bad:?} was accepted"),
        }
    }
}
