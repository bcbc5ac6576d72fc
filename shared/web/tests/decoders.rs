//! Property tests of every decoder of client input: path ids, the query of every listing,
//! the `Idempotency-Key` and `Authorization` headers, bearer tokens, and the JSON body of
//! every route. Whatever bytes arrive, each answers a value or a 400 (a 401 for
//! credentials), never a panic and never a 5xx. (Cursors are applied to the keysets in
//! `domain`'s own property tests, and through each listing against a database in the
//! tools' tests.)

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::routing::get;
use domain::id::Id;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use web::error::ApiError;
use web::extract::{Path, Query, parse_object};
use web::idempotency::IdempotencyKey;
use web::state::AppState;
use web::tokens::Tokens;

const KEY: &[u8] = b"property-test-signing-key-0123456789abcdef";

/// Bytes as a client may put them in a URL: every one percent-encoded, or the printable
/// ones raw.
fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        "[!$&'()*+,;=:@._~a-zA-Z0-9%-]{0,64}",
        "[0-9]{1,30}",
        "-?[0-9]{1,25}(\\.[0-9]{0,5})?([eE][+-]?[0-9]{1,3})?",
    ]
}

/// A query string: key/value pairs with the listings' parameter names (and others) and
/// any values, or any bytes at all.
fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("limit".to_string()),
        Just("cursor".to_string()),
        Just("sort".to_string()),
        Just("status".to_string()),
        Just("category_id".to_string()),
        Just("min_price".to_string()),
        Just("max_price".to_string()),
        Just("in_stock".to_string()),
        Just("q".to_string()),
        url_text(),
    ];
    prop_oneof![
        proptest::collection::vec((key, url_text()), 0..6).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
        url_text(),
    ]
}

fn request_parts(uri: &str) -> axum::http::request::Parts {
    Request::builder()
        .uri(uri)
        .body(())
        .expect("a valid URI")
        .into_parts()
        .0
}

#[track_caller]
fn assert_bad_request(err: &ApiError, what: &str) {
    assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{what}: {err:?}");
}

async fn query_of<T: DeserializeOwned + domain::validate::Validate>(query: &str) {
    let mut parts = request_parts(&format!("/x?{query}"));
    if let Err(err) = Query::<T>::from_request_parts(&mut parts, &()).await {
        assert_bad_request(&err, query);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A state whose pool never connects (nothing here may reach the database). Made inside
/// the runtime: the pool starts a task of its own.
fn offline_state() -> AppState {
    AppState {
        pool: sqlx::MySqlPool::connect_lazy("mysql://nobody@127.0.0.1:9/none").unwrap(),
        tokens: Arc::new(Tokens::new(
            KEY,
            Duration::from_secs(3600),
            None,
            Duration::MAX,
        )),
        credentials: None,
        order_limits: domain::settings::OrderLimits::default(),
    }
}

fn id_routes() -> Router {
    Router::new()
        .route(
            "/one/{id}",
            get(|Path(id): Path<Id>| async move { id.to_string() }),
        )
        .route(
            "/two/{a}/{b}",
            get(|Path((a, b)): Path<(Id, Id)>| async move { format!("{a}/{b}") }),
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// `Path<Id>` and `Path<(Id, Id)>`, as the routes use them.
    #[test]
    fn path_ids_are_ids_or_400(a in url_text(), b in url_text()) {
        prop_assume!(!a.is_empty() && !b.is_empty());
        let router = id_routes();
        runtime().block_on(async {
            for uri in [format!("/one/{a}"), format!("/two/{a}/{b}")] {
                let request = Request::get(&uri).body(Body::empty()).unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                assert!(
                    status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                    "{uri}: {status}"
                );
            }
        });
    }

    /// The query of every listing: products, categories, reviews, orders, payments and
    /// addresses.
    #[test]
    fn every_listing_query_is_a_value_or_400(query in query_string()) {
        runtime().block_on(async {
            query_of::<domain::products::ProductQuery>(&query).await;
            query_of::<domain::categories::CategoryQuery>(&query).await;
            query_of::<domain::reviews::ReviewQuery>(&query).await;
            query_of::<domain::orders::OrderQuery>(&query).await;
            query_of::<domain::payments::PaymentQuery>(&query).await;
            query_of::<domain::addresses::AddressQuery>(&query).await;
        });
    }

    /// `Idempotency-Key`: any bytes a header can carry.
    #[test]
    fn idempotency_keys_are_keys_or_400(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        let mut parts = request_parts("/orders");
        parts.headers.insert("idempotency-key", value);
        runtime().block_on(async {
            match IdempotencyKey::from_request_parts(&mut parts, &()).await {
                Ok(IdempotencyKey(Some(key))) => assert!((1..=255).contains(&key.len())),
                Ok(IdempotencyKey(None)) => panic!("a key was sent"),
                Err(err) => assert_bad_request(&err, "Idempotency-Key"),
            }
        });
    }

    /// `Authorization`: any header value, any scheme, any token text, and tokens signed
    /// with the right key over arbitrary claims.
    #[test]
    fn authorization_is_a_caller_or_401(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        token in "[A-Za-z0-9._~+/=-]{0,300}",
        claims in proptest::collection::hash_map(claim_name(), json_leaf(), 0..8),
        sub in "[^0-9]*",
    ) {
        let mut signed_claims: serde_json::Map<String, serde_json::Value> =
            claims.into_iter().collect();
        signed_claims.insert("sub".into(), sub.into());
        let signed = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &signed_claims,
            &jsonwebtoken::EncodingKey::from_secret(KEY),
        )
        .unwrap();
        let mut values: Vec<HeaderValue> = HeaderValue::from_bytes(&bytes).into_iter().collect();
        for text in [format!("Bearer {token}"), format!("bearer  {token} "), format!("Bearer {signed}")] {
            values.extend(HeaderValue::from_str(&text));
        }
        runtime().block_on(async {
            let state = offline_state();
            for token in [token.as_str(), signed.as_str()] {
                let err = state.tokens.verify(token).await.err();
                if token == token.trim() && !token.is_empty() {
                    let status = err.map(|e| e.status());
                    // The signed tokens carry no user id: refused before any lookup.
                    assert_eq!(status, Some(StatusCode::UNAUTHORIZED), "{token}");
                }
            }
            for value in values {
                let mut parts = request_parts("/users/1");
                parts.headers.insert("authorization", value.clone());
                let outcome = web::auth::AuthUser::from_request_parts(&mut parts, &state).await;
                let err = outcome.expect_err("no token here names a user");
                assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{value:?}");
            }
        });
    }

    /// The JSON body of every route that takes one, as bytes of any kind.
    #[test]
    fn any_bytes_are_a_body_or_400(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        every_body(&bytes);
    }

    /// The JSON body of every route, as objects with the routes' field names and values of
    /// any type, any size and any precision.
    #[test]
    fn any_object_is_a_body_or_400(fields in proptest::collection::vec((field_name(), json_text()), 0..8)) {
        let body = format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect::<Vec<_>>()
                .join(",")
        );
        every_body(body.as_bytes());
    }
}

/// `parse_object` into each body type the routes read.
fn every_body(bytes: &[u8]) {
    fn one<T: DeserializeOwned + domain::validate::Validate>(bytes: &[u8]) {
        if let Err(err) = parse_object::<T>(bytes) {
            assert_bad_request(&err, &String::from_utf8_lossy(bytes));
        }
    }
    one::<domain::users::Registration>(bytes);
    one::<domain::users::Credentials>(bytes);
    one::<domain::users::UserPatch>(bytes);
    one::<domain::products::NewProduct>(bytes);
    one::<domain::products::ProductPatch>(bytes);
    one::<domain::categories::NewCategory>(bytes);
    one::<domain::categories::CategoryPatch>(bytes);
    one::<domain::cart::SetQuantity>(bytes);
    one::<domain::cart::Checkout>(bytes);
    one::<domain::orders::NewOrder>(bytes);
    one::<domain::orders::StatusChange>(bytes);
    one::<domain::payments::NewPayment>(bytes);
    one::<domain::reviews::NewReview>(bytes);
    one::<domain::addresses::PostalAddress>(bytes);
}

/// The claims the token code reads or validates, and others.
fn claim_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec!["exp", "iat", "nbf", "role", "ver", "aud", "iss"])
            .prop_map(str::to_string),
        "[a-z]{1,4}",
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "name",
            "email",
            "password",
            "current_password",
            "role",
            "description",
            "price",
            "stock",
            "category_id",
            "items",
            "product_id",
            "quantity",
            "user_id",
            "shipping_address_id",
            "shipping_address",
            "line1",
            "line2",
            "postal_code",
            "city",
            "country",
            "phone",
            "status",
            "tracking_number",
            "order_id",
            "amount",
            "method",
            "rating",
            "comment",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<u64>().prop_map(Into::into),
        any::<f64>().prop_map(Into::into),
        ".{0,40}".prop_map(Into::into),
    ]
}

/// JSON text for a field's value: any JSON value, nested, or a number literal no Rust
/// number type holds (huge, tiny, negative zero, many decimals).
fn json_text() -> impl Strategy<Value = String> {
    let value = json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Into::into),
            proptest::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.prop_map(|v| v.to_string()),
        "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,6})?",
        Just("[{\"product_id\":1,\"quantity\":1}]".to_string()),
    ]
}
