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

val create :
  ?no_fsync:bool ->
  ?history_mode:history_mode ->
  ?history_offset:int ->
  ?workers:int ->
  ?index_log_size:int ->
  ?zstd_level:int ->
  genesis:Block.t ->
  string ->
  (t, Error.t) result
(** [create ~genesis dir] creates a store in [dir] holding [genesis] (its
    first block, stored durably), as Octez's [Block_store.create
    ~genesis_block]: its genesis, savepoint and caboose are then
    [genesis]. Options as {!open_}. Errors: [Invalid_argument] ([dir]
    already holds a block store, a hash that is not 32 bytes), [Locked],
    [Corrupted], [No_space], [Io]. *)

val load :
  ?readonly:bool ->
  ?no_fsync:bool ->
  ?workers:int ->
  ?index_log_size:int ->
  ?zstd_level:int ->
  genesis_hash:Block.hash ->
  string ->
  (t, Error.t) result
(** [load ~genesis_hash dir] opens the existing store in [dir] (as
    {!open_}) and checks that its genesis is the block [genesis_hash]
    (Octez's [Block_store.load]); the store keeps its own history mode.
    Errors: those of {!open_}; [Not_found] ([dir] holds no block store),
    [Inconsistent] (its genesis is another block). *)

val store : ?flush:bool -> ?context:string -> t -> Block.t -> (unit, Error.t) result
(** Stores a block, durable on return unless opened with [no_fsync] or
    given [~flush:false] (Octez's [store_block ?flush]; default [true]):
    without flush the block is readable at once and survives a crash of the
    process, and a power cut keeps it only once a later flushed store or
    {!flush} has returned, so a burst of blocks costs one fsync. The
    library computes its predecessor list. Storing a stored block is a
    no-op. Errors: [Inconsistent] (the predecessor is unknown, except for
    the first block of an empty store, or the level is not the
    predecessor's plus one), [Read_only], [Invalid_argument] (a hash that is
    not 32 bytes), [No_space], [Io].

    [context] is the block's resulting context hash (32 bytes; Octez's
    [store_block block_store block resulting_context_hash]), kept with the
    block through merges and read back by {!resulting_context_hash}; a
    block stored without one has 32 zero bytes. *)

val resulting_context_hash : t -> Block.hash -> (string option, Error.t) result
(** The resulting context hash the block was stored with (32 zero bytes if
    none was given), read from the floating index or the cemented record
    without reading the block; [None] if the block is not stored. Errors:
    [Corrupted], [Io]. *)

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

val read_view :
  ?distance:int ->
  ?metadata:bool ->
  Reader.t ->
  t ->
  Block.hash ->
  (Block.View.t option, Error.t) result
(** {!read} without a copy: [read_view reader t hash] reads the block
    through [reader], which lends its contents and metadata as bigarrays
    ({!Block.View.t}) {b valid only until [reader]'s next read,
    {!Reader.release} or {!Reader.close}} (a merge, a GC or {!close} do not
    end them; using them after their end is undefined behaviour). The
    reader's previous views end when this call starts, whatever its
    outcome; on [None] (as {!read}) the reader holds nothing. Errors:
    [Invalid_argument], [Corrupted] (a view never shows damaged bytes),
    [Io], [Closed] (the store or the reader). *)

val read_by_level_view :
  ?metadata:bool -> Reader.t -> t -> int32 -> (Block.View.t option, Error.t) result
(** {!read_by_level} without a copy, as {!read_view}. *)

val merge : ?max_op_ttl:int -> t -> head:Block.hash -> chunk_ends:int32 list -> (unit, Error.t) result
(** Starts a background merge: cements the ancestors of [head] up to the
    last of [chunk_ends] (strictly increasing levels, one chunk per
    interval), keeps the blocks above it that descend from the new cemented
    top, and applies the history mode's GC. Returns once started; a merge
    already running is waited for first (if it failed, its error is
    returned and no merge starts).

    With [~max_op_ttl] (Octez's [merge_stores], whose new head's metadata
    gives [max_op_ttl] and whose last preserved block is the last chunk
    end), the new cemented top and up to [max_op_ttl] of its ancestors also
    stay in the floating store with their metadata (reads take that copy),
    and the merge moves the savepoint and caboose by the history mode
    (FULL/ROLLING 0: to the lowest preserved block; ROLLING 0 cements
    nothing). Errors: [Invalid_argument] (no ends, ends not increasing,
    last end above the head, a negative [max_op_ttl]), [Not_found] ([head]
    not stored), [Inconsistent], [Read_only], [Io]. *)

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

(** {2 Chain bookkeeping} *)

type descr = Block.hash * int32
(** A block by hash and level (Octez's [block_descriptor]). *)

val genesis : t -> (descr option, Error.t) result
(** The genesis block, recorded when the first block was stored; [None]
    while the store holds no block. *)

val savepoint : t -> (descr option, Error.t) result
(** The lowest block stored with its metadata; [None] while the store
    holds no block. Merges move it by the history mode. *)

val caboose : t -> (descr option, Error.t) result
(** The lowest block stored; [None] while the store holds no block. Only
    ROLLING merges move it. *)

val write_savepoint : t -> descr -> (unit, Error.t) result
(** Sets the savepoint, durably on return (a crash leaves the old or the
    new value). Errors: [Invalid_argument] (below the caboose or the
    genesis), [Not_found] (the block is not stored), [Inconsistent] (it is
    stored at another level), [Read_only], [No_space], [Io]. *)

val write_caboose : t -> descr -> (unit, Error.t) result
(** Sets the caboose, as {!write_savepoint}. Errors: [Invalid_argument]
    (above the savepoint or below the genesis), [Not_found],
    [Inconsistent], [Read_only], [No_space], [Io]. *)

(** Where the background merge stands (Octez's [merge_status]). *)
type merge_status = Not_running | Running | Merge_failed of Error.t

val merge_status : t -> (merge_status, Error.t) result
(** Does not wait. [Merge_failed e] when the last merge of this handle
    failed, until the next merge starts. *)

val history : t -> (history_mode * int, Error.t) result
(** The store's history mode and offset (persisted). *)

val switch_history_mode :
  ?max_op_ttl:int -> t -> head:Block.hash -> history_mode -> offset:int -> (unit, Error.t) result
(** Switches to a history mode and offset by Octez's rules: [Archive] may
    become [Full] or [Rolling], [Full] may become [Full] or [Rolling],
    [Rolling] may change its offset; a switch to [Archive] from another
    mode, or from [Rolling] to [Full], is refused with [Invalid_argument]
    (the message names both modes). [head] is the node's head: the blocks
    kept are its last preserved block (the last merge's top) and
    [max_op_ttl] (default 0) ancestors. Savepoint, caboose, mode and offset
    are written in one durable step, then the GC the new mode needs runs
    before this returns. Waits for a running merge first. Errors:
    [Invalid_argument], [Not_found] ([head] not stored), [Read_only],
    [Corrupted] (the GC met damage; the switch itself is done),
    [No_space], [Io]. *)

val sync : t -> (bool, Error.t) result
(** Read-only handles: catches up with the read-write handle, usually in
    another process (Octez's [Block_store.sync]). Every block it stored
    durably before this call is then readable, and every merge it
    completed seen, with its savepoint, caboose and history mode;
    concurrent reads see the state before or after, never a mix. [Ok true]
    when the writer's manifest changed (a merge, a mark, a mode). Cheap
    when nothing changed. A no-op returning [Ok false] on a read-write
    handle. Errors: [Corrupted], [Io]; the handle then keeps its state. *)

val check : ?repair:bool -> t -> (unit, Error.t) result
(** Checks every invariant; with [~repair:true] (read-write handles) removes
    orphan stores. Errors: [Corrupted] with a message listing the problems
    left, [Io]. *)

val close : t -> unit
(** Closes the handle once the calls in progress return and a running merge
    ends, releasing its lock. Later calls return [Error {status = Closed;
    _}]; closing twice is a no-op. A handle never closed is closed by the
    GC, eventually. *)
