//! Objects in S3 as the input and outputs of a run: an object read as a stream that resumes a
//! dropped connection where it stopped, and an object written as a multipart upload that appears
//! only when it is committed.
//!
//! Both are blocking [`Read`] / [`Write`] adapters over the async client, for the reader and
//! sorter that run on blocking threads: each call waits for its request on the current runtime
//! ([`wait`]). Nothing is buffered beyond one body chunk (reading) or one part (writing), so
//! memory does not grow with the object.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::time::Duration;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::Bytes;

use super::{AwsError, Target};

/// The size of the first thousand uploaded parts (S3's minimum is 5 MiB, except for the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// S3's most parts in one upload.
const MAX_PARTS: usize = 10_000;

/// The size of part `number` (from 1): 8 MiB for the first thousand, 16 MiB for the next, … 80
/// MiB for the last thousand — an object of up to 440,000 MiB (about 430 GiB) fits S3's 10,000
/// parts of one upload, and the buffer never holds more than 80 MiB.
pub fn part_bytes(number: usize) -> usize {
    PART_BYTES * (1 + number.saturating_sub(1) / 1000)
}

/// Reconnections in a row without a byte of progress before a read gives up.
const MAX_RESUMES: u32 = 6;

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    /// `Some` for a string starting with `s3://`: parsed, or an error saying what is wrong.
    pub fn parse(text: &str) -> Option<Result<S3Url, String>> {
        let rest = text.strip_prefix("s3://")?;
        let Some((bucket, key)) = rest.split_once('/') else {
            return Some(Err(format!(
                "{text}: an S3 location is s3://BUCKET/KEY, and this one names no key"
            )));
        };
        if let Err(e) = check_bucket(text, bucket) {
            return Some(Err(e));
        }
        if key.is_empty() || key.ends_with('/') {
            return Some(Err(format!(
                "{text}: names a prefix, not an object (give the object's whole key)"
            )));
        }
        if key.len() > 1024 {
            return Some(Err(format!("{text}: an S3 key is at most 1,024 bytes")));
        }
        Some(Ok(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }))
    }

    /// `Some` for a string starting with `s3://`: `(bucket, prefix)` of `s3://BUCKET[/PREFIX]`
    /// (the prefix may be empty, the whole bucket), or an error saying what is wrong.
    pub fn parse_prefix(text: &str) -> Option<Result<(String, String), String>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if let Err(e) = check_bucket(text, bucket) {
            return Some(Err(e));
        }
        if prefix.len() > 1024 {
            return Some(Err(format!("{text}: an S3 prefix is at most 1,024 bytes")));
        }
        Some(Ok((bucket.to_string(), prefix.to_string())))
    }

    /// The last segment of the key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The key without its last segment, with its trailing `/` ("" at the top).
    pub fn dir(&self) -> &str {
        match self.key.rfind('/') {
            Some(i) => &self.key[..=i],
            None => "",
        }
    }

    /// The same bucket, another key.
    pub fn with_key(&self, key: String) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

fn check_bucket(text: &str, bucket: &str) -> Result<(), String> {
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if valid_bucket {
        Ok(())
    } else {
        Err(format!(
            "{text}: \"{bucket}\" is not an S3 bucket name (3-63 lowercase letters, digits, \
             '-' and '.')"
        ))
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The S3 client of a run, from the standard aws-config chain like every other client. Path-style
/// addressing when an endpoint is configured (emulators, S3-compatible stores), whose host names
/// do not carry buckets; request checksums only where S3 requires them (ranged reads carry none).
pub async fn client(target: &Target) -> aws_sdk_s3::Client {
    let config = super::sdk_config(target).await;
    aws_sdk_s3::Client::from_conf(config_builder(&config, target).build())
}

/// The S3 configuration over the shared one (see [`client`]).
pub fn config_builder(
    config: &aws_config::SdkConfig,
    target: &Target,
) -> aws_sdk_s3::config::Builder {
    let custom_endpoint = target.endpoint_url.is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
}

/// Wait for `fut` on the current runtime from code that must block (a [`Read`] or [`Write`]
/// call): on a runtime thread the thread is handed over to blocking work first.
pub fn wait<F: Future>(fut: F) -> io::Result<F::Output> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("internal: S3 I/O outside the async runtime"))?;
    Ok(tokio::task::block_in_place(|| handle.block_on(fut)))
}

/// An object read from its first byte to its last. A connection that drops (or a body error)
/// is resumed with a ranged GET from the byte reached, conditional on the same ETag, so the
/// bytes read are exactly the object's even when it is replaced meanwhile (that is an error).
pub struct ObjectReader {
    client: aws_sdk_s3::Client,
    url: S3Url,
    body: ByteStream,
    chunk: Bytes,
    /// Bytes handed out so far.
    offset: u64,
    /// The object's length and ETag, from the first answer.
    length: u64,
    etag: Option<String>,
    /// Reconnections since the last byte of progress.
    resumes: u32,
    /// Reconnections in all, for the log.
    pub resumed: u32,
}

impl ObjectReader {
    /// Start reading `url` (one GetObject; its errors say whether the object or the permission
    /// is missing).
    pub async fn open(client: aws_sdk_s3::Client, url: S3Url) -> Result<ObjectReader, AwsError> {
        Self::open_pinned(client, url, None).await
    }

    /// As [`ObjectReader::open`], only if the object still has ETag `pin` (read before): a
    /// replaced object is a `PreconditionFailed` error, never other bytes.
    pub async fn open_pinned(
        client: aws_sdk_s3::Client,
        url: S3Url,
        pin: Option<&str>,
    ) -> Result<ObjectReader, AwsError> {
        let out = client
            .get_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .set_if_match(pin.map(str::to_string))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("opening {url}"), &e))?;
        let GetObjectOutput {
            body,
            content_length,
            e_tag,
            ..
        } = out;
        Ok(ObjectReader {
            client,
            url,
            body,
            chunk: Bytes::new(),
            offset: 0,
            length: content_length.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            etag: e_tag,
            resumes: 0,
            resumed: 0,
        })
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// The object's ETag, from the first answer.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The next body chunk, resuming the connection when it fails or ends early.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let cut = match self.body.next().await {
                Some(Ok(bytes)) if bytes.is_empty() => continue,
                Some(Ok(bytes)) => {
                    self.resumes = 0;
                    return Ok(Some(bytes));
                }
                None if self.offset >= self.length => return Ok(None),
                None => format!(
                    "the connection ended at byte {} of {}",
                    self.offset, self.length
                ),
                Some(Err(e)) => format!("the connection failed at byte {}: {e}", self.offset),
            };
            self.resume(cut).await?;
        }
    }

    /// A new GET of the rest of the object, after a backoff.
    async fn resume(&mut self, why: String) -> io::Result<()> {
        loop {
            self.resumes += 1;
            if self.resumes > MAX_RESUMES {
                return Err(io::Error::other(format!(
                    "reading {}: {why}; gave up after {MAX_RESUMES} attempts to resume (check \
                     the network and run again)",
                    self.url
                )));
            }
            let backoff = Duration::from_millis(200 * (1 << self.resumes.min(5)));
            tracing::warn!(
                object = %self.url,
                offset = self.offset,
                attempt = self.resumes,
                "{why}; resuming in {:.1} s",
                backoff.as_secs_f64()
            );
            tokio::time::sleep(backoff).await;
            let mut request = self
                .client
                .get_object()
                .bucket(&self.url.bucket)
                .key(&self.url.key)
                .range(format!("bytes={}-", self.offset));
            if let Some(etag) = &self.etag {
                request = request.if_match(etag);
            }
            match request.send().await {
                Ok(out) => {
                    self.body = out.body;
                    self.resumed += 1;
                    return Ok(());
                }
                Err(e) => {
                    let e = AwsError::new(format!("resuming {}", self.url), &e);
                    if e.code.as_deref() == Some("PreconditionFailed") {
                        return Err(io::Error::other(format!(
                            "{} was replaced while it was being read (its ETag changed at byte \
                             {}): nothing was written to the database; run again to read the new \
                             object",
                            self.url, self.offset
                        )));
                    }
                    if e.kind == super::AwsErrorKind::Service {
                        return Err(io::Error::other(e.to_string()));
                    }
                }
            }
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.chunk.is_empty() {
            match wait(self.next_chunk())?? {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.offset += n as u64;
        Ok(n)
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Without its quotes.
    pub etag: Option<String>,
    /// Nanoseconds since the epoch.
    pub modified_ns: Option<i64>,
}

/// The objects of `bucket` whose keys start with `prefix`, in key order: every page, or the
/// first `limit` objects. The error names the bucket and prefix.
pub async fn list(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    limit: Option<usize>,
) -> Result<Vec<Listed>, AwsError> {
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take());
        if let Some(n) = limit {
            let left = n.saturating_sub(listed.len()).clamp(1, 1000);
            request = request.max_keys(i32::try_from(left).unwrap_or(1000));
        }
        let page = request
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing s3://{bucket}/{prefix}"), &e))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            listed.push(Listed {
                key: key.to_string(),
                size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                etag: o.e_tag().map(|t| t.trim_matches('"').to_string()),
                modified_ns: o
                    .last_modified()
                    .and_then(|t| i64::try_from(t.as_nanos()).ok()),
            });
            if limit.is_some_and(|n| listed.len() >= n) {
                return Ok(listed);
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(listed),
        }
    }
}

/// How objects hcctl writes are encrypted at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-S3 (AES-256, keys managed by S3).
    #[default]
    S3Managed,
    /// SSE-KMS with this key (ARN, id or alias).
    Kms(String),
}

/// An object written as a multipart upload: parts of [`PART_BYTES`] go up as they fill, and the
/// object appears only when [`ObjectWriter::commit`] completes the upload. Dropped uncommitted,
/// the upload is aborted (a process killed outright leaves an incomplete upload, which the drops
/// bucket's lifecycle rule removes after a day; it is never an object).
pub struct ObjectWriter {
    client: aws_sdk_s3::Client,
    url: S3Url,
    upload_id: Option<String>,
    buffer: Vec<u8>,
    parts: Vec<CompletedPart>,
}

impl ObjectWriter {
    /// Start the upload (CreateMultipartUpload), so that a missing bucket or permission is found
    /// before the run's work.
    pub async fn create(
        client: aws_sdk_s3::Client,
        url: S3Url,
        content_type: &str,
        encryption: &Encryption,
    ) -> Result<ObjectWriter, AwsError> {
        let mut request = client
            .create_multipart_upload()
            .bucket(&url.bucket)
            .key(&url.key)
            .content_type(content_type);
        request = match encryption {
            Encryption::S3Managed => request.server_side_encryption(ServerSideEncryption::Aes256),
            Encryption::Kms(key) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key),
        };
        let out = request
            .send()
            .await
            .map_err(|e| AwsError::new(format!("starting the upload of {url}"), &e))?;
        let upload_id = out.upload_id.filter(|id| !id.is_empty()).ok_or_else(|| {
            AwsError::other(
                format!("starting the upload of {url}"),
                "S3 answered without an upload id",
            )
        })?;
        Ok(ObjectWriter {
            client,
            url,
            upload_id: Some(upload_id),
            buffer: Vec::with_capacity(PART_BYTES),
            parts: Vec::new(),
        })
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    async fn upload_part(&mut self) -> io::Result<()> {
        let Some(upload_id) = &self.upload_id else {
            return Err(io::Error::other("internal: the upload is finished"));
        };
        let next = self.parts.len() + 1;
        let number = i32::try_from(next)
            .ok()
            .filter(|_| next <= MAX_PARTS)
            .ok_or_else(|| {
                io::Error::other(
                    "an S3 upload has at most 10,000 parts (about 430 GiB here): the object is \
                     too large for one upload",
                )
            })?;
        let body = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART_BYTES));
        let out = self
            .client
            .upload_part()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                io::Error::other(
                    AwsError::new(format!("uploading part {number} of {}", self.url), &e)
                        .to_string(),
                )
            })?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    /// Upload the last part and complete the upload: the object is then in place, whole.
    pub async fn commit(mut self) -> Result<(), AwsError> {
        let action = format!("completing the upload of {}", self.url);
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.upload_part()
                .await
                .map_err(|e| AwsError::other(action.clone(), e))?;
        }
        let Some(upload_id) = self.upload_id.take() else {
            return Ok(());
        };
        let parts = std::mem::take(&mut self.parts);
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = result {
            self.upload_id = Some(upload_id);
            return Err(AwsError::new(action, &e));
        }
        Ok(())
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let size = part_bytes(self.parts.len() + 1);
        let room = size.saturating_sub(self.buffer.len());
        let n = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() >= size {
            wait(self.upload_part())??;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts go up when they are full; the rest with the commit.
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(upload_id);
        match wait(request.send()) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let e = AwsError::new(format!("aborting the upload of {}", self.url), &e);
                tracing::warn!("{e}");
            }
            Err(e) => tracing::warn!(object = %self.url, "could not abort the upload: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_every_thousand_so_a_large_object_fits_ten_thousand() {
        assert_eq!(part_bytes(1), PART_BYTES);
        assert_eq!(part_bytes(1000), PART_BYTES);
        assert_eq!(part_bytes(1001), 2 * PART_BYTES);
        assert_eq!(part_bytes(MAX_PARTS), 10 * PART_BYTES);
        let total: usize = (1..=MAX_PARTS).map(part_bytes).sum();
        assert_eq!(total, 440_000 * 1024 * 1024);
    }

    #[test]
    fn parses_locations() {
        let url = S3Url::parse("s3://drops-1/incoming/2026/x.csv.gz")
            .unwrap()
            .unwrap();
        assert_eq!(url.bucket, "drops-1");
        assert_eq!(url.key, "incoming/2026/x.csv.gz");
        assert_eq!(url.file_name(), "x.csv.gz");
        assert_eq!(url.dir(), "incoming/2026/");
        assert_eq!(url.to_string(), "s3://drops-1/incoming/2026/x.csv.gz");
        assert_eq!(S3Url::parse("s3://b-1/x").unwrap().unwrap().dir(), "");
        assert!(S3Url::parse("data/x.csv").is_none());
        for (bad, says) in [
            ("s3://bucket", "names no key"),
            ("s3://Bucket/x", "not an S3 bucket name"),
            ("s3://b/x", "not an S3 bucket name"),
            ("s3://bucket/incoming/", "names a prefix"),
            ("s3://bucket/", "names a prefix"),
        ] {
            let err = S3Url::parse(bad).unwrap().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
