//! The C ABI's plain types and constants. This file holds only `#[repr(C)]`
//! types and constants (no functions) because ctest2 parses it to check the
//! generated header against these definitions.

#![allow(non_camel_case_types)]

/// Status returned by every fallible function. `TZS_OK` (0) is success;
/// `TZS_NOT_FOUND` and `TZS_DONE` report absence and never allocate an error;
/// every other value is a failure described by the `tzs_error` written to
/// `*err` (when `err` is not NULL). Numbers are stable and append-only.
pub type tzs_status = u32;

/// Success.
pub const TZS_OK: tzs_status = 0;
/// The key, value or file asked for does not exist.
pub const TZS_NOT_FOUND: tzs_status = 1;
/// An iterator is exhausted.
pub const TZS_DONE: tzs_status = 2;
/// A NULL pointer, a wrong size, invalid UTF-8 or another bad argument.
pub const TZS_INVALID_ARGUMENT: tzs_status = 3;
/// An operating-system I/O error; the message names the path and the OS error.
pub const TZS_IO: tzs_status = 4;
/// On-disk data failed a checksum or structural check.
pub const TZS_CORRUPTED: tzs_status = 5;
/// A write through a handle opened with `TZS_READONLY`.
pub const TZS_READ_ONLY: tzs_status = 6;
/// Another read-write instance holds the store's lock file.
pub const TZS_LOCKED: tzs_status = 7;
/// A kv batch conflicts with changes made since it began.
pub const TZS_CONFLICT: tzs_status = 8;
/// A kv batch conflicted more often than its retry budget allows.
pub const TZS_TOO_MANY_RETRIES: tzs_status = 9;
/// kv: a value was expected but a dictionary was found.
pub const TZS_VALUE_EXPECTED: tzs_status = 10;
/// kv: a dictionary was expected but a value was found.
pub const TZS_DICTIONARY_EXPECTED: tzs_status = 11;
/// kv: the destination key already exists.
pub const TZS_KEY_EXISTS: tzs_status = 12;
/// The device is full (ENOSPC or EDQUOT).
pub const TZS_NO_SPACE: tzs_status = 13;
/// Data given to the store breaks one of its invariants.
pub const TZS_INCONSISTENT: tzs_status = 14;
/// The handle was closed.
pub const TZS_CLOSED: tzs_status = 15;
/// A panic inside the library was caught at the C boundary.
pub const TZS_PANIC: tzs_status = 16;

/// Open flag: read-only instance (never writes, takes no lock).
pub const TZS_READONLY: u32 = 1;
/// Open flag: skip every fsync. For tests and benchmarks only: acknowledged
/// writes may be lost at a power cut (never torn after a process crash).
pub const TZS_NO_FSYNC: u32 = 2;
/// Open flag (index): the index supports `tzs_index_remove`.
pub const TZS_REMOVABLE: u32 = 4;
/// Open flag (indexed_file): the header is the first `header_size` bytes of
/// the value (the `SIMPLE_INDEXED_FILE` variant).
pub const TZS_HEADER_IN_VALUE: u32 = 8;

/// Size in bytes of a block hash.
pub const TZS_HASH_SIZE: usize = 32;

/// A library-allocated byte buffer. Filled by the library as an output;
/// release it with `tzs_bytes_free`. A zeroed `{NULL, 0}` is a valid empty
/// buffer that `tzs_bytes_free` ignores.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_bytes {
    /// First byte, or NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

/// A block. As input the caller fills it with its own buffers (the library
/// copies them; `contents.ptr`/`metadata.ptr` may be NULL when the length is
/// 0, and `metadata` is ignored unless `has_metadata`). As output the library
/// fills it with buffers the caller releases with `tzs_block_free`; pass a
/// zeroed or freed struct, as previous buffers are overwritten, not freed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_block {
    /// The block's hash.
    pub hash: [u8; 32],
    /// Its level (height).
    pub level: i32,
    /// Its direct predecessor's hash.
    pub predecessor: [u8; 32],
    /// Header and operations, opaque to the library.
    pub contents: tzs_bytes,
    /// Whether `metadata` holds the block's metadata.
    pub has_metadata: bool,
    /// Metadata, opaque; may be large.
    pub metadata: tzs_bytes,
}

/// Bytes the library lends: they belong to a `tzs_reader` and stay valid
/// and unchanged until the next read through that reader, its
/// `tzs_reader_release` or its `tzs_reader_free`, whichever comes first;
/// never free them. `ptr` is NULL when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_view {
    /// First byte, or NULL when `len` is 0.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// A block read without a copy (`tzs_block_store_read_view`): hashes and
/// level copied in, contents and metadata lent as `tzs_view`s, valid as
/// long as the reader that filled it holds them. Nothing to free.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_block_view {
    /// The block's hash.
    pub hash: [u8; 32],
    /// Its level (height).
    pub level: i32,
    /// Its direct predecessor's hash.
    pub predecessor: [u8; 32],
    /// Header and operations.
    pub contents: tzs_view,
    /// Whether `metadata` holds the block's metadata.
    pub has_metadata: bool,
    /// Metadata; `{NULL, 0}` unless `has_metadata`.
    pub metadata: tzs_view,
}

/// Which of the five floating stores of a directory (`TZS_FLOATING_*`).
pub type tzs_floating_kind = u32;
/// Read-only store of the blocks kept by the last merge.
pub const TZS_FLOATING_RO: tzs_floating_kind = 0;
/// Read-write store receiving new blocks.
pub const TZS_FLOATING_RW: tzs_floating_kind = 1;
/// Filled by a running merge; becomes RO.
pub const TZS_FLOATING_RO_TMP: tzs_floating_kind = 2;
/// Receives new blocks during a merge; becomes RW.
pub const TZS_FLOATING_RW_TMP: tzs_floating_kind = 3;
/// Used while repairing.
pub const TZS_FLOATING_RESTORE: tzs_floating_kind = 4;

/// Options of `tzs_block_store_open`; start from
/// `tzs_block_store_options_default()` and change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_block_store_options {
    /// `TZS_READONLY` and/or `TZS_NO_FSYNC`.
    pub flags: u32,
    /// History mode of a new store; an existing store keeps its own.
    pub history_mode: tzs_history_mode,
    /// Chunks kept by FULL (metadata) and ROLLING (blocks) modes.
    pub history_offset: u32,
    /// Threads for background merges (0 = 1; at most
    /// `TZS_BLOCK_STORE_MAX_WORKERS`, more is `TZS_INVALID_ARGUMENT`).
    pub workers: u32,
    /// Log size of every index (0 = default).
    pub index_log_size: u64,
    /// zstd level (1..=22) of cemented metadata, or 0 to store it
    /// uncompressed (larger files; `tzs_block_store_read_by_level_view`
    /// then points into the metadata zip instead of decompressing).
    pub zstd_level: i32,
}

/// Counters reported by `tzs_block_store_read_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_block_store_stats {
    /// Lowest cemented level, -1 when nothing is cemented.
    pub cemented_lowest: i32,
    /// Highest cemented level, -1 when nothing is cemented.
    pub cemented_highest: i32,
    /// Blocks in the cemented store.
    pub cemented_blocks: u64,
    /// Blocks in the floating stores.
    pub floating_blocks: u64,
    /// Bytes of every file of the store.
    pub bytes_on_disk: u64,
    /// Merges completed since the store was created.
    pub merges_done: u64,
    /// Duration of the last merge in milliseconds.
    pub last_merge_ms: u64,
    /// True while a merge runs.
    pub merging: bool,
}

/// What a kv key is bound to (`tzs_kv_exists`, `tzs_kv_entries_kind`).
pub type tzs_kv_kind = u32;
/// kv: a value (a file).
pub const TZS_KV_VALUE: tzs_kv_kind = 1;
/// kv: a dictionary (a directory).
pub const TZS_KV_DICTIONARY: tzs_kv_kind = 2;

/// Size in bytes of a kv digest (SHA-256).
pub const TZS_KV_DIGEST_SIZE: usize = 32;

/// The levels of a cemented chunk, inclusive on both ends.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct tzs_chunk {
    /// First level of the chunk.
    pub start_level: i32,
    /// Last level of the chunk (inclusive).
    pub end_level: i32,
}

/// What `tzs_cemented_gc` keeps (`TZS_HISTORY_*`).
pub type tzs_history_mode = u32;
/// Keep everything: GC does nothing.
pub const TZS_HISTORY_ARCHIVE: tzs_history_mode = 0;
/// Keep every block, and the metadata of the last `offset` chunks.
pub const TZS_HISTORY_FULL: tzs_history_mode = 1;
/// Keep only the last `offset` chunks, blocks and metadata.
pub const TZS_HISTORY_ROLLING: tzs_history_mode = 2;

/// A block named by hash and level (Octez's block descriptor): the genesis,
/// savepoint and caboose of a block store.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tzs_block_descr {
    /// The block's hash.
    pub hash: [u8; 32],
    /// The block's level.
    pub level: i32,
}

/// Where a block store's background merge stands
/// (`tzs_block_store_merge_status`).
pub type tzs_merge_state = u32;
/// No merge runs; the last one of this handle, if any, succeeded.
pub const TZS_MERGE_NOT_RUNNING: tzs_merge_state = 0;
/// A merge runs.
pub const TZS_MERGE_RUNNING: tzs_merge_state = 1;
/// The last merge of this handle failed; the store holds what it held
/// before it.
pub const TZS_MERGE_FAILED: tzs_merge_state = 2;
