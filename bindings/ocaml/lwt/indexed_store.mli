(** The layer-2 stores of Octez ([src/lib_layer2_store/indexed_store.mli]),
    on tzstore: the same functors, module types, function names, labels and
    access modes, so that a rollup node's call sites change as little as
    possible. Differences from Octez, all deliberate:
    - errors are [('a, Tzstore.Error.t) result Lwt.t] (no dependency on
      Octez's [tzresult]); {!error} is that one type;
    - keys and values encode to strings with [encode]/[decode] (the
      [Index.Key.S]/[Index.Value.S] shape; a module with more fields, such
      as an Octez key module, fits), instead of [Data_encoding];
    - every write is durable when [flush] is true (Octez's stores do not
      fsync), and every call runs off the Lwt scheduler's thread;
    - [read] of an indexed file reports damage as an error, never as [None]. *)

type error = Tzstore.Error.t

(** Access modes, as Octez's [Access_mode]. *)
type rw = [ `Read | `Write ]

type ro = [ `Read ]
type _ mode = Read_only : ro mode | Read_write : rw mode

(** What a GC keeps: Octez's [gc_iterator] ([Retain], [Iterator]) and a
    filter. [Retain keys] keeps those keys. [Iterator {first; next}] keeps
    the keys reached from [first]: each key found is kept and [next key
    value] gives the following one, until [next] or the lookup gives
    [None] (the walk runs in Lwt before the GC starts). [Filter f] keeps
    the bindings for which [f key seen] is [true]: [seen] is the value of
    an indexable store and the header of an indexed file (the value is not
    read). [f] runs on a library thread or a pool thread while the GC
    runs, one call at a time: synchronous code only, no Lwt; a binding
    whose key or value does not decode is kept. If [f] raises, that
    binding and the rest are kept and the GC's end is reported as an
    [Invalid_argument] error naming the exception (by [gc ~async:false],
    otherwise by {!INDEXABLE_STORE.wait_gc_completion}). *)
type ('key, 'value, 'seen) gc_iterator =
  | Retain of 'key list
  | Iterator of { first : 'key; next : 'key -> 'value -> 'key option Lwt.t }
  | Filter of ('key -> 'seen -> bool)

(** {2 What the functors take} *)

module type NAME = sig
  val name : string
end

(** Fixed-size keys and values (the [Index.Key.S] / [Index.Value.S] shape). *)
module type FIXED = sig
  type t

  val encoded_size : int
  val encode : t -> string
  val decode : string -> int -> t
end

(** Values of any size. *)
module type ENCODABLE_VALUE = sig
  type t

  val name : string
  val encode : t -> string
  val decode : string -> t
end

(** Values with a fixed-size header kept in the index. *)
module type ENCODABLE_VALUE_HEADER = sig
  include ENCODABLE_VALUE

  module Header : FIXED
end

(** Values whose header is computed from the value
    ([Make_simple_indexed_file]). *)
module type ENCODABLE_VALUE_WITH_HEADER = sig
  include ENCODABLE_VALUE_HEADER

  val header : t -> Header.t
end

(** {2 Signatures} *)

module type SINGLETON_STORE = sig
  type +'a t
  type value

  val load : path:string -> 'a mode -> ('a t, error) result Lwt.t
  (** The store in the file [path] (its directory must exist). *)

  val read : [> `Read ] t -> (value option, error) result Lwt.t
  val write : [> `Write ] t -> value -> (unit, error) result Lwt.t
  val delete : [> `Write ] t -> (unit, error) result Lwt.t
  val readonly : [> `Read ] t -> [ `Read ] t
  val close : _ t -> unit Lwt.t
end

module type INDEXABLE_STORE = sig
  type +'a t
  type key
  type value

  val load : path:string -> ?log_size:int -> 'a mode -> ('a t, error) result Lwt.t
  (** The store in the directory [path]; [log_size] as the index's
      (Octez's [index_buffer_size], 10,000 by default there). *)

  val mem : [> `Read ] t -> key -> (bool, error) result Lwt.t
  val find : [> `Read ] t -> key -> (value option, error) result Lwt.t
  val add : ?flush:bool -> [> `Write ] t -> key -> value -> (unit, error) result Lwt.t
  val readonly : [> `Read ] t -> [ `Read ] t
  val close : _ t -> unit Lwt.t

  val gc : ?async:bool -> rw t -> (key, value, value) gc_iterator -> (unit, error) result Lwt.t
  (** [gc ?async t iter] keeps only the bindings [iter] keeps (see
      {!gc_iterator}). With [~async:false] the promise resolves once the GC
      is durable; otherwise (the default, as in Octez) once it started. If
      a GC is already running this request is ignored, as in Octez.
      Readers see every binding until the GC publishes its result, then
      only the kept ones; bindings added meanwhile are kept. *)

  val wait_gc_completion : _ t -> (unit, error) result Lwt.t
  (** Resolves once no GC runs, with the outcome of the one that ran
      ([Ok] for a cancelled one). *)

  val is_gc_finished : _ t -> bool
  (** [true] when no GC runs. Never blocks. *)

  val cancel_gc : rw t -> (bool, error) result Lwt.t
  (** Stops the running GC, leaving the store as before it; [Ok true] if
      one was stopped. *)
end

module type INDEXABLE_REMOVABLE_STORE = sig
  include INDEXABLE_STORE

  val remove : ?flush:bool -> [> `Write ] t -> key -> (unit, error) result Lwt.t
  (** Does nothing if the key is not bound. *)
end

module type INDEXED_FILE = sig
  type +'a t
  type key
  type header
  type value

  val load : path:string -> ?log_size:int -> 'a mode -> ('a t, error) result Lwt.t
  val mem : [> `Read ] t -> key -> (bool, error) result Lwt.t
  val header : [> `Read ] t -> key -> (header option, error) result Lwt.t
  val read : [> `Read ] t -> key -> ((value * header) option, error) result Lwt.t

  val append :
    ?flush:bool -> [> `Write ] t -> key:key -> header:header -> value:value -> (unit, error) result Lwt.t

  val gc : ?async:bool -> rw t -> (key, value * header, header) gc_iterator -> (unit, error) result Lwt.t
  (** Keeps the values of the keys [iter] keeps ({!gc_iterator}: a
      [Filter] sees each key's header) and compacts the file; values
      appended meanwhile are kept. With [~async:false] the promise resolves
      once the compaction is done; otherwise (the default, as in Octez)
      once it started. If a GC is already running this request is ignored,
      as in Octez. *)

  val wait_gc_completion : _ t -> (unit, error) result Lwt.t
  val is_gc_finished : _ t -> bool
  val cancel_gc : rw t -> (bool, error) result Lwt.t
  val readonly : [> `Read ] t -> [ `Read ] t
  val close : _ t -> unit Lwt.t
end

module type SIMPLE_INDEXED_FILE = sig
  include INDEXED_FILE

  val append : ?flush:bool -> [> `Write ] t -> key:key -> value:value -> (unit, error) result Lwt.t
  (** The header is computed from the value. *)
end

(** {2 Functors} *)

module Make_singleton (S : ENCODABLE_VALUE) : SINGLETON_STORE with type value := S.t

module Make_indexable (_ : NAME) (K : FIXED) (V : FIXED) :
  INDEXABLE_STORE with type key := K.t and type value := V.t

module Make_indexable_removable (_ : NAME) (K : FIXED) (V : FIXED) :
  INDEXABLE_REMOVABLE_STORE with type key := K.t and type value := V.t

module Make_indexed_file (_ : NAME) (K : FIXED) (V : ENCODABLE_VALUE_HEADER) :
  INDEXED_FILE with type key := K.t and type value := V.t and type header := V.Header.t

module Make_simple_indexed_file (_ : NAME) (K : FIXED) (V : ENCODABLE_VALUE_WITH_HEADER) :
  SIMPLE_INDEXED_FILE with type key := K.t and type value := V.t and type header := V.Header.t
