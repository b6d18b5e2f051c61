(** The key/value store with the shape of mirage-kv's [Mirage_kv.RW], as
    mirage-kv-unix implements it, so that a MirageOS-style program can swap
    mirage-kv-unix for tzstore. Same function names, labels and result
    shapes, errors as mirage-kv's polymorphic variants. Without a
    dependency on mirage-kv, ptime or optint: keys are strings of
    ['/']-separated segments (mirage's [Key.t] printed, ["/a/b"]), offsets
    and sizes are [int], times are [(days, picoseconds)] as
    [Ptime.Span.of_d_ps] takes them. Every call runs off the Lwt scheduler's
    thread; every write is durable on return. *)

type t
type key = string

type error =
  [ `Not_found of key
  | `Dictionary_expected of key
  | `Value_expected of key
  | `Store of Tzstore.Error.t  (** anything else: I/O, damage, a closed handle *) ]

type write_error =
  [ error
  | `No_space
  | `Already_present of key
  | `Rename_source_prefix of key * key
  | `Too_many_retries of int ]

val pp_error : Format.formatter -> [< error ] -> unit
val pp_write_error : Format.formatter -> [< write_error ] -> unit

val connect : string -> t Lwt.t
(** [connect root] serves the existing directory [root] (mirage-kv-unix's
    [connect]); fails with [Failure] if it cannot be opened. *)

val disconnect : t -> unit Lwt.t
val exists : t -> key -> ([ `Value | `Dictionary ] option, error) result Lwt.t
val get : t -> key -> (string, error) result Lwt.t
val get_partial : t -> key -> offset:int -> length:int -> (string, error) result Lwt.t
val list : t -> key -> ((key * [ `Value | `Dictionary ]) list, error) result Lwt.t
(** Entries as full keys ([dir ^ "/" ^ name]), sorted. *)

val last_modified : t -> key -> (int * int64, error) result Lwt.t
val digest : t -> key -> (string, error) result Lwt.t
val size : t -> key -> (int, error) result Lwt.t
val set : t -> key -> string -> (unit, write_error) result Lwt.t
val set_partial : t -> key -> offset:int -> string -> (unit, write_error) result Lwt.t
val remove : t -> key -> (unit, write_error) result Lwt.t
val rename : t -> source:key -> dest:key -> (unit, write_error) result Lwt.t
val allocate : t -> key -> int -> (unit, write_error) result Lwt.t

val batch :
  t -> ?retries:int -> (Tzstore.Kv.Batch.t -> ('a, Tzstore.Error.t) result) -> ('a, write_error) result Lwt.t
(** [batch t f] runs [f] in an atomic, durable batch, retried on conflict
    ([`Too_many_retries n] after [retries] attempts, 13 by default). Unlike
    mirage-kv's, [f] is synchronous and runs on a pool thread with
    [Tzstore.Kv.Batch]'s calls (the batch is one call of the C library). *)
