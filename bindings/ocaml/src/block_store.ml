open Ctypes

type s

let s : s structure typ = structure "tzs_block_store"
let handle = ptr s
let err = ptr Ffi.error_t
let block = ptr Block_c.tzs_block

type options_s

let tzs_options : options_s structure typ = structure "tzs_block_store_options"
let o_flags = field tzs_options "flags" uint32_t
let o_history_mode = field tzs_options "history_mode" uint32_t
let o_history_offset = field tzs_options "history_offset" uint32_t
let o_workers = field tzs_options "workers" uint32_t
let o_index_log_size = field tzs_options "index_log_size" uint64_t
let o_zstd_level = field tzs_options "zstd_level" int32_t
let () = seal tzs_options

type stats_s

let tzs_stats : stats_s structure typ = structure "tzs_block_store_stats"
let s_cemented_lowest = field tzs_stats "cemented_lowest" int32_t
let s_cemented_highest = field tzs_stats "cemented_highest" int32_t
let s_cemented_blocks = field tzs_stats "cemented_blocks" uint64_t
let s_floating_blocks = field tzs_stats "floating_blocks" uint64_t
let s_bytes_on_disk = field tzs_stats "bytes_on_disk" uint64_t
let s_merges_done = field tzs_stats "merges_done" uint64_t
let s_last_merge_ms = field tzs_stats "last_merge_ms" uint64_t
let s_merging = field tzs_stats "merging" bool
let () = seal tzs_stats
let c_options_default = Ffi.foreign "tzs_block_store_options_default" (void @-> returning tzs_options)

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_open"
    (string @-> ptr tzs_options @-> ptr handle @-> err @-> returning Ffi.status)

let c_store =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_store_with"
    (handle @-> block @-> bool @-> err @-> returning Ffi.status)

let c_flush =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_flush"
    (handle @-> err @-> returning Ffi.status)

let c_mem =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_mem"
    (handle @-> string @-> err @-> returning Ffi.status)

let c_read =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_read"
    (handle @-> string @-> uint32_t @-> bool @-> block @-> err @-> returning Ffi.status)

let c_read_by_level =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_read_by_level"
    (handle @-> int32_t @-> bool @-> block @-> err @-> returning Ffi.status)

let c_merge =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_merge"
    (handle @-> string @-> ptr int32_t @-> size_t @-> err @-> returning Ffi.status)

let c_await_merge =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_await_merge"
    (handle @-> err @-> returning Ffi.status)

let c_read_stats =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_read_stats"
    (handle @-> ptr tzs_stats @-> err @-> returning Ffi.status)

let c_check =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_check"
    (handle @-> bool @-> err @-> returning Ffi.status)

let c_close =
  Ffi.foreign ~release_runtime_lock:true "tzs_block_store_close" (handle @-> returning void)

type t = s structure ptr Handle.t
type history_mode = Archive | Full | Rolling

(* TZS_HISTORY_* *)
let mode_code = function Archive -> 0 | Full -> 1 | Rolling -> 2

let open_ ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level dir =
  Ffi.with_path dir @@ fun dir ->
  let o = c_options_default () in
  setf o o_flags (Ffi.flags ?readonly ?no_fsync ());
  Option.iter (fun m -> setf o o_history_mode (Unsigned.UInt32.of_int (mode_code m))) history_mode;
  Option.iter (fun n -> setf o o_history_offset (Unsigned.UInt32.of_int n)) history_offset;
  Option.iter (fun n -> setf o o_workers (Unsigned.UInt32.of_int n)) workers;
  Option.iter (fun n -> setf o o_index_log_size (Unsigned.UInt64.of_int n)) index_log_size;
  Option.iter (fun n -> setf o o_zstd_level (Int32.of_int n)) zstd_level;
  let out = allocate handle (from_voidp s null) in
  let r = Ffi.call (c_open dir (addr o) out) in
  (* [o] is ctypes-managed C memory, alive until here. *)
  ignore (Sys.opaque_identity o);
  match r with
  | Ok () -> Ok (Handle.create ~what:("block store " ^ dir) ~close:c_close !@out)
  | Error e -> Error e

let store ?(flush = true) t b =
  Block_c.with_block b @@ fun cb -> Handle.use t (fun h -> Ffi.call (c_store h cb flush))

let flush t = Handle.use t (fun h -> Ffi.call (c_flush h))

let mem t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t (fun h -> Ffi.found (Ffi.call (c_mem h hash))) |> Result.map Option.is_some

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
        Ffi.call (c_read h hash (Unsigned.UInt32.of_int distance) metadata out))

let read_by_level ?(metadata = true) t level =
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (c_read_by_level h level metadata out))

let merge t ~head ~chunk_ends =
  Block_c.with_hash "head" head @@ fun head ->
  let n = List.length chunk_ends in
  let ends = CArray.of_list int32_t (if n = 0 then [ 0l ] else chunk_ends) in
  let r =
    Handle.use t (fun h ->
        Ffi.call (c_merge h head (CArray.start ends) (Unsigned.Size_t.of_int n)))
  in
  ignore (Sys.opaque_identity ends);
  r

let await_merge t = Handle.use t (fun h -> Ffi.call (c_await_merge h))

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
  let out = make tzs_stats in
  Ffi.call (c_read_stats h (addr out))
  |> Result.map (fun () ->
         let level f = match getf out f with -1l -> None | l -> Some l in
         let count f = Unsigned.UInt64.to_int (getf out f) in
         {
           cemented_lowest = level s_cemented_lowest;
           cemented_highest = level s_cemented_highest;
           cemented_blocks = count s_cemented_blocks;
           floating_blocks = count s_floating_blocks;
           bytes_on_disk = count s_bytes_on_disk;
           merges_done = count s_merges_done;
           last_merge_ms = count s_last_merge_ms;
           merging = getf out s_merging;
         })

let check ?(repair = false) t = Handle.use t (fun h -> Ffi.call (c_check h repair))
let close = Handle.close
