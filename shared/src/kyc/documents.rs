//! KYC document images: accepted only as JPEG, PNG or PDF — decided by their bytes, not by the
//! `Content-Type` the client claims — and encrypted before they are stored.
//!
//! Stored objects are `b"BMK1" ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag`, with the
//! object's storage key as associated data, so an object copied under another key does not
//! decrypt. The version prefix leaves room for key rotation. Only metadata (type, size,
//! SHA-256 of the plaintext, storage key) is kept in the database.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;

use super::{Error, Result, SubmissionId};
use crate::{config::KycConfig, storage::Storage};

/// A document image's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(i64);

impl DocumentId {
    pub fn new(id: i64) -> Self {
        Self(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Which picture it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr, Serialize, Deserialize, ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// The document's front (a passport's photo page).
    Front,
    /// The document's back.
    Back,
    /// The customer holding the document.
    Selfie,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A format the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    Jpeg,
    Png,
    Pdf,
}

impl DocumentFormat {
    pub const ALL: [DocumentFormat; 3] = [DocumentFormat::Jpeg, DocumentFormat::Png, DocumentFormat::Pdf];

    pub fn content_type(self) -> &'static str {
        match self {
            DocumentFormat::Jpeg => "image/jpeg",
            DocumentFormat::Png => "image/png",
            DocumentFormat::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            DocumentFormat::Jpeg => "jpg",
            DocumentFormat::Png => "png",
            DocumentFormat::Pdf => "pdf",
        }
    }

    /// The format a `Content-Type` names (parameters ignored; `image/jpg` is read as JPEG).
    pub fn from_content_type(value: &str) -> Option<Self> {
        let mime: mime::Mime = value.parse().ok()?;
        match mime.essence_str() {
            "image/jpeg" | "image/jpg" => Some(DocumentFormat::Jpeg),
            "image/png" => Some(DocumentFormat::Png),
            "application/pdf" => Some(DocumentFormat::Pdf),
            _ => None,
        }
    }

    /// The format the bytes are in, by their signature (JPEG SOI marker, PNG signature, `%PDF-`).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(DocumentFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(DocumentFormat::Png)
        } else if bytes.starts_with(b"%PDF-") {
            Some(DocumentFormat::Pdf)
        } else {
            None
        }
    }

    /// Checks an upload: the declared type must be accepted, the size within `max_bytes`, and
    /// the bytes must really be in the declared format. Problems name the field `file` (or the
    /// `Content-Type` header).
    pub fn check_upload(declared: Option<&str>, bytes: &[u8], max_bytes: usize) -> Result<Self> {
        let declared = declared.unwrap_or_default();
        let format = Self::from_content_type(declared).ok_or_else(|| Error::UnsupportedType(declared.to_owned()))?;
        if bytes.is_empty() {
            return Err(Error::invalid("file", "is empty"));
        }
        if bytes.len() > max_bytes {
            return Err(Error::invalid("file", format!("must be at most {max_bytes} bytes")));
        }
        match Self::sniff(bytes) {
            Some(actual) if actual == format => Ok(format),
            Some(actual) => Err(Error::invalid(
                "file",
                format!("is {} although Content-Type says {}", actual.content_type(), format.content_type()),
            )),
            None => Err(Error::invalid("file", "is not a JPEG, PNG or PDF file")),
        }
    }
}

/// A stored document image's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Document {
    pub id: i64,
    pub kind: DocumentKind,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the image.
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
    #[serde(skip)]
    pub(crate) storage_key: String,
}

impl Document {
    /// A file name for downloads: `kyc-<submission>-<kind>.<ext>`.
    pub fn file_name(&self, submission: SubmissionId) -> String {
        let extension = DocumentFormat::from_content_type(&self.content_type).map_or("bin", DocumentFormat::extension);
        format!("kyc-{}-{}.{extension}", submission.get(), self.kind.as_str())
    }
}

/// The version prefix of encrypted objects.
const MAGIC: &[u8; 4] = b"BMK1";
const NONCE_LEN: usize = 12;

/// Encrypted document storage over the platform's [`Storage`].
#[derive(Clone)]
pub struct DocumentVault {
    storage: Storage,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DocumentVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentVault").field("storage", &self.storage).finish_non_exhaustive()
    }
}

impl DocumentVault {
    pub fn new(storage: Storage, config: &KycConfig) -> Self {
        let cipher = Aes256Gcm::new(config.encryption_key.expose_secret().into());
        Self { storage, cipher }
    }

    /// Encrypts `plaintext` (off the async runtime: up to several MiB) and stores it at `key`.
    pub async fn put(&self, key: &str, plaintext: bytes::Bytes) -> Result<()> {
        let (cipher, aad) = (self.cipher.clone(), key.to_owned());
        let sealed = tokio::task::spawn_blocking(move || seal(&cipher, &aad, &plaintext))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        self.storage.put(key, sealed.into()).await?;
        Ok(())
    }

    /// The decrypted object at `key`; `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = self.storage.get(key).await? else { return Ok(None) };
        let (cipher, aad) = (self.cipher.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || open(&cipher, &aad, &sealed))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map(Some)
    }

    /// Removes the object at `key`; absent is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.storage.delete(key).await?)
    }

    /// The raw (encrypted) object, for tests and audits of the storage itself.
    pub async fn raw(&self, key: &str) -> Result<Option<bytes::Bytes>> {
        Ok(self.storage.get(key).await?)
    }

    /// The decrypted image of a stored document, checked against its recorded SHA-256.
    pub async fn read(&self, document: &Document) -> Result<Vec<u8>> {
        let bytes = self
            .get(&document.storage_key)
            .await?
            .ok_or_else(|| Error::Integrity(format!("{}: the object is missing from storage", document.id)))?;
        match hex(&Sha256::digest(&bytes)) == document.sha256 {
            true => Ok(bytes),
            false => Err(Error::Integrity(format!("{}: SHA-256 mismatch", document.id))),
        }
    }
}

fn seal(cipher: &Aes256Gcm, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let ciphertext = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
        .map_err(|_| Error::Internal("encryption failed".into()))?;
    let mut sealed = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn open(cipher: &Aes256Gcm, aad: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    let broken = || Error::Integrity(format!("object {aad} does not decrypt"));
    let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or_else(broken)?;
    let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or_else(broken)?;
    let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| broken())?);
    cipher.decrypt(&nonce, Payload { msg: ciphertext, aad: aad.as_bytes() }).map_err(|_| broken())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    alloy::hex::encode(bytes)
}

/// What the database function below needs to record an upload.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    pub submission: SubmissionId,
    pub kind: DocumentKind,
    pub format: DocumentFormat,
    pub bytes: &'a [u8],
    pub storage_key: &'a str,
}

/// Records an uploaded document, replacing the submission's previous one of the same kind;
/// returns the new row and the storage key of the replaced object (to delete after commit).
pub async fn record(conn: &mut PgConnection, new: NewDocument<'_>) -> Result<(Document, Option<String>)> {
    let sha256 = Sha256::digest(new.bytes).to_vec();
    let size = i64::try_from(new.bytes.len()).map_err(|e| Error::Internal(e.to_string()))?;
    let replaced = sqlx::query_scalar!(
        "DELETE FROM kyc_documents WHERE submission_id = $1 AND kind = $2 RETURNING storage_key",
        new.submission.get(),
        new.kind.as_str(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let row = sqlx::query!(
        "INSERT INTO kyc_documents (submission_id, kind, content_type, size_bytes, sha256, storage_key)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
        new.submission.get(),
        new.kind.as_str(),
        new.format.content_type(),
        size,
        sha256,
        new.storage_key,
    )
    .fetch_one(&mut *conn)
    .await?;
    let document = Document {
        id: row.id,
        kind: new.kind,
        content_type: new.format.content_type().to_owned(),
        size_bytes: size,
        sha256: hex(&sha256),
        uploaded_at: row.created_at,
        storage_key: new.storage_key.to_owned(),
    };
    Ok((document, replaced))
}

/// The documents of a submission, in upload order.
pub async fn list(conn: &mut PgConnection, submission: SubmissionId) -> Result<Vec<Document>> {
    let rows = sqlx::query!(
        "SELECT id, kind, content_type, size_bytes, sha256, storage_key, created_at
         FROM kyc_documents WHERE submission_id = $1 ORDER BY id",
        submission.get()
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Document {
                id: row.id,
                kind: row.kind.parse().map_err(|_| Error::Internal("kyc_documents holds an invalid kind".into()))?,
                content_type: row.content_type,
                size_bytes: row.size_bytes,
                sha256: hex(&row.sha256),
                uploaded_at: row.created_at,
                storage_key: row.storage_key,
            })
        })
        .collect()
}

/// The storage key of a new upload: chosen by the platform, never by the uploader.
pub fn storage_key(customer: i64, submission: SubmissionId) -> String {
    format!("kyc/{customer}/{}/{}", submission.get(), uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn uploads_are_judged_by_their_bytes() {
        assert_eq!(DocumentFormat::check_upload(Some("image/png"), PNG, 100).unwrap(), DocumentFormat::Png);
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
        assert_eq!(DocumentFormat::check_upload(Some("image/jpeg"), &jpeg, 100).unwrap(), DocumentFormat::Jpeg);
        assert_eq!(
            DocumentFormat::check_upload(Some("application/pdf; x=y"), b"%PDF-1.7\n", 100).unwrap(),
            DocumentFormat::Pdf
        );
        let field = |r: Result<DocumentFormat>| match r {
            Err(Error::Invalid(errors)) => errors[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(DocumentFormat::check_upload(Some("image/png"), b"<html>", 100)), "file");
        assert_eq!(field(DocumentFormat::check_upload(Some("image/jpeg"), PNG, 100)), "file");
        assert_eq!(field(DocumentFormat::check_upload(Some("image/png"), PNG, 4)), "file");
        assert_eq!(field(DocumentFormat::check_upload(Some("image/png"), b"", 4)), "file");
        assert!(matches!(DocumentFormat::check_upload(Some("text/plain"), PNG, 100), Err(Error::UnsupportedType(_))));
        assert!(matches!(DocumentFormat::check_upload(None, PNG, 100), Err(Error::UnsupportedType(_))));
    }

    #[test]
    fn sealed_objects_open_only_under_their_own_key_and_storage_key() {
        let cipher = Aes256Gcm::new(&[7u8; 32].into());
        let sealed = seal(&cipher, "kyc/1/2/a", PNG).unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert!(!sealed.windows(PNG.len()).any(|w| w == PNG), "no plaintext in the object");
        assert_eq!(open(&cipher, "kyc/1/2/a", &sealed).unwrap(), PNG);
        assert!(open(&cipher, "kyc/1/2/b", &sealed).is_err(), "moved to another key");
        assert!(open(&Aes256Gcm::new(&[8u8; 32].into()), "kyc/1/2/a", &sealed).is_err(), "another key");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open(&cipher, "kyc/1/2/a", &flipped).is_err(), "tampered");
        assert_ne!(seal(&cipher, "kyc/1/2/a", PNG).unwrap(), sealed, "a fresh nonce each time");
    }
}

/// Fuzz targets: an uploaded document is whatever bytes and `Content-Type` a customer sends, and
/// a stored object whatever the storage gives back. Nothing panics; 256 cases each, or
/// `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use proptest::{prelude::*, sample::Index};

    use super::*;

    /// The start of a file of `format`: a JPEG SOI and APP0, a PNG signature and IHDR chunk
    /// (of any declared size: the bytes are checked, never decoded), a PDF header.
    fn header(format: DocumentFormat, width: u32, height: u32) -> Vec<u8> {
        match format {
            DocumentFormat::Jpeg => vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0],
            DocumentFormat::Png => {
                let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
                png.extend_from_slice(&width.to_be_bytes());
                png.extend_from_slice(&height.to_be_bytes());
                png.extend_from_slice(&[8, 6, 0, 0, 0]);
                png
            }
            DocumentFormat::Pdf => b"%PDF-1.7\n".to_vec(),
        }
    }

    fn format() -> impl Strategy<Value = DocumentFormat> {
        prop::sample::select(DocumentFormat::ALL.to_vec())
    }

    fn declared() -> impl Strategy<Value = Option<String>> {
        let known = prop::sample::select(vec![
            "image/jpeg",
            "image/jpg",
            "image/png",
            "application/pdf",
            "IMAGE/PNG",
            "image/png; charset=x",
            "image/jpeg;q=\"a;b\"",
            "text/plain",
            "image/",
            "/",
            ";",
            "",
        ]);
        proptest::option::of(prop_oneof![
            known.prop_map(str::to_owned),
            ".{0,60}",
            "[a-z]{1,8}/[a-z+.-]{1,12}(;.{0,20})?"
        ])
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let tail = prop::collection::vec(any::<u8>(), 0..1024);
        prop_oneof![
            tail.clone(),
            (format(), any::<u32>(), any::<u32>(), tail).prop_map(|(f, w, h, tail)| [header(f, w, h), tail].concat()),
            // Truncated signatures.
            (format(), any::<Index>()).prop_map(|(f, at)| {
                let mut h = header(f, 1, 1);
                h.truncate(at.index(h.len()));
                h
            }),
        ]
    }

    proptest! {
        #[test]
        fn kyc_uploads_never_panic_and_are_accepted_only_as_what_their_bytes_are(
            declared in declared(), bytes in bytes(), max in prop_oneof![0usize..2048, Just(usize::MAX)],
        ) {
            if let Ok(format) = DocumentFormat::check_upload(declared.as_deref(), &bytes, max) {
                prop_assert!(!bytes.is_empty() && bytes.len() <= max);
                prop_assert_eq!(DocumentFormat::sniff(&bytes), Some(format));
                prop_assert_eq!(declared.as_deref().and_then(DocumentFormat::from_content_type), Some(format));
            }
        }

        #[test]
        fn kyc_uploads_of_a_declared_format_with_its_signature_are_accepted(
            format in format(), width in any::<u32>(), height in any::<u32>(),
            tail in prop::collection::vec(any::<u8>(), 0..1024),
        ) {
            // A PNG declaring 4 billion pixels a side is accepted as quickly as any other: KYC
            // documents are stored for a reviewer's eyes, never decoded on the server.
            let bytes = [header(format, width, height), tail].concat();
            prop_assert_eq!(DocumentFormat::check_upload(Some(format.content_type()), &bytes, bytes.len()).unwrap(), format);
            let other = DocumentFormat::ALL.into_iter().find(|f| *f != format).unwrap();
            prop_assert!(DocumentFormat::check_upload(Some(other.content_type()), &bytes, bytes.len()).is_err());
            prop_assert!(DocumentFormat::check_upload(Some(format.content_type()), &bytes, bytes.len() - 1).is_err());
        }

        #[test]
        fn kyc_stored_objects_that_are_arbitrary_or_tampered_are_refused_never_panicking(
            plaintext in prop::collection::vec(any::<u8>(), 0..512),
            junk in prop::collection::vec(any::<u8>(), 0..64),
            edits in prop::collection::vec((any::<Index>(), 1u8..=255), 1..4),
            cut in any::<Index>(),
        ) {
            let cipher = Aes256Gcm::new(&[7u8; 32].into());
            let sealed = seal(&cipher, "kyc/1/2/a", &plaintext).unwrap();
            prop_assert_eq!(open(&cipher, "kyc/1/2/a", &sealed).unwrap(), plaintext);
            prop_assert!(open(&cipher, "kyc/1/2/a", &junk).is_err());
            prop_assert!(open(&cipher, "kyc/1/2/a", &[MAGIC.as_slice(), &junk].concat()).is_err());
            let mut tampered = sealed.clone();
            for (at, flip) in &edits {
                let i = at.index(tampered.len());
                tampered[i] ^= flip;
            }
            if tampered != sealed {
                prop_assert!(open(&cipher, "kyc/1/2/a", &tampered).is_err());
            }
            prop_assert!(open(&cipher, "kyc/1/2/a", &sealed[..cut.index(sealed.len())]).is_err());
        }
    }
}
