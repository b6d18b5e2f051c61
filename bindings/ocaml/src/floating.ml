open Ctypes

type f
type it

let f : f structure typ = structure "tzs_floating"
let handle = ptr f
let it : it structure typ = structure "tzs_floating_iter"
let iter_handle = ptr it
let err = ptr Ffi.error_t
let block = ptr Block_c.tzs_block

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_open"
    (string @-> uint32_t @-> uint32_t @-> ptr handle @-> err @-> returning Ffi.status)

let c_append =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_append"
    (handle @-> block @-> string @-> size_t @-> bool @-> err @-> returning Ffi.status)

let c_flush =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_flush" (handle @-> err @-> returning Ffi.status)

let c_sync =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_sync" (handle @-> err @-> returning Ffi.status)

let c_mem =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_mem"
    (handle @-> string @-> err @-> returning Ffi.status)

let c_find_predecessors =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_find_predecessors"
    (handle @-> string @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_read_block =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_read_block"
    (handle @-> string @-> block @-> err @-> returning Ffi.status)

let c_read_block_and_predecessors =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_read_block_and_predecessors"
    (handle @-> string @-> block @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_len = Ffi.foreign "tzs_floating_len" (handle @-> returning uint64_t)

let c_iter_new =
  Ffi.foreign "tzs_floating_iter_new" (handle @-> ptr iter_handle @-> err @-> returning Ffi.status)

let c_iter_next =
  Ffi.foreign ~release_runtime_lock:true "tzs_floating_iter_next"
    (iter_handle @-> block @-> ptr Ffi.tzs_bytes @-> err @-> returning Ffi.status)

let c_iter_free = Ffi.foreign "tzs_floating_iter_free" (iter_handle @-> returning void)
let c_close = Ffi.foreign ~release_runtime_lock:true "tzs_floating_close" (handle @-> returning void)

type t = f structure ptr Handle.t
type kind = Ro | Rw | Ro_tmp | Rw_tmp | Restore

(* TZS_FLOATING_* *)
let kind_code = function Ro -> 0 | Rw -> 1 | Ro_tmp -> 2 | Rw_tmp -> 3 | Restore -> 4

let open_ ?readonly ?no_fsync ~kind dir =
  Ffi.with_path dir @@ fun dir ->
  let out = allocate handle (from_voidp f null) in
  let kind = Unsigned.UInt32.of_int (kind_code kind) in
  match Ffi.call (c_open dir kind (Ffi.flags ?readonly ?no_fsync ()) out) with
  | Ok () -> Ok (Handle.create ~what:("floating block store " ^ dir) ~close:c_close !@out)
  | Error e -> Error e

let append ?(flush = true) t b preds =
  Block_c.with_hashes preds @@ fun preds n ->
  Block_c.with_block b @@ fun cb -> Handle.use t (fun h -> Ffi.call (c_append h cb preds n flush))

let flush t = Handle.use t (fun h -> Ffi.call (c_flush h))
let sync t = Handle.use t (fun h -> Ffi.call (c_sync h))

let found = Ffi.found

let mem t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t (fun h -> found (Ffi.call (c_mem h hash))) |> Result.map Option.is_some

let find_predecessors t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make Ffi.tzs_bytes in
  found (Ffi.call (c_find_predecessors h hash (addr out)))
  |> Result.map (Option.map (fun () -> Block_c.take_hashes out))

let read_block t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make Block_c.tzs_block in
  found (Ffi.call (c_read_block h hash (addr out))) |> Result.map (Option.map (fun () -> Block_c.take out))

let read_block_and_predecessors t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make Block_c.tzs_block and preds = make Ffi.tzs_bytes in
  found (Ffi.call (c_read_block_and_predecessors h hash (addr out) (addr preds)))
  |> Result.map
       (Option.map (fun () ->
            let b = Block_c.take out in
            (b, Block_c.take_hashes preds)))

let length t = Handle.use t (fun h -> Ok (Unsigned.UInt64.to_int (c_len h)))

let fold t ~init ~f =
  (* The C iterator outlives the store handle: only its creation holds the
     handle, so [f] may call anything, [close] included. *)
  let created =
    Handle.use t @@ fun h ->
    let out = allocate iter_handle (from_voidp it null) in
    Result.map (fun () -> !@out) (Ffi.call (c_iter_new h out))
  in
  match created with
  | Error e -> Error e
  | Ok i ->
      Fun.protect
        ~finally:(fun () -> c_iter_free i)
        (fun () ->
          let out = make Block_c.tzs_block and preds = make Ffi.tzs_bytes in
          let rec loop acc =
            match Ffi.call (c_iter_next i (addr out) (addr preds)) with
            | Ok () ->
                let b = Block_c.take out in
                loop (f acc b (Block_c.take_hashes preds))
            | Error { Error.status = Error.Done; _ } -> Ok acc
            | Error e -> Error e
          in
          loop init)

let iter t f = fold t ~init:() ~f:(fun () b preds -> f b preds)
let close = Handle.close
