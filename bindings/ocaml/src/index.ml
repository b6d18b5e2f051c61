open Ctypes

type ix
type it

let ix : ix structure typ = structure "tzs_index"
let handle = ptr ix
let it : it structure typ = structure "tzs_index_iter"
let iter_handle = ptr it
let err = ptr Ffi.error_t

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_open"
    (string @-> uint32_t @-> uint32_t @-> uint32_t @-> uint64_t @-> ptr handle @-> err
   @-> returning Ffi.status)

let c_mem =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_mem"
    (handle @-> string @-> size_t @-> err @-> returning Ffi.status)

let c_find =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_find"
    (handle @-> string @-> size_t @-> ptr char @-> size_t @-> err @-> returning Ffi.status)

let c_add =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_add"
    (handle @-> string @-> size_t @-> string @-> size_t @-> bool @-> err @-> returning Ffi.status)

let c_remove =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_remove"
    (handle @-> string @-> size_t @-> bool @-> err @-> returning Ffi.status)

let c_flush =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_flush" (handle @-> err @-> returning Ffi.status)

let c_sync =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_sync" (handle @-> err @-> returning Ffi.status)

let c_await_merge =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_await_merge"
    (handle @-> err @-> returning Ffi.status)

let c_iter_new =
  Ffi.foreign "tzs_index_iter_new" (handle @-> ptr iter_handle @-> err @-> returning Ffi.status)

let c_iter_next =
  Ffi.foreign ~release_runtime_lock:true "tzs_index_iter_next"
    (iter_handle @-> ptr char @-> size_t @-> ptr char @-> size_t @-> err @-> returning Ffi.status)

let c_iter_free = Ffi.foreign "tzs_index_iter_free" (iter_handle @-> returning void)
let c_len = Ffi.foreign "tzs_index_len" (handle @-> returning uint64_t)
let c_close = Ffi.foreign ~release_runtime_lock:true "tzs_index_close" (handle @-> returning void)

type t = { h : ix structure ptr Handle.t; key_size : int; value_size : int }

let size_t = Unsigned.Size_t.of_int
let len s = size_t (String.length s)

let open_ ?readonly ?no_fsync ?removable ?(log_size = 0) ~key_size ~value_size dir =
  Ffi.with_path dir @@ fun dir ->
  if key_size < 0 || value_size < 0 || log_size < 0 then
    Error { Error.status = Error.Invalid_argument; message = "negative size for index " ^ dir }
  else
    let out = allocate handle (from_voidp ix null) in
    let u32 = Unsigned.UInt32.of_int in
    match
      Ffi.call
        (c_open dir (u32 key_size) (u32 value_size)
           (Ffi.flags ?readonly ?no_fsync ?removable ())
           (Unsigned.UInt64.of_int log_size) out)
    with
    | Ok () -> Ok { h = Handle.create ~what:("index " ^ dir) ~close:c_close !@out; key_size; value_size }
    | Error e -> Error e

let key_size t = t.key_size
let value_size t = t.value_size
let mem t key = Handle.use t.h (fun h -> Ffi.found (Ffi.call (c_mem h key (len key)))) |> Result.map Option.is_some

let find t key =
  Handle.use t.h @@ fun h ->
  let out = Ffi.out_buffer t.value_size in
  Ffi.found (Ffi.call (c_find h key (len key) out (size_t t.value_size)))
  |> Result.map (Option.map (fun () -> Ffi.string_of_buffer out t.value_size))

let add ?(flush = true) t key value =
  Handle.use t.h (fun h -> Ffi.call (c_add h key (len key) value (len value) flush))

let remove ?(flush = true) t key = Handle.use t.h (fun h -> Ffi.call (c_remove h key (len key) flush))
let flush t = Handle.use t.h (fun h -> Ffi.call (c_flush h))
let sync t = Handle.use t.h (fun h -> Ffi.call (c_sync h))
let await_merge t = Handle.use t.h (fun h -> Ffi.call (c_await_merge h))
let length t = Handle.use t.h (fun h -> Ok (Unsigned.UInt64.to_int (c_len h)))

let fold t ~init ~f =
  (* The snapshot iterator outlives the handle: only its creation holds
     it, so [f] may call anything, [close] included. *)
  let created =
    Handle.use t.h @@ fun h ->
    let out = allocate iter_handle (from_voidp it null) in
    Result.map (fun () -> !@out) (Ffi.call (c_iter_new h out))
  in
  match created with
  | Error e -> Error e
  | Ok i ->
      Fun.protect
        ~finally:(fun () -> c_iter_free i)
        (fun () ->
          let k = Ffi.out_buffer t.key_size and v = Ffi.out_buffer t.value_size in
          let rec loop acc =
            match Ffi.call (c_iter_next i k (size_t t.key_size) v (size_t t.value_size)) with
            | Ok () ->
                loop
                  (f acc (Ffi.string_of_buffer k t.key_size) (Ffi.string_of_buffer v t.value_size))
            | Error { Error.status = Error.Done; _ } -> Ok acc
            | Error e -> Error e
          in
          loop init)

let iter t f = fold t ~init:() ~f:(fun () k v -> f k v)
let close t = Handle.close t.h
