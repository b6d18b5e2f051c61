open Ctypes

type kv
type batch
type entries

let kv : kv structure typ = structure "tzs_kv"
let handle = ptr kv
let batch_s : batch structure typ = structure "tzs_kv_batch"
let batch_handle = ptr batch_s
let entries_s : entries structure typ = structure "tzs_kv_entries"
let entries_handle = ptr entries_s
let err = ptr Ffi.error_t
let fn name t = Ffi.foreign ~release_runtime_lock:true name t

let c_open = fn "tzs_kv_open" (string @-> uint32_t @-> ptr handle @-> err @-> returning Ffi.status)
let c_exists = fn "tzs_kv_exists" (handle @-> string @-> ptr uint32_t @-> err @-> returning Ffi.status)
let c_get = fn "tzs_kv_get" (handle @-> string @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_get_partial =
  fn "tzs_kv_get_partial"
    (handle @-> string @-> uint64_t @-> uint64_t @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_size = fn "tzs_kv_size" (handle @-> string @-> ptr uint64_t @-> err @-> returning Ffi.status)
let c_list = fn "tzs_kv_list" (handle @-> string @-> ptr entries_handle @-> err @-> returning Ffi.status)
let c_entries_len = Ffi.foreign "tzs_kv_entries_len" (entries_handle @-> returning size_t)
let c_entries_name = Ffi.foreign "tzs_kv_entries_name" (entries_handle @-> size_t @-> returning string)
let c_entries_kind = Ffi.foreign "tzs_kv_entries_kind" (entries_handle @-> size_t @-> returning uint32_t)
let c_entries_free = Ffi.foreign "tzs_kv_entries_free" (entries_handle @-> returning void)

let c_last_modified =
  fn "tzs_kv_last_modified"
    (handle @-> string @-> ptr int64_t @-> ptr uint64_t @-> err @-> returning Ffi.status)

let c_digest = fn "tzs_kv_digest" (handle @-> string @-> ptr char @-> err @-> returning Ffi.status)

let c_set =
  fn "tzs_kv_set" (handle @-> string @-> string @-> size_t @-> err @-> returning Ffi.status)

let c_set_partial =
  fn "tzs_kv_set_partial"
    (handle @-> string @-> uint64_t @-> string @-> size_t @-> err @-> returning Ffi.status)

let c_remove = fn "tzs_kv_remove" (handle @-> string @-> err @-> returning Ffi.status)
let c_rename = fn "tzs_kv_rename" (handle @-> string @-> string @-> err @-> returning Ffi.status)
let c_allocate = fn "tzs_kv_allocate" (handle @-> string @-> uint64_t @-> err @-> returning Ffi.status)
let c_close = fn "tzs_kv_close" (handle @-> returning void)
let c_batch_begin = fn "tzs_kv_batch_begin" (handle @-> ptr batch_handle @-> err @-> returning Ffi.status)

let c_batch_exists =
  fn "tzs_kv_batch_exists" (batch_handle @-> string @-> ptr uint32_t @-> err @-> returning Ffi.status)

let c_batch_get =
  fn "tzs_kv_batch_get" (batch_handle @-> string @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_batch_list =
  fn "tzs_kv_batch_list"
    (batch_handle @-> string @-> ptr entries_handle @-> err @-> returning Ffi.status)

let c_batch_set =
  fn "tzs_kv_batch_set" (batch_handle @-> string @-> string @-> size_t @-> err @-> returning Ffi.status)

let c_batch_remove = fn "tzs_kv_batch_remove" (batch_handle @-> string @-> err @-> returning Ffi.status)
let c_batch_commit = fn "tzs_kv_batch_commit" (batch_handle @-> err @-> returning Ffi.status)
let c_batch_abort = fn "tzs_kv_batch_abort" (batch_handle @-> returning void)

type t = kv structure ptr Handle.t
type kind = [ `Value | `Dictionary ]

(* TZS_KV_VALUE = 1, TZS_KV_DICTIONARY = 2 *)
let kind_of_code c = if Unsigned.UInt32.to_int c = 2 then `Dictionary else `Value
let u64 = Unsigned.UInt64.of_int
let len s = Unsigned.Size_t.of_int (String.length s)

let non_negative what n f =
  if n < 0 then Error { Error.status = Error.Invalid_argument; message = what ^ " must not be negative" }
  else f ()

(* Lookups shared by the store and its batches, for either handle type. *)
let exists_with c h key =
  let out = allocate uint32_t Unsigned.UInt32.zero in
  Ffi.found (Ffi.call (c h key out)) |> Result.map (Option.map (fun () -> kind_of_code !@out))

let get_with c h key = Ffi.call_bytes (c h key)

let list_with c h key =
  let out = allocate entries_handle (from_voidp entries_s null) in
  Ffi.found (Ffi.call (c h key out))
  |> Result.map
       (Option.map (fun () ->
            let e = !@out in
            Fun.protect
              ~finally:(fun () -> c_entries_free e)
              (fun () ->
                List.init
                  (Unsigned.Size_t.to_int (c_entries_len e))
                  (fun i ->
                    let i = Unsigned.Size_t.of_int i in
                    (c_entries_name e i, kind_of_code (c_entries_kind e i))))))

let open_ ?readonly ?no_fsync root =
  Ffi.with_path root @@ fun root ->
  let out = allocate handle (from_voidp kv null) in
  match Ffi.call (c_open root (Ffi.flags ?readonly ?no_fsync ()) out) with
  | Ok () -> Ok (Handle.create ~what:("kv " ^ root) ~close:c_close !@out)
  | Error e -> Error e

let exists t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> exists_with c_exists h key)
let get t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> get_with c_get h key)

let get_partial t key ~offset ~length =
  Ffi.with_key key @@ fun key ->
  non_negative "offset" offset @@ fun () ->
  non_negative "length" length @@ fun () ->
  Handle.use t (fun h -> Ffi.call_bytes (c_get_partial h key (u64 offset) (u64 length)))

let size t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let out = allocate uint64_t Unsigned.UInt64.zero in
  Ffi.found (Ffi.call (c_size h key out))
  |> Result.map (Option.map (fun () -> Unsigned.UInt64.to_int !@out))

let list t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> list_with c_list h key)

let last_modified t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let days = allocate int64_t 0L and ps = allocate uint64_t Unsigned.UInt64.zero in
  Ffi.found (Ffi.call (c_last_modified h key days ps))
  |> Result.map
       (Option.map (fun () -> (Int64.to_int !@days, Int64.of_string (Unsigned.UInt64.to_string !@ps))))

let digest t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let out = Ffi.out_buffer 32 in
  Ffi.found (Ffi.call (c_digest h key out)) |> Result.map (Option.map (fun () -> Ffi.string_of_buffer out 32))

let set t key v = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> Ffi.call (c_set h key v (len v)))

let set_partial t key ~offset v =
  Ffi.with_key key @@ fun key ->
  non_negative "offset" offset @@ fun () ->
  Handle.use t (fun h -> Ffi.call (c_set_partial h key (u64 offset) v (len v)))

let remove t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> Ffi.call (c_remove h key))

let rename t ~source ~dest =
  Ffi.with_key source @@ fun source ->
  Ffi.with_key dest @@ fun dest -> Handle.use t (fun h -> Ffi.call (c_rename h source dest))

let allocate t key size =
  Ffi.with_key key @@ fun key ->
  non_negative "size" size @@ fun () -> Handle.use t (fun h -> Ffi.call (c_allocate h key (u64 size)))

let close = Handle.close

module Batch = struct
  type t = batch structure ptr Handle.t

  let exists b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> exists_with c_batch_exists h key)
  let get b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> get_with c_batch_get h key)
  let list b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> list_with c_batch_list h key)

  let set b key v =
    Ffi.with_key key @@ fun key -> Handle.use b (fun h -> Ffi.call (c_batch_set h key v (len v)))

  let remove b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> Ffi.call (c_batch_remove h key))
end

let begin_batch t =
  Handle.use t @@ fun h ->
  let out = Ctypes.allocate batch_handle (from_voidp batch_s null) in
  Result.map
    (fun () -> Handle.create ~what:"kv batch (finished)" ~close:c_batch_abort !@out)
    (Ffi.call (c_batch_begin h out))

(* Commits and frees the batch; [Ok false] on a conflict. *)
let commit b =
  match Handle.take b with
  | None -> Error { Error.status = Error.Closed; message = "kv batch already finished" }
  | Some p -> (
      match Ffi.call (c_batch_commit p) with
      | Ok () -> Ok true
      | Error { Error.status = Error.Conflict; _ } -> Ok false
      | Error e -> Error e)

(* Before retrying a conflicted batch: a yield for the first retries, then
   a random sleep growing with each (up to ~3 ms), so batches contending
   for the same keys stop colliding in lockstep. *)
let conflict_backoff attempt =
  if attempt < 3 then Thread.yield ()
  else
    let cap_us = 50 lsl min attempt 6 in
    Thread.delay (float_of_int (1 + Random.int cap_us) *. 1e-6)

let batch ?(retries = 13) t f =
  let rec attempt n =
    match begin_batch t with
    | Error e -> Error e
    | Ok b -> (
        let outcome = try f b with ex -> Handle.close b; raise ex in
        match outcome with
        | Error { Error.status = Error.Conflict; _ } ->
            Handle.close b;
            again n
        | Error e ->
            Handle.close b;
            Error e
        | Ok v -> (
            match commit b with Ok true -> Ok v | Ok false -> again n | Error e -> Error e))
  and again n =
    if n >= retries then
      Error
        {
          Error.status = Error.Too_many_retries;
          message = Printf.sprintf "kv batch conflicted %d times" (n + 1);
        }
    else (
      conflict_backoff (n + 1);
      attempt (n + 1))
  in
  attempt 0
