(** A node's block store ([tzs_block_store], Octez's [Block_store]): the
    floating and cemented stores under one directory. Blocks are stored as
    they arrive (any fork), read by hash, ancestor or level, and the
    finalized part of the chain is merged ("cemented") in the background.

    A handle may be shared by several threads: stores, reads and a running
    merge overlap; calls release the OCaml runtime lock while the library
    works. *)

type t

(** What the GC keeps after a merge ([TZS_HISTORY_*]): [Archive]
    everything; [Full] every block, and the metadata of the last
    [history_offset] cemented chunks; [Rolling] only the last
    [history_offset] cemented chunks, blocks and metadata. *)
type history_mode = Archive | Full | Rolling

val open_ :
  ?readonly:bool ->
  ?no_fsync:bool ->
  ?history_mode:history_mode ->
  ?history_offset:int ->
  ?workers:int ->
  ?index_log_size:int ->
  ?zstd_level:int ->
  string ->
  (t, Error.t) result
(** [open_ dir] opens the store in [dir]; a read-write open creates it and
    repairs what a crash left. Options left out take the library's defaults
    ([tzs_block_store_options_default]: [Full] with offset 1, one merge
    thread). [history_mode] applies to a new store; an existing store keeps
    its own. Errors: [Locked] (another read-write instance), [Not_found]
    (read-only open of a missing store), [Invalid_argument] (unknown zstd
    level, ...), [Corrupted], [Io]. *)

val store : ?flush:bool -> t -> Block.t -> (unit, Error.t) result
(** Stores a block, durable on return unless opened with [no_fsync] or
    given [~flush:false] (Octez's [store_block ?flush]; default [true]):
    without flush the block is readable at once and survives a crash of the
    process, and a power cut keeps it only once a later flushed store or
    {!flush} has returned, so a burst of blocks costs one fsync. The
    library computes its predecessor list. Storing a stored block is a
    no-op. Errors: [Inconsistent] (the predecessor is unknown, except for
    the first block of an empty store, or the level is not the
    predecessor's plus one), [Read_only], [Invalid_argument] (a hash that is
    not 32 bytes), [No_space], [Io]. *)

val flush : t -> (unit, Error.t) result
(** Makes every block stored so far durable (one fsync). Errors:
    [Read_only], [No_space], [Io]. *)

val mem : t -> Block.hash -> (bool, Error.t) result

val read : ?distance:int -> ?metadata:bool -> t -> Block.hash -> (Block.t option, Error.t) result
(** [read ~distance t hash] is the block [distance] blocks below [hash]
    (default 0: the block itself), with its metadata unless
    [~metadata:false]; [None] when [hash] is unknown or the distance runs
    past genesis or into history removed by rolling GC. During a merge it
    sees the state before or after it. Errors: [Corrupted], [Io]. *)

val read_by_level : ?metadata:bool -> t -> int32 -> (Block.t option, Error.t) result
(** The cemented block at a level, or [None] if that level is not cemented
    (yet, or any more). *)

val merge : t -> head:Block.hash -> chunk_ends:int32 list -> (unit, Error.t) result
(** Starts a background merge: cements the ancestors of [head] up to the
    last of [chunk_ends] (strictly increasing levels, one chunk per
    interval), keeps the blocks above it that descend from the new cemented
    top, and applies the history mode's GC. Returns once started; a merge
    already running is waited for first (if it failed, its error is
    returned and no merge starts). Errors: [Invalid_argument] (no ends, ends
    not increasing, last end above the head), [Not_found] ([head] not
    stored), [Inconsistent], [Read_only], [Io]. *)

val await_merge : t -> (unit, Error.t) result
(** Waits for the running merge, if any, and returns its result. *)

type stats = {
  cemented_lowest : int32 option;  (** [None] when nothing is cemented *)
  cemented_highest : int32 option;
  cemented_blocks : int;
  floating_blocks : int;
  bytes_on_disk : int;
  merges_done : int;  (** since the store was created *)
  last_merge_ms : int;
  merging : bool;
}

val stats : t -> (stats, Error.t) result

val check : ?repair:bool -> t -> (unit, Error.t) result
(** Checks every invariant; with [~repair:true] (read-write handles) removes
    orphan stores. Errors: [Corrupted] with a message listing the problems
    left, [Io]. *)

val close : t -> unit
(** Closes the handle once the calls in progress return and a running merge
    ends, releasing its lock. Later calls return [Error {status = Closed;
    _}]; closing twice is a no-op. A handle never closed is closed by the
    GC, eventually. *)
