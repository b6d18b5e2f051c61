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

(** {2 Filter and GC}

    The filter [f key value] of {!filter} and {!gc} returns [true] to keep
    a binding. It runs once per binding, one call at a time, on a library
    worker thread or on the thread waiting for the GC (never on the
    caller's thread for an asynchronous GC), holding the OCaml runtime
    lock. Inside it the index may be read ({!find}, {!mem}, {!length},
    {!fold}, {!is_merging}, {!is_gc_finished}); calls that write or wait on
    this index fail with [Invalid_argument], and it must not be closed.

    An exception raised by [f] keeps that binding and every binding offered
    after it, and is re-raised once the GC ended: by {!filter} and
    [gc ~wait:true] themselves, and for an asynchronous GC by the next
    {!await_gc} on the handle. *)

val filter : t -> (string -> string -> bool) -> (unit, Error.t) result
(** Keeps only the bindings [f] keeps (mirage index's [filter]), durably
    on return; readers see every binding until then, then only the kept
    ones, never a mix. Bindings added meanwhile are kept. Waits for a
    running GC first. Errors: [Read_only], [Corrupted], [No_space], [Io];
    on an error the index is unchanged. *)

val gc : ?wait:bool -> t -> (string -> string -> bool) -> (bool, Error.t) result
(** Octez's [gc ?async]: keeps only the bindings [f] keeps, as a
    background GC. Returns at once by default, or with [~wait:true] once
    the GC is durable (or was cancelled). [Ok false] when a GC is already
    running: this request is then ignored, as in Octez. [f] is kept
    alive (a global root) until the GC ended. Errors: [Read_only], the
    error of an earlier GC nobody awaited, with [~wait:true] this GC's. *)

val await_gc : t -> (unit, Error.t) result
(** Waits for the running GC, if any (Octez's [wait_gc_completion]), and
    returns its outcome once ([Ok] for a cancelled GC too). *)

val is_gc_finished : t -> bool
(** [true] when no GC runs (also on a closed handle). Never blocks. *)

val cancel_gc : t -> (bool, Error.t) result
(** Stops the running GC and waits until it stopped, leaving the index as
    before it: [Ok true] if a GC was stopped, [Ok false] if none ran or it
    had already published its result. *)

val clear : t -> (unit, Error.t) result
(** Removes every binding (mirage index's [clear]), durably on return: a
    crash leaves all or none. Cancels a running GC, waits for a running
    merge. Errors: [Read_only], [No_space], [Io]. *)

val try_merge : t -> (bool, Error.t) result
(** Starts a background merge of the log if it holds a binding and no
    merge or GC runs; [Ok true] if it started one ({!await_merge} waits for
    it). Errors: [Read_only], [No_space], [Io], a failed merge's error. *)

val is_merging : t -> bool
(** [true] while a merge or GC runs (mirage index's [is_merging]); [false]
    on a read-only or closed handle. Never blocks. *)

val close : t -> unit
(** Waits for the calls in progress and a running merge or GC, makes the log
    durable and releases the lock. Later calls return
    [Error {status = Closed; _}]; closing twice is a no-op. A handle never
    closed is closed by the GC, eventually. *)
