//! A handler's panic message goes to the log, under the request's id, and never to the
//! client. A binary of its own: the subscriber that captures the logs is the process's
//! only one.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body};
use web::state::AppState;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn panicking(state: AppState) -> Router {
    let routes = Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("the detail of a bug");
            }
            "unreachable"
        }),
    );
    web::router::finish(routes, state)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_panic_message_is_logged_with_the_request_id_and_never_sent(pool: MySqlPool) {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = TestApp::new(pool, panicking);
    let mut event = http_api_event("GET", "/boom", "", json!({}), None);
    event["requestContext"]["requestId"] = json!("boom-7");
    let response = invoke_lambda(app.router.clone(), event).await;
    assert_eq!(response["statusCode"], 500);
    assert!(
        !lambda_body(&response)
            .to_string()
            .contains("detail of a bug")
    );

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let logged: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON log line"))
        .filter(|line: &Value| line.to_string().contains("the detail of a bug"))
        .collect();
    assert_eq!(logged.len(), 1, "{text}");
    assert_eq!(logged[0]["level"], "ERROR");
    assert_eq!(logged[0]["span"]["request_id"], "boom-7", "{}", logged[0]);
}
