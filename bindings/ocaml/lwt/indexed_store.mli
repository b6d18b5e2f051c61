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

  val gc : ?async:bool -> rw t -> (key -> bool) -> (unit, error) result Lwt.t
  (** Keeps the bindings whose key satisfies the filter and compacts the
      file; values appended meanwhile are kept. With [~async:false] (the
      default is [true], as in Octez) the promise resolves once the
      compaction is done; otherwise once it started. *)

  val wait_gc_completion : rw t -> (unit, error) result Lwt.t
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
