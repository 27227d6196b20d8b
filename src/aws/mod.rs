//! The AWS side: one [`SdkConfig`] for every client, the call counter, and AWS errors turned into
//! messages that name the resource, the error code and AWS's message.
//!
//! Endpoints are left to aws-config: `AWS_ENDPOINT_URL` and the per-service variables
//! (`AWS_ENDPOINT_URL_ECS`, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`, …) work as in every AWS tool, so
//! one suite can talk to an emulator for some services and LocalStack for others. Only an
//! explicit `--endpoint-url` overrides them all.

pub mod backup;
pub mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

/// The region when neither the config nor the environment names one.
pub const DEFAULT_REGION: &str = "eu-west-3";

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// From the config; when `None`, the aws-config chain, then [`DEFAULT_REGION`].
    pub region: Option<String>,
    /// `--endpoint-url`: overrides every endpoint setting.
    pub endpoint_url: Option<String>,
}

/// The clients hcctl uses, built from one [`SdkConfig`], sharing one call counter.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub backup: aws_sdk_backup::Client,
    /// Read-only lookups of what the config refers to (`crate::resources::reference`).
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    /// The network: the VPC, subnets and the security groups hcctl creates.
    pub ec2: aws_sdk_ec2::Client,
    /// MongoDB's file system, its mount targets and access point.
    pub efs: aws_sdk_efs::Client,
    /// Cloud Map: the private DNS name the app reaches MongoDB by.
    pub discovery: aws_sdk_servicediscovery::Client,
    /// The account the credentials belong to (GetCallerIdentity).
    pub sts: aws_sdk_sts::Client,
    /// The drops bucket (path-style addressing with a configured endpoint: [`s3::client`]).
    pub s3: aws_sdk_s3::Client,
    /// The ingest schedule (EventBridge Scheduler).
    pub scheduler: aws_sdk_scheduler::Client,
    /// The alerts topic and its subscriptions.
    pub sns: aws_sdk_sns::Client,
    /// The alarms (CloudWatch).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub calls: Calls,
    pub region: String,
    /// Where requests go, for messages: the explicit endpoint, `AWS_ENDPOINT_URL`, or AWS.
    pub endpoint: String,
}

impl Aws {
    pub async fn connect(target: &Target) -> Aws {
        let config = sdk_config(target).await;
        let calls = Calls::default();
        let region = config
            .region()
            .map_or_else(|| DEFAULT_REGION.to_string(), |r| r.to_string());
        let endpoint = describe_endpoints(target.endpoint_url.as_deref(), &region);
        // Every client from the one SdkConfig, all counting their calls in `calls`.
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&config)
                        .interceptor(calls.clone())
                        .build(),
                )
            };
        }
        Aws {
            ecs: client!(aws_sdk_ecs),
            logs: client!(aws_sdk_cloudwatchlogs),
            backup: client!(aws_sdk_backup),
            secrets: client!(aws_sdk_secretsmanager),
            iam: client!(aws_sdk_iam),
            kms: client!(aws_sdk_kms),
            ec2: client!(aws_sdk_ec2),
            efs: client!(aws_sdk_efs),
            discovery: client!(aws_sdk_servicediscovery),
            sts: client!(aws_sdk_sts),
            scheduler: client!(aws_sdk_scheduler),
            sns: client!(aws_sdk_sns),
            cloudwatch: client!(aws_sdk_cloudwatch),
            s3: aws_sdk_s3::Client::from_conf(
                s3::config_builder(&config, target)
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            region,
            endpoint,
        }
    }
}

/// Where requests go, for plans and messages: the explicit endpoint, else the standard
/// variables (`AWS_ENDPOINT_URL`, and per service `AWS_ENDPOINT_URL_ECS=…` when set), else AWS.
fn describe_endpoints(explicit: Option<&str>, region: &str) -> String {
    if let Some(url) = explicit {
        return url.to_string();
    }
    let per_service: Vec<String> = [
        ("ECS", "ecs"),
        ("CLOUDWATCH_LOGS", "logs"),
        ("BACKUP", "backup"),
        ("EC2", "ec2"),
        ("EFS", "efs"),
        ("SERVICEDISCOVERY", "servicediscovery"),
        ("SCHEDULER", "scheduler"),
        ("SNS", "sns"),
        ("CLOUDWATCH", "cloudwatch"),
        ("IAM", "iam"),
        ("SECRETS_MANAGER", "secretsmanager"),
        ("KMS", "kms"),
        ("STS", "sts"),
        ("S3", "s3"),
    ]
    .iter()
    .filter_map(|(var, short)| {
        std::env::var(format!("AWS_ENDPOINT_URL_{var}"))
            .ok()
            .map(|u| format!("{short} {u}"))
    })
    .collect();
    let general = std::env::var("AWS_ENDPOINT_URL").ok();
    match (general, per_service.is_empty()) {
        (Some(g), true) => g,
        (Some(g), false) => format!("{g}; {}", per_service.join(", ")),
        (None, false) => per_service.join(", "),
        (None, true) => format!("AWS ({region})"),
    }
}

/// The one SDK configuration: region chain, endpoint, bounded timeouts and retries, so that an
/// unreachable endpoint fails within seconds.
pub async fn sdk_config(target: &Target) -> SdkConfig {
    let region = region_chain(target);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .read_timeout(Duration::from_secs(20))
                .operation_attempt_timeout(Duration::from_secs(25))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(client) = ca_bundle_client() {
        loader = loader.http_client(client);
    }
    loader.load().await
}

/// `AWS_CA_BUNDLE`, as the AWS CLI and the other SDKs read it: a PEM file holding the
/// certificates to trust instead of the system's (a TLS-inspecting proxy's CA, an emulator's).
/// Unreadable or without a certificate: a warning, and the system's certificates.
fn ca_bundle_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    let path = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty())?;
    let shown = std::path::Path::new(&path).display().to_string();
    let pem = match std::fs::read(&path) {
        Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => pem,
        Ok(_) => {
            tracing::warn!(
                "AWS_CA_BUNDLE {shown} holds no PEM certificate; using the system's certificates"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(
                "AWS_CA_BUNDLE {shown} cannot be read ({e}); using the system's certificates"
            );
            return None;
        }
    };
    match trusting(pem) {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::warn!(
                "AWS_CA_BUNDLE {shown} is not usable ({e}); using the system's certificates"
            );
            None
        }
    }
}

/// An HTTPS client that trusts exactly the PEM certificates given.
pub fn trusting(
    pem: Vec<u8>,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, String> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// Config, then environment and profile, then [`DEFAULT_REGION`]; never the instance metadata
/// service (hcctl must not send traffic anywhere it was not told to).
fn region_chain(target: &Target) -> RegionProviderChain {
    RegionProviderChain::first_try(target.region.clone().map(Region::new))
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::from_static(DEFAULT_REGION))
}

/// The region requests go to, resolved like [`sdk_config`] does.
pub async fn resolve_region(target: &Target) -> String {
    region_chain(target)
        .region()
        .await
        .map_or_else(|| DEFAULT_REGION.to_string(), |r| r.to_string())
}

/// The account the credentials belong to (STS GetCallerIdentity: read-only, needs no
/// permission), for the ARNs hcctl derives and for telling the home account's references from
/// another account's.
pub async fn account_id(aws: &Aws) -> Result<String, AwsError> {
    let action = format!(
        "finding the AWS account of these credentials ({})",
        aws.endpoint
    );
    let out = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::new(action.clone(), &e))?;
    out.account()
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .ok_or_else(|| AwsError::other(action, "STS answered without an account id"))
}

/// Counts the API calls made, read-only and mutating, by operation name. Deploy proves "no
/// mutating call" with it, and the benchmark reports it.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    inner: Arc<CallsInner>,
}

#[derive(Debug, Default)]
struct CallsInner {
    read: AtomicU64,
    mutating: AtomicU64,
    names: Mutex<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CallCount {
    pub read: u64,
    pub mutating: u64,
    /// The mutating operations, in order ("ecs:RegisterTaskDefinition").
    pub mutating_operations: Vec<String>,
}

impl Calls {
    pub fn count(&self) -> CallCount {
        CallCount {
            read: self.inner.read.load(Ordering::Relaxed),
            mutating: self.inner.mutating.load(Ordering::Relaxed),
            mutating_operations: self
                .inner
                .names
                .lock()
                .map(|n| n.clone())
                .unwrap_or_default(),
        }
    }
}

/// Read-only operations by their name; everything else changes something.
pub fn is_read_only(operation: &str) -> bool {
    ["Describe", "List", "Get", "Head", "Simulate"]
        .iter()
        .any(|p| operation.starts_with(p))
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "hcctl::aws::Calls"
    }

    /// Once per operation (not per retry attempt), once the operation's metadata is known.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        if is_read_only(meta.name()) {
            self.inner.read.fetch_add(1, Ordering::Relaxed);
        } else {
            self.inner.mutating.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut names) = self.inner.names.lock() {
                names.push(format!(
                    "{}:{}",
                    meta.service().to_ascii_lowercase(),
                    meta.name()
                ));
            }
        }
        Ok(())
    }
}

/// An AWS call that failed.
#[derive(Debug)]
pub struct AwsError {
    /// "creating log group /ecs/hcctl-dev/app"
    pub action: String,
    pub kind: AwsErrorKind,
    /// AWS's error code, when AWS answered.
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// No answer: connection refused, DNS, timeout.
    Unreachable,
    /// AWS answered with an error.
    Service,
    /// Credentials, request building, unreadable responses.
    Other,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.code) {
            (AwsErrorKind::Service, Some(code)) => {
                write!(f, "{}: {code}: {}", self.action, self.message)
            }
            _ => write!(f, "{}: {}", self.action, self.message),
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// A failure on our side of the call: building a request, a missing prerequisite.
    pub fn other(action: impl Into<String>, message: impl fmt::Display) -> AwsError {
        AwsError {
            action: action.into(),
            kind: AwsErrorKind::Other,
            code: None,
            message: message.to_string(),
        }
    }

    pub fn new<E, R>(action: impl Into<String>, err: &SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug + 'static,
    {
        let action = action.into();
        let chain = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
        match err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError {
                action,
                kind: AwsErrorKind::Unreachable,
                code: None,
                message: format!(
                    "no answer from the AWS endpoint ({}); check --endpoint-url / \
                     AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> and the network, then run again",
                    root_cause(err)
                ),
            },
            SdkError::ServiceError(se) => {
                let e = se.err();
                AwsError {
                    action,
                    kind: AwsErrorKind::Service,
                    code: Some(e.code().unwrap_or("Unknown").to_string()),
                    message: e.message().unwrap_or("(no message)").to_string(),
                }
            }
            _ => AwsError::other(action, chain),
        }
    }
}

/// The innermost error's message ("Connection refused (os error 111)"), or the outermost when
/// there is no chain.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    match cur.to_string() {
        s if s.is_empty() => err.to_string(),
        s => s,
    }
}

impl From<AwsError> for crate::error::Error {
    fn from(e: AwsError) -> Self {
        crate::error::Error::Failed(anyhow::Error::new(e))
    }
}

/// The tags of a create call: none at all when the config has none. AWS refuses an empty tag map
/// (CloudWatch Logs' `tags` has a minimum of one entry), where the emulators take it.
pub fn create_tags<T: FromIterator<(String, String)>>(
    tags: &BTreeMap<String, String>,
) -> Option<T> {
    (!tags.is_empty()).then(|| tags.clone().into_iter().collect())
}

/// Tags to set (new or changed) and keys to remove, to go from `actual` to `desired`.
pub fn tag_delta(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = actual
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// Plan lines for tag differences.
pub fn tag_changes(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<String> {
    let (set, remove) = tag_delta(actual, desired);
    let mut out: Vec<String> = set
        .iter()
        .map(|(k, v)| match actual.get(k) {
            Some(old) => format!("tag {k}: {old} → {v}"),
            None => format!("tag {k}: (none) → {v}"),
        })
        .collect();
    out.extend(remove.iter().map(|k| format!("tag {k}: removed")));
    out
}
