//! The protocol's vocabulary, written once: wire names of statuses and transports, the
//! keys of our `metadata` entries, file and directory names, the protocol's own defaults
//! (what 0.1.2 does, what gc keeps), the accepted spellings of compression and transport
//! choices, the table- and namespace-name rules and the timestamp format. Every other
//! module (and, through the bindings, Python) reads them from here; tuning numbers that
//! protocol v1 does not fix live in [`crate::tuning`]. This module depends on nothing
//! else in the crate but the error type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The `version` every line of protocol v1 carries.
pub const PROTOCOL_VERSION: i64 = 1;

/// Largest Arrow size `transport="auto"` sends through shared memory (0.1.2's default).
pub const DEFAULT_MAX_SHM_BYTES: u64 = 64 * 1024 * 1024;
/// Rows per record batch of a compressed file payload when `chunk_rows` is not given
/// (0.1.2's batch size). Uncompressed files keep the batches as given.
pub const DEFAULT_COMPRESSED_CHUNK_ROWS: usize = 500_000;
/// Ready versions gc keeps per `(table_name, producer)`.
pub const DEFAULT_KEEP_VERSIONS: usize = 1;
/// Seconds a send keeps a superseded version after its successor became ready before
/// freeing it: long enough for a reader that does not retry (0.1.2's) to open the version it
/// has just looked up (it reads the log, then opens the payload: milliseconds for a log of
/// thousands of lines), while a loop of sends holds about one second's worth of versions.
pub const DEFAULT_AUTO_GC_GRACE_SEC: u64 = 1;
/// The producer name a send records when none is given.
pub const DEFAULT_PRODUCER: &str = "python";
/// Longest table name accepted, in bytes.
pub const MAX_TABLE_NAME_BYTES: usize = 1024;

/// Key of our own entry in an event's `metadata` (0.1.2 ignores unknown keys).
pub const METADATA_KEY: &str = "adc";
/// `metadata` key of the reason on an `error` line.
pub const METADATA_ERROR: &str = "error";
/// `metadata` key of the sender's "unlink the segment once read" flag.
pub const METADATA_SHM_UNLINK_ON_READ: &str = "shm_unlink_on_read";
/// Keys inside `metadata.adc`.
pub const ADC_WRITER: &str = "writer";
/// Key inside `metadata.adc`: the transport a transfer planned.
pub const ADC_TRANSPORT: &str = "transport";
/// Key inside `metadata.adc`: the locator a transfer planned.
pub const ADC_LOCATOR: &str = "locator";
/// Key inside `metadata.adc`: marks a removal line.
pub const ADC_REMOVED: &str = "removed";
/// The reason written on a removal line.
pub const REMOVED_REASON: &str = "removed by user";

/// Directory (inside the store) of read markers for `shm_unlink_on_read` segments.
pub const READS_DIR: &str = "reads";
/// Environment variable naming the store directory (honoured by the widgets; 0.1.2 ignores it).
pub const STORE_ENV: &str = "ALLYE_SECRET_DIR";
/// Manifest file name inside the store.
pub const MANIFEST_FILE: &str = "manifest.jsonl";
/// Writers' lock file name inside the store.
pub const LOCK_FILE: &str = "manifest.lock";
/// Payload directory name inside the store.
pub const PAYLOAD_DIR: &str = "payloads";
/// The store's secret key (inside the store, 0600): 32 random bytes as 64 hex digits,
/// made on first use. It feeds the names of shared arrays' segments and the store's tag,
/// so that no other user can predict (pre-create) them. 0.1.2 ignores the file.
pub const STORE_KEY_FILE: &str = ".adc_key";
/// Remote state inside the store (the Flight server's token).
pub const REMOTE_DIR: &str = "remote";
/// The settings file inside the store.
pub const SETTINGS_FILE: &str = "settings.yaml";

/// The protocol's timestamp format (Python's `time.strftime("%Y-%m-%dT%H:%M:%S%z")`).
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// The transport choices a send accepts, in the order they are documented.
pub const TRANSPORT_CHOICES: [&str; 3] = ["auto", "shm", "file"];
/// Canonical names of the file-payload compressions.
pub const COMPRESSIONS: [&str; 2] = ["zstd", "lz4"];

/// Defines a wire string enum whose unknown values are kept (a foreign writer may use
/// values this version does not know; they must survive a parse and a re-serialisation).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal $(as $konst:ident)?),* $(,)? }) => {
        $($(
            #[doc = concat!("Wire spelling `", $wire, "`.")]
            pub const $konst: &str = $wire;
        )?)*

        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version does not know, kept as written.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }

            /// The value for a wire spelling (unknown spellings become `Other`).
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $($wire => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<$name, E> {
                        Ok($name::from_wire(v))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

wire_enum! {
    /// The `status` of a manifest line.
    Status {
        /// A transfer started; its payload is being written.
        Writing = "writing",
        /// The payload is complete and may be read.
        Ready = "ready",
        /// The transfer failed, or (ours) the table was removed.
        Error = "error",
    }
}

wire_enum! {
    /// The `payload.transport` of a `ready` line.
    Transport {
        /// An Arrow IPC file in the store's `payloads/`.
        File = "file_arrow_ipc_v1" as TRANSPORT_FILE,
        /// An Arrow IPC stream in a shared-memory segment.
        Shm = "shm_arrow_stream_v1" as TRANSPORT_SHM,
        /// (ours, named objects' namespaces only) A small Arrow IPC stream inside the
        /// line itself, base64 in `locator` (see `payload::encode_inline`).
        Inline = "inline_arrow_stream_v1" as TRANSPORT_INLINE,
    }
}

wire_enum! {
    /// What a table's state is, as the Receiver lists it: the status of its last line
    /// (a status this version does not know is kept as written), or `removed`.
    TableStateKind {
        /// The last line is `writing`.
        Writing = "writing",
        /// The last line is `ready`.
        Ready = "ready",
        /// The last line is `error` (a failed send).
        Error = "error",
        /// The last line is a removal.
        Removed = "removed",
        /// The last line is `ready`, sent with `shm_unlink_on_read=True` and read by a
        /// full load of ours: gc frees it (served until then).
        Consumed = "consumed",
        /// The table has no line (never listed; kept for completeness).
        Unknown = "unknown",
    }
}

/// What gc did (or would do) with one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GcActionKind {
    /// The payload is (or would be) deleted.
    Delete,
    /// A payload gc will not touch (outside this store).
    Skip,
    /// An `error` line appended for a dead writer's transfer.
    Record,
}

impl GcActionKind {
    /// The spelling the bindings and the CLI show.
    pub fn as_str(self) -> &'static str {
        match self {
            GcActionKind::Delete => "delete",
            GcActionKind::Skip => "skip",
            GcActionKind::Record => "record",
        }
    }
}

/// Whose a gc action is: the store gc runs on, or nobody's any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GcScope {
    /// The store's own: its payloads, shared arrays, stream chunks, named objects.
    Store,
    /// A leftover outside any live store, which the gc of any store of the user frees: the
    /// segments and shared arrays of a deleted store, the spill folder of a load whose
    /// process died.
    Orphan,
}

impl GcScope {
    /// The spelling the bindings and the CLI show.
    pub fn as_str(self) -> &'static str {
        match self {
            GcScope::Store => "store",
            GcScope::Orphan => "orphan",
        }
    }
}

/// The spellings of [`GcScope`], in its order.
pub const GC_SCOPES: &[&str] = &["store", "orphan"];

/// Which transport a send should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransportChoice {
    /// Shared memory when the Arrow data fits in `max_shm_bytes` (and not on Windows), else a file.
    #[default]
    Auto,
    /// Shared memory whatever the size.
    Shm,
    /// A file in the store's `payloads/`.
    File,
}

impl TransportChoice {
    /// Parses one of [`TRANSPORT_CHOICES`] (or a wire transport name).
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(Self::Auto),
            "shm" | TRANSPORT_SHM => Ok(Self::Shm),
            "file" | TRANSPORT_FILE => Ok(Self::File),
            other => Err(Error::InvalidArgument(format!("unknown transport {other:?}: use 'auto', 'shm' or 'file'"))),
        }
    }

    /// The spelling [`TransportChoice::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportChoice::Auto => "auto",
            TransportChoice::Shm => "shm",
            TransportChoice::File => "file",
        }
    }
}

/// IPC body compression of file payloads. Segments are always uncompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed: reads are zero-copy (the default).
    #[default]
    None,
    /// Zstandard.
    Zstd,
    /// LZ4 frame.
    Lz4,
}

impl Compression {
    /// Parses a compression spelling: no compression is `""`, `"none"` or
    /// `"uncompressed"`; otherwise `"zstd"` or `"lz4"` (`"lz4_frame"`, Arrow's name, too).
    /// Case and surrounding blanks are ignored. The one set of spellings of the library.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "uncompressed" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd),
            "lz4" | "lz4_frame" => Ok(Compression::Lz4),
            _ => Err(Error::InvalidArgument(format!(
                "unknown compression {text:?}: use None (or 'none'), 'zstd' or 'lz4'"
            ))),
        }
    }

    /// The canonical name, `None` for no compression.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Zstd => Some("zstd"),
            Compression::Lz4 => Some("lz4"),
        }
    }
}

/// Checks a table name: 1 to [`MAX_TABLE_NAME_BYTES`] bytes, no line breaks, no NUL.
pub fn check_table_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("table name is empty: pass a non-empty table_name".into()));
    }
    if name.len() > MAX_TABLE_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "table name is {} bytes long; the limit is {MAX_TABLE_NAME_BYTES}",
            name.len()
        )));
    }
    if name.contains(['\n', '\r', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "table name {name:?} contains a line break or NUL; pick a name without them"
        )));
    }
    Ok(())
}

/// Checks a table name that crosses the network (a Flight request, a pushed table, a
/// registry entry; PROTOCOL.md 8.16): the send's rule ([`check_table_name`]), and no
/// name that reads as a path outside a plain label: no control character, no leading
/// `/`, and no empty, `.` or `..` part between slashes (`sensors/temp` is fine,
/// `../../x`, `/etc/passwd`, `a//b` and `a/` are not). A served store's names that break
/// it stay readable locally; they are just not served.
pub fn check_remote_table_name(name: &str) -> Result<()> {
    check_table_name(name)?;
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "table name {:?} contains the control character {c:?}; pick a name without control characters",
            ellipsis(name)
        )));
    }
    if name.starts_with('/') || name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(Error::InvalidArgument(format!(
            "table name {:?} reads as a path (a leading '/', or an empty, '.' or '..' part); \
             a table served over the network is named by plain parts such as 'sensors/temp'",
            ellipsis(name)
        )));
    }
    Ok(())
}

/// At most the first 64 characters of `text` (a name quoted back in an error).
fn ellipsis(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Checks a producer name: non-empty, one line, no NUL.
pub fn check_producer(producer: &str) -> Result<()> {
    if producer.is_empty() || producer.contains(['\n', '\r', '\0']) {
        return Err(Error::InvalidArgument(format!("producer {producer:?} must be a non-empty single line")));
    }
    Ok(())
}

// --- streams: tables that grow by appends, PROTOCOL.md 8.13 ---

/// `<store>/streams/`: one directory per streaming table.
pub const STREAMS_DIR: &str = "streams";
/// A stream's chunk log, one JSON line per chunk, appended like the manifest.
pub const STREAM_LOG_FILE: &str = "chunks.jsonl";
/// The lock its appenders take around a line (not the manifest's: appends to a stream
/// never wait for sends).
pub const STREAM_LOCK_FILE: &str = "chunks.lock";
/// The file holding the table name of a stream directory (the directory is named by a hash).
pub const STREAM_NAME_FILE: &str = "name";
/// Touched at each v1 publish; its mtime says when the last one was.
pub const STREAM_PUBLISHED_FILE: &str = "published";
/// The key of the v1 `metadata` entry a stream's published version carries.
pub const METADATA_STREAM: &str = "adc_stream";
/// The transport a listing (`list_tables`, `adc ls`) shows for a streaming table: its
/// rows are read from its chunks, whatever its v1 publication says. Never written to the
/// manifest.
pub const STREAM_TRANSPORT: &str = "stream";
/// Columns of the log fast path (ataraxis' `LogPackage`): the source id (uint8) ...
pub const LOG_SOURCE_COLUMN: &str = "source_id";
/// ... the uint64 nanosecond time stamp ...
pub const LOG_TIME_COLUMN: &str = "timestamp";
/// ... and the payload bytes.
pub const LOG_PAYLOAD_COLUMN: &str = "payload";

// --- named objects ---

/// `<store>/objects/`: one sub-store per namespace of named objects, each with its own
/// log and payloads, so the store's own manifest (what 0.1.2 and the widgets read) never
/// holds an object's line.
pub const OBJECTS_DIR: &str = "objects";
/// The namespace `adc.objects()` uses when none is given; it cannot be removed.
pub const DEFAULT_NAMESPACE: &str = "default";
/// `metadata` key of an object's description on its lines: `{"kind": ..., ...}`.
pub const OBJECT_METADATA_KEY: &str = "adc_object";
/// Keys inside `metadata.adc_object`.
pub const OBJECT_KIND: &str = "kind";
/// `metadata.adc_object.description`: the text a writer gave the version (optional).
pub const OBJECT_DESCRIPTION: &str = "description";
/// `metadata.adc_object.kind` of a pickled object, the one kind whose load runs code.
pub const OBJECT_KIND_PICKLE: &str = "pickle";
/// `metadata.adc_object.kind` of a NumPy array stored as its raw bytes.
pub const OBJECT_KIND_NUMPY: &str = "numpy";
/// Every kind an object line may carry: Arrow data (pandas, pyarrow, polars, C stream),
/// a NumPy array as raw bytes, a pickle (protocol 5, out-of-band buffers).
pub const OBJECT_KINDS: [&str; 9] = [
    "pandas.DataFrame",
    "pandas.Series",
    "pyarrow.Table",
    "pyarrow.RecordBatch",
    "pyarrow.Array",
    "pyarrow.ChunkedArray",
    "polars",
    OBJECT_KIND_NUMPY,
    OBJECT_KIND_PICKLE,
];
/// Longest namespace directory name (the name percent-encoded), in bytes: file systems
/// allow 255 per path component.
pub const MAX_NAMESPACE_DIR_BYTES: usize = 255;

/// Checks a namespace name: the table-name rule, and short enough to be a directory name
/// once percent-encoded.
pub fn check_namespace_name(name: &str) -> Result<()> {
    check_table_name(name)
        .map_err(|e| Error::InvalidArgument(e.to_string().replace("table name", "namespace name")))?;
    let dir = namespace_dir_name(name);
    if dir.len() > MAX_NAMESPACE_DIR_BYTES {
        return Err(Error::InvalidArgument(format!(
            "namespace name {name:?} is too long: its directory name would be {} bytes (limit {MAX_NAMESPACE_DIR_BYTES}); pick a shorter name",
            dir.len()
        )));
    }
    Ok(())
}

/// The directory name of a namespace: letters, digits, `_`, `-` as they are, every other
/// byte (and a leading `.`) as `%XX`, so that no name can climb out of `objects/`.
pub fn namespace_dir_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The namespace a directory name encodes (`None` for a name [`namespace_dir_name`] would
/// not produce).
pub fn namespace_from_dir_name(dir: &str) -> Option<String> {
    let bytes = dir.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (namespace_dir_name(&name) == dir).then_some(name)
}

/// The column of the payload of an object stored as raw bytes (a NumPy array, a pickle).
pub const OBJECT_BYTES_COLUMN: &str = "bytes";

// --- sources: loads from data sources (PROTOCOL.md, "Loads and their state") ---

/// Metadata key of a version written by a load: what it was loaded from (no secrets),
/// its mode, and on the `ready` line its incremental state (cursor column, last value),
/// committed in the same line as the rows it describes.
pub const METADATA_LOAD: &str = "allye_load";

// --- appending loads (PROTOCOL.md 8.13/8.15: a load's state on its chunk lines) ---

/// Lock file in a stream's directory, held by a load appending to the stream for as long
/// as it runs: two appending loads at once would both resume from the same state. The
/// state itself is the chunk line's field [`METADATA_LOAD`].
pub const STREAM_LOAD_LOCK_FILE: &str = "load.lock";
/// Lock file in a stream's directory, held (non-blocking tries) by the process
/// consolidating the stream's small chunks, so that two processes never merge the same
/// chunks at once.
pub const STREAM_CONSOLIDATE_LOCK_FILE: &str = "consolidate.lock";
/// Lock file in a stream's directory, held by a v1 publication from its read of the
/// stream to its `ready` line: publications of one stream follow each other, so the last
/// version holds every row appended before the last publication began.
pub const STREAM_PUBLISH_LOCK_FILE: &str = "publish.lock";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_known_and_unknown_spellings() {
        for text in ["writing", "ready", "error", "paused"] {
            let s: Status = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(Status::from_wire("ready"), Status::Ready);
        assert_eq!(Status::from_wire("paused"), Status::Other("paused".into()));
    }

    #[test]
    fn compression_accepts_one_set_of_spellings() {
        for none in ["", "none", " None ", "UNCOMPRESSED"] {
            assert_eq!(Compression::parse(none).unwrap(), Compression::None);
        }
        assert_eq!(Compression::parse(" ZSTD").unwrap().name(), Some("zstd"));
        assert_eq!(Compression::parse("lz4_frame").unwrap().name(), Some("lz4"));
        let err = Compression::parse("gzip").unwrap_err().to_string();
        assert!(err.contains("gzip") && err.contains("zstd") && err.contains("lz4"), "{err}");
        for name in COMPRESSIONS {
            assert_eq!(Compression::parse(name).unwrap().name(), Some(name));
        }
    }

    #[test]
    fn transport_choices_parse_and_spell_back() {
        for name in TRANSPORT_CHOICES {
            assert_eq!(TransportChoice::parse(name).unwrap().as_str(), name);
        }
        assert!(matches!(TransportChoice::parse("carrier-pigeon"), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn table_name_rule_refuses_empty_long_and_multiline_names() {
        assert!(check_table_name("iris").is_ok());
        for bad in [String::new(), "a\nb".into(), "nul\0".into(), "x".repeat(MAX_TABLE_NAME_BYTES + 1)] {
            assert!(matches!(check_table_name(&bad), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        assert!(check_table_name(&"x".repeat(MAX_TABLE_NAME_BYTES)).is_ok());
    }

    #[test]
    fn remote_name_rule_refuses_paths_and_control_characters() {
        for good in ["iris", "sensors/temp", "a.b", "..x", "x..", "名前"] {
            assert!(check_remote_table_name(good).is_ok(), "{good:?}");
        }
        for bad in
            ["../../x", "/etc/passwd", "a//b", "a/", "./a", "a/../b", ".", "..", "tab\tname", "esc\u{1b}[31m", "nul\0"]
        {
            assert!(matches!(check_remote_table_name(bad), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        let long = format!("/{}", "y".repeat(1000));
        let err = check_remote_table_name(&long).unwrap_err().to_string();
        assert!(err.len() < 400, "a long name is cut in the message: {err}");
    }
}
