open Ctypes
module Ce = C.Cemented

type t = C.cemented_s structure ptr Handle.t
type chunk = { start_level : int32; end_level : int32 }

let open_ ?readonly ?no_fsync ?(log_size = 0) dir =
  Ffi.with_path dir @@ fun dir ->
  Ffi.open_handle ~what:("cemented store " ^ dir) ~close:Ce.close C.cemented
    (Ce.open_ dir (Ffi.flags ?readonly ?no_fsync ()) (Unsigned.UInt64.of_int log_size))

let level_call f t =
  Handle.use t @@ fun h ->
  let out = allocate int32_t 0l in
  Ffi.found (Ffi.call (f h out)) |> Result.map (Option.map (fun () -> !@out))

let lowest_level = level_call Ce.lowest_level
let highest_level = level_call Ce.highest_level

let level_of t hash =
  Block_c.with_hash "hash" hash @@ fun hash -> level_call (fun h out -> Ce.level_of h hash out) t

let hash_of t level = Handle.use t @@ fun h -> Block_c.found_hash (Ce.hash_of h level)

let resulting_context_hash t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> Block_c.found_hash (Ce.resulting_context_hash h hash)

let read_into call =
  let out = make Block_c.tzs_block in
  Ffi.found (call (addr out)) |> Result.map (Option.map (fun () -> Block_c.take out))

let read_by_level ?(metadata = true) t level =
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (Ce.read_by_level h level metadata out))

let read_by_hash ?(metadata = true) t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (Ce.read_by_hash h hash metadata out))

let read_view_by_level ?(metadata = true) reader t level =
  Handle.use t @@ fun h ->
  Block_c.read_view reader (fun r out -> Ffi.call (Ce.read_view_by_level h r level metadata out))

let read_metadata t level =
  Handle.use t @@ fun h -> Ffi.call_bytes (Ce.read_metadata h level)

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
  Handle.use t (fun h -> Ffi.call (Ce.cement h p n write_metadata check_consistency))

let chunk_of c = { start_level = getf c C.chunk_start; end_level = getf c C.chunk_end }

module Chunk_writer = struct
  (* The C writer takes one call at a time (tzs_chunk_writer_push borrows
     it mutably): [lock] serialises pushes from several threads, and the
     handle makes calls after commit or abort fail with [Closed]. Its
     finaliser aborts a writer never ended, which releases the store's
     write lock and removes the chunk's temporary files. *)
  type t = { h : C.chunk_writer_s structure ptr Handle.t; lock : Mutex.t }

  let create ~what w = { h = Handle.create ~what ~close:Ce.writer_abort w; lock = Mutex.create () }

  let locked t f =
    Mutex.lock t.lock;
    Fun.protect ~finally:(fun () -> Mutex.unlock t.lock) f

  let push ?context t b =
    Block_c.with_block b @@ fun cb ->
    let push w =
      match context with
      | None -> Ffi.call (Ce.writer_push w cb)
      | Some c -> Block_c.with_context c (fun c -> Ffi.call (Ce.writer_push_with_context w cb c))
    in
    Handle.use t.h (fun w -> locked t (fun () -> push w))

  let commit t =
    match Handle.take t.h with
    | None -> Error { Error.status = Error.Closed; message = t.h.Handle.what ^ " is closed" }
    | Some w ->
        let out = make C.tzs_chunk in
        Ffi.call (Ce.writer_commit w (addr out)) |> Result.map (fun () -> chunk_of out)

  let abort t = Handle.close t.h
end

let begin_chunk ?(write_metadata = true) ?(check_consistency = true) t chunk =
  let what = Printf.sprintf "chunk writer of levels %ld..%ld" chunk.start_level chunk.end_level in
  Handle.use t @@ fun h ->
  let out = allocate Ce.w (from_voidp C.chunk_writer null) in
  Ffi.call
    (Ce.begin_chunk h chunk.start_level chunk.end_level write_metadata check_consistency out)
  |> Result.map (fun () -> Chunk_writer.create ~what !@out)

let cement_metadata t blocks =
  with_blocks blocks @@ fun p n ->
  Handle.use t @@ fun h ->
  let out = make C.tzs_chunk in
  Ffi.call (Ce.cement_metadata h p n (addr out)) |> Result.map (fun () -> chunk_of out)

let list_call f t =
  Handle.use t @@ fun h ->
  let out = allocate Ce.list (from_voidp C.chunk_list null) in
  Ffi.call (f h out)
  |> Result.map (fun () ->
         let l = !@out in
         let n = Unsigned.Size_t.to_int (Ce.list_len l) in
         let chunks =
           List.init n (fun i ->
               chunk_of (Ce.list_get l (Unsigned.Size_t.of_int i)))
         in
         Ce.list_free l;
         chunks)

let chunks = list_call Ce.chunks
let metadata_chunks = list_call Ce.metadata_chunks

let find_chunk t level =
  Handle.use t @@ fun h ->
  let out = make C.tzs_chunk in
  Ffi.found (Ffi.call (Ce.find_chunk h level (addr out)))
  |> Result.map (Option.map (fun () -> chunk_of out))

let gc t ~mode ~offset =
  let mode = match mode with Block_store.Archive -> 0 | Full -> 1 | Rolling -> 2 in
  Handle.use t (fun h ->
      Ffi.call (Ce.gc h (Unsigned.UInt32.of_int mode) (Unsigned.UInt32.of_int offset)))

let check_consistency ?genesis t =
  let run g = Handle.use t (fun h -> Ffi.call (Ce.check_consistency h g)) in
  match genesis with None -> run None | Some g -> Block_c.with_hash "genesis" g (fun g -> run (Some g))

let fold ?(metadata = true) t chunk ~init ~f =
  (* The C iterator must not outlive the store: the whole fold holds the
     handle, so [f] must not close the store. *)
  Handle.use t @@ fun h ->
  let ch = make C.tzs_chunk in
  setf ch C.chunk_start chunk.start_level;
  setf ch C.chunk_end chunk.end_level;
  let out = allocate Ce.it (from_voidp C.cemented_iter null) in
  match Ffi.found (Ffi.call (Ce.iter_new h ch metadata out)) with
  | Error e -> Error e
  | Ok None -> Ok None
  | Ok (Some ()) ->
      let i = !@out in
      Fun.protect
        ~finally:(fun () -> Ce.iter_free i)
        (fun () ->
          let b = make Block_c.tzs_block in
          let rec loop acc =
            match Ffi.call (Ce.iter_next i (addr b)) with
            | Ok () -> loop (f acc (Block_c.take b))
            | Error { Error.status = Error.Done; _ } -> Ok (Some acc)
            | Error e -> Error e
          in
          loop init)

let iter ?metadata t chunk f =
  fold ?metadata t chunk ~init:() ~f:(fun () b -> f b) |> Result.map Option.is_some

let set_zstd_level t level =
  Handle.use t (fun h -> Ffi.call (Ce.set_zstd_level h (Int32.of_int level)))

let sync t = Handle.use t (fun h -> Ffi.call (Ce.sync h))
let close = Handle.close
