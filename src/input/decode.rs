//! From the raw bytes of a user-data file to the parts cloud-init would see.
//!
//! The same user-data file has to work with cloud-init and with batten, so
//! batten must agree with cloud-init on what the file *is* before it reads a
//! single key: a gzip stream, a MIME multipart message as made by
//! `cloud-init devel make-mime`, or one document whose first line says what it
//! is (`#cloud-config`, `#!/bin/sh`, `#include`, ...). Getting this wrong in
//! either direction is dangerous: reading a shell script as cloud-config
//! would report nonsense, and missing a cloud-config part inside a multipart
//! message would silently leave the owners' SSH keys out.
//!
//! This module only takes the file apart. It does not parse YAML (that is
//! `yaml.rs`) or render jinja templates (`jinja.rs`, for parts marked
//! [`PartKind::Jinja`]); it never fetches `#include` URLs or explodes
//! `#cloud-config-archive` lists: those parts are returned as
//! [`PartKind::LeftToCloudInit`] so that the report can name them.
//!
//! Every part's text is normalized (UTF-8 byte order mark removed, CRLF and
//! lone CR turned into LF) so that YAML line numbers in error messages match
//! what the user sees in their editor, whichever editor wrote the file.
//!
//! The input is untrusted and arrives before anything else on the machine is
//! configured, so decoding never panics, bounds every decompression (a
//! 16 KiB gzip stream can expand to gigabytes) and bounds the nesting of
//! multipart messages.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::read::MultiGzDecoder;

/// Most bytes batten accepts after decompression (refuse gzip bombs).
///
/// Cloud providers cap user-data far lower (EC2 at 16 KiB, most others at
/// 64 KiB), so anything near this size is a mistake or an attack. The cap
/// applies to the file as read and to the sum of everything decompressed from
/// it, so a multipart message full of small gzip bombs is refused as well.
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024 * 1024;

/// How deeply `multipart/*` messages may nest inside each other.
///
/// `make-mime` never nests at all; the bound exists so that a hostile file
/// cannot make the decoder recurse without end.
const MAX_MULTIPART_DEPTH: usize = 4;

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// MIME types that cloud-init decompresses before looking at the content.
/// After decompression the real type is found from the content's start.
const GZIP_CONTENT_TYPES: &[&str] = &[
    "application/gzip",
    "application/gzip-compressed",
    "application/gzipped",
    "application/x-compress",
    "application/x-compressed",
    "application/x-gunzip",
    "application/x-gzip",
    "application/x-gzip-compressed",
];

/// MIME types whose declared type cloud-init does not trust: it looks at the
/// content's first line instead (a `text/plain` part that starts with
/// `#cloud-config` is cloud-config). `text/x-shellscript` is on the list
/// because every real shell script starts with `#!`, so a "shell script"
/// starting with `#cloud-config` was mislabelled by whoever built the file.
const CONTENT_TYPES_CLASSIFIED_BY_START: &[&str] =
    &["text/plain", "text/x-not-multipart", "text/x-shellscript"];

/// What cloud-init concludes from the start of a document, and the MIME type
/// it then treats the document as.
///
/// The match is done on the lower-cased document with leading whitespace
/// removed, and the longest matching prefix wins (so `#cloud-config-archive`
/// is not taken for `#cloud-config`). `## template: jinja` marks a jinja
/// template that cloud-init renders with instance data before reading it;
/// batten renders it too (`jinja`) and reads the result by its start. The three
/// `text/x-shellscript-per-*` entries look odd as prefixes; cloud-init has
/// them too (they only matter inside MIME messages), and keeping them means
/// batten labels such a document the way cloud-init's log does.
const START_TYPES: &[(&str, &str)] = &[
    ("#include", "text/x-include-url"),
    ("#include-once", "text/x-include-once-url"),
    ("#!", "text/x-shellscript"),
    ("#cloud-config", "text/cloud-config"),
    ("#part-handler", "text/part-handler"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("## template: jinja", "text/jinja2"),
    ("text/x-shellscript-per-boot", "text/x-shellscript-per-boot"),
    (
        "text/x-shellscript-per-instance",
        "text/x-shellscript-per-instance",
    ),
    ("text/x-shellscript-per-once", "text/x-shellscript-per-once"),
];

/// The one MIME type batten reads itself.
const CLOUD_CONFIG_TYPE: &str = "text/cloud-config";

/// A jinja template, which batten renders and then reads.
const JINJA_TYPE: &str = "text/jinja2";

/// Base64 as Python's email module reads it: padding may be missing and
/// stray low bits in the last character are ignored, because files built by
/// hand or by other tools are often sloppy there and cloud-init accepts them.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Whether batten reads a part or only reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// A `#cloud-config` document (or a MIME part of type text/cloud-config): batten parses it.
    CloudConfig,
    /// A jinja template (`## template: jinja`, or a text/jinja2 part):
    /// batten renders it with the instance data, as cloud-init does, and
    /// reads the result by its start (cloud-config, or a script it reports).
    Jinja,
    /// Anything else (shell script `#!`, `#cloud-boothook`, `#include`, `#part-handler`,
    /// `#cloud-config-archive`, other MIME types, text/plain that is not
    /// cloud-config, ...): cloud-init runs it, batten only reports it.
    ///
    /// batten never runs or fetches these: it does not follow `#include`
    /// URLs or unpack `#cloud-config-archive` lists, so settings that only
    /// appear after cloud-init did so are not seen by batten, and the
    /// report says so.
    LeftToCloudInit,
}

/// One piece of user-data, as cloud-init's part handlers would receive it.
///
/// Keeping every part (not only the cloud-config ones) lets the report tell
/// the user exactly what batten acted on and what it left to cloud-init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Whether batten parses this part or only reports it.
    pub kind: PartKind,
    /// Human label for messages: "" for a plain single document, or e.g.
    /// "part 2 (text/x-shellscript, setup.sh)" for MIME parts (1-based index,
    /// content type, filename when given).
    pub label: String,
    /// The MIME content type, or a description derived from the first line
    /// ("text/cloud-config", "text/x-shellscript", "text/cloud-boothook",
    /// "text/x-include-url", ...).
    pub content_type: String,
    /// Decoded text with a leading UTF-8 BOM removed and CRLF (and lone CR)
    /// normalized to LF, so YAML line numbers match what the user sees in
    /// their editor.
    ///
    /// For a part whose declared type is not `text/*` (for example
    /// `application/octet-stream`) and whose content is not UTF-8, this is a
    /// lossy rendering (invalid bytes become U+FFFD): batten never reads such
    /// parts, it only reports them, so refusing the whole file over them
    /// would be wrong.
    pub text: String,
}

/// Why user-data could not be taken apart. Every message names the file or
/// part, what was wrong, and what to do about it, because this is the first
/// thing a user sees when their image does not come up hardened.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file, or what it decompresses to, is over [`MAX_USER_DATA_BYTES`].
    #[error(
        "{what} is larger than {max} bytes (16 MiB), the most batten accepts \
         (the limit guards against gzip bombs); real user-data is a few KiB: \
         install large files from a package or a URL instead of embedding them",
        max = MAX_USER_DATA_BYTES
    )]
    TooLarge {
        /// Which data, e.g. "user-data" or "part 2 (application/gzip) after gzip decompression".
        what: String,
    },

    /// The data starts like gzip (or is declared gzip) but does not decompress.
    #[error(
        "{what} looks like gzip data but could not be decompressed: {source}; \
         the file is probably truncated or corrupt: compress it again with \
         `gzip -c user-data > user-data.gz`, or provide it uncompressed"
    )]
    BadGzip {
        /// Which data, e.g. "user-data" or "part 3 (application/x-gzip)".
        what: String,
        /// What the gzip decoder reported.
        #[source]
        source: std::io::Error,
    },

    /// Text that batten or cloud-init must read is not UTF-8.
    #[error(
        "{what} is not valid UTF-8: the first invalid byte is at offset {offset} \
         (counting from 0); cloud-init and batten read user-data as UTF-8, so \
         save the file as UTF-8 (for example `iconv -f LATIN1 -t UTF-8`)"
    )]
    NotUtf8 {
        /// Which data, e.g. "user-data" or "part 1 (text/cloud-config, config.yaml)".
        what: String,
        /// Byte offset of the first invalid byte in that data (after any
        /// base64 and gzip decoding).
        offset: usize,
    },

    /// A `multipart/*` content type without a usable `boundary` parameter.
    #[error(
        "{what} is declared `Content-Type: {content_type}` but has no boundary \
         parameter, so its parts cannot be found; add `; boundary=\"...\"` or \
         build the file with `cloud-init devel make-mime`"
    )]
    MissingBoundary {
        /// Which message, e.g. "user-data" or "part 2 (nested multipart)".
        what: String,
        /// The Content-Type header value as written.
        content_type: String,
    },

    /// A multipart message whose boundary never appears on a line of its own.
    #[error(
        "{what} declares the MIME boundary \"{boundary}\" but no line \
         `--{boundary}` starts a part, so it contains no parts (cloud-init \
         would silently ignore all of it); check that the boundary in the \
         Content-Type header matches the separator lines, or build the file \
         with `cloud-init devel make-mime`"
    )]
    NoParts {
        /// Which message, e.g. "user-data".
        what: String,
        /// The boundary parameter as declared.
        boundary: String,
    },

    /// `multipart/*` parts nested deeper than batten follows.
    #[error(
        "user-data nests multipart messages more than {max} levels deep; \
         put all parts into one multipart/mixed message (as \
         `cloud-init devel make-mime` does)",
        max = MAX_MULTIPART_DEPTH
    )]
    TooDeep,

    /// A Content-Transfer-Encoding batten does not decode (quoted-printable, uuencode, ...).
    #[error(
        "{what} uses `Content-Transfer-Encoding: {encoding}`, which batten does \
         not support; encode the part as base64, or as plain 7bit/8bit text \
         (`cloud-init devel make-mime` does this for you)"
    )]
    UnsupportedTransferEncoding {
        /// Which part, e.g. "part 1 (text/cloud-config)".
        what: String,
        /// The encoding as written in the header.
        encoding: String,
    },

    /// A part declared base64 whose body is not base64.
    #[error(
        "{what} is declared `Content-Transfer-Encoding: base64` but its body is \
         not valid base64 ({source}; offsets count base64 characters only, \
         whitespace skipped); encode the part again, for example with \
         `base64 -w 76 file`"
    )]
    BadBase64 {
        /// Which part, e.g. "part 2 (text/x-shellscript, setup.sh)".
        what: String,
        /// What the base64 decoder reported.
        #[source]
        source: base64::DecodeError,
    },
}

/// Takes a user-data file apart into the parts cloud-init would hand to its
/// part handlers, in order.
///
/// Empty or whitespace-only user-data gives no parts (cloud-init does
/// nothing with it either). A multipart message whose closing
/// `--boundary--` line is missing is accepted: its last part runs to the end
/// of the file, which is how Python's email module (and so cloud-init) reads
/// it; a warning is logged because such files are usually truncated.
pub fn decode(bytes: &[u8]) -> Result<Vec<Part>, DecodeError> {
    if bytes.len() > MAX_USER_DATA_BYTES {
        return Err(DecodeError::TooLarge {
            what: "user-data".to_string(),
        });
    }
    let mut walker = Walker {
        decompress_budget: MAX_USER_DATA_BYTES,
        parts: Vec::new(),
    };

    let (bytes, what) = if bytes.starts_with(&GZIP_MAGIC) {
        let plain = walker.gunzip(bytes, "user-data")?;
        (Cow::Owned(plain), "user-data (after gzip decompression)")
    } else {
        (Cow::Borrowed(bytes), "user-data")
    };
    let text = strict_text(&bytes, what)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }

    // A recognised first line wins over MIME detection: `#cloud-config: x`
    // would otherwise look like a header line.
    if let Some(content_type) = type_from_start(&text) {
        return Ok(vec![single_document(content_type, text)]);
    }
    let (headers, body) = split_headers(&text);
    if headers.get("content-type").is_none() && headers.get("mime-version").is_none() {
        return Ok(vec![single_document("text/plain", text)]);
    }
    if headers.get("mime-version").is_none() {
        log::warn!(
            "user-data starts with MIME headers but has no `MIME-Version:` header; \
             batten reads it as MIME, but cloud-init only does so when \
             `MIME-Version: 1.0` is present: add that header"
        );
    }

    let content_type = ContentType::parse(headers.get("content-type"));
    if content_type.is_multipart() {
        walker.multipart("user-data", &headers, &content_type, body, 1)?;
    } else {
        walker.leaf(&headers, &content_type, body, false)?;
    }
    Ok(walker.parts)
}

/// A document that is not MIME: its type comes from its first line only.
fn single_document(content_type: &str, text: String) -> Part {
    Part {
        kind: kind_of(content_type),
        label: String::new(),
        content_type: content_type.to_string(),
        text,
    }
}

/// batten reads `text/cloud-config` and renders `text/jinja2`; every other
/// type (including `text/cloud-config-archive`) is cloud-init's business.
fn kind_of(content_type: &str) -> PartKind {
    match content_type {
        CLOUD_CONFIG_TYPE => PartKind::CloudConfig,
        JINJA_TYPE => PartKind::Jinja,
        _ => PartKind::LeftToCloudInit,
    }
}

/// The kind of a rendered jinja template: what its start says, as
/// cloud-init reads it after rendering (a template that renders to
/// another template is not rendered again).
pub fn rendered_kind(text: &str) -> (PartKind, String) {
    match type_from_start(text) {
        Some(CLOUD_CONFIG_TYPE) => (PartKind::CloudConfig, CLOUD_CONFIG_TYPE.to_string()),
        Some(other) => (PartKind::LeftToCloudInit, other.to_string()),
        None => (PartKind::LeftToCloudInit, "text/plain".to_string()),
    }
}

/// The type cloud-init gives a document from its start, or `None` when the
/// start is not one it knows (for example `# cloud-config` with a space).
fn type_from_start(text: &str) -> Option<&'static str> {
    // Only the start matters, so lower-case a short prefix instead of a
    // possibly 16 MiB document. 64 characters is more than the longest
    // entry of START_TYPES.
    let start: String = text
        .trim_start()
        .chars()
        .take(64)
        .flat_map(char::to_lowercase)
        .collect();
    let mut best: Option<(&str, &'static str)> = None;
    for &(prefix, content_type) in START_TYPES {
        let longer = best.is_none_or(|(found, _)| prefix.len() > found.len());
        if start.starts_with(prefix) && longer {
            best = Some((prefix, content_type));
        }
    }
    best.map(|(_, content_type)| content_type)
}

/// Checks UTF-8, then normalizes: see [`normalize`].
fn strict_text(bytes: &[u8], what: &str) -> Result<String, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(normalize(text)),
        Err(error) => Err(DecodeError::NotUtf8 {
            what: what.to_string(),
            offset: error.valid_up_to(),
        }),
    }
}

/// Removes a leading byte order mark and turns CRLF and lone CR into LF, so
/// that everything after this point (MIME parsing, YAML line numbers) sees
/// the lines the user sees in their editor.
fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// State shared by the whole decoding of one file.
struct Walker {
    /// Decompressed bytes still allowed, across every gzip stream in the
    /// file, so that many small bombs are refused like one big one.
    decompress_budget: usize,
    /// Parts found so far; the next part's 1-based number is `len() + 1`,
    /// numbered across nested messages the way cloud-init numbers them.
    parts: Vec<Part>,
}

impl Walker {
    /// Decompresses a gzip stream (several concatenated members are read
    /// like `gzip -d` does), refusing to produce more than the budget left.
    fn gunzip(&mut self, compressed: &[u8], what: &str) -> Result<Vec<u8>, DecodeError> {
        let mut plain = Vec::new();
        // One byte more than allowed, to tell "exactly at the limit" from "over it".
        let limit = self.decompress_budget as u64 + 1;
        MultiGzDecoder::new(compressed)
            .take(limit)
            .read_to_end(&mut plain)
            .map_err(|source| DecodeError::BadGzip {
                what: what.to_string(),
                source,
            })?;
        if plain.len() > self.decompress_budget {
            return Err(DecodeError::TooLarge {
                what: format!("{what} after gzip decompression"),
            });
        }
        self.decompress_budget -= plain.len();
        Ok(plain)
    }

    /// Splits a `multipart/*` body on its boundary and handles each part;
    /// multipart containers themselves are not parts, only their leaves are.
    fn multipart(
        &mut self,
        what: &str,
        headers: &Headers,
        content_type: &ContentType,
        body: &str,
        depth: usize,
    ) -> Result<(), DecodeError> {
        if depth > MAX_MULTIPART_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let boundary = match content_type.param("boundary") {
            Some(boundary) if !boundary.is_empty() => boundary,
            _ => {
                return Err(DecodeError::MissingBoundary {
                    what: what.to_string(),
                    content_type: headers.get("content-type").unwrap_or("").to_string(),
                });
            }
        };
        let split = split_on_boundary(body, boundary);
        if split.parts.is_empty() {
            return Err(DecodeError::NoParts {
                what: what.to_string(),
                boundary: boundary.to_string(),
            });
        }
        if !split.closed {
            log::warn!(
                "{what}: the multipart message has no closing `--{boundary}--` line, \
                 so its last part runs to the end of the file (cloud-init reads it \
                 the same way); if the file was cut short, parts may be missing"
            );
        }
        let count = split.parts.len();
        for (i, part_text) in split.parts.into_iter().enumerate() {
            // A truncated file often ends right after a separator line; that
            // leaves an empty "part" that nobody wrote.
            if !split.closed && i + 1 == count && part_text.trim().is_empty() {
                continue;
            }
            let (part_headers, part_body) = split_headers(part_text);
            let part_type = ContentType::parse(part_headers.get("content-type"));
            if part_type.is_multipart() {
                // RFC 2046 allows only 7bit/8bit/binary on multipart parts,
                // so there is no transfer encoding to undo here.
                let nested_what =
                    format!("part {} (nested {})", self.parts.len() + 1, part_type.media);
                self.multipart(
                    &nested_what,
                    &part_headers,
                    &part_type,
                    part_body,
                    depth + 1,
                )?;
            } else {
                self.leaf(&part_headers, &part_type, part_body, true)?;
            }
        }
        Ok(())
    }

    /// Decodes one non-multipart entity (transfer encoding, gzip, UTF-8),
    /// decides its type the way cloud-init does, and records it.
    ///
    /// `numbered` is false only for a top-level MIME message that is not
    /// multipart: it is the whole file, so it gets the empty label.
    fn leaf(
        &mut self,
        headers: &Headers,
        declared: &ContentType,
        body: &str,
        numbered: bool,
    ) -> Result<(), DecodeError> {
        let index = self.parts.len() + 1;
        let filename = headers.filename(declared);
        let label_for = |content_type: &str| {
            if numbered {
                part_label(index, content_type, filename.as_deref())
            } else {
                String::new()
            }
        };
        let what = if numbered {
            label_for(&declared.media)
        } else {
            "user-data".to_string()
        };

        let encoding = headers
            .get("content-transfer-encoding")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let mut bytes: Cow<[u8]> = match encoding.as_str() {
            "" | "7bit" | "8bit" | "binary" => Cow::Borrowed(body.as_bytes()),
            "base64" => Cow::Owned(decode_base64(body, &what)?),
            _ => {
                return Err(DecodeError::UnsupportedTransferEncoding {
                    what,
                    encoding: headers
                        .get("content-transfer-encoding")
                        .unwrap_or("")
                        .trim()
                        .to_string(),
                });
            }
        };

        let declared_gzip = GZIP_CONTENT_TYPES.contains(&declared.media.as_str());
        let mut text_what = what.clone();
        if declared_gzip || bytes.starts_with(&GZIP_MAGIC) {
            bytes = Cow::Owned(self.gunzip(&bytes, &what)?);
            text_what = format!("{what} (after gzip decompression)");
        }

        // batten or cloud-init reads every text part and everything that was
        // declared gzip (its real type is only known from its content), so
        // those must be UTF-8; other types are only reported.
        let text = if declared.media.starts_with("text/") || declared_gzip {
            strict_text(&bytes, &text_what)?
        } else {
            normalize(&String::from_utf8_lossy(&bytes))
        };

        let content_type = if declared_gzip {
            type_from_start(&text).unwrap_or("text/plain").to_string()
        } else if CONTENT_TYPES_CLASSIFIED_BY_START.contains(&declared.media.as_str()) {
            match type_from_start(&text) {
                Some(found) => found.to_string(),
                None => declared.media.clone(),
            }
        } else {
            declared.media.clone()
        };

        self.parts.push(Part {
            kind: kind_of(&content_type),
            label: label_for(&content_type),
            content_type,
            text,
        });
        Ok(())
    }
}

/// "part 2 (text/x-shellscript, setup.sh)": the number lets the user count
/// parts in the file, the filename is what they called it in `make-mime`.
fn part_label(index: usize, content_type: &str, filename: Option<&str>) -> String {
    match filename {
        Some(filename) => format!("part {index} ({content_type}, {filename})"),
        None => format!("part {index} ({content_type})"),
    }
}

/// Base64 with every ASCII whitespace character ignored, since MIME wraps
/// base64 bodies at 76 columns.
fn decode_base64(body: &str, what: &str) -> Result<Vec<u8>, DecodeError> {
    let compact: Vec<u8> = body
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    LENIENT_BASE64
        .decode(&compact)
        .map_err(|source| DecodeError::BadBase64 {
            what: what.to_string(),
            source,
        })
}

/// The header fields of one MIME entity, names lower-cased, continuation
/// lines already joined, in the order written.
struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// The first field with this (lower-case) name, as Python's email module
    /// returns it when a header is repeated.
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The filename for labels: `Content-Disposition`'s `filename`, else the
    /// older `name` parameter of `Content-Type`. Control characters are
    /// replaced, so a hostile name cannot forge lines or terminal escapes in
    /// batten's messages.
    fn filename(&self, content_type: &ContentType) -> Option<String> {
        let from_disposition = self.get("content-disposition").and_then(|value| {
            let (_, params) = split_media_and_params(value);
            find_param(&params, "filename").map(str::to_string)
        });
        let name = from_disposition.or_else(|| content_type.param("name").map(str::to_string))?;
        let name: String = name
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if name.trim().is_empty() {
            None
        } else {
            Some(name)
        }
    }
}

/// Reads the header block at the start of `text` and returns it with the
/// body that follows.
///
/// Like Python's email parser, the block ends at the first empty line (which
/// is consumed), or at the first line that is neither a header field nor a
/// continuation (that line then starts the body). A text whose first line is
/// not a header field has no headers at all.
fn split_headers(text: &str) -> (Headers, &str) {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map(|i| pos + i);
        let line = &text[pos..line_end.unwrap_or(text.len())];
        let next = line_end.map_or(text.len(), |end| end + 1);

        if line.is_empty() {
            pos = next;
            break;
        }
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => {
                    value.push_str(line);
                    pos = next;
                    continue;
                }
                None => break,
            }
        }
        match header_field(line) {
            Some((name, value)) => fields.push((name, value)),
            None => break,
        }
        pos = next;
    }
    // Trim what continuation lines appended.
    for (_, value) in &mut fields {
        *value = value.trim().to_string();
    }
    (Headers { fields }, &text[pos..])
}

/// `Name: value` with a name of printable ASCII other than `:` (RFC 5322),
/// or `None` when the line is not a header field.
fn header_field(line: &str) -> Option<(String, String)> {
    let colon = line.find(':')?;
    let name = &line[..colon];
    let valid_name = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b));
    if !valid_name {
        return None;
    }
    Some((
        name.to_ascii_lowercase(),
        line[colon + 1..].trim().to_string(),
    ))
}

/// A parsed `Content-Type` header.
struct ContentType {
    /// `type/subtype`, lower-cased; `text/plain` when the header is missing
    /// or not of that shape, as in Python's email module.
    media: String,
    /// Parameters with lower-cased names and unquoted values.
    params: Vec<(String, String)>,
}

impl ContentType {
    fn parse(value: Option<&str>) -> ContentType {
        let (media, params) = split_media_and_params(value.unwrap_or(""));
        let media = media.to_ascii_lowercase();
        // RFC 2045 token characters only: the type is shown in reports, and
        // a control character there could forge lines or move the terminal.
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
        };
        let well_formed = match media.split_once('/') {
            Some((main, sub)) => token(main) && token(sub),
            None => false,
        };
        ContentType {
            media: if well_formed {
                media
            } else {
                "text/plain".to_string()
            },
            params,
        }
    }

    fn is_multipart(&self) -> bool {
        self.media.starts_with("multipart/")
    }

    fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

fn find_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(param, _)| param == name)
        .map(|(_, value)| value.as_str())
}

/// Splits `type/subtype; a=1; b="x; y"` into the trimmed first item and its
/// parameters. Values may be quoted (with backslash escapes) or bare tokens;
/// a parameter without `=` gets an empty value.
fn split_media_and_params(value: &str) -> (&str, Vec<(String, String)>) {
    let (media, rest) = match value.find(';') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, ""),
    };
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|&c| c == ';' || c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && c != ';') {
            name.push(c);
        }
        let mut param_value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                param_value.push(escaped);
                            }
                        }
                        _ => param_value.push(c),
                    }
                }
                // Anything between the closing quote and the next `;` is noise.
                while chars.next_if(|&c| c != ';').is_some() {}
            } else {
                while let Some(c) = chars.next_if(|&c| c != ';') {
                    param_value.push(c);
                }
                param_value = param_value.trim().to_string();
            }
        }
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            params.push((name, param_value));
        }
    }
    (media.trim(), params)
}

/// The parts of a multipart body, and whether its closing line was seen.
struct Split<'a> {
    parts: Vec<&'a str>,
    closed: bool,
}

/// Cuts a multipart body at its `--boundary` lines, up to `--boundary--`.
///
/// The preamble before the first separator and the epilogue after the
/// closing one are dropped, as MIME requires. The line break before each
/// separator belongs to the separator (RFC 2046), so a part written as
/// `...\necho hi\n\n--b` ends in exactly one `\n`. Separator lines may carry
/// trailing blanks, as Python's parser allows.
fn split_on_boundary<'a>(body: &'a str, boundary: &str) -> Split<'a> {
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut pos = 0;
    loop {
        let line_end = body[pos..].find('\n').map(|i| pos + i);
        let line = &body[pos..line_end.unwrap_or(body.len())];
        if let Some(close) = separator(line, boundary) {
            if let Some(start) = part_start {
                // Drop the `\n` just before the separator, unless the part is empty.
                let end = if pos > start { pos - 1 } else { start };
                parts.push(&body[start..end]);
            }
            if close {
                return Split {
                    parts,
                    closed: true,
                };
            }
            part_start = Some(line_end.map_or(body.len(), |end| end + 1));
        }
        match line_end {
            Some(end) => pos = end + 1,
            None => break,
        }
    }
    if let Some(start) = part_start {
        // No closing line: the part runs to the end. Python's parser still
        // drops the final line break, as if a separator followed it.
        let rest = &body[start.min(body.len())..];
        parts.push(rest.strip_suffix('\n').unwrap_or(rest));
    }
    Split {
        parts,
        closed: false,
    }
}

/// `Some(false)` for a `--boundary` line, `Some(true)` for `--boundary--`,
/// `None` for any other line.
fn separator(line: &str, boundary: &str) -> Option<bool> {
    let rest = line.strip_prefix("--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix("--") {
        Some(after) => (true, after),
        None => (false, rest),
    };
    if rest.chars().all(|c| c == ' ' || c == '\t') {
        Some(close)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_type_with_control_characters_is_plain_text() {
        assert_eq!(
            ContentType::parse(Some("text/x\u{1b}[31mRED")).media,
            "text/plain"
        );
        assert_eq!(
            ContentType::parse(Some("text/x-shellscript; charset=utf-8")).media,
            "text/x-shellscript"
        );
    }
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn only_part(input: &[u8]) -> Part {
        let mut parts = decode(input).unwrap();
        assert_eq!(parts.len(), 1, "{parts:?}");
        parts.remove(0)
    }

    #[test]
    fn plain_cloud_config() {
        let part = only_part(b"#cloud-config\nssh_pwauth: false\n");
        assert_eq!(
            part,
            Part {
                kind: PartKind::CloudConfig,
                label: String::new(),
                content_type: "text/cloud-config".to_string(),
                text: "#cloud-config\nssh_pwauth: false\n".to_string(),
            }
        );
    }

    #[test]
    fn empty_and_blank_user_data_have_no_parts() {
        assert_eq!(decode(b"").unwrap(), vec![]);
        assert_eq!(decode(b" \n\r\n\t\n").unwrap(), vec![]);
        assert_eq!(decode(&gzip(b"\n\n")).unwrap(), vec![]);
    }

    #[test]
    fn bom_and_crlf_are_normalized() {
        let part = only_part(b"\xef\xbb\xbf#cloud-config\r\nusers: []\r\nold_mac: 1\rend: 2\r\n");
        assert_eq!(part.kind, PartKind::CloudConfig);
        assert!(!part.text.contains('\r'));
        assert!(!part.text.contains('\u{feff}'));
        assert_eq!(part.text, "#cloud-config\nusers: []\nold_mac: 1\nend: 2\n");
    }

    #[test]
    fn header_is_case_insensitive_prefix_match() {
        assert_eq!(
            only_part(b"#Cloud-Config\na: 1\n").kind,
            PartKind::CloudConfig
        );
        assert_eq!(
            only_part(b"#cloud-config (basis)\n").kind,
            PartKind::CloudConfig
        );
        assert_eq!(
            only_part(b"\n  #cloud-config\n").kind,
            PartKind::CloudConfig
        );
    }

    #[test]
    fn header_with_a_space_is_not_cloud_config() {
        let part = only_part(b"# cloud-config\nssh_pwauth: false\n");
        assert_eq!(part.kind, PartKind::LeftToCloudInit);
        assert_eq!(part.content_type, "text/plain");
    }

    #[test]
    fn yaml_without_header_is_left_to_cloud_init() {
        let part = only_part(b"users:\n  - name: admin\n");
        assert_eq!(part.kind, PartKind::LeftToCloudInit);
        assert_eq!(part.content_type, "text/plain");
    }

    #[test]
    fn other_single_documents_are_left_to_cloud_init() {
        let cases: &[(&str, &str)] = &[
            ("#!/bin/sh\necho hi\n", "text/x-shellscript"),
            ("#cloud-boothook\n#!/bin/sh\n", "text/cloud-boothook"),
            ("#include\nhttps://example.com/a\n", "text/x-include-url"),
            (
                "#include-once\nhttps://example.com/a\n",
                "text/x-include-once-url",
            ),
            (
                "#part-handler\ndef list_types(): pass\n",
                "text/part-handler",
            ),
            (
                "#cloud-config-archive\n- content: x\n",
                "text/cloud-config-archive",
            ),
            ("#cloud-config-jsonp\n[]\n", "text/cloud-config-jsonp"),
        ];
        for (input, content_type) in cases {
            let part = only_part(input.as_bytes());
            assert_eq!(part.kind, PartKind::LeftToCloudInit, "{input}");
            assert_eq!(part.content_type, *content_type, "{input}");
            assert_eq!(part.label, "");
            assert_eq!(part.text, *input);
        }
    }

    #[test]
    fn jinja_templates_are_marked_for_rendering() {
        for input in [
            "## template: jinja\n#cloud-config\n",
            "## Template: Jinja\n#cloud-config\n",
        ] {
            let part = only_part(input.as_bytes());
            assert_eq!(part.kind, PartKind::Jinja, "{input}");
            assert_eq!(part.content_type, "text/jinja2");
            assert_eq!(part.text, input);
        }
        assert_eq!(
            rendered_kind("\n#cloud-config\nusers: []\n").0,
            PartKind::CloudConfig
        );
        assert_eq!(
            rendered_kind("#!/bin/sh\necho\n"),
            (PartKind::LeftToCloudInit, "text/x-shellscript".to_string())
        );
    }

    #[test]
    fn gzip_of_cloud_config() {
        let part = only_part(&gzip(b"#cloud-config\r\nssh_pwauth: false\r\n"));
        assert_eq!(part.kind, PartKind::CloudConfig);
        assert_eq!(part.text, "#cloud-config\nssh_pwauth: false\n");
    }

    #[test]
    fn gzip_bomb_over_the_cap_is_refused() {
        let bomb = gzip(&vec![0u8; MAX_USER_DATA_BYTES + 1]);
        assert!(bomb.len() < MAX_USER_DATA_BYTES / 100);
        let error = decode(&bomb).unwrap_err();
        assert!(matches!(error, DecodeError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("gzip"), "{error}");
    }

    #[test]
    fn input_over_the_cap_is_refused() {
        let mut big = b"#cloud-config\n".to_vec();
        big.resize(MAX_USER_DATA_BYTES + 1, b'\n');
        assert!(matches!(decode(&big), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut data = gzip(b"#cloud-config\nssh_pwauth: false\n");
        data.truncate(data.len() / 2);
        assert!(matches!(decode(&data), Err(DecodeError::BadGzip { .. })));
    }

    #[test]
    fn not_utf8_names_the_offset() {
        let error = decode(b"#cloud-config\nname: caf\xe9\n").unwrap_err();
        match &error {
            DecodeError::NotUtf8 { what, offset } => {
                assert_eq!(what, "user-data");
                assert_eq!(*offset, 23);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(error.to_string().contains("offset 23"), "{error}");
    }

    /// What `cloud-init devel make-mime -a config.yaml:cloud-config
    /// -a setup.sh:x-shellscript` prints.
    const MAKE_MIME: &str = r#"Content-Type: multipart/mixed; boundary="===============4291038100093149247=="
MIME-Version: 1.0

--===============4291038100093149247==
Content-Type: text/cloud-config; charset="us-ascii"
MIME-Version: 1.0
Content-Transfer-Encoding: 7bit
Content-Disposition: attachment; filename="config.yaml"

#cloud-config
ssh_pwauth: false

--===============4291038100093149247==
Content-Type: text/x-shellscript; charset="us-ascii"
MIME-Version: 1.0
Content-Transfer-Encoding: 7bit
Content-Disposition: attachment; filename="setup.sh"

#!/bin/sh
echo hi

--===============4291038100093149247==--
"#;

    #[test]
    fn make_mime_multipart() {
        let parts = decode(MAKE_MIME.as_bytes()).unwrap();
        assert_eq!(
            parts,
            vec![
                Part {
                    kind: PartKind::CloudConfig,
                    label: "part 1 (text/cloud-config, config.yaml)".to_string(),
                    content_type: "text/cloud-config".to_string(),
                    text: "#cloud-config\nssh_pwauth: false\n".to_string(),
                },
                Part {
                    kind: PartKind::LeftToCloudInit,
                    label: "part 2 (text/x-shellscript, setup.sh)".to_string(),
                    content_type: "text/x-shellscript".to_string(),
                    text: "#!/bin/sh\necho hi\n".to_string(),
                },
            ]
        );
    }

    #[test]
    fn make_mime_with_crlf_line_ends() {
        let crlf = MAKE_MIME.replace('\n', "\r\n");
        assert_eq!(
            decode(crlf.as_bytes()).unwrap(),
            decode(MAKE_MIME.as_bytes()).unwrap()
        );
    }

    /// Unquoted boundary, folded Content-Type, a preamble, an epilogue, a
    /// base64 cloud-config part ("#cloud-config\nssh_pwauth: false\n",
    /// wrapped) and a part without any headers.
    const BASE64_MIME: &str = r#"MIME-Version: 1.0
content-type: multipart/mixed;
 boundary=XYZ

This is a multi-part message in MIME format.
--XYZ
Content-Type: text/cloud-config
Content-Transfer-Encoding: BASE64

I2Nsb3VkLWNvbmZpZwpzc2hf
cHdhdXRoOiBmYWxzZQo=
--XYZ

plain words
--XYZ--
epilogue, ignored
"#;

    #[test]
    fn base64_part_unquoted_boundary_and_headerless_part() {
        let parts = decode(BASE64_MIME.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].kind, PartKind::CloudConfig);
        assert_eq!(parts[0].label, "part 1 (text/cloud-config)");
        assert_eq!(parts[0].text, "#cloud-config\nssh_pwauth: false\n");
        assert_eq!(parts[1].kind, PartKind::LeftToCloudInit);
        assert_eq!(parts[1].content_type, "text/plain");
        assert_eq!(parts[1].text, "plain words");
    }

    #[test]
    fn text_plain_part_starting_with_cloud_config_is_cloud_config() {
        let mime = r#"Content-Type: multipart/mixed; boundary="b 1"
MIME-Version: 1.0

--b 1
Content-Type: text/plain; charset="utf-8"
Content-Disposition: attachment; filename=user.yaml

#cloud-config
ssh_pwauth: false
--b 1
Content-Type: text/x-shellscript

#cloud-config
disable_root: true
--b 1--
"#;
        let parts = decode(mime.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].kind, PartKind::CloudConfig);
        assert_eq!(parts[0].content_type, "text/cloud-config");
        assert_eq!(parts[0].label, "part 1 (text/cloud-config, user.yaml)");
        assert_eq!(parts[0].text, "#cloud-config\nssh_pwauth: false");
        // A mislabelled "shell script" is read by its first line, as cloud-init does.
        assert_eq!(parts[1].kind, PartKind::CloudConfig);
    }

    #[test]
    fn gzip_inside_base64_part() {
        use base64::engine::general_purpose::STANDARD;
        let payload = STANDARD.encode(gzip(b"#cloud-config\nssh_pwauth: false\n"));
        let mime = format!(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n\
             --zz\nContent-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\n\
             {payload}\n--zz--\n"
        );
        let part = only_part(mime.as_bytes());
        assert_eq!(part.kind, PartKind::CloudConfig);
        assert_eq!(part.label, "part 1 (text/cloud-config)");
        assert_eq!(part.text, "#cloud-config\nssh_pwauth: false\n");
    }

    #[test]
    fn nested_multipart_is_flattened_and_numbered_in_order() {
        let mime = r#"MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/cloud-config

#cloud-config
--inner
Content-Type: text/cloud-boothook

#cloud-boothook
--inner--
--outer
Content-Type: text/x-shellscript

#!/bin/sh
--outer--
"#;
        let parts = decode(mime.as_bytes()).unwrap();
        let labels: Vec<&str> = parts.iter().map(|part| part.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "part 1 (text/cloud-config)",
                "part 2 (text/cloud-boothook)",
                "part 3 (text/x-shellscript)"
            ]
        );
    }

    #[test]
    fn multipart_nesting_is_bounded() {
        let mut mime = String::from("MIME-Version: 1.0\n");
        for level in 0..6 {
            mime.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n"
            ));
        }
        mime.push_str("\n#cloud-config\n");
        assert!(matches!(decode(mime.as_bytes()), Err(DecodeError::TooDeep)));
    }

    #[test]
    fn unterminated_multipart_is_accepted_like_python() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                    --b\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_pwauth: false\n\
                    --b\n";
        let part = only_part(mime.as_bytes());
        assert_eq!(part.kind, PartKind::CloudConfig);
        assert_eq!(part.text, "#cloud-config\nssh_pwauth: false");

        let cut = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                   --b\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_pwauth: false\n";
        let part = only_part(cut.as_bytes());
        assert_eq!(part.text, "#cloud-config\nssh_pwauth: false");
    }

    #[test]
    fn multipart_without_boundary_parameter_is_an_error() {
        let mime =
            "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n--b\n\n#cloud-config\n--b--\n";
        let error = decode(mime.as_bytes()).unwrap_err();
        assert!(
            matches!(error, DecodeError::MissingBoundary { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("boundary"), "{error}");
    }

    #[test]
    fn multipart_whose_boundary_never_appears_is_an_error() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--c\n\n#cloud-config\n";
        assert!(matches!(
            decode(mime.as_bytes()),
            Err(DecodeError::NoParts { .. })
        ));
    }

    #[test]
    fn quoted_printable_is_refused() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                    --b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: quoted-printable\n\n\
                    #cloud-config\nname: caf=C3=A9\n--b--\n";
        let error = decode(mime.as_bytes()).unwrap_err();
        assert!(
            matches!(error, DecodeError::UnsupportedTransferEncoding { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("quoted-printable"), "{error}");
        assert!(
            error.to_string().contains("part 1 (text/cloud-config)"),
            "{error}"
        );
    }

    #[test]
    fn bad_base64_is_an_error() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                    --b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\n\
                    I2Nsb3VkLWNv*bmZpZwo=\n--b--\n";
        let error = decode(mime.as_bytes()).unwrap_err();
        assert!(matches!(error, DecodeError::BadBase64 { .. }), "{error}");
    }

    #[test]
    fn non_utf8_text_part_names_the_part() {
        use base64::engine::general_purpose::STANDARD;
        let payload = STANDARD.encode(b"#cloud-config\nx: \xff\n");
        let mime = format!(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
             --b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\
             Content-Disposition: attachment; filename=\"c.yaml\"\n\n{payload}\n--b--\n"
        );
        match decode(mime.as_bytes()).unwrap_err() {
            DecodeError::NotUtf8 { what, offset } => {
                assert_eq!(what, "part 1 (text/cloud-config, c.yaml)");
                assert_eq!(offset, 17);
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn binary_non_text_part_is_reported_not_refused() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                    --b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n\
                    //79\n--b--\n";
        let part = only_part(mime.as_bytes());
        assert_eq!(part.kind, PartKind::LeftToCloudInit);
        assert_eq!(part.content_type, "application/octet-stream");
    }

    #[test]
    fn single_part_mime_message() {
        let mime = "MIME-Version: 1.0\nContent-Type: text/cloud-config; charset=utf-8\n\n#cloud-config\na: 1\n";
        let part = only_part(mime.as_bytes());
        assert_eq!(part.kind, PartKind::CloudConfig);
        assert_eq!(part.label, "");
        assert_eq!(part.text, "#cloud-config\na: 1\n");
    }

    #[test]
    fn filename_control_characters_are_replaced() {
        let mime = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
                    --b\nContent-Type: text/x-shellscript\n\
                    Content-Disposition: attachment; filename=\"a\x1b[31mb\"\n\n#!/bin/sh\n--b--\n";
        let part = only_part(mime.as_bytes());
        assert_eq!(part.label, "part 1 (text/x-shellscript, a?[31mb)");
    }

    fn mime_fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "MIME-Version: 1.0\n",
            "Content-Type: multipart/mixed; boundary=b\n",
            "Content-Type: multipart/mixed; boundary=\"b\\\"\n",
            "Content-Type: text/cloud-config\n",
            "Content-Type: application/gzip\n",
            "Content-Type: ;;=\"\n",
            "Content-Transfer-Encoding: base64\n",
            "Content-Disposition: attachment; filename=\"",
            " folded\n",
            "--b\n",
            "--b--\n",
            "--b",
            "\n",
            "\r",
            "\u{feff}",
            "#cloud-config\n",
            "## template: jinja\n",
            "H4sI",
            "é",
            ":",
            "\"",
            ";",
            "=",
        ])
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mime_like_text_never_panics(fragments in prop::collection::vec(mime_fragment(), 0..60)) {
            let _ = decode(fragments.concat().as_bytes());
        }

        #[test]
        fn prefixed_bytes_never_panic(
            prefix in prop::sample::select(vec![
                &b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"[..],
                &b"\x1f\x8b"[..],
                &b"\xef\xbb\xbf"[..],
            ]),
            tail in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = prefix.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = decode(&bytes);
        }
    }
}
