//! The AWS SDK as the functions use it: one configuration honouring `AWS_ENDPOINT_URL`
//! (how the tests reach moto), and secrets read from Secrets Manager.

use crate::secret::{ConfigError, Secret};

pub(crate) async fn secrets_client(
    var: &impl Fn(&str) -> Option<String>,
) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(var).await)
}

/// The AWS SDK's configuration, honouring `AWS_ENDPOINT_URL` (how tests reach moto) and
/// `AWS_REGION`.
pub async fn sdk_config(var: &impl Fn(&str) -> Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = var("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The key that seals webhook signing secrets in the database, so that the database alone
/// cannot sign: Secrets Manager (`WEBHOOK_KEY_ARN`) on AWS, `WEBHOOK_KEY` locally.
pub async fn webhook_key(var: &impl Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
    match var("WEBHOOK_KEY_ARN") {
        Some(arn) => Ok(Secret::new(
            fetch_secret(&secrets_client(var).await, &arn).await?,
        )),
        None => var("WEBHOOK_KEY")
            .map(Secret::new)
            .ok_or(ConfigError::Missing("WEBHOOK_KEY")),
    }
}

pub(crate) async fn fetch_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, ConfigError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            arn: arn.to_string(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::Secret {
            arn: arn.to_string(),
            reason: "has no string value".into(),
        })
}

/// The text of a secret named by an environment variable holding its ARN, or `None` when
/// the variable is unset. `AWS_ENDPOINT_URL` is honoured, as for every other secret.
pub async fn secret_named_by(variable: &'static str) -> Result<Option<Secret>, ConfigError> {
    let var = |name: &str| std::env::var(name).ok();
    let Some(arn) = var(variable) else {
        return Ok(None);
    };
    let client = secrets_client(&var).await;
    fetch_secret(&client, &arn)
        .await
        .map(|text| Some(Secret::new(text)))
}
