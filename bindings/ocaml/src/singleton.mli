(** One value stored in one file ([tzs_singleton]).

    A handle may be shared by several threads; calls release the OCaml
    runtime lock while the library works. *)

type t

val open_ : ?readonly:bool -> ?no_fsync:bool -> string -> (t, Error.t) result
(** [open_ path] opens the singleton in the file [path] (created by the first
    write; its directory must exist). [~readonly:true] never writes and takes
    no lock; [~no_fsync:true] skips fsync (tests and benchmarks only).
    Errors: [Locked] (another read-write instance is open), [Not_found] (the
    directory is missing), [Corrupted], [Io], [Invalid_argument]. *)

val read : t -> (string option, Error.t) result
(** The value, or [None] when none is set. *)

val write : t -> string -> (unit, Error.t) result
(** Replaces the value (durable on return unless opened with [no_fsync]).
    Errors: [Read_only], [No_space], [Io]. *)

val delete : t -> (unit, Error.t) result
(** Removes the value; removing an unset value succeeds. *)

val sync : t -> (unit, Error.t) result
(** Reloads the value from the file, for a read-only handle to see what the
    read-write instance wrote since. *)

val close : t -> unit
(** Closes the handle once the calls in progress return, releasing its
    lock. Later calls return [Error {status = Closed; _}]; closing twice is a
    no-op. A handle never closed is closed by the GC, eventually. *)
