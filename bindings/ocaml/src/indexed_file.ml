open Ctypes

type f

let f : f structure typ = structure "tzs_indexed_file"
let handle = ptr f
let err = ptr Ffi.error_t

let c_open =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_open"
    (string @-> uint32_t @-> uint32_t @-> uint32_t @-> uint64_t @-> ptr handle @-> err
   @-> returning Ffi.status)

let c_mem =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_mem"
    (handle @-> string @-> size_t @-> err @-> returning Ffi.status)

let c_header =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_header"
    (handle @-> string @-> size_t @-> ptr char @-> size_t @-> err @-> returning Ffi.status)

let c_read =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_read"
    (handle @-> string @-> size_t @-> ptr Ffi.tzs_bytes @-> ptr char @-> size_t @-> err
   @-> returning Ffi.status)

let c_append =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_append"
    (handle @-> string @-> size_t @-> string_opt @-> size_t @-> string @-> size_t @-> bool @-> err
   @-> returning Ffi.status)

let c_flush =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_flush" (handle @-> err @-> returning Ffi.status)

let c_sync =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_sync" (handle @-> err @-> returning Ffi.status)

let keep_fn = Foreign.funptr (ptr char @-> size_t @-> ptr void @-> returning bool)

(* The keep function is called back on this thread during the call, so the
   call keeps the runtime lock (the callback runs OCaml code); it only
   lists the keys, the copy runs in the background. *)
let c_gc =
  Ffi.foreign "tzs_indexed_file_gc" (handle @-> keep_fn @-> ptr void @-> err @-> returning Ffi.status)

let c_await_gc =
  Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_await_gc" (handle @-> err @-> returning Ffi.status)

let c_close = Ffi.foreign ~release_runtime_lock:true "tzs_indexed_file_close" (handle @-> returning void)

type t = { h : f structure ptr Handle.t; header_size : int }

let size n = Unsigned.Size_t.of_int n

let open_ ?readonly ?no_fsync ?(header_in_value = false) ?(log_size = 0) ~key_size ~header_size dir =
  Ffi.with_path dir @@ fun dir ->
  let out = allocate handle (from_voidp f null) in
  let flags =
    Unsigned.UInt32.logor
      (Ffi.flags ?readonly ?no_fsync ())
      (Unsigned.UInt32.of_int (if header_in_value then 8 (* TZS_HEADER_IN_VALUE *) else 0))
  in
  let ui = Unsigned.UInt32.of_int in
  match
    Ffi.call
      (c_open dir (ui key_size) (ui header_size) flags (Unsigned.UInt64.of_int log_size) out)
  with
  | Ok () ->
      Ok { h = Handle.create ~what:("indexed file " ^ dir) ~close:c_close !@out; header_size }
  | Error e -> Error e

let header_size t = t.header_size

let mem t key =
  Handle.use t.h (fun h -> Ffi.found (Ffi.call (c_mem h key (size (String.length key)))))
  |> Result.map Option.is_some

let header t key =
  Handle.use t.h @@ fun h ->
  let buf = Ffi.out_buffer t.header_size in
  Ffi.found (Ffi.call (c_header h key (size (String.length key)) buf (size t.header_size)))
  |> Result.map (Option.map (fun () -> Ffi.string_of_buffer buf t.header_size))

let read_gen t key ~with_header =
  Handle.use t.h @@ fun h ->
  let out = make Ffi.tzs_bytes in
  let buf = Ffi.out_buffer t.header_size in
  let hbuf, hlen = if with_header then (buf, t.header_size) else (from_voidp char null, 0) in
  Ffi.found (Ffi.call (c_read h key (size (String.length key)) (addr out) hbuf (size hlen)))
  |> Result.map
       (Option.map (fun () ->
            let len = Unsigned.Size_t.to_int (getf out Ffi.bytes_len) in
            let v = Ffi.string_of_buffer (getf out Ffi.bytes_ptr) len in
            Ffi.c_bytes_free (addr out);
            (Ffi.string_of_buffer buf hlen, v)))

let read t key = read_gen t key ~with_header:false |> Result.map (Option.map snd)
let read_with_header t key = read_gen t key ~with_header:true

let append_gen ?(flush = true) t key header value =
  let hlen = match header with Some h -> String.length h | None -> 0 in
  Handle.use t.h (fun h ->
      Ffi.call
        (c_append h key (size (String.length key)) header (size hlen) value
           (size (String.length value)) flush))

let append ?flush t key ~header value = append_gen ?flush t key (Some header) value
let append_value ?flush t key value = append_gen ?flush t key None value
let flush t = Handle.use t.h (fun h -> Ffi.call (c_flush h))
let sync t = Handle.use t.h (fun h -> Ffi.call (c_sync h))
let await_gc t = Handle.use t.h (fun h -> Ffi.call (c_await_gc h))

let gc t ~keep =
  (* An exception must not unwind through C: the first one is kept, the
     remaining keys are kept, and it is re-raised once the compaction it
     started has ended. *)
  let raised = ref None in
  let cb key len _ =
    match !raised with
    | Some _ -> true
    | None -> (
        try keep (Ffi.string_of_buffer key (Unsigned.Size_t.to_int len))
        with e ->
          raised := Some (e, Printexc.get_raw_backtrace ());
          true)
  in
  let r = Handle.use t.h (fun h -> Ffi.call (c_gc h cb null)) in
  ignore (Sys.opaque_identity [ cb ]);
  match !raised with
  | Some (e, bt) ->
      if r = Ok () then ignore (await_gc t);
      Printexc.raise_with_backtrace e bt
  | None -> r

let close t = Handle.close t.h
