(** Readers of borrowed blocks and values ([tzs_reader]): [read_view] of
    {!Block_store}, {!Floating} and {!Cemented} reads a block through a
    reader without copying its contents or metadata, which the reader lends
    as bigarrays ({!Block.View.t}); {!Indexed_file.read_view} does the same
    for an indexed file's value. What a reader lends stays valid until its
    next read, {!release} or {!close}.

    {b One reader serves both kinds of read}, and holds at most one block
    or one value at a time: the memory map (or, for a record no map covers
    yet, its own copy) that its last view points into. {e Any} read through
    it, of a block or of a value, from whichever store, ends the views of
    the previous one: a value read after a block read ends the block's
    views, and the other way round. Use one reader per thing you need to
    hold at once, or copy what you keep.

    A reader keeps that map even when a merge retires the file, a rolling
    GC deletes the chunk, an indexed file's compaction unlinks its old
    values file or the store is closed, so its views stay valid through
    them (the file's disk space is freed once the reader lets go of it).
    Holding a view of a retired file keeps that space: {!release} a reader
    that will sit idle.

    {b Threads.} A reader is meant for one thread (or domain) at a time:
    one reader per reader thread, any number of them on one store,
    alongside its writes, merges and compactions. It may move between
    threads (an Lwt_preemptive pool hop is fine). Calls from several
    threads on one reader are serialised (never a race in C), but each
    read ends the views of the previous one, whichever thread made it: a
    view another thread is still reading would then be dangling. *)

type t

val create : unit -> (t, Error.t) result
(** A reader holding nothing. *)

val release : t -> unit
(** Ends the views of the last read and lets go of what they pointed into
    (a retired file's space can then be reclaimed). The reader stays
    usable. A no-op on a closed reader. *)

val close : t -> unit
(** Ends the views of the last read and frees the reader, once a read in
    progress returns. Later reads return [Error {status = Closed; _}];
    closing twice is a no-op. A reader never closed is freed by the GC
    once neither it nor a bigarray of its views is reachable. *)

(**/**)

val use : t -> (unit Ctypes.ptr -> ('a, Error.t) result) -> ('a, Error.t) result
(** Internal (the stores' [read_view]): runs a call with the C reader,
    serialised with the reader's other calls. *)
