//! Property tests of the email rule: any text normalises without panicking, normalising
//! twice changes nothing (so emails folded once stay folded), and an accepted email is
//! stored exactly as normalised.

use domain::users::Email;
use domain::users::account::{MAX_EMAIL_CHARS, normalize};
use proptest::prelude::*;

/// Text heavy in what normalisation acts on: letters with case, combining marks,
/// compatibility forms (full-width, ligatures, letter-like symbols), and any Unicode.
fn email_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9.@_+-]{1,8}",
        "[\u{300}-\u{36f}]{1,3}",
        "[\u{ff01}-\u{ff5e}]{1,4}",
        "[\u{fb00}-\u{fb06}\u{2100}-\u{214f}\u{1d400}-\u{1d7ff}]{1,3}",
        "[\u{c0}-\u{24f}\u{370}-\u{3ff}\u{400}-\u{4ff}\u{1e00}-\u{1eff}]{1,4}",
        ".{1,4}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn normalising_twice_changes_nothing(text in email_like()) {
        let once = normalize(&text);
        prop_assert_eq!(normalize(&once), once);
    }

    #[test]
    fn an_accepted_email_is_its_normal_form(text in email_like()) {
        if let Ok(email) = Email::parse(&text) {
            prop_assert_eq!(email.as_str(), normalize(&text));
            prop_assert!(email.as_str().chars().count() <= MAX_EMAIL_CHARS);
        }
    }
}
