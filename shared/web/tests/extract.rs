//! What a client is told about a body that cannot be read: where the JSON breaks (line and
//! column as serde_json counts them) in `detail`, and each field at fault by its path.

use domain::error::Error;
use domain::validate::Validate;
use serde::Deserialize;
use web::error::ApiError;
use web::extract::parse_object;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Size {
    label: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Product {
    name: String,
    price: u32,
    category_id: Option<u64>,
    size: Option<Size>,
}

impl Validate for Product {}

fn detail(body: &str) -> String {
    match parse_object::<Product>(body.as_bytes()) {
        Err(ApiError::BadRequest(detail)) => detail,
        Err(other) => panic!("{body}: not a bad request but {other:?}"),
        Ok(product) => panic!("{body}: accepted as {product:?}"),
    }
}

fn fields(body: &str) -> Vec<(String, String)> {
    match parse_object::<Product>(body.as_bytes()) {
        Err(ApiError::Domain(Error::Invalid(errors))) => {
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        }
        Err(other) => panic!("{body}: not a field error but {other:?}"),
        Ok(product) => panic!("{body}: accepted as {product:?}"),
    }
}

#[test]
fn a_missing_value_is_located() {
    // What a shell sends when a variable it interpolates is empty.
    assert_eq!(
        detail(r#"{"name":"Tea Pot","price":24,"category_id":}"#),
        "Malformed JSON at line 1, column 44: expected value."
    );
}

#[test]
fn lines_and_columns_count_from_one() {
    let body = "{\n  \"name\": \"Tea Pot\",\n  \"price\": 24,\n  \"category_id\": }\n";
    assert_eq!(
        detail(body),
        "Malformed JSON at line 4, column 18: expected value."
    );
}

#[test]
fn truncated_and_trailing_bodies_are_located() {
    assert_eq!(
        detail(r#"{"name": "Tea"#),
        "Malformed JSON at line 1, column 13: EOF while parsing a string."
    );
    assert_eq!(
        detail(r#"{"name":"Tea","price":1} x"#),
        "Malformed JSON at line 1, column 26: trailing characters."
    );
    assert_eq!(
        detail("{\"name\":\"Tea\",\n\"price\":1,,}"),
        "Malformed JSON at line 2, column 11: key must be a string."
    );
}

#[test]
fn a_body_that_is_not_an_object_says_so() {
    for body in ["", "   ", "[]", "\"x\"", "null", "hello"] {
        assert_eq!(detail(body), "The request body must be a JSON object.");
    }
}

#[test]
fn fields_at_fault_are_named_without_positions() {
    assert_eq!(
        fields(r#"{"name":"Tea","price":"cheap"}"#),
        [(
            "price".to_string(),
            "invalid type: string \"cheap\", expected u32".to_string()
        )]
    );
    assert_eq!(
        fields(r#"{"price":1}"#),
        [("name".to_string(), "is required".to_string())]
    );
    assert_eq!(
        fields(r#"{"name":"Tea","price":1,"size":{}}"#),
        [("size.label".to_string(), "is required".to_string())]
    );
    assert_eq!(
        fields(r#"{"name":"Tea","price":1,"colour":"red"}"#)[0],
        ("colour".to_string(), "is not a known field".to_string())
    );
    assert_eq!(
        fields(r#"{"name":"Tea","price":1,"size":{"label":"S","weight":1}}"#)[0],
        (
            "size.weight".to_string(),
            "is not a known field".to_string()
        )
    );
}

#[test]
fn a_field_given_twice_is_named() {
    assert_eq!(
        fields(r#"{"name":"Tea","name":"Pot","price":1}"#),
        [("name".to_string(), "is given more than once".to_string())]
    );
    assert_eq!(
        fields(r#"{"name":"Tea","price":1,"size":{"label":"S","label":"M"}}"#),
        [(
            "size.label".to_string(),
            "is given more than once".to_string()
        )]
    );
}
