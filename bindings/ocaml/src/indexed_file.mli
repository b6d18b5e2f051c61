(** An indexed file ([tzs_indexed_file], the L2 stores' [Indexed_file] and
    [Simple_indexed_file]): values appended to one file, found through an
    index mapping each fixed-size key to the value's offset and a
    fixed-size header, which can be read from the index alone.

    A handle may be shared by several threads; calls release the OCaml
    runtime lock while the library works (except {!gc}, whose callback runs
    OCaml code on the calling thread). *)

type t

val open_ :
  ?readonly:bool ->
  ?no_fsync:bool ->
  ?header_in_value:bool ->
  ?log_size:int ->
  key_size:int ->
  header_size:int ->
  string ->
  (t, Error.t) result
(** [open_ ~key_size ~header_size dir] opens (read-write: creates) the store
    in directory [dir]; the sizes are fixed for the store's life.
    [~header_in_value:true] makes the header the first [header_size] bytes
    of each value (use {!append_value}). [log_size] is the index's log size
    (0, the default, is the library's). Errors: [Locked], [Not_found]
    (read-only open of a missing store), [Invalid_argument] (sizes out of
    range or different from the store's), [Corrupted], [Io]. *)

val header_size : t -> int

val mem : t -> string -> (bool, Error.t) result
(** Whether the key is stored. Errors: [Invalid_argument] (a key of the
    wrong size). *)

val header : t -> string -> (string option, Error.t) result
(** The key's header, from the index alone, or [None]. *)

val read : t -> string -> (string option, Error.t) result
(** The key's value, or [None]. Errors: [Corrupted] (the value fails its
    checksum), [Io]. *)

val read_with_header : t -> string -> ((string * string) option, Error.t) result
(** [(header, value)], or [None]. *)

(** {2 Borrowed reads}

    {!read} and {!read_with_header} without copying the value: it is read
    through a {!Reader.t} (the same readers as the block stores'
    [read_view]; one reader serves both) and lent as a bigarray.

    {b The value is borrowed.} It points into memory the reader lends (the
    values file's memory map, or, for a value appended since the file was
    last mapped, the reader's own buffer). It is valid, and its bytes
    unchanged, only until the next read through the same reader (of a
    value {e or of a block}), its {!Reader.release} or its {!Reader.close},
    whichever comes first; a compaction ({!gc}, {!gc_filter}) that unlinks
    the old values file, or {!close}, does not end it. Reading it
    afterwards is undefined behaviour: it may point into unmapped memory
    (a segmentation fault) or into another value's bytes. Do not write
    into it (the map is read-only: a write faults). Keep the bytes beyond
    that with {!value_string} (a copy) or any bigstring copy.

    The bigarray keeps its reader reachable, as {!Block.View.t}'s do: the
    GC never frees a reader while one of its values is reachable. A
    sub-array ([Bigarray.Array1.sub]) does not: keep the value or the
    reader meanwhile. An empty value is a shared empty bigarray. *)

val read_view : Reader.t -> t -> string -> (Block.bigstring option, Error.t) result
(** [read_view reader t key] is {!read} without a copy: the key's value
    lent by [reader] (see above for how long it stays valid), or [None].
    The record's checksum is checked before the value is lent (a view never
    shows damaged bytes). The reader's previous views end when this call
    starts, whatever its outcome; on [None] the reader holds nothing.
    Releases the runtime lock as {!read}. Errors: [Invalid_argument] (a key
    of the wrong size), [Corrupted], [Io], [Closed] (the store or the
    reader). *)

val read_view_with_header :
  Reader.t -> t -> string -> ((string * Block.bigstring) option, Error.t) result
(** {!read_with_header} without copying the value: [(header, value)], the
    value lent by [reader] as in {!read_view}, the header copied into a
    string (it is small: [header_size] bytes), which stays valid
    forever. *)

val value_string : Block.bigstring -> string
(** A copy of a borrowed value ({!Block.string_of_bigstring}), valid
    forever: [Option.map value_string] of {!read_view}'s answer is
    {!read}'s. *)

val append : ?flush:bool -> t -> string -> header:string -> string -> (unit, Error.t) result
(** [append t key ~header value] appends [value] for [key] with [header]
    ([header_size] bytes), replacing an earlier value; durable on return
    with [~flush:true] (the default). Errors: [Invalid_argument] (wrong
    sizes, or a [header_in_value] store), [Read_only], [No_space], [Io]. *)

val append_value : ?flush:bool -> t -> string -> string -> (unit, Error.t) result
(** For a [header_in_value] store: appends a value of at least
    [header_size] bytes, which start with its header. *)

val flush : t -> (unit, Error.t) result
(** Makes every append so far durable. *)

val sync : t -> (unit, Error.t) result
(** Read-only handles: loads what the writer flushed since. *)

val gc : t -> keep:(string -> bool) -> (unit, Error.t) result
(** Starts a compaction keeping the keys for which [keep key] is true.
    [keep] runs on this thread, once per stored key, before [gc] returns;
    the kept values are then copied in the background while appends
    continue (values appended meanwhile are kept). Wait with {!await_gc}. If
    [keep] raises, the remaining keys are kept, the compaction is awaited
    and the exception re-raised. Errors: [Invalid_argument] (a compaction
    is running), [Read_only], [Io], or the previous compaction's error. *)

val gc_filter : ?wait:bool -> t -> (string -> string -> bool) -> (bool, Error.t) result
(** Octez's [gc ?async]: compacts the store, keeping the values of the
    keys for which [f key header] is [true] (the header as stored in the
    index; the value is not read). [f] is asked about the keys stored when
    the GC starts, one call at a time, on a library worker thread or on
    the thread waiting for the GC, holding the OCaml runtime lock; values
    appended meanwhile are kept. Inside [f] the store may be read and
    appended to; {!await_gc}, {!cancel_gc} and [gc_filter ~wait:true] fail
    with [Invalid_argument], and it must not be closed. Returns at once by
    default (wait with {!await_gc}), or with [~wait:true] once the GC
    ended, with its error. [Ok false] when a GC is already running: this
    request is then ignored, as in Octez. [f] is kept alive (a global
    root) until the GC ended.

    An exception raised by [f] keeps that key and every key asked after
    it, and is re-raised once the GC ended: by [gc_filter ~wait:true]
    itself, otherwise by the next {!await_gc}. Errors: [Read_only], [Io],
    the error of an earlier GC nobody awaited. *)

val await_gc : t -> (unit, Error.t) result
(** Waits for the running compaction, if any (Octez's
    [wait_gc_completion]), and returns its result once ([Ok] for a
    cancelled one). *)

val is_gc_finished : t -> bool
(** [true] when no compaction runs (also on a closed handle). Never
    blocks. *)

val cancel_gc : t -> (bool, Error.t) result
(** Stops the running compaction and waits until it stopped, leaving the
    store as before it: [Ok true] if one was stopped, [Ok false] if none
    ran or it had already switched generations. *)

val close : t -> unit
(** Closes the handle once the calls in progress return and a compaction
    ends, releasing its lock. Later calls return [Error {status = Closed;
    _}]; closing twice is a no-op. *)
