//! Every keyset listing against a real database: its own cursors continue the walk, and
//! anything else given as `cursor` (the crafted cursor of the report, a value its column
//! cannot hold, another sort's cursor, byte soup) is a 400 naming `cursor`. Never a 5xx,
//! never a panic.

use domain::page::Cursor;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestApp, TestResponse};

/// One listing and one of its sorts: the path (with any query it needs), the sort key its
/// cursors carry, what its sort column holds, and the token it needs.
struct Listing {
    path: String,
    sort: &'static str,
    kind: Kind,
    token: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Time,
    Money,
    Text(usize),
}

/// Two of everything through the API, so that each listing has a second page.
async fn listings(app: &TestApp) -> Vec<Listing> {
    let admin = app.admin().await;
    let ada = app.customer().await;
    let mut products = Vec::new();
    for (name, price) in [("Mug", 4.5), ("Tea", 7.25)] {
        let category = app
            .post("/categories")
            .token(&admin.token)
            .json(json!({"name": format!("{name}s")}))
            .send()
            .await;
        category.expect(201);
        let product = app
            .post("/products")
            .token(&admin.token)
            .json(json!({"name": name, "price": price, "stock": 10}))
            .send()
            .await;
        products.push(product.expect(201)["id"].as_u64().unwrap());
    }
    let mug = products[0];
    let bob = app.customer().await;
    for user in [&ada, &bob] {
        app.post(&format!("/products/{mug}/reviews"))
            .token(&user.token)
            .json(json!({"rating": 4}))
            .send()
            .await
            .expect(201);
    }
    let mut order = 0;
    for _ in 0..2 {
        let placed = app
            .post("/orders")
            .token(&ada.token)
            .json(json!({"items": [{"product_id": mug, "quantity": 2}]}))
            .send()
            .await;
        order = placed.expect(201)["id"].as_u64().unwrap();
        app.post(&format!("/users/{}/addresses", ada.id))
            .token(&ada.token)
            .json(json!({"name": "Ada", "line1": "1 Road", "postal_code": "1000", "city": "Brussels", "country": "BE"}))
            .send()
            .await
            .expect(201);
    }
    for amount in [1, 2] {
        app.post("/payments")
            .token(&ada.token)
            .json(json!({"order_id": order, "amount": amount, "method": "card"}))
            .send()
            .await
            .expect(201);
    }

    let mut all = Vec::new();
    for (sort, kind) in [
        ("-created_at", Kind::Time),
        ("created_at", Kind::Time),
        ("price", Kind::Money),
        ("-price", Kind::Money),
        ("name", Kind::Text(200)),
        ("-name", Kind::Text(200)),
    ] {
        all.push(Listing {
            path: format!("/products?sort={sort}"),
            sort,
            kind,
            token: None,
        });
    }
    let customer = Some(ada.token.clone());
    all.extend([
        Listing {
            path: "/categories?".into(),
            sort: "name",
            kind: Kind::Text(100),
            token: None,
        },
        Listing {
            path: format!("/products/{mug}/reviews?"),
            sort: "-created_at",
            kind: Kind::Time,
            token: None,
        },
        Listing {
            path: format!("/users/{}/orders?", ada.id),
            sort: "-created_at",
            kind: Kind::Time,
            token: customer.clone(),
        },
        Listing {
            path: format!("/orders/{order}/payments?"),
            sort: "created_at",
            kind: Kind::Time,
            token: customer.clone(),
        },
        Listing {
            path: format!("/users/{}/addresses?", ada.id),
            sort: "-created_at",
            kind: Kind::Time,
            token: customer,
        },
    ]);
    all
}

fn percent_encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn page(app: &TestApp, listing: &Listing, cursor: Option<&str>) -> TestResponse {
    let mut uri = format!("{}&limit=1", listing.path);
    if let Some(cursor) = cursor {
        uri.push_str(&format!("&cursor={}", percent_encoded(cursor)));
    }
    let mut call = app.get(&uri);
    if let Some(token) = &listing.token {
        call = call.token(token);
    }
    call.send().await
}

/// A 200 page, or a 400 that names `cursor` and nothing else.
#[track_caller]
fn page_or_bad_cursor(response: &TestResponse, what: &str) -> bool {
    match response.status.as_u16() {
        200 => true,
        400 => {
            response.invalid_field("cursor");
            false
        }
        other => panic!("{what}: {other} {}", response.body),
    }
}

/// Values each kind of column cannot hold, beside the crafted cursor of the report.
fn unholdable(kind: Kind) -> Vec<String> {
    match kind {
        Kind::Time => vec![
            "-0001-01-01 00:00:00.000000".into(),
            "0999-12-31 23:59:59.999999".into(),
            "+10000-01-01 00:00:00.000000".into(),
            "2026-12-31 23:59:60.000000".into(),
            "2026-11-24T09:30:00Z".into(),
        ],
        Kind::Money => vec![
            "100000000.00".into(),
            "-1.00".into(),
            "1e3".into(),
            "19.999".into(),
            "79228162514264337593543950336".into(),
        ],
        Kind::Text(max) => vec!["x".repeat(max + 1)],
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_listing_walks_on_and_refuses_any_other_cursor(pool: MySqlPool) {
    let app = TestApp::new(pool, tools::serve::router);
    let reported =
        "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoiLTAwMDEtMDEtMDEgMDA6MDA6MDAuMDAwMDAwIiwiaSI6MX0";
    for listing in listings(&app).await {
        let first = page(&app, &listing, None).await;
        let cursor = first.expect(200)["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: a second page", listing.path))
            .to_string();
        let second = page(&app, &listing, Some(&cursor)).await;
        assert_eq!(second.expect(200)["items"].as_array().unwrap().len(), 1);
        assert_ne!(second.body["items"][0], first.body["items"][0]);

        // The reported cursor is a wrong sort where the sort is not `-created_at`.
        let mut refused = vec![
            reported.to_string(),
            Cursor::encode("another-sort", "x".into(), 1),
            Cursor::encode(listing.sort, "2026-11-24 09:30:00.000000".into(), 0),
            format!("{cursor}="),
            "%".into(),
            "A".repeat(3000),
        ];
        for value in unholdable(listing.kind) {
            refused.push(Cursor::encode(listing.sort, value, 1));
        }
        for bad in refused {
            let response = page(&app, &listing, Some(&bad)).await;
            let what = format!("{} with {bad}", listing.path);
            assert!(!page_or_bad_cursor(&response, &what), "{what} was accepted");
        }
    }
}

/// Arbitrary cursors, generated by proptest: byte soup, and cursors of the right sort
/// carrying arbitrary values and ids.
fn any_cursor(sort: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[A-Za-z0-9_-]{0,120}",
        (
            prop_oneof![
                ".{0,40}",
                "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}\\.[0-9]{6}",
                "[+-]?[0-9]{0,14}(\\.[0-9]{0,4})?",
            ],
            any::<u64>(),
        )
            .prop_map(move |(value, id)| Cursor::encode(sort, value, id)),
    ]
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn arbitrary_cursors_on_every_listing_are_a_page_or_a_400(pool: MySqlPool) {
    const CASES: usize = 150;
    let app = TestApp::new(pool, tools::serve::router);
    let mut runner = TestRunner::deterministic();
    let mut accepted = 0;
    let mut total = 0;
    for listing in listings(&app).await {
        let strategy = any_cursor(listing.sort);
        for _ in 0..CASES {
            let cursor = strategy.new_tree(&mut runner).unwrap().current();
            let response = page(&app, &listing, Some(&cursor)).await;
            let what = format!("{} with {cursor:?}", listing.path);
            accepted += usize::from(page_or_bad_cursor(&response, &what));
            total += 1;
        }
    }
    // Some generated cursors are well-formed (and continue the walk), most are not.
    assert!(accepted > 0 && accepted < total, "{accepted} of {total}");
}
