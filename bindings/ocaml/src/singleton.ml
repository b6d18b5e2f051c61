module S = C.Singleton

type t = C.singleton_s Ctypes.structure Ctypes.ptr Handle.t

let open_ ?readonly ?no_fsync path =
  Ffi.with_path path @@ fun path ->
  Ffi.open_handle ~what:("singleton " ^ path) ~close:S.close C.singleton
    (S.open_ path (Ffi.flags ?readonly ?no_fsync ()))

let read t = Handle.use t (fun h -> Ffi.call_bytes (S.read h))

let write t v =
  Handle.use t (fun h -> Ffi.call (S.write h v (Unsigned.Size_t.of_int (String.length v))))

let delete t = Handle.use t (fun h -> Ffi.call (S.delete h))
let sync t = Handle.use t (fun h -> Ffi.call (S.sync h))
let close = Handle.close
