open Ctypes
module F = C.Indexed_file

type t = { h : C.indexed_file_s structure ptr Handle.t; header_size : int; filters : Gc_filter.t }

let size n = Unsigned.Size_t.of_int n

let open_ ?readonly ?no_fsync ?(header_in_value = false) ?(log_size = 0) ~key_size ~header_size dir =
  Ffi.with_path dir @@ fun dir ->
  let flags =
    Unsigned.UInt32.logor
      (Ffi.flags ?readonly ?no_fsync ())
      (Unsigned.UInt32.of_int (if header_in_value then 8 (* TZS_HEADER_IN_VALUE *) else 0))
  in
  let ui = Unsigned.UInt32.of_int in
  let filters = Gc_filter.create () in
  (* Closing (by [close] or the handle's finaliser) waits for a running
     GC: its filter may then go. *)
  let close p =
    F.close p;
    Gc_filter.closed filters
  in
  Ffi.open_handle ~finalise:(Gc_filter.finalise filters close) ~what:("indexed file " ^ dir) ~close C.indexed_file
    (F.open_ dir (ui key_size) (ui header_size) flags (Unsigned.UInt64.of_int log_size))
  |> Result.map (fun h -> { h; header_size; filters })

let header_size t = t.header_size

let mem t key =
  Handle.use t.h (fun h -> Ffi.found (Ffi.call (F.mem h key (size (String.length key)))))
  |> Result.map Option.is_some

let header t key =
  Handle.use t.h @@ fun h ->
  let buf = Ffi.out_buffer t.header_size in
  Ffi.found (Ffi.call (F.header h key (size (String.length key)) buf (size t.header_size)))
  |> Result.map (Option.map (fun () -> Ffi.string_of_buffer buf t.header_size))

let read_gen t key ~with_header =
  Handle.use t.h @@ fun h ->
  let out = make C.tzs_bytes in
  let buf = Ffi.out_buffer t.header_size in
  let hbuf, hlen = if with_header then (buf, t.header_size) else (from_voidp char null, 0) in
  Ffi.found (Ffi.call (F.read h key (size (String.length key)) (addr out) hbuf (size hlen)))
  |> Result.map
       (Option.map (fun () ->
            let v = Ffi.take_bytes out in
            (Ffi.string_of_buffer buf hlen, v)))

let read t key = read_gen t key ~with_header:false |> Result.map (Option.map snd)
let read_with_header t key = read_gen t key ~with_header:true

(* Borrowed reads, as Block_store.read_view: the store's handle, then the
   reader (serialised with its other calls). The header view (NULL unless
   asked for) is copied while the reader is still held; the value becomes
   a bigarray that keeps [reader] reachable (Block_c.bigstring). *)
let read_view_gen reader t key ~with_header =
  Handle.use t.h @@ fun h ->
  let value = make C.tzs_view in
  let header = make C.tzs_view in
  let header_out = if with_header then addr header else from_voidp C.tzs_view null in
  Reader.use reader @@ fun r ->
  Ffi.found
    (Ffi.call
       (F.read_view h (from_voidp C.reader r) key (size (String.length key)) (addr value) header_out))
  |> Result.map
       (Option.map (fun () ->
            let hdr =
              if with_header then
                Ffi.string_of_buffer (getf header C.view_ptr)
                  (Unsigned.Size_t.to_int (getf header C.view_len))
              else ""
            in
            (hdr, Block_c.bigstring ~keep:reader value)))

let read_view reader t key =
  read_view_gen reader t key ~with_header:false |> Result.map (Option.map snd)

let read_view_with_header reader t key = read_view_gen reader t key ~with_header:true
let value_string = Block.string_of_bigstring

let append_gen ?(flush = true) t key header value =
  let hlen = match header with Some h -> String.length h | None -> 0 in
  Handle.use t.h (fun h ->
      Ffi.call
        (F.append h key (size (String.length key)) header (size hlen) value
           (size (String.length value)) flush))

let append ?flush t key ~header value = append_gen ?flush t key (Some header) value
let append_value ?flush t key value = append_gen ?flush t key None value
let flush t = Handle.use t.h (fun h -> Ffi.call (F.flush h))
let sync t = Handle.use t.h (fun h -> Ffi.call (F.sync h))
(* The GC ended unless the call was refused before waiting (a closed
   handle has ended it too: closing waits for it). *)
let gc_ended = function
  | Ok _ -> true
  | Error { Error.status = Error.Invalid_argument; _ } -> false
  | Error _ -> true

let await_gc t =
  let r =
    Gc_filter.ended t.filters ~ended_when:gc_ended (fun () ->
        Handle.use t.h (fun h -> Ffi.call (F.await_gc h)))
  in
  Gc_filter.reraise (Gc_filter.take_pending t.filters);
  r

let gc_filter ?(wait = false) t f =
  Gc_filter.gc t.filters ~wait f (fun fn ctx started ->
      Handle.use t.h (fun h -> Ffi.call (F.gc_filter h fn ctx wait started)))

let is_gc_finished t =
  Gc_filter.ended t.filters ~ended_when:Fun.id (fun () ->
      match Handle.use t.h (fun h -> Ok (F.is_gc_finished h)) with Ok b -> b | Error _ -> true)

let cancel_gc t =
  Gc_filter.ended t.filters ~ended_when:gc_ended (fun () ->
      Handle.use t.h (fun h ->
          let out = allocate bool false in
          Result.map (fun () -> !@out) (Ffi.call (F.cancel_gc h out))))

let gc t ~keep =
  (* The library calls [keep] for each key on this thread, during the call,
     which has released the runtime lock: the callback takes it back while
     [keep] runs (C.keep_fn). It only lists the keys, the copy runs in the
     background. An exception must not unwind through C: the first one is
     kept, the remaining keys are kept, and it is re-raised once the
     compaction it started has ended. *)
  let raised = ref None in
  let cb key len _ =
    match !raised with
    | Some _ -> true
    | None -> (
        try keep (Ffi.string_of_buffer (coerce (ptr uint8_t) (ptr char) key) (Unsigned.Size_t.to_int len))
        with e ->
          raised := Some (e, Printexc.get_raw_backtrace ());
          true)
  in
  let r = Handle.use t.h (fun h -> Ffi.call (F.gc h cb null)) in
  ignore (Sys.opaque_identity [ cb ]);
  match !raised with
  | Some (e, bt) ->
      if r = Ok () then ignore (await_gc t);
      Printexc.raise_with_backtrace e bt
  | None -> r

let close t = Handle.close t.h
