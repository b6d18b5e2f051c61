(** A persistent hash table of fixed-size keys and values ([tzs_index],
    as mirage's [index]): [add] appends to a log, merged into the sorted
    data file in the background.

    A handle may be shared by several threads; calls release the OCaml
    runtime lock while the library works. Keys and values are strings of
    exactly [key_size] and [value_size] bytes; other lengths are
    [Invalid_argument]. *)

type t

val open_ :
  ?readonly:bool ->
  ?no_fsync:bool ->
  ?removable:bool ->
  ?log_size:int ->
  key_size:int ->
  value_size:int ->
  string ->
  (t, Error.t) result
(** [open_ ~key_size ~value_size dir] opens the index in directory [dir]
    (created by a read-write open). [~removable:true] allows {!remove} and
    must match the index's creation; [~log_size] is the number of entries
    buffered before a background merge (0, the default, means the
    library's default). Errors: [Locked] (another read-write instance),
    [Not_found] (read-only open of a missing index), [Invalid_argument]
    (sizes out of range or different from the index's), [Corrupted], [Io]. *)

val key_size : t -> int
val value_size : t -> int
val mem : t -> string -> (bool, Error.t) result

val find : t -> string -> (string option, Error.t) result
(** The value bound to the key, or [None]. *)

val add : ?flush:bool -> t -> string -> string -> (unit, Error.t) result
(** [add t key value] binds [key], replacing an earlier value. With
    [~flush:true] (the default) it is durable on return, with every earlier
    binding. Errors: [Read_only], [Invalid_argument], [No_space], [Io], or
    the error of a failed background merge. *)

val remove : ?flush:bool -> t -> string -> (unit, Error.t) result
(** Unbinds the key (a no-op when unbound). Only for an index opened
    [~removable:true]; otherwise [Invalid_argument]. *)

val flush : t -> (unit, Error.t) result
(** Makes every binding added so far durable. *)

val sync : t -> (unit, Error.t) result
(** Read-only handles: loads what the writer has flushed since. *)

val await_merge : t -> (unit, Error.t) result
(** Waits for a running background merge; returns its error, if any. *)

val length : t -> (int, Error.t) result
(** The number of keys bound. *)

val fold : t -> init:'a -> f:('a -> string -> string -> 'a) -> ('a, Error.t) result
(** Folds over a snapshot of every binding taken when the call starts (in
    unspecified order, each key once). [f] may use the index, even close it;
    an exception it raises ends the fold and is re-raised. *)

val iter : t -> (string -> string -> unit) -> (unit, Error.t) result

val close : t -> unit
(** Waits for the calls in progress and a running merge, makes the log
    durable and releases the lock. Later calls return
    [Error {status = Closed; _}]; closing twice is a no-op. A handle never
    closed is closed by the GC, eventually. *)
