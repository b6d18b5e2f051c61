open Ctypes
module B = C.Block_store

type t = C.block_store_s structure ptr Handle.t
type history_mode = Archive | Full | Rolling

(* TZS_HISTORY_* *)
let mode_code = function Archive -> 0 | Full -> 1 | Rolling -> 2

let open_ ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level dir =
  Ffi.with_path dir @@ fun dir ->
  let o = B.options_default () in
  setf o C.o_flags (Ffi.flags ?readonly ?no_fsync ());
  Option.iter (fun m -> setf o C.o_history_mode (Unsigned.UInt32.of_int (mode_code m))) history_mode;
  Option.iter (fun n -> setf o C.o_history_offset (Unsigned.UInt32.of_int n)) history_offset;
  Option.iter (fun n -> setf o C.o_workers (Unsigned.UInt32.of_int n)) workers;
  Option.iter (fun n -> setf o C.o_index_log_size (Unsigned.UInt64.of_int n)) index_log_size;
  Option.iter (fun n -> setf o C.o_zstd_level (Int32.of_int n)) zstd_level;
  let r =
    Ffi.open_handle ~what:("block store " ^ dir) ~close:B.close C.block_store (B.open_ dir (addr o))
  in
  (* [o] is ctypes-managed C memory, alive until here. *)
  ignore (Sys.opaque_identity o);
  r

let store ?(flush = true) t b =
  Block_c.with_block b @@ fun cb -> Handle.use t (fun h -> Ffi.call (B.store h cb flush))

let flush t = Handle.use t (fun h -> Ffi.call (B.flush h))

let mem t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t (fun h -> Ffi.found (Ffi.call (B.mem h hash))) |> Result.map Option.is_some

let read_into call =
  let out = make Block_c.tzs_block in
  Ffi.found (call (addr out)) |> Result.map (Option.map (fun () -> Block_c.take out))

let read ?(distance = 0) ?(metadata = true) t hash =
  if distance < 0 then
    Error { Error.status = Error.Invalid_argument; message = "distance must not be negative" }
  else
    Block_c.with_hash "hash" hash @@ fun hash ->
    Handle.use t @@ fun h ->
    read_into (fun out ->
        Ffi.call (B.read h hash (Unsigned.UInt32.of_int distance) metadata out))

let read_by_level ?(metadata = true) t level =
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (B.read_by_level h level metadata out))

let merge t ~head ~chunk_ends =
  Block_c.with_hash "head" head @@ fun head ->
  let n = List.length chunk_ends in
  let ends = CArray.of_list int32_t (if n = 0 then [ 0l ] else chunk_ends) in
  let r =
    Handle.use t (fun h ->
        Ffi.call (B.merge h head (CArray.start ends) (Unsigned.Size_t.of_int n)))
  in
  ignore (Sys.opaque_identity ends);
  r

let await_merge t = Handle.use t (fun h -> Ffi.call (B.await_merge h))

type stats = {
  cemented_lowest : int32 option;
  cemented_highest : int32 option;
  cemented_blocks : int;
  floating_blocks : int;
  bytes_on_disk : int;
  merges_done : int;
  last_merge_ms : int;
  merging : bool;
}

let stats t =
  Handle.use t @@ fun h ->
  let out = make C.tzs_stats in
  Ffi.call (B.read_stats h (addr out))
  |> Result.map (fun () ->
         let level f = match getf out f with -1l -> None | l -> Some l in
         let count f = Unsigned.UInt64.to_int (getf out f) in
         {
           cemented_lowest = level C.s_cemented_lowest;
           cemented_highest = level C.s_cemented_highest;
           cemented_blocks = count C.s_cemented_blocks;
           floating_blocks = count C.s_floating_blocks;
           bytes_on_disk = count C.s_bytes_on_disk;
           merges_done = count C.s_merges_done;
           last_merge_ms = count C.s_last_merge_ms;
           merging = getf out C.s_merging;
         })

let check ?(repair = false) t = Handle.use t (fun h -> Ffi.call (B.check h repair))
let close = Handle.close
