open Ctypes

type c
type it
type list_s

let c : c structure typ = structure "tzs_cemented"
let handle = ptr c
let it : it structure typ = structure "tzs_cemented_iter"
let iter_handle = ptr it
let list_t : list_s structure typ = structure "tzs_chunk_list"
let list_handle = ptr list_t
let err = ptr Ffi.error_t
let block = ptr Block_c.tzs_block

type chunk_s

let tzs_chunk : chunk_s structure typ = structure "tzs_chunk"
let start_f = field tzs_chunk "start_level" int32_t
let end_f = field tzs_chunk "end_level" int32_t
let () = seal tzs_chunk
let st = Ffi.status

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_open"
    (string @-> uint32_t @-> uint64_t @-> ptr handle @-> err @-> returning st)

let level_fn name = Ffi.foreign ~release_runtime_lock:true name (handle @-> ptr int32_t @-> err @-> returning st)
let c_lowest = level_fn "tzs_cemented_lowest_level"
let c_highest = level_fn "tzs_cemented_highest_level"

let c_level_of =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_level_of"
    (handle @-> string @-> ptr int32_t @-> err @-> returning st)

let c_hash_of =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_hash_of"
    (handle @-> int32_t @-> ptr char @-> err @-> returning st)

let c_read_by_level =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_read_by_level"
    (handle @-> int32_t @-> bool @-> block @-> err @-> returning st)

let c_read_by_hash =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_read_by_hash"
    (handle @-> string @-> bool @-> block @-> err @-> returning st)

let c_read_metadata =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_read_metadata"
    (handle @-> int32_t @-> ptr Ffi.tzs_bytes @-> err @-> returning st)

let c_cement =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_cement"
    (handle @-> block @-> size_t @-> bool @-> bool @-> err @-> returning st)

let list_fn name = Ffi.foreign ~release_runtime_lock:true name (handle @-> ptr list_handle @-> err @-> returning st)
let c_chunks = list_fn "tzs_cemented_chunks"
let c_metadata_chunks = list_fn "tzs_cemented_metadata_chunks"
let c_list_len = Ffi.foreign "tzs_chunk_list_len" (list_handle @-> returning size_t)
let c_list_get = Ffi.foreign "tzs_chunk_list_get" (list_handle @-> size_t @-> returning tzs_chunk)
let c_list_free = Ffi.foreign "tzs_chunk_list_free" (list_handle @-> returning void)

let c_find_chunk =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_find_chunk"
    (handle @-> int32_t @-> ptr tzs_chunk @-> err @-> returning st)

let c_gc =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_gc" (handle @-> uint32_t @-> uint32_t @-> err @-> returning st)

let c_check =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_check_consistency"
    (handle @-> string_opt @-> err @-> returning st)

let c_iter_new =
  Ffi.foreign "tzs_cemented_iter_new" (handle @-> tzs_chunk @-> bool @-> ptr iter_handle @-> err @-> returning st)

let c_iter_next =
  Ffi.foreign ~release_runtime_lock:true "tzs_cemented_iter_next" (iter_handle @-> block @-> err @-> returning st)

let c_iter_free = Ffi.foreign "tzs_cemented_iter_free" (iter_handle @-> returning void)

let c_set_zstd_level =
  Ffi.foreign "tzs_cemented_set_zstd_level" (handle @-> int32_t @-> err @-> returning st)

let c_sync = Ffi.foreign ~release_runtime_lock:true "tzs_cemented_sync" (handle @-> err @-> returning st)
let c_close = Ffi.foreign ~release_runtime_lock:true "tzs_cemented_close" (handle @-> returning void)

type t = c structure ptr Handle.t
type chunk = { start_level : int32; end_level : int32 }

let open_ ?readonly ?no_fsync ?(log_size = 0) dir =
  Ffi.with_path dir @@ fun dir ->
  let out = allocate handle (from_voidp c null) in
  match Ffi.call (c_open dir (Ffi.flags ?readonly ?no_fsync ()) (Unsigned.UInt64.of_int log_size) out) with
  | Ok () -> Ok (Handle.create ~what:("cemented store " ^ dir) ~close:c_close !@out)
  | Error e -> Error e

let level_call f t =
  Handle.use t @@ fun h ->
  let out = allocate int32_t 0l in
  Ffi.found (Ffi.call (f h out)) |> Result.map (Option.map (fun () -> !@out))

let lowest_level = level_call c_lowest
let highest_level = level_call c_highest

let level_of t hash =
  Block_c.with_hash "hash" hash @@ fun hash -> level_call (fun h out -> c_level_of h hash out) t

let hash_of t level =
  Handle.use t @@ fun h ->
  let buf = Ffi.out_buffer Block.hash_size in
  Ffi.found (Ffi.call (c_hash_of h level buf))
  |> Result.map (Option.map (fun () -> Ffi.string_of_buffer buf Block.hash_size))

let read_into call =
  let out = make Block_c.tzs_block in
  Ffi.found (call (addr out)) |> Result.map (Option.map (fun () -> Block_c.take out))

let read_by_level ?(metadata = true) t level =
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (c_read_by_level h level metadata out))

let read_by_hash ?(metadata = true) t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (c_read_by_hash h hash metadata out))

let read_metadata t level =
  Handle.use t @@ fun h -> Ffi.call_bytes (c_read_metadata h level)

(* [with_blocks bs f] runs [f p n] with [p] pointing to a C array of copies
   of [bs] (C memory: the call may release the runtime lock). *)
let with_blocks (bs : Block.t list) f =
  let n = List.length bs in
  let arr = CArray.make Block_c.tzs_block (max n 1) in
  let rec fill i = function
    | [] -> f (CArray.start arr) (Unsigned.Size_t.of_int n)
    | b :: rest ->
        (* [with_block] keeps the block's buffers alive while [fill]
           continues inside it, so every array entry stays valid. *)
        Block_c.with_block b @@ fun p ->
        CArray.set arr i !@p;
        fill (i + 1) rest
  in
  let r = fill 0 bs in
  ignore (Sys.opaque_identity arr);
  r

let cement ?(write_metadata = true) ?(check_consistency = true) t blocks =
  with_blocks blocks @@ fun p n ->
  Handle.use t (fun h -> Ffi.call (c_cement h p n write_metadata check_consistency))

let list_call f t =
  Handle.use t @@ fun h ->
  let out = allocate list_handle (from_voidp list_t null) in
  Ffi.call (f h out)
  |> Result.map (fun () ->
         let l = !@out in
         let n = Unsigned.Size_t.to_int (c_list_len l) in
         let chunks =
           List.init n (fun i ->
               let ch = c_list_get l (Unsigned.Size_t.of_int i) in
               { start_level = getf ch start_f; end_level = getf ch end_f })
         in
         c_list_free l;
         chunks)

let chunks = list_call c_chunks
let metadata_chunks = list_call c_metadata_chunks

let find_chunk t level =
  Handle.use t @@ fun h ->
  let out = make tzs_chunk in
  Ffi.found (Ffi.call (c_find_chunk h level (addr out)))
  |> Result.map (Option.map (fun () -> { start_level = getf out start_f; end_level = getf out end_f }))

let gc t ~mode ~offset =
  let mode = match mode with Block_store.Archive -> 0 | Full -> 1 | Rolling -> 2 in
  Handle.use t (fun h ->
      Ffi.call (c_gc h (Unsigned.UInt32.of_int mode) (Unsigned.UInt32.of_int offset)))

let check_consistency ?genesis t =
  let run g = Handle.use t (fun h -> Ffi.call (c_check h g)) in
  match genesis with None -> run None | Some g -> Block_c.with_hash "genesis" g (fun g -> run (Some g))

let fold ?(metadata = true) t chunk ~init ~f =
  (* The C iterator must not outlive the store: the whole fold holds the
     handle, so [f] must not close the store. *)
  Handle.use t @@ fun h ->
  let ch = make tzs_chunk in
  setf ch start_f chunk.start_level;
  setf ch end_f chunk.end_level;
  let out = allocate iter_handle (from_voidp it null) in
  match Ffi.found (Ffi.call (c_iter_new h ch metadata out)) with
  | Error e -> Error e
  | Ok None -> Ok None
  | Ok (Some ()) ->
      let i = !@out in
      Fun.protect
        ~finally:(fun () -> c_iter_free i)
        (fun () ->
          let b = make Block_c.tzs_block in
          let rec loop acc =
            match Ffi.call (c_iter_next i (addr b)) with
            | Ok () -> loop (f acc (Block_c.take b))
            | Error { Error.status = Error.Done; _ } -> Ok (Some acc)
            | Error e -> Error e
          in
          loop init)

let iter ?metadata t chunk f =
  fold ?metadata t chunk ~init:() ~f:(fun () b -> f b) |> Result.map Option.is_some

let set_zstd_level t level =
  Handle.use t (fun h -> Ffi.call (c_set_zstd_level h (Int32.of_int level)))

let sync t = Handle.use t (fun h -> Ffi.call (c_sync h))
let close = Handle.close
