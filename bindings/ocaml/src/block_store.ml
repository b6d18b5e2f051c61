open Ctypes
module B = C.Block_store

type t = C.block_store_s structure ptr Handle.t
type history_mode = Archive | Full | Rolling

(* TZS_HISTORY_* *)
let mode_code = function Archive -> 0 | Full -> 1 | Rolling -> 2

let mode_of_code = function 0 -> Some Archive | 1 -> Some Full | 2 -> Some Rolling | _ -> None

(* [with_options ... f] runs [f opts] with a C [tzs_block_store_options]
   (ctypes-managed C memory, alive during [f]). *)
let with_options ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size
    ?zstd_level f =
  let o = B.options_default () in
  setf o C.o_flags (Ffi.flags ?readonly ?no_fsync ());
  Option.iter (fun m -> setf o C.o_history_mode (Unsigned.UInt32.of_int (mode_code m))) history_mode;
  Option.iter (fun n -> setf o C.o_history_offset (Unsigned.UInt32.of_int n)) history_offset;
  Option.iter (fun n -> setf o C.o_workers (Unsigned.UInt32.of_int n)) workers;
  Option.iter (fun n -> setf o C.o_index_log_size (Unsigned.UInt64.of_int n)) index_log_size;
  Option.iter (fun n -> setf o C.o_zstd_level (Int32.of_int n)) zstd_level;
  let r = f (addr o) in
  ignore (Sys.opaque_identity o);
  r

let open_with ~what dir call = Ffi.open_handle ~what:("block store " ^ what) ~close:B.close C.block_store (call dir)

let open_ ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level dir =
  Ffi.with_path dir @@ fun dir ->
  with_options ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level
  @@ fun o -> open_with ~what:dir dir (fun dir -> B.open_ dir o)

let create ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level ~genesis dir =
  Ffi.with_path dir @@ fun dir ->
  Block_c.with_block genesis @@ fun g ->
  with_options ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level
  @@ fun o -> open_with ~what:dir dir (fun dir -> B.create dir o g)

let load ?readonly ?no_fsync ?workers ?index_log_size ?zstd_level ~genesis_hash dir =
  Ffi.with_path dir @@ fun dir ->
  Block_c.with_hash "genesis hash" genesis_hash @@ fun g ->
  with_options ?readonly ?no_fsync ?workers ?index_log_size ?zstd_level
  @@ fun o -> open_with ~what:dir dir (fun dir -> B.load dir o g)

let store ?(flush = true) ?context t b =
  Block_c.with_block b @@ fun cb ->
  match context with
  | None -> Handle.use t (fun h -> Ffi.call (B.store h cb flush))
  | Some c ->
      Block_c.with_context c @@ fun c ->
      Handle.use t (fun h -> Ffi.call (B.store_with_context h cb c flush))

let resulting_context_hash t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t @@ fun h -> Block_c.found_hash (B.resulting_context_hash h hash)

let flush t = Handle.use t (fun h -> Ffi.call (B.flush h))

let mem t hash =
  Block_c.with_hash "hash" hash @@ fun hash ->
  Handle.use t (fun h -> Ffi.found (Ffi.call (B.mem h hash))) |> Result.map Option.is_some

let read_into call =
  let out = make Block_c.tzs_block in
  Ffi.found (call (addr out)) |> Result.map (Option.map (fun () -> Block_c.take out))

let read ?(distance = 0) ?(metadata = true) t hash =
  if distance < 0 then
    Error { Error.status = Error.Invalid_argument; message = "distance must not be negative" }
  else
    Block_c.with_hash "hash" hash @@ fun hash ->
    Handle.use t @@ fun h ->
    read_into (fun out ->
        Ffi.call (B.read h hash (Unsigned.UInt32.of_int distance) metadata out))

let read_by_level ?(metadata = true) t level =
  Handle.use t @@ fun h -> read_into (fun out -> Ffi.call (B.read_by_level h level metadata out))

let read_view ?(distance = 0) ?(metadata = true) reader t hash =
  if distance < 0 then
    Error { Error.status = Error.Invalid_argument; message = "distance must not be negative" }
  else
    Block_c.with_hash "hash" hash @@ fun hash ->
    Handle.use t @@ fun h ->
    Block_c.read_view reader (fun r out ->
        Ffi.call (B.read_view h r hash (Unsigned.UInt32.of_int distance) metadata out))

let read_by_level_view ?(metadata = true) reader t level =
  Handle.use t @@ fun h ->
  Block_c.read_view reader (fun r out -> Ffi.call (B.read_by_level_view h r level metadata out))

let merge ?max_op_ttl t ~head ~chunk_ends =
  Block_c.with_hash "head" head @@ fun head ->
  match max_op_ttl with
  | Some n when n < 0 ->
      Error { Error.status = Error.Invalid_argument; message = "max_op_ttl must not be negative" }
  | _ ->
      let n = List.length chunk_ends in
      let ends = CArray.of_list int32_t (if n = 0 then [ 0l ] else chunk_ends) in
      let size = Unsigned.Size_t.of_int n in
      let r =
        Handle.use t (fun h ->
            match max_op_ttl with
            | None -> Ffi.call (B.merge h head (CArray.start ends) size)
            | Some ttl ->
                Ffi.call
                  (B.merge_preserving h head (CArray.start ends) size (Unsigned.UInt32.of_int ttl)))
      in
      ignore (Sys.opaque_identity ends);
      r

type descr = Block.hash * int32

let read_descr call t =
  Handle.use t @@ fun h ->
  let out = make C.tzs_descr in
  Ffi.found (Ffi.call (call h (addr out)))
  |> Result.map
       (Option.map (fun () -> (Block_c.string_of_hash (getf out C.descr_hash), getf out C.descr_level)))

let genesis = read_descr B.genesis
let savepoint = read_descr B.savepoint
let caboose = read_descr B.caboose

let write_descr call t (hash, level) =
  Block_c.with_hash "hash" hash @@ fun hash ->
  let d = make C.tzs_descr in
  setf d C.descr_hash (Block_c.hash_array hash);
  setf d C.descr_level level;
  let r = Handle.use t (fun h -> Ffi.call (call h (addr d))) in
  ignore (Sys.opaque_identity d);
  r

let write_savepoint = write_descr B.write_savepoint
let write_caboose = write_descr B.write_caboose

type merge_status = Not_running | Running | Merge_failed of Error.t

let merge_status t =
  Handle.use t @@ fun h ->
  let state = allocate C.merge_state Unsigned.UInt32.zero in
  let failure = allocate (ptr C.error) (from_voidp C.error null) in
  Ffi.call (B.merge_status h state failure)
  |> Result.map (fun () ->
         match Unsigned.UInt32.to_int !@state with
         | 1 -> Running
         | 2 ->
             let e = !@failure in
             if is_null e then
               Merge_failed { Error.status = Error.Unknown 0; message = "merge failed" }
             else
               let status = Error.status_of_code (Unsigned.UInt32.to_int (C.error_code e)) in
               let message = C.error_message e in
               C.error_free e;
               Merge_failed { Error.status; message }
         | _ -> Not_running)

let history t =
  Handle.use t @@ fun h ->
  let mode = allocate C.history_mode Unsigned.UInt32.zero in
  let offset = allocate uint32_t Unsigned.UInt32.zero in
  Result.bind (Ffi.call (B.history h mode offset)) (fun () ->
      match mode_of_code (Unsigned.UInt32.to_int !@mode) with
      | Some m -> Ok (m, Unsigned.UInt32.to_int !@offset)
      | None ->
          Error
            {
              Error.status = Error.Invalid_argument;
              message = Printf.sprintf "unknown history mode %d" (Unsigned.UInt32.to_int !@mode);
            })

let switch_history_mode ?(max_op_ttl = 0) t ~head mode ~offset =
  Block_c.with_hash "head" head @@ fun head ->
  if offset < 0 || max_op_ttl < 0 then
    Error { Error.status = Error.Invalid_argument; message = "offset and max_op_ttl must not be negative" }
  else
    let u32 = Unsigned.UInt32.of_int in
    Handle.use t (fun h ->
        Ffi.call (B.switch_history_mode h head (u32 (mode_code mode)) (u32 offset) (u32 max_op_ttl)))

let sync t =
  Handle.use t @@ fun h ->
  let changed = allocate bool false in
  Result.map (fun () -> !@changed) (Ffi.call (B.sync h changed))

let await_merge t = Handle.use t (fun h -> Ffi.call (B.await_merge h))

type stats = {
  cemented_lowest : int32 option;
  cemented_highest : int32 option;
  cemented_blocks : int;
  floating_blocks : int;
  bytes_on_disk : int;
  merges_done : int;
  last_merge_ms : int;
  merging : bool;
}

let stats t =
  Handle.use t @@ fun h ->
  let out = make C.tzs_stats in
  Ffi.call (B.read_stats h (addr out))
  |> Result.map (fun () ->
         let level f = match getf out f with -1l -> None | l -> Some l in
         let count f = Unsigned.UInt64.to_int (getf out f) in
         {
           cemented_lowest = level C.s_cemented_lowest;
           cemented_highest = level C.s_cemented_highest;
           cemented_blocks = count C.s_cemented_blocks;
           floating_blocks = count C.s_floating_blocks;
           bytes_on_disk = count C.s_bytes_on_disk;
           merges_done = count C.s_merges_done;
           last_merge_ms = count C.s_last_merge_ms;
           merging = getf out C.s_merging;
         })

let check ?(repair = false) t = Handle.use t (fun h -> Ffi.call (B.check h repair))
let close = Handle.close
