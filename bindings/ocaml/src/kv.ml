open Ctypes
module K = C.Kv

type t = C.kv_s structure ptr Handle.t
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
  let out = allocate K.entries (from_voidp C.kv_entries null) in
  Ffi.found (Ffi.call (c h key out))
  |> Result.map
       (Option.map (fun () ->
            let e = !@out in
            Fun.protect
              ~finally:(fun () -> K.entries_free e)
              (fun () ->
                List.init
                  (Unsigned.Size_t.to_int (K.entries_len e))
                  (fun i ->
                    let i = Unsigned.Size_t.of_int i in
                    (K.entries_name e i, kind_of_code (K.entries_kind e i))))))

let open_ ?readonly ?no_fsync root =
  Ffi.with_path root @@ fun root ->
  Ffi.open_handle ~what:("kv " ^ root) ~close:K.close C.kv
    (K.open_ root (Ffi.flags ?readonly ?no_fsync ()))

let exists t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> exists_with K.exists h key)
let get t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> get_with K.get h key)

let get_partial t key ~offset ~length =
  Ffi.with_key key @@ fun key ->
  non_negative "offset" offset @@ fun () ->
  non_negative "length" length @@ fun () ->
  Handle.use t (fun h -> Ffi.call_bytes (K.get_partial h key (u64 offset) (u64 length)))

let size t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let out = allocate uint64_t Unsigned.UInt64.zero in
  Ffi.found (Ffi.call (K.size h key out))
  |> Result.map (Option.map (fun () -> Unsigned.UInt64.to_int !@out))

let list t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> list_with K.list h key)

let last_modified t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let days = allocate int64_t 0L and ps = allocate uint64_t Unsigned.UInt64.zero in
  Ffi.found (Ffi.call (K.last_modified h key days ps))
  |> Result.map
       (Option.map (fun () -> (Int64.to_int !@days, Int64.of_string (Unsigned.UInt64.to_string !@ps))))

let digest t key =
  Ffi.with_key key @@ fun key ->
  Handle.use t @@ fun h ->
  let out = Ffi.out_buffer 32 in
  Ffi.found (Ffi.call (K.digest h key out)) |> Result.map (Option.map (fun () -> Ffi.string_of_buffer out 32))

let set t key v = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> Ffi.call (K.set h key v (len v)))

let set_partial t key ~offset v =
  Ffi.with_key key @@ fun key ->
  non_negative "offset" offset @@ fun () ->
  Handle.use t (fun h -> Ffi.call (K.set_partial h key (u64 offset) v (len v)))

let remove t key = Ffi.with_key key @@ fun key -> Handle.use t (fun h -> Ffi.call (K.remove h key))

let rename t ~source ~dest =
  Ffi.with_key source @@ fun source ->
  Ffi.with_key dest @@ fun dest -> Handle.use t (fun h -> Ffi.call (K.rename h source dest))

let allocate t key size =
  Ffi.with_key key @@ fun key ->
  non_negative "size" size @@ fun () -> Handle.use t (fun h -> Ffi.call (K.allocate h key (u64 size)))

let close = Handle.close

module Batch = struct
  type t = C.kv_batch_s structure ptr Handle.t

  let exists b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> exists_with K.batch_exists h key)
  let get b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> get_with K.batch_get h key)
  let list b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> list_with K.batch_list h key)

  let set b key v =
    Ffi.with_key key @@ fun key -> Handle.use b (fun h -> Ffi.call (K.batch_set h key v (len v)))

  let remove b key = Ffi.with_key key @@ fun key -> Handle.use b (fun h -> Ffi.call (K.batch_remove h key))
end

let begin_batch t =
  Handle.use t @@ fun h ->
  Ffi.open_handle ~what:"kv batch (finished)" ~close:K.batch_abort C.kv_batch (K.batch_begin h)

(* Commits and frees the batch; [Ok false] on a conflict. *)
let commit b =
  match Handle.take b with
  | None -> Error { Error.status = Error.Closed; message = "kv batch already finished" }
  | Some p -> (
      match Ffi.call (K.batch_commit p) with
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
