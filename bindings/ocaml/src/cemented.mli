(** A cemented block store ([tzs_cemented], Octez's
    [Cemented_block_store]): finalized blocks in chunk files by level, two
    indexes (hash -> level, level -> hash), metadata in zstd zips.

    A handle may be shared by several threads (reads run in parallel,
    writes are serialised); calls release the OCaml runtime lock while the
    library works. *)

type t

(** The levels of a chunk, inclusive on both ends. *)
type chunk = { start_level : int32; end_level : int32 }

val open_ : ?readonly:bool -> ?no_fsync:bool -> ?log_size:int -> string -> (t, Error.t) result
(** [open_ dir] opens the store in [dir]; a read-write open creates it and
    completes or removes a chunk a crash left unindexed. [log_size] is both
    indexes' log size (0, the default, is the library's). Errors: [Locked],
    [Not_found] (read-only open of a missing store), [Corrupted], [Io]. *)

val lowest_level : t -> (int32 option, Error.t) result
(** [None] when the store is empty. *)

val highest_level : t -> (int32 option, Error.t) result
val level_of : t -> Block.hash -> (int32 option, Error.t) result
val hash_of : t -> int32 -> (Block.hash option, Error.t) result

val read_by_level : ?metadata:bool -> t -> int32 -> (Block.t option, Error.t) result
(** The block at a level, with its stored metadata unless
    [~metadata:false], or [None]. Errors: [Corrupted] (damaged record or
    metadata entry), [Io]. *)

val read_by_hash : ?metadata:bool -> t -> Block.hash -> (Block.t option, Error.t) result

val read_view_by_level :
  ?metadata:bool -> Reader.t -> t -> int32 -> (Block.View.t option, Error.t) result
(** {!read_by_level} without a copy, as {!Block_store.read_view}: contents
    lent from the chunk's map, metadata (decompressed) from the reader's
    buffer, {b valid only until the reader's next read, {!Reader.release}
    or {!Reader.close}}, even if a GC deletes the chunk meanwhile. *)

val read_metadata : t -> int32 -> (string option, Error.t) result
(** [None] when the block has no stored metadata (none given, not cemented,
    or dropped by GC). *)

val cement : ?write_metadata:bool -> ?check_consistency:bool -> t -> Block.t list -> (unit, Error.t) result
(** Cements blocks of consecutive levels, in order, as one chunk (durable
    on return unless opened with [no_fsync]). Errors: [Invalid_argument] (no
    block, a hash that is not 32 bytes), [Inconsistent] (with
    [check_consistency], the default: a gap, an overlap, a duplicated hash
    or a broken predecessor link; the message says where), [Read_only],
    [No_space], [Io]. After an error nothing of the chunk is visible. *)

(** {2 Streamed cementing}

    A chunk too large to hold in memory (a cycle of tens of thousands of
    blocks) is cemented block by block, as Octez's [cement_blocks] over a
    chunk iterator. *)

(** A chunk being written ([tzs_chunk_writer]). It holds the store's write
    lock until it is committed or aborted: other writes to the store
    ([cement], another [begin_chunk], [gc], ...) wait meanwhile, so end it
    before making them on the same thread. It keeps the store alive: it may
    still commit after {!close}, which releases the store's lock only once
    the writer has ended. Pushes from several threads are serialised. A
    writer dropped without [commit] or [abort] is aborted by the GC,
    eventually. *)
module Chunk_writer : sig
  type t

  val push : ?context:string -> t -> Block.t -> (unit, Error.t) result
  (** Adds the next block of the chunk (level = the previous one's + 1,
      starting at the chunk's start), with its resulting context hash
      [context] (32 bytes; 32 zero bytes if left out). Errors:
      [Invalid_argument] (a hash that is not 32 bytes), [Inconsistent]
      (wrong level, a duplicated or already cemented hash, with
      [check_consistency] a broken predecessor link), [No_space], [Io],
      [Closed] (the writer was committed or aborted). After an error the
      chunk is abandoned: {!commit} fails with [Invalid_argument] and
      leaves nothing. *)

  val commit : t -> (chunk, Error.t) result
  (** Makes the chunk durable (unless the store was opened with
      [no_fsync]) and visible to readers at once, ends the writer and
      returns the chunk's levels. Errors: [Invalid_argument] (a push
      failed), [Inconsistent] (fewer blocks pushed than the chunk holds),
      [No_space], [Io], [Closed] (already committed or aborted); after an
      error nothing of the chunk is visible and the writer is ended. *)

  val abort : t -> unit
  (** Abandons the chunk: nothing of it stays. A no-op on a writer already
      committed or aborted. *)
end

val begin_chunk :
  ?write_metadata:bool -> ?check_consistency:bool -> t -> chunk -> (Chunk_writer.t, Error.t) result
(** [begin_chunk t chunk] begins cementing the levels of [chunk] (both
    ends included), written by {!Chunk_writer.push} and made visible by
    {!Chunk_writer.commit}; a crash before the commit returns leaves the
    store as it was. [write_metadata] and [check_consistency] (both
    [true] by default) as in {!cement}. Waits for other writes to the store
    to finish. Errors: [Inconsistent] ([end_level] below [start_level], an
    overlap with a cemented chunk, with [check_consistency] a start that is
    not right after the highest cemented level), [Read_only], [No_space],
    [Io]. *)

val cement_metadata : t -> Block.t list -> (chunk, Error.t) result
(** Writes the metadata of blocks already cemented without it (or whose
    metadata GC dropped): blocks of one chunk, in increasing levels, each
    the cemented block at its level (Octez's [cement_blocks_metadata]);
    blocks without metadata are skipped. Durable on return: a crash leaves
    the chunk with all of it or none. Returns the chunk. Errors:
    [Invalid_argument] (no block, levels not increasing, the chunk already
    has metadata), [Not_found] (a level is not cemented), [Inconsistent]
    (blocks of two chunks, a hash that is not the cemented one),
    [Read_only], [Corrupted], [No_space], [Io]. *)

val resulting_context_hash : t -> Block.hash -> (string option, Error.t) result
(** The resulting context hash the block was cemented with (32 zero bytes
    if none was given), from its record; [None] if it is not cemented.
    Errors: [Corrupted], [Io]. *)

val chunks : t -> (chunk list, Error.t) result
(** Ascending. *)

val metadata_chunks : t -> (chunk list, Error.t) result
(** The chunks that have a metadata zip, ascending. *)

val find_chunk : t -> int32 -> (chunk option, Error.t) result

val gc : t -> mode:Block_store.history_mode -> offset:int -> (unit, Error.t) result
(** [Archive] does nothing; [Full] drops the metadata of all but the last
    [offset] chunks; [Rolling] all but the last [offset] chunks. Readers in
    other threads keep working meanwhile. Errors: [Read_only], [Io]. *)

val check_consistency : ?genesis:Block.hash -> t -> (unit, Error.t) result
(** Checks every chunk, block and index entry; returns the first problem
    ([Inconsistent] or [Corrupted] with a message saying where). The block
    [genesis] and the lowest stored block need no predecessor below
    them. *)

val fold :
  ?metadata:bool -> t -> chunk -> init:'a -> f:('a -> Block.t -> 'a) -> ('a option, Error.t) result
(** Folds over the blocks of a chunk (exactly one of the store's chunks) in
    level order; [None] if the store has no such chunk. [f] must not close
    the store; an exception it raises ends the fold and is re-raised. *)

val iter : ?metadata:bool -> t -> chunk -> (Block.t -> unit) -> (bool, Error.t) result
(** [false] if the store has no such chunk. *)

val set_zstd_level : t -> int -> (unit, Error.t) result
(** The zstd level (1..=22) of metadata written from now on; 0 stores it
    uncompressed (larger files; views read by level then point into the
    metadata zip instead of decompressing). *)

val sync : t -> (unit, Error.t) result
(** Read-only handles: loads what the writer cemented or dropped since. *)

val close : t -> unit
(** Closes the handle once the calls in progress return, releasing its
    lock. Later calls return [Error {status = Closed; _}]; closing twice is
    a no-op. *)
