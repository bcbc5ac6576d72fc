//! Operator commands against `DATABASE_URL`:
//!
//! - `shopctl migrate`: create the database if missing, apply the embedded migrations and
//!   the data steps that follow them (see `domain::schema`).
//! - `shopctl admin <email> <password> [name]`: create the first admin (or promote one).
//! - `shopctl seed`: load sample categories and products once (no-op when products exist).
//! - `shopctl reset`: empty every table (the schema stays), so that `seed` starts afresh.

use std::process::ExitCode;

use domain::users::{Email, Password};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shopctl: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
    use sqlx::migrate::MigrateDatabase;
    let exists = sqlx::MySql::database_exists(&url)
        .await
        .map_err(|e| format!("cannot reach the database in DATABASE_URL: {e}"))?;
    match args.first().map(String::as_str) {
        // A fresh server has no database yet: create it before connecting to it.
        Some("migrate") if !exists => sqlx::MySql::create_database(&url)
            .await
            .map_err(|e| e.to_string())?,
        Some("migrate") => {}
        _ if !exists => {
            return Err(
                "the database in DATABASE_URL does not exist yet: `make run` or \
                        `make db` creates and migrates the local one"
                    .into(),
            );
        }
        _ => {}
    }
    let options = platform::config::options_from_url(&url).map_err(|e| e.to_string())?;
    let pool = platform::db::pool_with(options, 2);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["migrate"] => {
            domain::schema::migrate(&pool)
                .await
                .map_err(|e| e.to_string())?;
            println!("migrations applied");
        }
        ["admin", email, password, rest @ ..] => {
            let email = Email::parse(email).map_err(|m| format!("the email {m}"))?;
            let password =
                Password::parse(password.to_string()).map_err(|m| format!("the password {m}"))?;
            let name = rest.first().copied().unwrap_or("Admin");
            let id = domain::users::upsert_admin(&pool, name, &email, password)
                .await
                .map_err(|e| e.to_string())?;
            let email = email.as_str();
            println!("admin {email} has id {id}");
        }
        ["seed"] => {
            let loaded = tools::seed::sample_data(&pool)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                if loaded {
                    "sample data loaded"
                } else {
                    "sample data already present"
                }
            );
        }
        ["reset"] => {
            tools::seed::reset(&pool).await.map_err(|e| e.to_string())?;
            println!("every table emptied");
        }
        _ => {
            return Err(
                "usage: shopctl migrate | admin <email> <password> [name] | seed | reset".into(),
            );
        }
    }
    Ok(())
}
