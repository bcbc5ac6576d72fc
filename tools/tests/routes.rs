//! One route table: each function's router serves exactly the paths openapi.json gives it
//! (`x-function`), each with exactly the methods listed there, and answers 404 on every
//! other path. A route added in code but not in openapi.json, or the reverse, fails here.
//! No database: a wrong method and an unknown path are refused before any handler runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use sqlx::mysql::MySqlPoolOptions;
use tools::functions::{FUNCTIONS, Routes};
use tower::ServiceExt;

/// Every path of the contract: the function openapi.json gives it, and its methods.
fn contract() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let spec: Value = serde_json::from_str(web::router::OPENAPI).expect("openapi.json parses");
    let mut paths = BTreeMap::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let function = item["x-function"]
            .as_str()
            .expect("every path has an x-function");
        let methods = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| ["get", "put", "post", "delete", "patch"].contains(&key.as_str()))
            .map(|method| method.to_uppercase())
            .collect();
        paths.insert(path.clone(), (function.to_string(), methods));
    }
    paths
}

/// What axum's `Allow` lists for these methods: a GET route answers HEAD too.
fn allowed(methods: &BTreeSet<String>) -> BTreeSet<String> {
    let mut allow = methods.clone();
    if methods.contains("GET") {
        allow.insert("HEAD".into());
    }
    allow
}

/// A request path for a path template, every parameter a plain id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A function's router as its Lambda completes it, over a pool that never connects.
fn router(routes: Routes) -> Router {
    let pool = MySqlPoolOptions::new()
        .connect_lazy("mysql://nobody@127.0.0.1:9/none")
        .unwrap();
    web::router::finish(routes(), testkit::state(pool))
}

/// TRACE, which no route serves: the status and the `Allow` methods.
async fn trace(router: &Router, uri: &str) -> (StatusCode, BTreeSet<String>) {
    let request = Request::builder()
        .method(Method::TRACE)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let allow = response
        .headers()
        .get(header::ALLOW)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_default()
        .split(',')
        .map(|method| method.trim().to_string())
        .filter(|method| !method.is_empty())
        .collect();
    (response.status(), allow)
}

#[tokio::test]
async fn each_function_serves_exactly_its_paths_and_methods_in_openapi() {
    let contract = contract();
    let named: BTreeSet<&str> = contract.values().map(|(f, _)| f.as_str()).collect();
    let mounted: BTreeSet<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        mounted, named,
        "tools/src/functions.rs is stale: make routes"
    );
    let mut drift = Vec::new();
    for (name, routes) in FUNCTIONS {
        let router = router(*routes);
        for (path, (function, methods)) in &contract {
            let uri = concrete(path);
            let (status, allow) = trace(&router, &uri).await;
            if function == name {
                if status != StatusCode::METHOD_NOT_ALLOWED || allow != allowed(methods) {
                    drift.push(format!(
                        "{name}: {path} answers {status} allowing {allow:?}; openapi.json has {methods:?}"
                    ));
                }
            } else if status != StatusCode::NOT_FOUND {
                drift.push(format!(
                    "{name}: {path} answers {status} allowing {allow:?}; openapi.json gives it to {function}"
                ));
            }
        }
        for uri in [
            "/",
            "/nowhere",
            "/products/1/nowhere",
            "/users/1/cart/nowhere",
        ] {
            let (status, _) = trace(&router, uri).await;
            if status != StatusCode::NOT_FOUND {
                drift.push(format!("{name}: {uri}, in no contract, answers {status}"));
            }
        }
    }
    assert!(
        drift.is_empty(),
        "routes differ from openapi.json:\n{}",
        drift.join("\n")
    );
}

/// The paths each function's source routes (the literal of every `.route("...", ...)`): a
/// path in code but not in the contract is never requested above, so only the source
/// shows it.
#[test]
fn every_path_in_a_functions_source_is_in_openapi_for_that_function() {
    let contract = contract();
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut drift = Vec::new();
    for (name, _) in FUNCTIONS {
        let mut found = 0;
        let mut sources = vec![functions.join(name).join("src")];
        while let Some(entry) = sources.pop() {
            if entry.is_dir() {
                sources.extend(entry.read_dir().unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&entry).unwrap();
            for call in text.split(".route(").skip(1) {
                let path = call
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|s| s.split('"').next());
                let Some(path) = path else {
                    drift.push(format!(
                        "{}: a .route( without a literal path",
                        entry.display()
                    ));
                    continue;
                };
                found += 1;
                if contract.get(path).map(|(f, _)| f.as_str()) != Some(name) {
                    drift.push(format!(
                        "{name} routes {path}, not given to it in openapi.json"
                    ));
                }
            }
        }
        assert!(
            found > 0,
            "{name}: no .route(\"...\") found under functions/{name}/src"
        );
    }
    assert!(drift.is_empty(), "{}", drift.join("\n"));
}
