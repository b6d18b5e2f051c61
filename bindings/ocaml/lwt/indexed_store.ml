(* Octez's layer-2 store functors on tzstore (see the .mli). Each handle is
   the tzstore handle; the phantom ['a] carries the access mode. *)

open Lwt.Syntax

type error = Tzstore.Error.t
type rw = [ `Read | `Write ]
type ro = [ `Read ]
type _ mode = Read_only : ro mode | Read_write : rw mode

type ('key, 'value, 'seen) gc_iterator =
  | Retain of 'key list
  | Iterator of { first : 'key; next : 'key -> 'value -> 'key option Lwt.t }
  | Filter of ('key -> 'seen -> bool)

let is_readonly : type a. a mode -> bool = function Read_only -> true | Read_write -> false

module type NAME = sig
  val name : string
end

module type FIXED = sig
  type t

  val encoded_size : int
  val encode : t -> string
  val decode : string -> int -> t
end

module type ENCODABLE_VALUE = sig
  type t

  val name : string
  val encode : t -> string
  val decode : string -> t
end

module type ENCODABLE_VALUE_HEADER = sig
  include ENCODABLE_VALUE

  module Header : FIXED
end

module type ENCODABLE_VALUE_WITH_HEADER = sig
  include ENCODABLE_VALUE_HEADER

  val header : t -> Header.t
end

module type SINGLETON_STORE = sig
  type +'a t
  type value

  val load : path:string -> 'a mode -> ('a t, error) result Lwt.t
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
  val mem : [> `Read ] t -> key -> (bool, error) result Lwt.t
  val find : [> `Read ] t -> key -> (value option, error) result Lwt.t
  val add : ?flush:bool -> [> `Write ] t -> key -> value -> (unit, error) result Lwt.t
  val readonly : [> `Read ] t -> [ `Read ] t
  val close : _ t -> unit Lwt.t
  val gc : ?async:bool -> rw t -> (key, value, value) gc_iterator -> (unit, error) result Lwt.t
  val wait_gc_completion : _ t -> (unit, error) result Lwt.t
  val is_gc_finished : _ t -> bool
  val cancel_gc : rw t -> (bool, error) result Lwt.t
end

module type INDEXABLE_REMOVABLE_STORE = sig
  include INDEXABLE_STORE

  val remove : ?flush:bool -> [> `Write ] t -> key -> (unit, error) result Lwt.t
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
  val wait_gc_completion : _ t -> (unit, error) result Lwt.t
  val is_gc_finished : _ t -> bool
  val cancel_gc : rw t -> (bool, error) result Lwt.t
  val readonly : [> `Read ] t -> [ `Read ] t
  val close : _ t -> unit Lwt.t
end

module type SIMPLE_INDEXED_FILE = sig
  include INDEXED_FILE

  val append : ?flush:bool -> [> `Write ] t -> key:key -> value:value -> (unit, error) result Lwt.t
end

let detach = Pool.detach

(* A decoder's exception becomes a [Corrupted] error naming the store. *)
let decoding name f =
  try Ok (f ())
  with e ->
    Error
      {
        Tzstore.Error.status = Tzstore.Error.Corrupted;
        message = Printf.sprintf "%s: cannot decode a stored value: %s" name (Printexc.to_string e);
      }

let check_size what size s =
  if String.length s = size then Ok s
  else
    Error
      {
        Tzstore.Error.status = Tzstore.Error.Invalid_argument;
        message = Printf.sprintf "%s encodes to %d bytes, not %d" what (String.length s) size;
      }

let ( let*? ) r f = match r with Ok x -> f x | Error _ as e -> Lwt.return e

(* An exception of a GC filter (after it kept that binding and the rest,
   Tzstore.Index.filter) becomes an error of the call that reports the
   GC's end. *)
let filter_raised name f =
  try f ()
  with e ->
    Error
      {
        Tzstore.Error.status = Tzstore.Error.Invalid_argument;
        message =
          Printf.sprintf "%s: the GC filter raised %s; that binding and the rest were kept" name
            (Printexc.to_string e);
      }

(* Octez's [Retain] and [Iterator] as a filter over encoded keys: the keys
   to keep are listed first ([Iterator] walks [find] and [next] from
   [first] until either gives [None]), then the GC keeps those. *)
let retained ~encode ~find iterator =
  let keep = Hashtbl.create 64 in
  let add k = Result.map (fun e -> Hashtbl.replace keep e ()) (encode k) in
  let rec walk k =
    match add k with
    | Error e -> Lwt.return_error e
    | Ok () -> (
        let* found = find k in
        match found with
        | Error e -> Lwt.return_error e
        | Ok None -> Lwt.return_ok ()
        | Ok (Some v) -> (
            let* next = iterator k v in
            match next with None -> Lwt.return_ok () | Some k -> walk k))
  in
  fun first -> Lwt.map (Result.map (fun () -> fun raw -> Hashtbl.mem keep raw)) (walk first)

let retain_list ~encode keys =
  let keep = Hashtbl.create 64 in
  let rec go = function
    | [] -> Ok (fun raw -> Hashtbl.mem keep raw)
    | k :: l -> ( match encode k with Ok e -> Hashtbl.replace keep e (); go l | Error e -> Error e)
  in
  go keys

(* The raw filter of an iterator: [decode_seen] decodes what the library
   shows besides the key (a value, a header); [find] reads what [next]
   takes. A binding that does not decode is kept. *)
let raw_filter ~encode ~decode_key ~decode_seen ~find = function
  | Retain keys -> Lwt.return (Result.map (fun keep raw _ -> keep raw) (retain_list ~encode keys))
  | Iterator { first; next } ->
      Lwt.map (Result.map (fun keep raw _ -> keep raw)) (retained ~encode ~find next first)
  | Filter f ->
      Lwt.return_ok (fun raw seen ->
          match (decode_key raw, decode_seen seen) with
          | k, s -> f k s
          | exception _ -> true)

module Make_singleton (S : ENCODABLE_VALUE) = struct
  type +'a t = Tzstore.Singleton.t

  let load ~path mode = detach (fun () -> Tzstore.Singleton.open_ ~readonly:(is_readonly mode) path)

  let read t =
    let+ r = detach (fun () -> Tzstore.Singleton.read t) in
    Result.bind r (function
      | None -> Ok None
      | Some s -> decoding S.name (fun () -> Some (S.decode s)))

  let write t v = detach (fun () -> Tzstore.Singleton.write t (S.encode v))
  let delete t = detach (fun () -> Tzstore.Singleton.delete t)
  let readonly t = t
  let close t = detach (fun () -> Tzstore.Singleton.close t)
end

module Indexable (N : NAME) (K : FIXED) (V : FIXED) (R : sig
  val removable : bool
end) =
struct
  type +'a t = Tzstore.Index.t

  let load ~path ?log_size mode =
    detach (fun () ->
        Tzstore.Index.open_ ~readonly:(is_readonly mode) ~removable:R.removable ?log_size
          ~key_size:K.encoded_size ~value_size:V.encoded_size path)

  let key k = check_size (N.name ^ " key") K.encoded_size (K.encode k)

  let mem t k =
    let*? k = key k in
    detach (fun () -> Tzstore.Index.mem t k)

  let find t k =
    let*? k = key k in
    let+ r = detach (fun () -> Tzstore.Index.find t k) in
    Result.bind r (function
      | None -> Ok None
      | Some v -> decoding N.name (fun () -> Some (V.decode v 0)))

  let add ?flush t k v =
    let*? k = key k in
    let*? v = check_size (N.name ^ " value") V.encoded_size (V.encode v) in
    detach (fun () -> Tzstore.Index.add ?flush t k v)

  let remove ?flush t k =
    let*? k = key k in
    detach (fun () -> Tzstore.Index.remove ?flush t k)

  let wait_gc_completion t = detach (fun () -> filter_raised N.name (fun () -> Tzstore.Index.await_gc t))
  let is_gc_finished t = Tzstore.Index.is_gc_finished t
  let cancel_gc t = detach (fun () -> Tzstore.Index.cancel_gc t)

  let gc ?(async = true) t iterator =
    let* f =
      raw_filter ~encode:key
        ~decode_key:(fun raw -> K.decode raw 0)
        ~decode_seen:(fun raw -> V.decode raw 0)
        ~find:(find t) iterator
    in
    match f with
    | Error e -> Lwt.return_error e
    | Ok f ->
        detach (fun () ->
            filter_raised N.name (fun () ->
                Result.map ignore (Tzstore.Index.gc ~wait:(not async) t f)))

  let readonly t = t
  let close t = detach (fun () -> Tzstore.Index.close t)
end

module Make_indexable (N : NAME) (K : FIXED) (V : FIXED) = struct
  include Indexable (N) (K) (V)
            (struct
              let removable = false
            end)
end

module Make_indexable_removable (N : NAME) (K : FIXED) (V : FIXED) =
  Indexable (N) (K) (V)
    (struct
      let removable = true
    end)

module Make_indexed_file (N : NAME) (K : FIXED) (V : ENCODABLE_VALUE_HEADER) = struct
  type +'a t = Tzstore.Indexed_file.t

  let load ~path ?log_size mode =
    detach (fun () ->
        Tzstore.Indexed_file.open_ ~readonly:(is_readonly mode) ?log_size ~key_size:K.encoded_size
          ~header_size:V.Header.encoded_size path)

  let key k = check_size (N.name ^ " key") K.encoded_size (K.encode k)

  let mem t k =
    let*? k = key k in
    detach (fun () -> Tzstore.Indexed_file.mem t k)

  let header t k =
    let*? k = key k in
    let+ r = detach (fun () -> Tzstore.Indexed_file.header t k) in
    Result.bind r (function
      | None -> Ok None
      | Some h -> decoding N.name (fun () -> Some (V.Header.decode h 0)))

  let read t k =
    let*? k = key k in
    let+ r = detach (fun () -> Tzstore.Indexed_file.read_with_header t k) in
    Result.bind r (function
      | None -> Ok None
      | Some (h, v) -> decoding N.name (fun () -> Some (V.decode v, V.Header.decode h 0)))

  let append ?flush t ~key:k ~header ~value =
    let*? k = key k in
    let*? h = check_size (N.name ^ " header") V.Header.encoded_size (V.Header.encode header) in
    detach (fun () -> Tzstore.Indexed_file.append ?flush t k ~header:h (V.encode value))

  let wait_gc_completion t =
    detach (fun () -> filter_raised N.name (fun () -> Tzstore.Indexed_file.await_gc t))

  let is_gc_finished t = Tzstore.Indexed_file.is_gc_finished t
  let cancel_gc t = detach (fun () -> Tzstore.Indexed_file.cancel_gc t)

  let gc ?(async = true) t iterator =
    let* f =
      raw_filter ~encode:key
        ~decode_key:(fun raw -> K.decode raw 0)
        ~decode_seen:(fun raw -> V.Header.decode raw 0)
        ~find:(read t) iterator
    in
    match f with
    | Error e -> Lwt.return_error e
    | Ok f ->
        detach (fun () ->
            filter_raised N.name (fun () ->
                Result.map ignore (Tzstore.Indexed_file.gc_filter ~wait:(not async) t f)))

  let readonly t = t
  let close t = detach (fun () -> Tzstore.Indexed_file.close t)
end

module Make_simple_indexed_file (N : NAME) (K : FIXED) (V : ENCODABLE_VALUE_WITH_HEADER) = struct
  include Make_indexed_file (N) (K) (V)

  let append ?flush t ~key ~value = append ?flush t ~key ~header:(V.header value) ~value
end
