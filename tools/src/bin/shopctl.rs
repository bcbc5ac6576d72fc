//! Operator commands against `DATABASE_URL`:
//!
//! - `shopctl migrate`: create the database if missing, apply the embedded migrations and
//!   the data steps that follow them (see `domain::schema`).
//! - `shopctl admin <email> <password> [name]`: create the first admin (or promote one).
//! - `shopctl seed`: load sample categories and products once (no-op when products exist).
//! - `shopctl reset`: empty every table (the schema stays), so that `seed` starts afresh.
//!
//! Each says what it found and did in one line: `make run` shows them as its progress.

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
        Some("migrate") if !exists => {
            sqlx::MySql::create_database(&url)
                .await
                .map_err(|e| e.to_string())?;
            println!("database created");
        }
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
            let before = applied_migrations(&pool).await?;
            domain::schema::migrate(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let all = domain::MIGRATOR.iter().count();
            match all.saturating_sub(before) {
                0 => println!("migrations: up to date ({all})"),
                new => println!("migrations: {new} applied ({all} in all)"),
            }
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
            println!("admin {email} ready (user {id})");
        }
        ["seed"] => {
            use tools::seed::Seeded;
            match tools::seed::sample_data(&pool)
                .await
                .map_err(|e| e.to_string())?
            {
                Seeded::Loaded {
                    categories,
                    products,
                    discounts,
                } => println!(
                    "sample data loaded: {categories} categories, {products} products, \
                     {discounts} discount code{}",
                    if discounts == 1 { "" } else { "s" }
                ),
                Seeded::Kept {
                    categories,
                    products,
                } => println!(
                    "catalogue kept as it is: {products} products, {categories} categories \
                     (make reset brings back the sample data)"
                ),
            }
        }
        ["reset"] => {
            tools::seed::reset(&pool).await.map_err(|e| e.to_string())?;
            println!("every table emptied (the schema stays)");
        }
        _ => {
            return Err(
                "usage: shopctl migrate | admin <email> <password> [name] | seed | reset".into(),
            );
        }
    }
    Ok(())
}

/// How many migrations the database has applied so far (none before the first run).
async fn applied_migrations(pool: &sqlx::MySqlPool) -> Result<usize, String> {
    let has_table: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    if has_table == 0 {
        return Ok(0);
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(usize::try_from(applied).unwrap_or_default())
}
