//! The DynamoDB backend of [cashews](https://docs.rs/cashews):
//! `dynamodb://table?region=...`, on the official AWS SDK for Rust.
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `region` | `AWS_REGION`, else `AWS_DEFAULT_REGION` | the AWS region |
//! | `endpoint` | AWS's | another endpoint (DynamoDB Local, moto, a VPC endpoint), `http://` or `https://` |
//! | `create_table` | `false` | create the table on first use if it is missing (on-demand billing, TTL on `expires_at`) |
//! | `suppress` | `true` | a connection failure, timeout or throttling of a command with a neutral answer reads as a miss / `false` (logged, counted); counters, windows, locks, bits, sets, `ping` and `clear` return the error |
//! | `connect_timeout` | `1s` | how long a connection attempt may take |
//! | `response_timeout` | `1s` | the deadline of every command, the SDK's retries and compare-and-swap retries included |
//!
//! Credentials: `dynamodb://ACCESS_KEY_ID:SECRET@table?...`, else the
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`)
//! environment variables. For anything else (instance roles, SSO, profiles)
//! build the client with `aws-config` and hand it to
//! [`DynamoBackend::from_client`].
//!
//! # Rows and expiry
//!
//! One row per key (see the attribute table in the `item` module's docs:
//! `key`, `value` or `count`, `expires_ms`, `expires_at`, `version`).
//! DynamoDB's TTL deletes expired rows late (within days), so every read
//! also checks the exact expiry; set the table's TTL attribute to
//! `expires_at` (`create_table=true` does) so the rows are freed. Expiry is
//! read on this process's clock: clients with skewed clocks disagree by the
//! skew. Reads are strongly consistent.
//!
//! # Commands
//!
//! - **One request each:** `get`, `set` (only-if-absent / only-if-present
//!   and `set_lock` as conditional `PutItem`s that treat an expired row as
//!   absent), `delete` (`DeleteItem` returning the old row), `exists`,
//!   `expire` (a conditional `UpdateItem`), `get_expire`, `get_size`,
//!   `unlock` (a `DeleteItem` conditioned on the token), `incr` (`UpdateItem
//!   ADD` on `count`; an expired counter, a value that is not a counter or
//!   an overflow fall back to a compare-and-swap loop that answers as every
//!   backend does), `set_add` / `set_remove` (`ADD` / `DELETE` on a string
//!   set, the TTL extended in the same request).
//! - **Batched:** `get_many` (`BatchGetItem`, 100 keys a request),
//!   `set_many` (`BatchWriteItem`, 25 rows a request; not atomic),
//!   `delete_many` (one `DeleteItem` each, concurrently).
//! - **Compare-and-swap loops** on `version`: `expire`, only-if-present,
//!   `set_pop`, bits, sliding windows.
//! - **`Scan`s, which read the whole table** (billed by the bytes read):
//!   `scan`, `get_match`, `delete_match` (a filter on the pattern's literal
//!   prefix narrows what is returned, not what is read), `get_keys_count`,
//!   `clear`. Keep them for maintenance, not for request paths.
//! - Transactions apply their writes one by one.
//!
//! Values are limited by DynamoDB's 400 KB item size: a larger `set` returns
//! the service's error (compress with `compress=zstd` to fit more).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod item;

/// The AWS SDK this backend is built on, for [`DynamoBackend::from_client`].
pub use aws_sdk_dynamodb;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    PutRequest, ReturnValue, ScalarAttributeType, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

use cashews_backend::backend::{Backend, BoxStream, Expiry, SetOptions};
use cashews_backend::cas::{self, CasStore, Item, Read};
use cashews_backend::driver::{Driver, DriverContext};
use cashews_backend::url::{Params, SetupUrl};
use cashews_backend::{
    bits, glob, Availability, Clock, Command, Error, Exist, NetworkParams, Result,
};

use item::{
    from_row, key_attribute, new_version, number, row_key, to_row, COUNT, EXPIRES_AT, EXPIRES_MS,
    KEY, KIND, MEMBERS, VALUE, VERSION,
};

const NAME: &str = "dynamodb";

/// DynamoDB's error code for a table that does not exist.
const TABLE_MISSING: &str = "ResourceNotFoundException";

/// Keys a `BatchGetItem` may name.
const BATCH_GET: usize = 100;
/// Rows a `BatchWriteItem` may write.
const BATCH_WRITE: usize = 25;

/// The `dynamodb://` driver.
pub const DRIVER: Driver = Driver {
    name: NAME,
    schemes: &["dynamodb"],
    connect,
};

fn connect(
    url: &SetupUrl,
    params: &mut Params<'_>,
    ctx: &DriverContext,
) -> Result<Arc<dyn Backend>> {
    let config = DynamoConfig::from_url(url, params)?;
    Ok(Arc::new(DynamoBackend::with_clock(
        config,
        ctx.clock.clone(),
    )?))
}

/// Settings of a [`DynamoBackend`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DynamoConfig {
    /// The table.
    pub table: String,
    /// The region (`None`: from the environment).
    pub region: Option<String>,
    /// Another endpoint than AWS's.
    pub endpoint: Option<String>,
    /// `(access key id, secret, session token)`; `None`: from the environment.
    pub credentials: Option<(String, String, Option<String>)>,
    /// Creates the table on first use when missing.
    pub create_table: bool,
    /// Turns connection failures into misses.
    pub suppress: bool,
    /// Timeout of a connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of a command.
    pub response_timeout: Duration,
}

impl std::fmt::Debug for DynamoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoConfig")
            .field("table", &self.table)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<hidden>"),
            )
            .field("create_table", &self.create_table)
            .field("suppress", &self.suppress)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl DynamoConfig {
    /// The settings a `dynamodb://` URL names.
    ///
    /// ```
    /// let config = cashews_dynamodb::DynamoConfig::parse(
    ///     "dynamodb://cache?region=eu-west-1&create_table=true",
    /// )?;
    /// assert_eq!(config.table, "cache");
    /// # Ok::<(), cashews_backend::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<DynamoConfig> {
        SetupUrl::parse_with(url, DynamoConfig::from_url)
    }

    /// Reads the parameters of a `dynamodb://` URL.
    pub fn from_url(url: &SetupUrl, params: &mut Params<'_>) -> Result<DynamoConfig> {
        let invalid = |message: &str| url.invalid(message);
        let table = url.hosts.trim();
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(invalid(
                "name the table as the host: dynamodb://table?region=... (3 to 255 of a-z A-Z 0-9 _ - .)",
            ));
        }
        if !url.path.is_empty() {
            return Err(invalid(
                "a dynamodb url has no path: dynamodb://table?region=...",
            ));
        }
        let credentials = match url.userinfo.as_deref() {
            None => None,
            Some(info) => {
                let (id, secret) = info.split_once(':').ok_or_else(|| {
                    invalid("credentials are ACCESS_KEY_ID:SECRET@ before the table")
                })?;
                Some((id.to_owned(), secret.to_owned(), None))
            }
        };
        let endpoint = params.take("endpoint").map(str::to_owned);
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(invalid(&format!(
                    "endpoint is an http:// or https:// url, got {endpoint:?}"
                )));
            }
        }
        let network = NetworkParams::take(params)?;
        Ok(DynamoConfig {
            table: table.to_owned(),
            region: params.take("region").map(str::to_owned),
            endpoint,
            credentials,
            create_table: params.bool("create_table")?.unwrap_or(false),
            suppress: network.suppress,
            connect_timeout: network.connect_timeout,
            response_timeout: network.response_timeout,
        })
    }

    /// The SDK client these settings make (no I/O): the one the backend
    /// uses, also for requests of the application's own.
    pub fn client(&self) -> Result<Client> {
        let region = self
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .ok_or_else(|| {
                Error::config("dynamodb: no region: add region=... to the url or set AWS_REGION")
            })?;
        let (id, secret, token) = match &self.credentials {
            Some(credentials) => credentials.clone(),
            None => match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(id), Ok(secret)) => (id, secret, std::env::var("AWS_SESSION_TOKEN").ok()),
                _ => {
                    return Err(Error::config(
                        "dynamodb: no credentials: put ACCESS_KEY_ID:SECRET@ in the url, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or build the client with aws-config and use DynamoBackend::from_client",
                    ))
                }
            },
        };
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::new(id, secret, token, None, "cashews"))
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_timeout(self.response_timeout)
                    .build(),
            );
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(builder.build()))
    }
}

/// A DynamoDB table as a cache backend.
#[derive(Clone)]
pub struct DynamoBackend {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    table: String,
    create_table: bool,
    /// Whether the table was found (or created); cleared when DynamoDB
    /// says it is gone, so `create_table` makes it again.
    ready: AtomicBool,
    /// One check (and creation) at a time.
    checking: Mutex<()>,
    availability: Availability,
    clock: Clock,
}

impl std::fmt::Debug for DynamoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoBackend")
            .field("table", &self.shared.table)
            .field("suppressed", &self.suppressed_errors())
            .finish_non_exhaustive()
    }
}

/// What a scan returns.
#[derive(Clone, Copy)]
struct Rows {
    /// Whole rows (else keys only).
    values: bool,
    /// Expired rows too (else live ones only).
    expired: bool,
}

const LIVE_KEYS: Rows = Rows {
    values: false,
    expired: false,
};

/// The outcome of a conditional request.
enum Outcome<T> {
    Done(T),
    ConditionFailed,
}

impl DynamoBackend {
    /// A backend for `config`; connects on first use.
    pub fn new(config: DynamoConfig) -> Result<DynamoBackend> {
        DynamoBackend::with_clock(config, Clock::system())
    }

    /// A backend whose expiry is read on `clock` (unix milliseconds).
    pub fn with_clock(config: DynamoConfig, clock: Clock) -> Result<DynamoBackend> {
        let client = config.client()?;
        Ok(DynamoBackend::from_client_with_clock(client, config, clock))
    }

    /// A backend on an SDK client the application built (with `aws-config`'s
    /// credential chain, say); `config` gives the table and the rest (its
    /// region, endpoint, credentials and timeouts are the client's).
    pub fn from_client(client: Client, config: DynamoConfig) -> DynamoBackend {
        DynamoBackend::from_client_with_clock(client, config, Clock::system())
    }

    fn from_client_with_clock(client: Client, config: DynamoConfig, clock: Clock) -> DynamoBackend {
        DynamoBackend {
            shared: Arc::new(Shared {
                client,
                availability: Availability::new(NAME, config.suppress, config.response_timeout),
                table: config.table,
                create_table: config.create_table,
                ready: AtomicBool::new(false),
                checking: Mutex::new(()),
                clock,
            }),
        }
    }

    /// How many failures were turned into misses (`suppress=true`).
    pub fn suppressed_errors(&self) -> u64 {
        self.shared.availability.suppressed()
    }
}

impl Shared {
    fn now(&self) -> u64 {
        self.clock.unix_ms()
    }

    /// Makes sure the table exists (creating it when asked), once.
    async fn ready(&self) -> Result<()> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _checking = self.checking.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        match described {
            Ok(_) => {}
            Err(e) if e.code() == Some(TABLE_MISSING) && self.create_table => self.create().await?,
            Err(e) if e.code() == Some(TABLE_MISSING) => {
                return Err(Error::backend(
                    NAME,
                    false,
                    format!(
                        "table {:?} does not exist: create it (partition key \"key\", a string; TTL attribute \"expires_at\") or add create_table=true",
                        self.table
                    ),
                ))
            }
            Err(e) => return Err(sdk_error(e)),
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The SDK's error as the library's; a missing table is looked for
    /// (and created, when asked) again by the next command.
    fn failed<E>(&self, error: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if error.code() == Some(TABLE_MISSING) {
            self.ready.store(false, Ordering::Release);
        }
        sdk_error(error)
    }

    /// A conditional request's result: a failed condition is an outcome,
    /// not an error.
    fn conditional<T, E>(
        &self,
        result: std::result::Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
    ) -> Result<Outcome<T>>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match result {
            Err(e) if e.code() != Some("ConditionalCheckFailedException") => Err(self.failed(e)),
            other => conditional(other),
        }
    }

    async fn create(&self) -> Result<()> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| Error::config(e.to_string());
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(self.failed(e)),
        }
        // Wait until it is active (DynamoDB takes seconds; within the
        // command's deadline).
        loop {
            let status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.failed(e))?;
            let active = status
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ttl = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(EXPIRES_AT)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await;
        match ttl {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ValidationException") => Ok(()), // already on
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The row of `key`, strongly consistent.
    async fn row(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        self.ready().await?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attribute(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        Ok(output.item().cloned())
    }

    /// Reads `key`'s live item and answers from it (`fallback` when
    /// DynamoDB is unreachable and `suppress` is on).
    async fn on_live<T>(
        &self,
        command: Command,
        key: &str,
        fallback: impl FnOnce() -> T,
        answer: impl FnOnce(Option<Item>) -> T,
    ) -> Result<T> {
        let read = async { Ok(answer(self.live(key).await?)) };
        self.availability.run(command, fallback, read).await
    }

    /// The live item of `key`.
    async fn live(&self, key: &str) -> Result<Option<Item>> {
        Ok(self.read_row(self.row(key).await?.as_ref()).live)
    }

    fn read_row(&self, row: Option<&HashMap<String, AttributeValue>>) -> Read<u64> {
        match row {
            None => Read {
                live: None,
                version: None,
            },
            Some(row) => {
                let (item, version) = from_row(row);
                let now = self.now();
                Read {
                    live: item.filter(|item| item.live(now)),
                    version: Some(version),
                }
            }
        }
    }

    /// A `PutItem` of `item` under `condition` (with `:now` bound).
    async fn put_if(&self, key: &str, item: &Item, condition: Option<&str>) -> Result<Outcome<()>> {
        self.ready().await?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_row(key, item, new_version())));
        if let Some(condition) = condition {
            request = request
                .condition_expression(condition)
                .expression_attribute_names("#k", KEY)
                .expression_attribute_names("#em", EXPIRES_MS)
                .expression_attribute_values(":now", number(self.now()))
                .expression_attribute_values(":num", AttributeValue::S("N".into()));
        }
        self.conditional(request.send().await.map(drop))
    }

    /// Writes `item` if the key holds no live item: one conditional
    /// `PutItem` when the key is absent or expired; a row of another shape
    /// (absent for reads, which no condition can tell) goes through the
    /// compare-and-swap loop.
    async fn add(&self, key: &str, item: Item) -> Result<bool> {
        if let Outcome::Done(()) = self.put_if(key, &item, Some(ABSENT)).await? {
            return Ok(true);
        }
        let step = |live: Option<&Item>, _now: u64| {
            Ok(match live {
                Some(_) => cas::Change::Keep(false),
                None => cas::Change::Write(item.clone(), true),
            })
        };
        cas::update(self, key, step).await
    }

    /// One page of a `Scan` over rows whose key starts with `prefix`, from
    /// `start`: the rows and where the next page starts.
    async fn scan_page(
        &self,
        prefix: &str,
        start: Option<HashMap<String, AttributeValue>>,
        limit: usize,
        rows: Rows,
    ) -> Result<(
        Vec<HashMap<String, AttributeValue>>,
        Option<HashMap<String, AttributeValue>>,
    )> {
        self.ready().await?;
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start);
        let mut filters = Vec::new();
        if !prefix.is_empty() {
            filters.push("begins_with(#k, :prefix)");
            request = request
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()));
        }
        if !rows.expired {
            filters
                .push("(attribute_not_exists(#em) OR (attribute_type(#em, :num) AND #em > :now))");
            request = request
                .expression_attribute_names("#em", EXPIRES_MS)
                .expression_attribute_values(":now", number(self.now()))
                .expression_attribute_values(":num", AttributeValue::S("N".into()));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        if !prefix.is_empty() || !rows.values {
            // (DynamoDB refuses a name no expression uses.)
            request = request.expression_attribute_names("#k", KEY);
        }
        if !rows.values {
            request = request.projection_expression("#k");
        }
        let output = request.send().await.map_err(|e| self.failed(e))?;
        Ok((
            output.items().to_vec(),
            output.last_evaluated_key().cloned(),
        ))
    }

    /// Every row matching the glob `pattern`, page by page.
    fn matching(
        self: Arc<Self>,
        pattern: String,
        batch_size: usize,
        rows: Rows,
    ) -> BoxStream<'static, Result<HashMap<String, AttributeValue>>> {
        let prefix = literal_prefix(&pattern);
        // (the next page's start, whether the scan has ended)
        let pages = stream::unfold(
            (None, false),
            move |(start, ended): (Option<HashMap<String, AttributeValue>>, bool)| {
                let shared = self.clone();
                let prefix = prefix.clone();
                async move {
                    if ended {
                        return None;
                    }
                    let page = shared
                        .availability
                        .run_strict(
                            Command::Scan,
                            shared.scan_page(&prefix, start, batch_size, rows),
                        )
                        .await;
                    Some(match page {
                        Ok((rows, next)) => {
                            let ended = next.is_none();
                            (Ok(rows), (next, ended))
                        }
                        Err(e) => (Err(e), (None, true)),
                    })
                }
            },
        );
        let rows = pages.flat_map(move |page| {
            let rows: Vec<Result<HashMap<String, AttributeValue>>> = match page {
                Ok(rows) => rows
                    .into_iter()
                    .filter(|row| {
                        row.get(KEY)
                            .and_then(|k| k.as_s().ok())
                            .is_some_and(|k| glob::matches(&pattern, k))
                    })
                    .map(Ok)
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            stream::iter(rows)
        });
        Box::pin(rows)
    }

    /// Deletes `key`'s row; whether it held a live item.
    async fn delete_row(&self, key: &str) -> Result<bool> {
        self.ready().await?;
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attribute(key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        Ok(self.read_row(output.attributes()).live.is_some())
    }

    /// `incr` in one `UpdateItem ADD` when the row is a live counter (or
    /// absent) and the sum cannot overflow; `None` when it must take the
    /// compare-and-swap path.
    async fn incr_native(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<Option<i64>> {
        self.ready().await?;
        let now = self.now();
        let mut update = "ADD #c :by SET #v = :ver".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attribute(key)))
            .expression_attribute_names("#k", KEY)
            .expression_attribute_names("#c", COUNT)
            .expression_attribute_names("#val", VALUE)
            .expression_attribute_names("#em", EXPIRES_MS)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":by", number(by))
            .expression_attribute_values(":ver", number(new_version()))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":num", AttributeValue::S("N".into()))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(ttl) = ttl {
            // Applied only when this increment creates the counter.
            let at = cas::expires_at(now, Some(ttl));
            update.push_str(", #em = if_not_exists(#em, :em), #ea = if_not_exists(#ea, :ea)");
            request = request
                .expression_attribute_names("#ea", EXPIRES_AT)
                .expression_attribute_values(":em", number(at))
                .expression_attribute_values(":ea", number(at.div_ceil(1000)));
        }
        // Absent, or a live counter whose sum stays within i64.
        let (bound, comparison) = if by >= 0 {
            (i64::MAX - by, "<=")
        } else {
            (i64::MIN - by, ">=")
        };
        let condition = format!(
            "attribute_not_exists(#k) OR (attribute_exists(#c) AND attribute_not_exists(#val) AND (attribute_not_exists(#em) OR (attribute_type(#em, :num) AND #em > :now)) AND #c {comparison} :bound)"
        );
        let sent = request
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":bound", number(bound))
            .send()
            .await;
        match self.conditional(sent)? {
            Outcome::ConditionFailed => Ok(None),
            Outcome::Done(output) => {
                let value = output
                    .attributes()
                    .and_then(|a| a.get(COUNT))
                    .and_then(|c| c.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| Error::backend(NAME, false, "UpdateItem returned no counter"))?;
                Ok(Some(value))
            }
        }
    }

    /// `set_add` as `UpdateItem ADD` on the string set, when the row is
    /// absent or a live set; `None` when it must take the loop. The TTL
    /// only grows, in the same request: a first try sets it where the set is
    /// new or expires sooner, a second adds the members alone (the set is
    /// persistent or lives longer); members without an expiry remove it.
    async fn set_add_native(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
    ) -> Result<Option<u64>> {
        self.ready().await?;
        let unique = unique_members(members);
        if unique.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let at = cas::expires_at(now, ttl);
        let attempts: &[(&str, &str)] = match ttl {
            None => &[(
                "ADD #m :new SET #kind = :set, #v = :ver REMOVE #em, #ea",
                "attribute_not_exists(#k) OR LIVE_SET",
            )],
            Some(_) => &[
                (
                    "ADD #m :new SET #kind = :set, #v = :ver, #em = :em, #ea = :ea",
                    "attribute_not_exists(#k) OR (LIVE_SET AND #em <= :em)",
                ),
                ("ADD #m :new SET #kind = :set, #v = :ver", "LIVE_SET"),
            ],
        };
        for (update, condition) in attempts {
            let condition = condition.replace("LIVE_SET", LIVE_SET);
            let text = format!("{update} {condition}");
            let names = [
                ("#k", KEY),
                ("#m", MEMBERS),
                ("#kind", KIND),
                ("#em", EXPIRES_MS),
                ("#ea", EXPIRES_AT),
                ("#v", VERSION),
            ];
            let values = [
                (":new", AttributeValue::Ss(unique.clone())),
                (":set", number(2)),
                (":ver", number(new_version())),
                (":now", number(now)),
                (":num", AttributeValue::S("N".into())),
                (":em", number(at)),
                (":ea", number(at.div_ceil(1000))),
            ];
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_attribute(key)))
                .update_expression(*update)
                .condition_expression(&condition)
                .return_values(ReturnValue::AllOld);
            // Only what the expressions use (DynamoDB refuses the rest).
            for (name, attribute) in names {
                if uses(&text, name) {
                    request = request.expression_attribute_names(name, attribute);
                }
            }
            for (name, value) in values {
                if uses(&text, name) {
                    request = request.expression_attribute_values(name, value);
                }
            }
            if let Outcome::Done(output) = self.conditional(request.send().await)? {
                let old = old_members(output.attributes());
                let added = unique.iter().filter(|m| !old.contains(*m)).count();
                return Ok(Some(added as u64));
            }
        }
        Ok(None)
    }

    /// `set_remove` as `UpdateItem DELETE` on a live set; `None` when it
    /// must take the loop. A set left empty is deleted.
    async fn set_remove_native(&self, key: &str, members: &[&str]) -> Result<Option<u64>> {
        self.ready().await?;
        let unique = unique_members(members);
        if unique.is_empty() {
            return Ok(None);
        }
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attribute(key)))
            .update_expression("DELETE #m :gone SET #v = :ver")
            .condition_expression(LIVE_SET)
            .expression_attribute_names("#m", MEMBERS)
            .expression_attribute_names("#kind", KIND)
            .expression_attribute_names("#em", EXPIRES_MS)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":gone", AttributeValue::Ss(unique.clone()))
            .expression_attribute_values(":set", number(2))
            .expression_attribute_values(":ver", number(new_version()))
            .expression_attribute_values(":now", number(self.now()))
            .expression_attribute_values(":num", AttributeValue::S("N".into()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Outcome::Done(output) = self.conditional(sent)? else {
            return Ok(None);
        };
        let old = old_members(output.attributes());
        let removed = unique.iter().filter(|m| old.contains(*m)).count();
        if removed > 0 && old.iter().all(|m| unique.contains(m)) {
            // Emptied (DynamoDB dropped the attribute): delete the row if no
            // member was added since.
            let sent = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_attribute(key)))
                .condition_expression("attribute_not_exists(#m)")
                .expression_attribute_names("#m", MEMBERS)
                .send()
                .await;
            self.conditional(sent)?;
        }
        Ok(Some(removed as u64))
    }

    /// Runs a compare-and-swap step on `key` with no neutral answer.
    async fn strict<T: Send>(
        &self,
        command: Command,
        key: &str,
        step: impl FnMut(Option<&Item>, u64) -> Result<cas::Change<T>> + Send,
    ) -> Result<T> {
        self.native_or_loop(command, key, std::future::ready(Ok(None)), step)
            .await
    }

    /// Runs a command with no neutral answer: its one-request form
    /// (`native`), or, when that request's condition refused the row
    /// (`None`: expired, of another kind, corrupt, an overflow), the
    /// compare-and-swap `step`, which answers as every backend does.
    async fn native_or_loop<T: Send>(
        &self,
        command: Command,
        key: &str,
        native: impl std::future::Future<Output = Result<Option<T>>>,
        step: impl FnMut(Option<&Item>, u64) -> Result<cas::Change<T>> + Send,
    ) -> Result<T> {
        self.availability
            .run_strict(command, async {
                match native.await? {
                    Some(answer) => Ok(answer),
                    None => cas::update(self, key, step).await,
                }
            })
            .await
    }
}

#[cashews_backend::async_trait]
impl CasStore for Shared {
    type Version = u64;

    fn name(&self) -> &'static str {
        NAME
    }

    fn now(&self) -> u64 {
        Shared::now(self)
    }

    async fn read(&self, key: &str) -> Result<Read<u64>> {
        let row = self.row(key).await?;
        Ok(self.read_row(row.as_ref()))
    }

    async fn write(
        &self,
        key: &str,
        item: &Item,
        _now: u64,
        expected: Option<u64>,
    ) -> Result<bool> {
        self.ready().await?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_row(key, item, new_version())));
        request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", KEY),
            Some(0) => request
                .condition_expression("attribute_exists(#k) AND attribute_not_exists(#v)")
                .expression_attribute_names("#k", KEY)
                .expression_attribute_names("#v", VERSION),
            Some(version) => request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", number(version)),
        };
        Ok(matches!(
            self.conditional(request.send().await)?,
            Outcome::Done(_)
        ))
    }

    async fn remove(&self, key: &str, expected: u64) -> Result<bool> {
        self.ready().await?;
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attribute(key)))
            .expression_attribute_names("#v", VERSION);
        request = if expected == 0 {
            request.condition_expression("attribute_not_exists(#v)")
        } else {
            request
                .condition_expression("#v = :v")
                .expression_attribute_values(":v", number(expected))
        };
        Ok(matches!(
            self.conditional(request.send().await)?,
            Outcome::Done(_)
        ))
    }
}

/// The condition of a row that is a live string set (`#kind`, `#m`,
/// `#em`, `:set`, `:now`, `:num`).
const LIVE_SET: &str = "(#kind = :set AND attribute_exists(#m) AND (attribute_not_exists(#em) OR (attribute_type(#em, :num) AND #em > :now)))";

/// Whether the expression `text` names the placeholder `name` (`#k`, not
/// the `#k` of `#kind`).
fn uses(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        !text[at + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Each member once (a string set names a member once).
fn unique_members(members: &[&str]) -> Vec<String> {
    let mut unique: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
    unique.sort();
    unique.dedup();
    unique
}

/// The members of a set row's old image.
fn old_members(row: Option<&HashMap<String, AttributeValue>>) -> Vec<String> {
    row.and_then(|r| r.get(MEMBERS))
        .and_then(|m| m.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

/// The condition of an expired-or-absent row (`#k`, `#em`, `:now`, and
/// `:num` = `"N"`: an expiry of another type is never compared, which
/// DynamoDB would answer with false and moto with an error).
const ABSENT: &str = "attribute_not_exists(#k) OR (attribute_type(#em, :num) AND #em <= :now)";
/// The condition of a row that has not expired.
const PRESENT: &str = "attribute_exists(#k) AND (attribute_not_exists(#em) OR (attribute_type(#em, :num) AND #em > :now))";

/// A conditional request's result: a failed condition is an outcome, not
/// an error.
fn conditional<T, E>(
    result: std::result::Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> Result<Outcome<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Outcome::Done(output)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Ok(Outcome::ConditionFailed)
        }
        Err(e) => Err(sdk_error(e)),
    }
}

/// The SDK's error as the library's: connection failures, timeouts,
/// throttling and server errors are transient.
fn sdk_error<E>(error: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || matches!(
                    error.code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "LimitExceededException"
                            | "InternalServerError"
                    )
                )
        }
        _ => false,
    };
    Error::backend(NAME, transient, DisplayErrorContext(&error).to_string())
}

/// The literal text a glob pattern starts with (every match starts with
/// it), for the scan's filter.
fn literal_prefix(pattern: &str) -> String {
    let mut prefix = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => break,
            '\\' => match chars.next() {
                Some(escaped) => prefix.push(escaped),
                None => break,
            },
            other => prefix.push(other),
        }
    }
    prefix
}

fn row_name(row: &HashMap<String, AttributeValue>) -> Option<String> {
    row.get(KEY).and_then(|k| k.as_s().ok()).cloned()
}

#[cashews_backend::async_trait]
impl Backend for DynamoBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let shared = &self.shared;
        shared
            .on_live(
                Command::Get,
                key,
                || None,
                |live| live.and_then(Item::into_value),
            )
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let shared = &self.shared;
        shared
            .availability
            .run(Command::GetMany, || vec![None; keys.len()], async {
                shared.ready().await?;
                let mut found: HashMap<String, Bytes> = HashMap::new();
                let mut unique: Vec<String> = keys.iter().map(|k| row_key(k)).collect();
                unique.sort();
                unique.dedup();
                for chunk in unique.chunks(BATCH_GET) {
                    let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                        .iter()
                        .map(|k| HashMap::from([(KEY.to_owned(), AttributeValue::S(k.clone()))]))
                        .collect();
                    while !pending.is_empty() {
                        let request = KeysAndAttributes::builder()
                            .set_keys(Some(std::mem::take(&mut pending)))
                            .consistent_read(true)
                            .build()
                            .map_err(|e| Error::config(e.to_string()))?;
                        let output = shared
                            .client
                            .batch_get_item()
                            .request_items(&shared.table, request)
                            .send()
                            .await
                            .map_err(|e| shared.failed(e))?;
                        for row in output
                            .responses()
                            .and_then(|r| r.get(&shared.table))
                            .into_iter()
                            .flatten()
                        {
                            let live = shared.read_row(Some(row)).live;
                            if let (Some(name), Some(value)) =
                                (row_name(row), live.and_then(Item::into_value))
                            {
                                found.insert(name, value);
                            }
                        }
                        // Keys DynamoDB did not get to (throttling) go again.
                        if let Some(rest) =
                            output.unprocessed_keys().and_then(|u| u.get(&shared.table))
                        {
                            pending = rest.keys().to_vec();
                        }
                    }
                }
                Ok(keys
                    .iter()
                    .map(|k| found.get(&row_key(k)).cloned())
                    .collect())
            })
            .await
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let shared = &self.shared;
        shared
            .availability
            .run(Command::Set, || false, async {
                let item = Item::value(value, cas::expires_at(shared.now(), options.expire));
                match options.exist {
                    Exist::Always => Ok(matches!(
                        shared.put_if(key, &item, None).await?,
                        Outcome::Done(())
                    )),
                    Exist::IfAbsent => shared.add(key, item).await,
                    // A row of another shape reads as absent, which no
                    // condition expression can tell: the loop decides.
                    Exist::IfPresent => {
                        let step = cas::set_if(Exist::IfPresent, item.payload, options.expire);
                        cas::update(&**shared, key, step).await
                    }
                }
            })
            .await
    }

    async fn set_many(&self, pairs: Vec<(&str, Bytes)>, expire: Option<Duration>) -> Result<()> {
        let shared = &self.shared;
        shared
            .availability
            .run(Command::SetMany, || (), async {
                shared.ready().await?;
                let expires_at = cas::expires_at(shared.now(), expire);
                // The last value of a key given twice wins (a batch may not
                // name a key twice).
                let mut rows: HashMap<String, WriteRequest> = HashMap::new();
                for (key, value) in pairs {
                    let item = Item::value(value, expires_at);
                    let put = PutRequest::builder()
                        .set_item(Some(to_row(key, &item, new_version())))
                        .build()
                        .map_err(|e| Error::config(e.to_string()))?;
                    rows.insert(
                        row_key(key),
                        WriteRequest::builder().put_request(put).build(),
                    );
                }
                let rows: Vec<WriteRequest> = rows.into_values().collect();
                for chunk in rows.chunks(BATCH_WRITE) {
                    let mut pending = chunk.to_vec();
                    while !pending.is_empty() {
                        let output = shared
                            .client
                            .batch_write_item()
                            .request_items(&shared.table, std::mem::take(&mut pending))
                            .send()
                            .await
                            .map_err(|e| shared.failed(e))?;
                        if let Some(rest) = output
                            .unprocessed_items()
                            .and_then(|u| u.get(&shared.table))
                        {
                            pending = rest.clone();
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let shared = &self.shared;
        shared
            .availability
            .run(Command::Delete, || false, shared.delete_row(key))
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let shared = &self.shared;
        shared
            .availability
            .run(Command::DeleteMany, || 0, async {
                let mut unique: Vec<&str> = keys.to_vec();
                unique.sort_unstable();
                unique.dedup();
                let mut deleted = 0;
                for result in join_all(unique.iter().map(|k| shared.delete_row(k))).await {
                    deleted += u64::from(result?);
                }
                Ok(deleted)
            })
            .await
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let shared = self.shared.clone();
        let mut rows = shared.clone().matching(pattern.to_owned(), 1000, LIVE_KEYS);
        let mut deleted = 0;
        while let Some(row) = rows.next().await {
            if let Some(key) = row_name(&row?) {
                let gone = shared
                    .availability
                    .run_strict(Command::DeleteMatch, shared.delete_row(&key))
                    .await?;
                deleted += u64::from(gone);
            }
        }
        Ok(deleted)
    }

    fn scan(&self, pattern: String, batch_size: usize) -> BoxStream<'static, Result<String>> {
        let rows = self.shared.clone().matching(pattern, batch_size, LIVE_KEYS);
        Box::pin(rows.filter_map(|row| async move {
            match row {
                Ok(row) => row_name(&row).map(Ok),
                Err(e) => Some(Err(e)),
            }
        }))
    }

    fn get_match(
        &self,
        pattern: String,
        batch_size: usize,
    ) -> BoxStream<'static, Result<(String, Bytes)>> {
        let rows = self.shared.clone().matching(
            pattern,
            batch_size,
            Rows {
                values: true,
                expired: false,
            },
        );
        Box::pin(rows.filter_map(|row| async move {
            match row {
                Ok(row) => {
                    let name = row_name(&row)?;
                    let value = from_row(&row).0.and_then(Item::into_value)?;
                    Some(Ok((name, value)))
                }
                Err(e) => Some(Err(e)),
            }
        }))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let shared = &self.shared;
        shared
            .on_live(Command::Exists, key, || false, |live| live.is_some())
            .await
    }

    async fn incr(&self, key: &str, by: i64, expire: Option<Duration>) -> Result<i64> {
        let shared = &self.shared;
        let native = shared.incr_native(key, by, expire);
        let step = cas::incr(key, by, expire);
        shared
            .native_or_loop(Command::Incr, key, native, step)
            .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let shared = &self.shared;
        shared
            .availability
            .run(
                Command::Expire,
                || false,
                cas::update(&**shared, key, cas::expire(ttl)),
            )
            .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let shared = &self.shared;
        let answer = |live: Option<Item>| cas::expiry(live.as_ref(), shared.now());
        shared
            .on_live(Command::GetExpire, key, || Expiry::Missing, answer)
            .await
    }

    async fn ping(&self) -> Result<()> {
        let shared = &self.shared;
        shared
            .availability
            .run_strict(Command::Ping, async {
                shared.ready().await?;
                shared
                    .client
                    .describe_table()
                    .table_name(&shared.table)
                    .send()
                    .await
                    .map_err(|e| shared.failed(e))?;
                Ok(())
            })
            .await
    }

    async fn clear(&self) -> Result<()> {
        // Every row, live or expired, a page of deletes at a time.
        let shared = &self.shared;
        let all_keys = Rows {
            values: false,
            expired: true,
        };
        let mut rows = shared
            .clone()
            .matching("*".into(), 1000, all_keys)
            .chunks(100);
        while let Some(page) = rows.next().await {
            let deletes = page.into_iter().map(|row| async move {
                let row = row?;
                shared
                    .availability
                    .run_strict(Command::Clear, async {
                        shared
                            .client
                            .delete_item()
                            .table_name(&shared.table)
                            .set_key(Some(row))
                            .send()
                            .await
                            .map_err(|e| shared.failed(e))
                    })
                    .await
            });
            for result in join_all(deletes).await {
                result?;
            }
        }
        Ok(())
    }

    async fn get_keys_count(&self) -> Result<u64> {
        let mut rows = self.shared.clone().matching("*".into(), 1000, LIVE_KEYS);
        let mut total = 0;
        while let Some(row) = rows.next().await {
            row?;
            total += 1;
        }
        Ok(total)
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        let shared = &self.shared;
        let answer = |live: Option<Item>| live.map(|item| item.payload.len() as u64);
        shared.on_live(Command::GetSize, key, || None, answer).await
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let shared = &self.shared;
        shared
            .availability
            .run_strict(Command::SetLock, async {
                let at = cas::expires_at(shared.now(), Some(ttl));
                let item = Item::value(Bytes::copy_from_slice(token.as_bytes()), at);
                shared.add(key, item).await
            })
            .await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let shared = &self.shared;
        if cashews_backend::layout::parse_counter(token.as_bytes())
            .is_some_and(|n| n.to_string() == token)
        {
            // Such a token is stored as a number: compared by the loop.
            return shared
                .strict(Command::Unlock, key, cas::unlock(token))
                .await;
        }
        shared
            .availability
            .run_strict(Command::Unlock, async {
                shared.ready().await?;
                let sent = shared
                    .client
                    .delete_item()
                    .table_name(&shared.table)
                    .set_key(Some(key_attribute(key)))
                    .condition_expression(format!("#val = :token AND ({PRESENT})"))
                    .expression_attribute_names("#k", KEY)
                    .expression_attribute_names("#val", VALUE)
                    .expression_attribute_names("#em", EXPIRES_MS)
                    .expression_attribute_values(
                        ":token",
                        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                            token.as_bytes(),
                        )),
                    )
                    .expression_attribute_values(":now", number(shared.now()))
                    .expression_attribute_values(":num", AttributeValue::S("N".into()))
                    .send()
                    .await;
                Ok(matches!(shared.conditional(sent)?, Outcome::Done(_)))
            })
            .await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let shared = &self.shared;
        shared
            .availability
            .run_strict(Command::GetBits, async {
                let live = shared.live(key).await?;
                let data = cas::bit_string(key, live.as_ref())?;
                Ok(offsets.iter().map(|o| bits::read(data, *o, size)).collect())
            })
            .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let offsets = bits::offsets(indexes, size)?;
        let step = cas::incr_bits(key, &offsets, size, by);
        self.shared.strict(Command::IncrBits, key, step).await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        expire: Option<Duration>,
    ) -> Result<u64> {
        let step = cas::slice_incr(key, start, end, max, expire);
        self.shared.strict(Command::SliceIncr, key, step).await
    }

    async fn set_add(&self, key: &str, members: &[&str], expire: Option<Duration>) -> Result<u64> {
        let shared = &self.shared;
        let native = shared.set_add_native(key, members, expire);
        let step = cas::set_add(key, members, expire);
        shared
            .native_or_loop(Command::SetAdd, key, native, step)
            .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let shared = &self.shared;
        let native = shared.set_remove_native(key, members);
        let step = cas::set_remove(key, members);
        shared
            .native_or_loop(Command::SetRemove, key, native, step)
            .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let step = cas::set_pop(key, count);
        self.shared.strict(Command::SetPop, key, step).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_matched_whole() {
        assert!(uses("attribute_not_exists(#k) OR #kind = :set", "#k"));
        assert!(!uses("#kind = :set", "#k"));
        assert!(uses("#em <= :em", ":em"));
        assert!(!uses("#em <= :emx", ":em"));
    }

    #[test]
    fn glob_prefixes() {
        assert_eq!(literal_prefix("user:*"), "user:");
        assert_eq!(literal_prefix("a\\*b*"), "a*b");
        assert_eq!(literal_prefix("*"), "");
        assert_eq!(literal_prefix("a?c"), "a");
        assert_eq!(literal_prefix("x[ab]"), "x");
        assert_eq!(literal_prefix("plain"), "plain");
    }

    #[test]
    fn urls_parse_and_refuse() {
        let config =
            DynamoConfig::parse("dynamodb://id:se%2Fcret@cache?region=us-east-1&endpoint=http://127.0.0.1:8000&create_table=true")
                .unwrap();
        assert_eq!(config.table, "cache");
        assert_eq!(
            config.credentials,
            Some(("id".into(), "se/cret".into(), None))
        );
        assert!(config.create_table);
        assert!(
            !format!("{config:?}").contains("cret"),
            "secrets stay hidden"
        );
        for bad in [
            "dynamodb://",
            "dynamodb://ab",
            "dynamodb://a%20b?region=x",
            "dynamodb://cache/x",
            "dynamodb://cache?endpoint=localhost:8000",
            "dynamodb://cache?bogus=1",
            "dynamodb://idonly@cache",
        ] {
            assert!(DynamoConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
