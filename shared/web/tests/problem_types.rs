//! Every problem type a refusal can carry is documented in openapi.json, the contract
//! clients read.

use domain::error::{Conflict, Error};
use web::error::ApiError;

#[test]
fn every_conflict_kind_is_a_documented_problem_type() {
    let spec: serde_json::Value = serde_json::from_str(web::router::OPENAPI).unwrap();
    let problem = &spec["components"]["schemas"]["Problem"];
    let listed: Vec<&str> = problem["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    let described = problem["description"].as_str().unwrap();
    // Every kind there is: a new one must be added here, and to the contract.
    let kinds = [
        Conflict::InsufficientStock,
        Conflict::CartTotalTooLarge,
        Conflict::EmptyCart,
        Conflict::CartNotOrderable,
        Conflict::DuplicateEmail,
        Conflict::DuplicateCategory,
        Conflict::DuplicateReview,
        Conflict::InvalidStatusTransition,
        Conflict::OrderNotDeletable,
        Conflict::OrderHasPayments,
        Conflict::OrderNotPayable,
        Conflict::OrderExpired,
        Conflict::Overpayment,
        Conflict::AddressLimit,
        Conflict::AccountHasOpenOrders,
        Conflict::TooManyPendingOrders,
        Conflict::CartFull,
        Conflict::DiscountNotApplicable,
        Conflict::DuplicateDiscountCode,
        Conflict::UsageLimitBelowUses,
    ];
    let mut missing = Vec::new();
    for kind in kinds {
        let problem_type = format!(
            "/problems/{}",
            ApiError::from(Error::conflict(kind, "")).kind()
        );
        if !listed.contains(&problem_type.as_str())
            || !described.contains(&format!("`{problem_type}` (409)"))
        {
            missing.push(problem_type);
        }
    }
    assert!(
        missing.is_empty(),
        "not in openapi.json's Problem: {missing:?}"
    );
}
