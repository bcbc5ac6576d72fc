//! What makes an account's email and password acceptable: the one place these rules live,
//! for registration, updates, the deploy-time admin and the local tools alike.

use unicode_normalization::UnicodeNormalization;

/// The longest email an account can have, in characters (RFC 5321's path limit, and the
/// column's size). Checked on the normalised form: lower-casing and NFKC can lengthen a
/// string ("İ" becomes "i̇", two characters).
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// An account's email: normalised (see [`normalize`]: how accounts are keyed and
/// compared), valid, and at most [`MAX_EMAIL_CHARS`] once so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let email = normalize(raw);
        if fits(&email) && email_address::EmailAddress::is_valid(&email) {
            Ok(Email(email))
        } else {
            Err("must be a valid email address")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How any text offered as an email is compared and stored: Unicode NFKC, lower-cased,
/// trimmed. So the composed and decomposed spellings of "zoë" (NFC, NFD) and full-width
/// forms ("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ") are one account, in any case. NFKC runs again
/// after lower-casing, whose output is not always normalised ("J" and a combining caron
/// lower-case to "j" and the caron, which compose to "ǰ"), so that normalising twice
/// changes nothing (accounts folded once stay folded).
pub fn normalize(raw: &str) -> String {
    let lowered: String = raw.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect::<String>().trim().to_string()
}

/// Whether a normalised email fits an account's email column.
pub fn fits(normalized: &str) -> bool {
    normalized.chars().count() <= MAX_EMAIL_CHARS
}

/// A new password: 8 to 128 characters. Never shown in debug output or logs.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Password, &'static str> {
        if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&raw.chars().count()) {
            Ok(Password(raw))
        } else {
            Err("must be 8 to 128 characters long")
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_before_they_are_measured() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert!(Email::parse("ada").is_err());
        assert!(Email::parse("a@").is_err());
        // 126 + 1 + 11 = 138 characters as typed, 264 once "İ" is lower-cased.
        assert!(Email::parse(&format!("{}@example.com", "İ".repeat(126))).is_err());
        // Lengths around the limit, with parts each valid on its own.
        let domain = format!("{0}.{0}.{0}.com", "d".repeat(60));
        let longest = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(longest.chars().count(), 251);
        assert!(Email::parse(&longest).is_ok());
        let long_domain = format!("{0}.{0}.{0}.{0}.com", "d".repeat(60));
        assert!(Email::parse(&format!("a@{long_domain}")).is_ok());
        assert!(Email::parse(&format!("{}@{long_domain}", "a".repeat(10))).is_err());
    }

    #[test]
    fn canonically_equal_spellings_are_one_email() {
        let nfc = "zo\u{eb}@example.org";
        let nfd = "zoe\u{308}@example.org";
        assert_ne!(nfc, nfd);
        assert_eq!(normalize(nfd), nfc);
        assert_eq!(normalize("ZOE\u{308}@Example.org"), nfc);
        assert_eq!(
            normalize(
                "\u{ff41}\u{ff44}\u{ff41}\u{ff20}\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.COM"
            ),
            "ada@example.com",
            "full-width forms"
        );
        assert_eq!(
            normalize("\u{3000}ada@example.com\u{3000}"),
            "ada@example.com"
        );
        // The Kelvin sign and the Angstrom sign are letters in disguise.
        assert_eq!(
            normalize("\u{212a}\u{212b}@example.com"),
            "k\u{e5}@example.com"
        );
        assert!(Email::parse("\u{ff41}\u{ff44}\u{ff41}@example.com").is_ok());
        // Lower-casing can make a pair that composes.
        assert_eq!(normalize("J\u{30c}@example.com"), "\u{1f0}@example.com");
        // Accents still matter: zoe and zoë are two addresses.
        assert_ne!(normalize("zoe@example.org"), normalize(nfd));
    }

    /// Normalising an email already normalised changes nothing, for every character there
    /// is: folding stored emails once is enough.
    #[test]
    fn normalising_is_idempotent_for_every_character() {
        let mut unstable = Vec::new();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let once = normalize(&format!("a{c}b"));
            if normalize(&once) != once {
                unstable.push(c);
            }
        }
        assert!(unstable.is_empty(), "{unstable:?}");
    }

    #[test]
    fn passwords_are_counted_in_characters_and_never_printed() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(
            Password::parse("ééééééé".into()).is_err(),
            "7 characters, 14 bytes"
        );
        assert!(Password::parse("p".repeat(128)).is_ok());
        assert!(Password::parse("p".repeat(129)).is_err());
        let secret = Password::parse("correct horse".into()).unwrap();
        assert_eq!(format!("{secret:?}"), "Password(..)");
    }
}
