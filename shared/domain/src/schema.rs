//! Bringing a database up to date: the SQL migrations ([`MIGRATOR`]), then the data steps
//! SQL cannot express. Wherever migrations run (the deploy's `migrate` function, `shopctl
//! migrate`) they run through [`migrate`], so no database misses a step.

use std::collections::BTreeMap;

use sqlx::MySqlPool;
use sqlx::migrate::MigrateError;

use crate::users::account::{MAX_EMAIL_CHARS, normalize};

/// The schema migrations, embedded so that the deploy-time `migrate` function, the local
/// tools and the tests apply exactly the same ones. Tests on fresh databases apply these
/// alone: the data steps have nothing to fold there.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Why a database could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    /// Existing rows that a data step cannot change without merging accounts; a person has
    /// to decide. Nothing was changed.
    #[error("{0}")]
    Refused(String),
}

impl SchemaError {
    /// The database could not be reached (yet): trying again may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Migrate(MigrateError::Execute(err)) | Self::Database(err) => {
                platform::db::is_unavailable(err)
            }
            _ => false,
        }
    }
}

/// Applies the pending migrations, then each data step not yet recorded as done.
pub async fn migrate(pool: &MySqlPool) -> Result<(), SchemaError> {
    MIGRATOR.run(pool).await?;
    fold_emails(pool).await
}

/// The name the email fold is recorded under in `data_migrations`.
pub const EMAIL_FOLD: &str = "emails_nfkc_lower_case";

/// Accounts keyed by emails stored before emails were normalised to Unicode NFKC (see
/// [`normalize`]) are folded to that form, once. If two accounts would then share an
/// email, nothing is changed and the step refuses, naming them: merging accounts is not a
/// migration's call.
///
/// The whole step is one transaction that starts by recording itself, so a second run at
/// the same time waits for the first and then finds the step done.
async fn fold_emails(pool: &MySqlPool) -> Result<(), SchemaError> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query!("INSERT INTO data_migrations (name) VALUES (?)", EMAIL_FOLD)
        .execute(&mut *tx)
        .await;
    match claimed {
        Ok(_) => {}
        Err(err) if platform::db::is_unique_violation(&err) => return Ok(()),
        Err(err) => return Err(err.into()),
    }

    // Only emails that change can collide: the others are unique already.
    let mut moving: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = sqlx::query!(
            r#"SELECT id, CAST(email AS CHAR) AS "email!: String" FROM users
               WHERE id > ? ORDER BY id LIMIT 1000"#,
            after
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for row in batch {
            let folded = normalize(&row.email);
            if folded != row.email {
                moving.entry(folded).or_default().push((row.id, row.email));
            }
        }
    }

    let mut problems = Vec::new();
    for (folded, accounts) in &mut moving {
        let staying = sqlx::query!(
            r#"SELECT id, CAST(email AS CHAR) AS "email!: String" FROM users WHERE email = ?"#,
            folded
        )
        .fetch_optional(&mut *tx)
        .await?;
        accounts.extend(staying.map(|row| (row.id, row.email)));
        accounts.sort();
        if accounts.len() > 1 {
            let mut named: Vec<String> = accounts
                .iter()
                .map(|(id, email)| format!("user {id} ({email:?})"))
                .collect();
            let last = named.pop().unwrap_or_default();
            problems.push(format!(
                "{} and {last} would share the email {folded:?}",
                named.join(", ")
            ));
        } else if let [(id, email)] = accounts.as_slice()
            && folded.chars().count() > MAX_EMAIL_CHARS
        {
            problems.push(format!(
                "user {id} ({email:?}) becomes {folded:?}, longer than {MAX_EMAIL_CHARS} characters"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(SchemaError::Refused(format!(
            "emails are now compared in Unicode NFKC and lower case, and existing accounts \
             cannot all be folded to that form: {}. Nothing was changed: rename or merge \
             these accounts, then run the migrations again.",
            problems.join("; ")
        )));
    }
    for (folded, accounts) in &moving {
        for (id, _) in accounts {
            sqlx::query!("UPDATE users SET email = ? WHERE id = ?", folded, id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    if !moving.is_empty() {
        tracing::info!(
            folded = moving.len(),
            "emails folded to NFKC and lower case"
        );
    }
    Ok(())
}
