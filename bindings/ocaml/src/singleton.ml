open Ctypes

type s

let s : s structure typ = structure "tzs_singleton"
let handle = ptr s

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_singleton_open"
    (string @-> uint32_t @-> ptr handle @-> ptr Ffi.error_t @-> returning Ffi.status)

let c_read =
  Ffi.foreign ~release_runtime_lock:true "tzs_singleton_read"
    (handle @-> ptr Ffi.tzs_bytes @-> ptr Ffi.error_t @-> returning Ffi.status)

let c_write =
  Ffi.foreign ~release_runtime_lock:true "tzs_singleton_write"
    (handle @-> string @-> size_t @-> ptr Ffi.error_t @-> returning Ffi.status)

let c_delete =
  Ffi.foreign ~release_runtime_lock:true "tzs_singleton_delete"
    (handle @-> ptr Ffi.error_t @-> returning Ffi.status)

let c_sync =
  Ffi.foreign ~release_runtime_lock:true "tzs_singleton_sync"
    (handle @-> ptr Ffi.error_t @-> returning Ffi.status)

let c_close = Ffi.foreign ~release_runtime_lock:true "tzs_singleton_close" (handle @-> returning void)

type t = s structure ptr Handle.t

let open_ ?readonly ?no_fsync path =
  Ffi.with_path path @@ fun path ->
  let out = allocate handle (from_voidp s null) in
  match Ffi.call (c_open path (Ffi.flags ?readonly ?no_fsync ()) out) with
  | Ok () -> Ok (Handle.create ~what:("singleton " ^ path) ~close:c_close !@out)
  | Error e -> Error e

let read t = Handle.use t (fun h -> Ffi.call_bytes (c_read h))

let write t v =
  Handle.use t (fun h -> Ffi.call (c_write h v (Unsigned.Size_t.of_int (String.length v))))

let delete t = Handle.use t (fun h -> Ffi.call (c_delete h))
let sync t = Handle.use t (fun h -> Ffi.call (c_sync h))
let close = Handle.close
