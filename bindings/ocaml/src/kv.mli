(** A key/value store over a directory ([tzs_kv], as mirage-kv-unix):
    values are files, dictionaries directories.

    Keys are strings of ['/']-separated segments (["a/b/c"], a leading
    ['/'] optional, [""] is the root). A segment is 1 to 255 bytes of
    UTF-8 without ['/'] or NUL, not ["."] or [".."], not starting with
    [".tzs"]; other keys are [Invalid_argument] and no key reaches outside
    the root. A handle may be shared by several threads; several handles
    (and processes) may share a root. Calls release the OCaml runtime lock. *)

type t
type kind = [ `Value | `Dictionary ]

val open_ : ?readonly:bool -> ?no_fsync:bool -> string -> (t, Error.t) result
(** [open_ root] serves the existing directory [root]. Errors: [Not_found]
    (no such directory), [Invalid_argument] (not a directory), [Corrupted]
    (malformed journal), [Io]. *)

val exists : t -> string -> (kind option, Error.t) result
val get : t -> string -> (string option, Error.t) result
(** The value, or [None]. Errors: [Value_expected] (a dictionary),
    [Dictionary_expected] (a parent is a value). *)

val get_partial : t -> string -> offset:int -> length:int -> (string option, Error.t) result
(** Up to [length] bytes from [offset]: fewer past the end, none beyond it. *)

val size : t -> string -> (int option, Error.t) result

val list : t -> string -> ((string * kind) list option, Error.t) result
(** The entries of a dictionary, sorted by name. Errors:
    [Dictionary_expected] (a value). *)

val last_modified : t -> string -> ((int * int64) option, Error.t) result
(** Days and picoseconds since 1970-01-01 UTC, as [Ptime.Span.of_d_ps]
    takes them. A dictionary's time is its latest direct entry's. *)

val digest : t -> string -> (string option, Error.t) result
(** The SHA-256 (32 bytes) of a value, or of a dictionary's entries. *)

val set : t -> string -> string -> (unit, Error.t) result
(** Binds the key, creating missing parents; durable on return. Errors:
    [Read_only], [Value_expected] (the key is a dictionary),
    [Dictionary_expected] (a parent is a value), [No_space], [Io]. *)

val set_partial : t -> string -> offset:int -> string -> (unit, Error.t) result
(** Writes at [offset] of the value (past the end appends). *)

val remove : t -> string -> (unit, Error.t) result
(** Removes a value or a whole dictionary; an unbound key is no error. *)

val rename : t -> source:string -> dest:string -> (unit, Error.t) result
(** Onto a dictionary, the source moves inside it. Errors: [Not_found]
    (unbound source), [Value_expected], [Key_exists], [Invalid_argument]. *)

val allocate : t -> string -> int -> (unit, Error.t) result
(** [allocate t key size] binds the unbound key to [size] zero bytes.
    Errors: [Key_exists]. *)

(** A batch, as given to the function passed to {!batch}: reads see the
    batch's own writes over the store and are recorded, so that the commit
    conflicts if someone else changed those keys meanwhile. Valid only
    during that function; later calls return [Error {status = Closed; _}]. *)
module Batch : sig
  type t

  val exists : t -> string -> (kind option, Error.t) result
  val get : t -> string -> (string option, Error.t) result
  val list : t -> string -> ((string * kind) list option, Error.t) result

  val set : t -> string -> string -> (unit, Error.t) result
  (** Buffers the write; nothing reaches the store before the commit. *)

  val remove : t -> string -> (unit, Error.t) result
end

val batch : ?retries:int -> t -> (Batch.t -> ('a, Error.t) result) -> ('a, Error.t) result
(** [batch t f] runs [f] in a fresh batch and, when it returns [Ok v],
    commits its writes atomically and durably and returns [Ok v]. When the
    commit conflicts, or [f] returns [Error {status = Conflict; _}], [f]
    runs again in a new batch, up to [retries] (default 13) more times;
    then the result is [Error {status = Too_many_retries; _}] (mirage-kv's
    [batch]). Any other error from [f] discards the batch and is returned;
    an exception discards it and is re-raised. Errors also: [Read_only]. *)

val close : t -> unit
(** Closes the handle once the calls in progress return. Later calls return
    [Error {status = Closed; _}]; closing twice is a no-op. A handle never
    closed is closed by the GC, eventually. *)
