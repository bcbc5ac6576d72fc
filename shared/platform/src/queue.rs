//! Message queues: Amazon SQS on AWS, an in-process channel locally. Messages are short
//! texts (what to do, never the data itself: the database stays the source of truth, so a
//! lost or repeated message costs time, never correctness).

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue request failed: {0}")]
    Request(String),
    #[error("the queue refused {0} message(s)")]
    Refused(usize),
    #[error("the local queue is closed")]
    Closed,
}

/// Somewhere to put messages for a consumer to take.
pub trait Queue: Send + Sync {
    /// Sends every body as one message; Ok once the queue holds all of them.
    fn send(&self, bodies: Vec<String>) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// An unbounded in-process channel: the local stand-in for SQS under `make run`.
#[derive(Clone)]
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<String>,
}

impl LocalQueue {
    /// The queue and the consumer's end of it.
    pub fn channel() -> (LocalQueue, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LocalQueue { tx }, rx)
    }
}

impl Queue for LocalQueue {
    async fn send(&self, bodies: Vec<String>) -> Result<(), QueueError> {
        for body in bodies {
            self.tx.send(body).map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}

/// SendMessageBatch takes at most ten entries.
const SQS_BATCH: usize = 10;

/// An SQS queue, named by its URL.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// A message taken from SQS by [`SqsQueue::receive`].
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The client from the environment (see [`crate::aws::sdk_config`]).
    pub async fn from_env(url: impl Into<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let config = crate::aws::sdk_config(&var).await;
        Self::new(aws_sdk_sqs::Client::new(&config), url)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Up to `max` (1..=10) messages, waiting up to `wait` for the first (long polling).
    /// A Lambda event source mapping does this on AWS; this is for other consumers.
    pub async fn receive(&self, max: i32, wait: Duration) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait.as_secs() as i32)
            .send()
            .await
            .map_err(|e| QueueError::Request(DisplayErrorContext(&e).to_string()))?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Received {
                    message_id: m.message_id()?.to_string(),
                    receipt_handle: m.receipt_handle()?.to_string(),
                    body: m.body()?.to_string(),
                })
            })
            .collect())
    }

    /// One message that consumers see only after `delay` (whole seconds, at most 15
    /// minutes): no consumer can start on it before then.
    pub async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = i32::try_from(delay.as_secs())
            .map_err(|_| QueueError::Request(format!("a delay of {delay:?} is too long")))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds)
            .send()
            .await
            .map_err(|e| QueueError::Request(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    /// Removes a message that was handled.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| QueueError::Request(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

impl Queue for SqsQueue {
    async fn send(&self, bodies: Vec<String>) -> Result<(), QueueError> {
        for chunk in bodies.chunks(SQS_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Request(DisplayErrorContext(&e).to_string()))?;
            if !output.failed().is_empty() {
                return Err(QueueError::Refused(output.failed().len()));
            }
        }
        Ok(())
    }
}
