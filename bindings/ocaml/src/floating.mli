(** A floating block store ([tzs_floating], Octez's [Floating_block_store]):
    blocks appended in arrival order with their predecessor lists, looked
    up by hash.

    A handle may be shared by several threads: many may read while one
    appends; calls release the OCaml runtime lock while the library works. *)

type t

(** The five stores that may coexist in one directory. *)
type kind = Ro | Rw | Ro_tmp | Rw_tmp | Restore

val open_ : ?readonly:bool -> ?no_fsync:bool -> kind:kind -> string -> (t, Error.t) result
(** [open_ ~kind dir] opens the store of [kind] in directory [dir], created
    (and repaired after a crash) by a read-write open. Errors: [Locked]
    (another read-write instance of this kind), [Not_found] (read-only open
    of a missing store), [Corrupted], [Io], [Invalid_argument]. *)

val append :
  ?flush:bool -> ?context:string -> t -> Block.t -> Block.hash list -> (unit, Error.t) result
(** [append t b preds] stores [b] with its predecessor list [preds] (at
    most 12 hashes, entry i being the 2^i-th ancestor) and its resulting
    context hash [context] (32 bytes; 32 zero bytes if left out), as
    Octez's [append_block] with its [info]. A block already stored is left
    unchanged. With [~flush:true] (the default) it is durable on return.
    Errors: [Read_only], [Invalid_argument] (more than 12 predecessors, a
    hash that is not 32 bytes), [No_space], [Io]. *)

val resulting_context_hash : t -> Block.hash -> (string option, Error.t) result
(** The block's resulting context hash, from the index alone (with
    {!find_predecessors}, Octez's [find_info]); [None] if the block is not
    stored. Errors: [Corrupted], [Io]. *)

val flush : t -> (unit, Error.t) result
(** Makes every appended block durable. *)

val sync : t -> (unit, Error.t) result
(** Read-only handles: loads the blocks appended since open or the last
    sync. *)

val mem : t -> Block.hash -> (bool, Error.t) result

val find_predecessors : t -> Block.hash -> (Block.hash list option, Error.t) result
(** The block's predecessor list, or [None] if it is not stored. *)

val read_block : t -> Block.hash -> (Block.t option, Error.t) result
(** The block, or [None]. Errors: [Corrupted] (this block's record is
    damaged; others stay readable), [Io]. *)

val read_block_and_predecessors :
  t -> Block.hash -> ((Block.t * Block.hash list) option, Error.t) result

val read_view : Reader.t -> t -> Block.hash -> (Block.View.t option, Error.t) result
(** {!read_block} without a copy, as {!Block_store.read_view}: contents
    and metadata lent by the reader, {b valid only until its next read,
    {!Reader.release} or {!Reader.close}}. *)

val length : t -> (int, Error.t) result
(** The number of blocks stored. *)

val fold : t -> init:'a -> f:('a -> Block.t -> Block.hash list -> 'a) -> ('a, Error.t) result
(** Folds over the blocks stored when the call starts, in file order, with
    their predecessor lists (Octez's [fold_left_with_pred_s]). [f] may use
    the store, even close it; an exception it raises ends the fold and is
    re-raised. Errors: [Corrupted] (the fold stops there), [Io]. *)

val iter : t -> (Block.t -> Block.hash list -> unit) -> (unit, Error.t) result

val close : t -> unit
(** Closes the handle once the calls in progress return, releasing its
    lock. Later calls return [Error {status = Closed; _}]; closing twice is
    a no-op. A handle never closed is closed by the GC, eventually. *)
