open Ctypes
module I = C.Index

type t = {
  h : C.index_s structure ptr Handle.t;
  key_size : int;
  value_size : int;
  filters : Gc_filter.t;
}

let size_t = Unsigned.Size_t.of_int
let len s = size_t (String.length s)

let open_ ?readonly ?no_fsync ?removable ?(log_size = 0) ~key_size ~value_size dir =
  Ffi.with_path dir @@ fun dir ->
  if key_size < 0 || value_size < 0 || log_size < 0 then
    Error { Error.status = Error.Invalid_argument; message = "negative size for index " ^ dir }
  else
    let u32 = Unsigned.UInt32.of_int in
    let filters = Gc_filter.create () in
    (* Closing (by [close] or the handle's finaliser) waits for a running
       GC: its filter may then go. *)
    let close p =
      I.close p;
      Gc_filter.closed filters
    in
    Ffi.open_handle ~finalise:(Gc_filter.finalise filters close) ~what:("index " ^ dir) ~close C.index
      (I.open_ dir (u32 key_size) (u32 value_size)
         (Ffi.flags ?readonly ?no_fsync ?removable ())
         (Unsigned.UInt64.of_int log_size))
    |> Result.map (fun h -> { h; key_size; value_size; filters })

let key_size t = t.key_size
let value_size t = t.value_size
let mem t key = Handle.use t.h (fun h -> Ffi.found (Ffi.call (I.mem h key (len key)))) |> Result.map Option.is_some

let find t key =
  Handle.use t.h @@ fun h ->
  let out = Ffi.out_buffer t.value_size in
  Ffi.found (Ffi.call (I.find h key (len key) out (size_t t.value_size)))
  |> Result.map (Option.map (fun () -> Ffi.string_of_buffer out t.value_size))

let add ?(flush = true) t key value =
  Handle.use t.h (fun h -> Ffi.call (I.add h key (len key) value (len value) flush))

let remove ?(flush = true) t key = Handle.use t.h (fun h -> Ffi.call (I.remove h key (len key) flush))
let flush t = Handle.use t.h (fun h -> Ffi.call (I.flush h))
let sync t = Handle.use t.h (fun h -> Ffi.call (I.sync h))
let await_merge t = Handle.use t.h (fun h -> Ffi.call (I.await_merge h))
let length t = Handle.use t.h (fun h -> Ok (Unsigned.UInt64.to_int (I.len h)))

let fold t ~init ~f =
  (* The snapshot iterator outlives the handle: only its creation holds
     it, so [f] may call anything, [close] included. *)
  let created =
    Handle.use t.h @@ fun h ->
    let out = allocate I.it (from_voidp C.index_iter null) in
    Result.map (fun () -> !@out) (Ffi.call (I.iter_new h out))
  in
  match created with
  | Error e -> Error e
  | Ok i ->
      Fun.protect
        ~finally:(fun () -> I.iter_free i)
        (fun () ->
          let k = Ffi.out_buffer t.key_size and v = Ffi.out_buffer t.value_size in
          let rec loop acc =
            match Ffi.call (I.iter_next i k (size_t t.key_size) v (size_t t.value_size)) with
            | Ok () ->
                loop
                  (f acc (Ffi.string_of_buffer k t.key_size) (Ffi.string_of_buffer v t.value_size))
            | Error { Error.status = Error.Done; _ } -> Ok acc
            | Error e -> Error e
          in
          loop init)

let iter t f = fold t ~init:() ~f:(fun () k v -> f k v)

let filter t f =
  Gc_filter.filter t.filters f (fun fn ctx -> Handle.use t.h (fun h -> Ffi.call (I.filter h fn ctx)))

let gc ?(wait = false) t f =
  Gc_filter.gc t.filters ~wait f (fun fn ctx started ->
      Handle.use t.h (fun h -> Ffi.call (I.gc h fn ctx wait started)))

(* The GC ended unless the call was refused before waiting (a closed
   handle has ended it too: closing waits for it). *)
let gc_ended = function
  | Ok _ -> true
  | Error { Error.status = Error.Invalid_argument; _ } -> false
  | Error _ -> true

let await_gc t =
  let r =
    Gc_filter.ended t.filters ~ended_when:gc_ended (fun () ->
        Handle.use t.h (fun h -> Ffi.call (I.await_gc h)))
  in
  Gc_filter.reraise (Gc_filter.take_pending t.filters);
  r

let is_gc_finished t =
  Gc_filter.ended t.filters ~ended_when:Fun.id (fun () ->
      match Handle.use t.h (fun h -> Ok (I.is_gc_finished h)) with Ok b -> b | Error _ -> true)

let cancel_gc t =
  Gc_filter.ended t.filters ~ended_when:gc_ended (fun () ->
      Handle.use t.h (fun h ->
          let out = allocate bool false in
          Result.map (fun () -> !@out) (Ffi.call (I.cancel_gc h out))))

let clear t = Handle.use t.h (fun h -> Ffi.call (I.clear h))

let try_merge t =
  Handle.use t.h (fun h ->
      let out = allocate bool false in
      Result.map (fun () -> !@out) (Ffi.call (I.try_merge h out)))

let is_merging t = match Handle.use t.h (fun h -> Ok (I.is_merging h)) with Ok b -> b | Error _ -> false
let close t = Handle.close t.h
