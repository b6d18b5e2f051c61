(** Errors of every tzstore call: a status and the library's message.

    Refer to the constructors qualified ([Error.Read_only]) rather than
    opening this module: [Not_found] and [Invalid_argument] would shadow the
    standard exceptions of the same names. *)

(** The failure statuses of the C API ([tzs_status] without [TZS_OK]). *)
type status =
  | Not_found  (** absence; lookups report it as [Ok None] instead *)
  | Done
  | Invalid_argument
  | Io
  | Corrupted
  | Read_only
  | Locked
  | Conflict
  | Too_many_retries
  | Value_expected
  | Dictionary_expected
  | Key_exists
  | No_space
  | Inconsistent
  | Closed  (** the handle was closed *)
  | Panic
  | Unknown of int  (** a status newer than this binding *)

type t = { status : status; message : string }
(** [message] names the path or key concerned; it is empty for [Not_found]
    and [Done], which carry no error object. *)

val status_of_code : int -> status
val code_of_status : status -> int

val status_name : status -> string
(** The C name, e.g. ["TZS_READ_ONLY"]. *)

val to_string : t -> string
(** ["TZS_<STATUS>: <message>"]. *)

val pp : Format.formatter -> t -> unit

exception Tzstore of t

val get_ok : ('a, t) result -> 'a
(** The value, or raises [Tzstore]. *)
