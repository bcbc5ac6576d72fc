//! Request ids: every response of every function carries API Gateway's request id, and
//! every log line written while serving it names it. A binary of its own: the subscriber
//! that captures the logs is the process's only one.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda};
use web::state::AppState;

type RouterFn = fn(AppState) -> axum::Router;

/// Each function, with a path it serves that writes a log line (a refusal, at debug level).
const FUNCTIONS: [(&str, RouterFn, &str); 7] = [
    ("products", products::router, "/products/999999"),
    ("categories", categories::router, "/categories/999999"),
    ("users", users::router, "/users/999999"),
    ("cart", cart::router, "/users/999999/cart"),
    ("orders", orders::router, "/orders/999999"),
    ("payments", payments::router, "/payments/999999"),
    ("reviews", reviews::router, "/reviews/999999"),
];

/// Log lines written as JSON, the format Lambda's advanced logging controls select.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_response_and_every_log_line_carry_the_gateway_request_id(pool: MySqlPool) {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    for (name, router, path) in FUNCTIONS {
        let app = TestApp::new(pool.clone(), router);
        let user = app.admin().await;
        let id = format!("gw-{name}-4b1e");
        let mut event = http_api_event(
            "GET",
            path,
            "",
            json!({"authorization": format!("Bearer {}", user.token)}),
            None,
        );
        event["requestContext"]["requestId"] = json!(id);
        // A first request opens the pooled connection; that happens in the pool's own task,
        // outside any request, so it is left out of what is checked.
        invoke_lambda(app.router.clone(), event.clone()).await;
        lines.take();
        let response = invoke_lambda(app.router.clone(), event).await;
        assert_eq!(response["statusCode"], 404, "{name}: {response}");
        assert_eq!(response["headers"]["x-request-id"], json!(id), "{name}");
        let logged = lines.take();
        assert!(!logged.is_empty(), "{name}: the refusal is logged");
        for line in &logged {
            assert_eq!(
                line["span"]["request_id"],
                json!(id),
                "{name}: every line names the request: {line}"
            );
        }
    }
}
