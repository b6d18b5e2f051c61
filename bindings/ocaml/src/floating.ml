open Ctypes
module F = C.Floating

type t = C.floating_s structure ptr Handle.t
type kind = Ro | Rw | Ro_tmp | Rw_tmp | Restore

(* TZS_FLOATING_* *)
let kind_code = function Ro -> 0 | Rw -> 1 | Ro_tmp -> 2 | Rw_tmp -> 3 | Restore -> 4

let open_ ?readonly ?no_fsync ~kind dir =
  Ffi.with_path dir @@ fun dir ->
  let kind = Unsigned.UInt32.of_int (kind_code kind) in
  Ffi.open_handle ~what:("floating block store " ^ dir) ~close:F.close C.floating
    (F.open_ dir kind (Ffi.flags ?readonly ?no_fsync ()))

let append ?(flush = true) ?context t b preds =
  Block_c.with_hashes preds @@ fun preds n ->
  Block_c.with_block b @@ fun cb ->
  match context with
  | None -> Handle.use t (fun h -> Ffi.call (F.append h cb preds n flush))
  | Some c ->
      Block_c.with_context c @@ fun c ->
      Handle.use t (fun h -> Ffi.call (F.append_with_context h cb c preds n flush))

let resulting_context_hash t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> Block_c.found_hash (F.resulting_context_hash h hash)

let flush t = Handle.use t (fun h -> Ffi.call (F.flush h))
let sync t = Handle.use t (fun h -> Ffi.call (F.sync h))

let found = Ffi.found

let mem t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t (fun h -> found (Ffi.call (F.mem h hash))) |> Result.map Option.is_some

let find_predecessors t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make C.tzs_bytes in
  found (Ffi.call (F.find_predecessors h hash (addr out)))
  |> Result.map (Option.map (fun () -> Block_c.take_hashes out))

let read_block t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make Block_c.tzs_block in
  found (Ffi.call (F.read_block h hash (addr out))) |> Result.map (Option.map (fun () -> Block_c.take out))

let read_block_and_predecessors t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h ->
  let out = make Block_c.tzs_block and preds = make C.tzs_bytes in
  found (Ffi.call (F.read_block_and_predecessors h hash (addr out) (addr preds)))
  |> Result.map
       (Option.map (fun () ->
            let b = Block_c.take out in
            (b, Block_c.take_hashes preds)))

let read_view reader t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> Block_c.read_view reader (fun r out -> Ffi.call (F.read_view h r hash out))

let length t = Handle.use t (fun h -> Ok (Unsigned.UInt64.to_int (F.len h)))

let fold t ~init ~f =
  (* The C iterator outlives the store handle: only its creation holds the
     handle, so [f] may call anything, [close] included. *)
  let created =
    Handle.use t @@ fun h ->
    let out = allocate F.it (from_voidp C.floating_iter null) in
    Result.map (fun () -> !@out) (Ffi.call (F.iter_new h out))
  in
  match created with
  | Error e -> Error e
  | Ok i ->
      Fun.protect
        ~finally:(fun () -> F.iter_free i)
        (fun () ->
          let out = make Block_c.tzs_block and preds = make C.tzs_bytes in
          let rec loop acc =
            match Ffi.call (F.iter_next i (addr out) (addr preds)) with
            | Ok () ->
                let b = Block_c.take out in
                loop (f acc b (Block_c.take_hashes preds))
            | Error { Error.status = Error.Done; _ } -> Ok acc
            | Error e -> Error e
          in
          loop init)

let iter t f = fold t ~init:() ~f:(fun () b preds -> f b preds)
let close = Handle.close
