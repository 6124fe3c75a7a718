//! [`Bucket`]: an object store and the prefix the files go under, chosen by URL.

use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme};
use url::Url;

use crate::{BucketError, ObjectName};

/// Where exported files go: an [`ObjectStore`] and a prefix inside it.
///
/// [`Bucket::from_url`] picks the backend by URL:
///
/// | URL | store | prefix |
/// |---|---|---|
/// | `DIR`, `./DIR`, `/abs/DIR`, `file:///abs/DIR` | local directory (created if absent) | none |
/// | `s3://bucket/path` | Amazon S3 or an S3-compatible server | `path/` |
/// | `gs://bucket/path` | Google Cloud Storage | `path/` |
/// | `az://container/path`, `abfs[s]://container@account.dfs.core.windows.net/path` | Azure Blob Storage | `path/` |
/// | `memory:///path` | in-memory (tests and examples) | `path/` |
///
/// The cloud stores are cargo features of this crate, all on by default: `s3`, `gcs`
/// and `azure`. A URL for a store this build lacks is
/// [`BucketError::BackendNotBuilt`], naming the feature;
/// [`Bucket::check_backend`] tells without building anything. Local directories
/// and `memory:///` need no feature.
///
/// Cloud stores are configured the way `object_store` configures them: its builders
/// read their environment variables (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
/// `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, …) and
/// [`Bucket::from_url_with_options`] adds its configuration keys (`aws_endpoint`,
/// `aws_virtual_hosted_style_request`, …). An S3 bucket with a custom endpoint is
/// addressed path-style unless virtual-hosted style is asked for.
///
/// ```
/// use cdp_bucket::Bucket;
///
/// let dir = tempfile::tempdir()?;
/// let bucket = Bucket::from_url(dir.path().to_str().unwrap())?;
/// assert_eq!(bucket.prefix().as_ref(), "");
///
/// let bucket = Bucket::from_url("memory:///exports")?;
/// assert_eq!(bucket.prefix().as_ref(), "exports");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    location: String,
    local: Option<LocalDir>,
}

/// A local directory bucket: files are written straight into it.
#[derive(Debug, Clone)]
pub(crate) struct LocalDir {
    pub(crate) root: std::path::PathBuf,
    pub(crate) fsync: bool,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket").field("location", &self.location).field("prefix", &self.prefix).finish()
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)
    }
}

impl Bucket {
    /// A bucket on any store, with files under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Bucket {
        let location = format!("{store}/{prefix}");
        Bucket { store, prefix, location, local: None }
    }

    /// A local directory, created if absent; files go straight into it. Each file
    /// is synced to disk before it gets its name, so that a published file survives
    /// a power loss once its calls have left the spool.
    pub fn local(dir: impl AsRef<FsPath>) -> Result<Bucket, BucketError> {
        Bucket::local_with_fsync(dir, true)
    }

    /// A local directory, with files synced to disk before they get their names or
    /// not. Without syncing, a power loss can lose files whose calls have already
    /// left the spool; benchmarks against tools that do not sync use it.
    pub fn local_with_fsync(dir: impl AsRef<FsPath>, fsync: bool) -> Result<Bucket, BucketError> {
        let dir = dir.as_ref();
        let bad = |reason: String| BucketError::InvalidBucket { url: dir.display().to_string(), reason };
        std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(e.to_string()))?.with_fsync(fsync);
        let root = std::fs::canonicalize(dir).map_err(|e| bad(e.to_string()))?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix: Path::default(),
            location: dir.display().to_string(),
            local: Some(LocalDir { root, fsync }),
        })
    }

    /// The bucket a URL or a local directory names, configured from the
    /// environment (see the table above).
    pub fn from_url(url: &str) -> Result<Bucket, BucketError> {
        Bucket::from_url_with_options(url, std::iter::empty::<(&str, &str)>())
    }

    /// As [`Bucket::from_url`], with `object_store` configuration keys on top of the
    /// environment (`("aws_endpoint", "http://127.0.0.1:5000")`). Unknown keys are an
    /// error.
    pub fn from_url_with_options<I, K, V>(url: &str, options: I) -> Result<Bucket, BucketError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let bad = |reason: String| BucketError::InvalidBucket { url: url.to_owned(), reason };
        if url.is_empty() {
            return Err(bad("the bucket is empty: give a directory or a URL".into()));
        }
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            // Not a URL: a local directory.
            Err(url::ParseError::RelativeUrlWithoutBase) => return Bucket::local(url),
            Err(e) => return Err(bad(e.to_string())),
        };
        // `C:\dir` parses as a URL with scheme `c`; it is a directory.
        if parsed.scheme().len() == 1 {
            return Bucket::local(url);
        }
        let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
        if let Some(error) = not_built(&parsed, &scheme) {
            return Err(error);
        }
        let prefix = Path::parse(path).map_err(|e| bad(format!("invalid path: {e}")))?;
        // Only the cloud stores take options.
        #[cfg_attr(not(any(feature = "s3", feature = "gcs", feature = "azure")), allow(unused_variables))]
        let options: Vec<(String, String)> =
            options.into_iter().map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into())).collect();
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => {
                let dir = parsed.to_file_path().map_err(|()| bad("not a local path".into()))?;
                return Bucket::local(dir);
            }
            ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
            #[cfg(feature = "s3")]
            ObjectStoreScheme::AmazonS3 => {
                crate::tls::install_crypto_provider();
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                for (key, value) in options {
                    let key = key.parse().map_err(|e| bad(format!("unknown S3 option {key:?}: {e}")))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            #[cfg(feature = "gcs")]
            ObjectStoreScheme::GoogleCloudStorage => {
                crate::tls::install_crypto_provider();
                let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
                for (key, value) in options {
                    let key = key.parse().map_err(|e| bad(format!("unknown GCS option {key:?}: {e}")))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            #[cfg(feature = "azure")]
            ObjectStoreScheme::MicrosoftAzure => {
                crate::tls::install_crypto_provider();
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
                for (key, value) in options {
                    let key = key.parse().map_err(|e| bad(format!("unknown Azure option {key:?}: {e}")))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
            }
            other => return Err(bad(format!("{other:?} URLs are not supported as buckets"))),
        };
        Ok(Bucket { store, prefix, location: redact(&parsed), local: None })
    }

    /// Checks that this build has the store a bucket URL names, without building it
    /// or creating anything: a URL of a cloud store whose cargo feature was not
    /// enabled is [`BucketError::BackendNotBuilt`]. Anything else wrong with the URL
    /// is left to [`Bucket::from_url`]; directories always pass.
    ///
    /// ```
    /// use cdp_bucket::{Bucket, BucketError};
    ///
    /// assert!(Bucket::check_backend("exports/daily").is_ok());
    /// match Bucket::check_backend("s3://my-bucket/exports") {
    ///     Ok(()) => assert!(cfg!(feature = "s3")),
    ///     Err(BucketError::BackendNotBuilt { feature, .. }) => assert_eq!(feature, "s3"),
    ///     Err(other) => panic!("{other}"),
    /// }
    /// ```
    pub fn check_backend(url: &str) -> Result<(), BucketError> {
        let Ok(parsed) = Url::parse(url) else { return Ok(()) };
        if parsed.scheme().len() == 1 {
            return Ok(());
        }
        match ObjectStoreScheme::parse(&parsed) {
            Ok((scheme, _)) => not_built(&parsed, &scheme).map_or(Ok(()), Err),
            Err(_) => Ok(()),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix the files go under (empty for a local directory).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The directory, for a local bucket.
    pub(crate) fn local_dir(&self) -> Option<&LocalDir> {
        self.local.as_ref()
    }

    /// The full path of a file in the store.
    pub fn object_path(&self, name: &ObjectName) -> Path {
        self.prefix.clone().join(name.to_string())
    }
}

/// The cargo feature that brings a cloud store, and whether this build has it.
fn backend_feature(scheme: &ObjectStoreScheme) -> Option<(&'static str, bool)> {
    match scheme {
        ObjectStoreScheme::AmazonS3 => Some(("s3", cfg!(feature = "s3"))),
        ObjectStoreScheme::GoogleCloudStorage => Some(("gcs", cfg!(feature = "gcs"))),
        ObjectStoreScheme::MicrosoftAzure => Some(("azure", cfg!(feature = "azure"))),
        _ => None,
    }
}

/// The error for a URL of a cloud store this build does not have, if it is one.
fn not_built(url: &Url, scheme: &ObjectStoreScheme) -> Option<BucketError> {
    match backend_feature(scheme) {
        Some((feature, false)) => {
            Some(BucketError::BackendNotBuilt { url: redact(url), scheme: url.scheme().to_owned(), feature })
        }
        _ => None,
    }
}

/// The URL without user name, password or query (which may carry secrets).
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "s3")]
    #[test]
    fn urls_pick_the_store_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        let bucket = Bucket::from_url(plain.to_str().unwrap()).unwrap();
        assert_eq!(bucket.prefix().as_ref(), "");
        assert!(plain.is_dir(), "a local bucket directory is created");

        let file_url = format!("file://{}", dir.path().join("viaurl").display());
        let bucket = Bucket::from_url(&file_url).unwrap();
        assert_eq!(bucket.prefix().as_ref(), "");
        assert!(dir.path().join("viaurl").is_dir());

        let bucket = Bucket::from_url("memory:///a/b").unwrap();
        assert_eq!(bucket.prefix().as_ref(), "a/b");

        let bucket = Bucket::from_url_with_options(
            "s3://my-bucket/exports/daily",
            [
                ("aws_endpoint", "http://127.0.0.1:1"),
                ("aws_allow_http", "true"),
                ("aws_region", "us-east-1"),
                ("aws_access_key_id", "k"),
                ("aws_secret_access_key", "s"),
            ],
        )
        .unwrap();
        assert_eq!(bucket.prefix().as_ref(), "exports/daily");
        assert_eq!(bucket.to_string(), "s3://my-bucket/exports/daily");
    }

    #[cfg(all(feature = "s3", feature = "gcs", feature = "azure"))]
    #[test]
    fn cloud_urls_build_their_stores() {
        let gcs =
            Bucket::from_url_with_options("gs://my-bucket/cdp/exports", [("google_skip_signature", "true")])
                .unwrap();
        assert_eq!(gcs.prefix().as_ref(), "cdp/exports");
        assert!(gcs.store().to_string().contains("GoogleCloudStorage"), "{}", gcs.store());
        let options = [("azure_storage_account_name", "myaccount"), ("azure_skip_signature", "true")];
        let azure = Bucket::from_url_with_options("az://container/cdp", options).unwrap();
        assert_eq!(azure.prefix().as_ref(), "cdp");
        assert!(azure.store().to_string().contains("MicrosoftAzure"), "{}", azure.store());
        let abfs = Bucket::from_url_with_options(
            "abfss://container@myaccount.dfs.core.windows.net/cdp/x",
            [("azure_skip_signature", "true")],
        )
        .unwrap();
        assert_eq!(abfs.prefix().as_ref(), "cdp/x");
        // A custom S3 endpoint is addressed path-style unless asked otherwise.
        let s3 = Bucket::from_url_with_options(
            "s3://b/p",
            [
                ("aws_endpoint", "http://127.0.0.1:1"),
                ("aws_allow_http", "true"),
                ("aws_skip_signature", "true"),
            ],
        )
        .unwrap();
        assert!(s3.store().to_string().contains("AmazonS3"), "{}", s3.store());
    }

    #[test]
    fn bad_urls_name_the_url_and_the_reason() {
        let err = Bucket::from_url("").unwrap_err();
        assert!(matches!(err, BucketError::InvalidBucket { .. }), "{err}");
        #[cfg(feature = "s3")]
        {
            let err = Bucket::from_url_with_options("s3://b/p", [("no_such_option", "1")]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("s3://b/p") && text.contains("no_such_option"), "{text}");
        }
        let err = Bucket::from_url("ftp://host/dir").unwrap_err();
        assert!(err.to_string().contains("ftp://host/dir"), "{err}");
    }

    /// Local directories and `memory:///` need no feature; each cloud store works
    /// exactly when its feature is on, and otherwise fails before anything is built,
    /// naming the URL (without secrets), its scheme and the feature.
    #[test]
    fn cloud_stores_need_their_features() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local");
        assert!(Bucket::from_url(local.to_str().unwrap()).is_ok());
        assert!(Bucket::from_url("memory:///x").is_ok());
        assert!(Bucket::check_backend(local.to_str().unwrap()).is_ok());
        assert!(Bucket::check_backend("memory:///x").is_ok());
        let cases = [
            ("s3://user:hunter2@b/p?secret=1", "s3", "s3", cfg!(feature = "s3")),
            ("gs://b/p", "gs", "gcs", cfg!(feature = "gcs")),
            ("az://container/p", "az", "azure", cfg!(feature = "azure")),
            ("abfss://container@account.dfs.core.windows.net/p", "abfss", "azure", cfg!(feature = "azure")),
        ];
        for (url, want_scheme, want_feature, built) in cases {
            match Bucket::check_backend(url) {
                Ok(()) => assert!(built, "{url} passes only with `{want_feature}`"),
                Err(BucketError::BackendNotBuilt { url: shown, scheme, feature }) => {
                    assert!(!built, "{url} is refused only without `{want_feature}`");
                    assert_eq!((scheme.as_str(), feature), (want_scheme, want_feature));
                    assert!(!shown.contains("hunter2") && !shown.contains("secret"), "{shown}");
                }
                Err(other) => panic!("{url}: {other}"),
            }
            if !built {
                let error = Bucket::from_url(url).unwrap_err();
                let text = error.to_string();
                assert!(matches!(error, BucketError::BackendNotBuilt { .. }), "{text}");
                assert!(
                    text.contains(&format!("{want_scheme}://"))
                        && text.contains(&format!("`{want_feature}` feature"))
                        && !text.contains("hunter2"),
                    "{text}"
                );
            }
        }
    }
}
