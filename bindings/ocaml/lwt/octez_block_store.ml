(* The block stores with the names, labels and result shapes of Octez's
   src/lib_store/unix/{floating,cemented}_block_store.mli and block_store.mli,
   on tzstore.lwt, covering what the C API offers (see tzstore_lwt.ml's
   documentation of these modules). Folds and iterations take Lwt
   functions: the store is walked on a pool thread, and each block is
   handed to [f] on the scheduler's thread (Lwt_preemptive.run_in_main), one
   at a time, so memory stays bounded and [f] may use Lwt. *)

open Lwt.Syntax
module T = Tzstore
module E = Tzstore.Error

type error = E.t

let detach = Pool.detach

(* Runs the synchronous fold [fold f_sync] on a pool thread, where
   [f_sync acc x] waits for the Lwt function [f acc x] on the main thread.
   The first error [f] returns stops the walk (raised through the fold, as
   the synchronous folds re-raise their callback's exceptions). *)
exception Stop of error

(* The context hash of a block just walked: the index holds one for every
   stored block. *)
let context_of_walked read t (b : T.Block.t) =
  match read t b.hash with
  | Ok (Some c) -> c
  | Ok None -> raise (Stop { E.status = E.Corrupted; message = "a stored block has no index entry" })
  | Error e -> raise (Stop e)

let fold_lwt fold f init =
  let step acc x =
    match Lwt_preemptive.run_in_main (fun () -> f acc x) with Ok acc -> acc | Error e -> raise (Stop e)
  in
  detach (fun () -> try fold ~init ~f:step with Stop e -> Error e)

module Floating_block_store = struct
  type t = T.Floating.t
  type floating_kind = RO | RW | RW_TMP | RO_TMP | Restore

  (* Octez's info: what the index holds besides the block's offset. *)
  type info = { predecessors : T.Block.hash list; resulting_context_hash : string }

  let to_kind = function
    | RO -> T.Floating.Ro
    | RW -> T.Floating.Rw
    | RW_TMP -> T.Floating.Rw_tmp
    | RO_TMP -> T.Floating.Ro_tmp
    | Restore -> T.Floating.Restore

  let init ~chain_dir ~readonly kind =
    detach (fun () -> T.Floating.open_ ~readonly ~kind:(to_kind kind) chain_dir)

  let mem t h = detach (fun () -> T.Floating.mem t h)
  let find_predecessors t h = detach (fun () -> T.Floating.find_predecessors t h)
  let read_block t h = detach (fun () -> T.Floating.read_block t h)
  let read_block_and_predecessors t h = detach (fun () -> T.Floating.read_block_and_predecessors t h)

  let find_resulting_context_hash t h = detach (fun () -> T.Floating.resulting_context_hash t h)

  let find_info t h =
    detach (fun () ->
        match T.Floating.find_predecessors t h with
        | Ok (Some predecessors) ->
            T.Floating.resulting_context_hash t h
            |> Result.map (Option.map (fun resulting_context_hash -> { predecessors; resulting_context_hash }))
        | Ok None -> Ok None
        | Error e -> Error e)

  let read_block_and_info t h =
    detach (fun () ->
        match T.Floating.read_block_and_predecessors t h with
        | Ok (Some (b, predecessors)) ->
            T.Floating.resulting_context_hash t h
            |> Result.map
                 (Option.map (fun resulting_context_hash -> (b, { predecessors; resulting_context_hash })))
        | Ok None -> Ok None
        | Error e -> Error e)

  (* Octez's [append_block t ?flush info block], with the info's two
     fields as arguments: [predecessors], and [resulting_context_hash]
     (32 bytes; left out, 32 zero bytes). *)
  let append_block ?(flush = true) ?resulting_context_hash t predecessors block =
    detach (fun () -> T.Floating.append ~flush ?context:resulting_context_hash t block predecessors)

  let fold_left_s f e t = fold_lwt (fun ~init ~f -> T.Floating.fold t ~init ~f:(fun a b _ -> f a b)) f e

  let fold_left_with_pred_s f e t =
    fold_lwt (fun ~init ~f -> T.Floating.fold t ~init ~f:(fun a b p -> f a (b, p))) f e

  let fold_left_with_info_s f e t =
    fold_lwt
      (fun ~init ~f ->
        T.Floating.fold t ~init ~f:(fun a b predecessors ->
            let resulting_context_hash = context_of_walked T.Floating.resulting_context_hash t b in
            f a (b, { predecessors; resulting_context_hash })))
      f e

  let iter_s f t = fold_left_s (fun () b -> f b) () t
  let iter_with_pred_s f t = fold_left_with_pred_s (fun () bp -> f bp) () t
  let iter_with_info_s f t = fold_left_with_info_s (fun () bi -> f bi) () t
  let close t = detach (fun () -> T.Floating.close t)
end

module Cemented_block_store = struct
  type t = T.Cemented.t
  type cemented_blocks_file = T.Cemented.chunk = { start_level : int32; end_level : int32 }

  let init ?(readonly = false) ?log_size cemented_blocks_dir =
    detach (fun () -> T.Cemented.open_ ~readonly ?log_size cemented_blocks_dir)

  let cemented_blocks_files t = detach (fun () -> T.Cemented.chunks t)
  let find_block_file t level = detach (fun () -> T.Cemented.find_chunk t level)
  let get_lowest_cemented_level t = detach (fun () -> T.Cemented.lowest_level t)
  let get_highest_cemented_level t = detach (fun () -> T.Cemented.highest_level t)
  let get_cemented_block_level t h = detach (fun () -> T.Cemented.level_of t h)
  let get_cemented_block_hash t l = detach (fun () -> T.Cemented.hash_of t l)
  let is_cemented t h = Lwt.map (Result.map Option.is_some) (get_cemented_block_level t h)

  let get_cemented_block_by_level t ~read_metadata l =
    detach (fun () -> T.Cemented.read_by_level ~metadata:read_metadata t l)

  let get_cemented_block_by_hash ~read_metadata t h =
    detach (fun () -> T.Cemented.read_by_hash ~metadata:read_metadata t h)

  let read_block_metadata t l = detach (fun () -> T.Cemented.read_metadata t l)

  (* Octez's chunk_iterator: the chunk's length and a lazy sequence of its
     blocks in level order, each with its resulting context hash (32
     bytes; [None]: 32 zero bytes). Octez's sequence yields encoded blocks
     that carry their context in the header; this library's blocks are
     opaque, so the hash comes beside each. *)
  type chunk_iterator = {
    chunk_length : int;
    reading_sequence : (T.Block.t * string option, error) result Lwt.t Seq.t;
  }

  let make_chunk_iterator blocks =
    {
      chunk_length = List.length blocks;
      reading_sequence = Seq.map (fun b -> Lwt.return_ok (b, None)) (List.to_seq blocks);
    }

  (* Streamed through a chunk writer, [push_batch] blocks at a time: each
     batch is pushed by one pool thread, since a thread hop per block
     costs about half the push itself; memory holds one batch, never the
     chunk. The chunk starts at the first block's level; a sequence error,
     a failed push or an exception aborts the writer, so nothing of the
     chunk stays. *)
  let push_batch = 64

  let cement_blocks ?(check_consistency = true) t ~write_metadata { chunk_length; reading_sequence } =
    let module W = T.Cemented.Chunk_writer in
    let invalid m = Lwt.return_error { E.status = E.Invalid_argument; message = "cement_blocks: " ^ m } in
    (* The next batch (reversed) and what follows it; [None] at the end. *)
    let rec fill batch n seq =
      if n = push_batch then Lwt.return_ok (batch, Some seq)
      else
        match seq () with
        | Seq.Nil -> Lwt.return_ok (batch, None)
        | Seq.Cons (next, rest) -> (
            let* next = next in
            match next with Error e -> Lwt.return_error e | Ok x -> fill (x :: batch) (n + 1) rest)
    in
    let write w first rest =
      let push_all batch =
        List.fold_right
          (fun (b, context) r -> Result.bind r (fun () -> W.push ?context w b))
          batch (Ok ())
      in
      let rec loop batch n seq =
        let* r = fill batch n seq in
        match r with
        | Error e -> Lwt.return_error e
        | Ok (batch, next) -> (
            let* r =
              detach (fun () ->
                  Result.bind (push_all batch) (fun () ->
                      match next with None -> Result.map ignore (W.commit w) | Some _ -> Ok ()))
            in
            match (r, next) with
            | Error e, _ -> Lwt.return_error e
            | Ok (), None -> Lwt.return_ok ()
            | Ok (), Some seq -> loop [] 0 seq)
      in
      let* r =
        Lwt.catch
          (fun () -> loop [ first ] 1 rest)
          (fun exn ->
            let* () = detach (fun () -> W.abort w) in
            Lwt.fail exn)
      in
      match r with
      | Ok () -> Lwt.return_ok ()
      | Error e ->
          (* A no-op if the commit already ended the writer. *)
          let* () = detach (fun () -> W.abort w) in
          Lwt.return_error e
    in
    if chunk_length < 1 then invalid (Printf.sprintf "chunk_length %d" chunk_length)
    else
      match reading_sequence () with
      | Seq.Nil -> invalid "an empty reading sequence"
      | Seq.Cons (first, rest) -> (
          let* first = first in
          match first with
          | Error e -> Lwt.return_error e
          | Ok ((b, _) as first) -> (
              let chunk =
                { start_level = b.T.Block.level; end_level = Int32.add b.level (Int32.of_int (chunk_length - 1)) }
              in
              let* w =
                detach (fun () -> T.Cemented.begin_chunk ~write_metadata ~check_consistency t chunk)
              in
              match w with Error e -> Lwt.return_error e | Ok w -> write w first rest))

  (* Octez's: nothing to do for no block, or blocks without metadata. *)
  let cement_blocks_metadata t blocks =
    if List.for_all (fun b -> b.T.Block.metadata = None) blocks then Lwt.return_ok ()
    else detach (fun () -> Result.map ignore (T.Cemented.cement_metadata t blocks))

  let trigger_gc t history_mode ~offset = detach (fun () -> T.Cemented.gc t ~mode:history_mode ~offset)

  let iter_cemented_file f ?(read_metadata = false) t file =
    let+ r =
      fold_lwt (fun ~init ~f -> T.Cemented.fold ~metadata:read_metadata t file ~init ~f) (fun () b -> f b) ()
    in
    (* The synchronous fold says [None] when the store has no such chunk. *)
    match r with
    | Ok (Some ()) -> Ok ()
    | Ok None ->
        Error
          {
            E.status = E.Not_found;
            message = Printf.sprintf "no cemented chunk %ld_%ld" file.start_level file.end_level;
          }
    | Error e -> Error e

  let check_indexes_consistency ?genesis t = detach (fun () -> T.Cemented.check_consistency ?genesis t)
  let close t = detach (fun () -> T.Cemented.close t)
end

module Block_store = struct
  type t = T.Block_store.t
  type key = Block of (T.Block.hash * int)

  (* Octez's block_descriptor. *)
  type block_descriptor = T.Block.hash * int32

  (* Octez's merge_status, with this library's error for the trace. *)
  type merge_status = Not_running | Running | Merge_failed of error

  (* Octez's Block_store_status: whether a merge runs. *)
  type status = Idle | Merging

  (* Octez's History_mode.t: the offset is in cycles (chunks) kept beyond
     the last preserved block; [None] is Octez's default, 1. *)
  module History_mode = struct
    type additional_cycles = { offset : int }
    type t = Archive | Full of additional_cycles option | Rolling of additional_cycles option

    let default_offset = 1

    let to_tzstore = function
      | Archive -> (T.Block_store.Archive, 0)
      | Full o -> (T.Block_store.Full, Option.fold ~none:default_offset ~some:(fun c -> c.offset) o)
      | Rolling o -> (T.Block_store.Rolling, Option.fold ~none:default_offset ~some:(fun c -> c.offset) o)

    let of_tzstore (mode, offset) =
      match mode with
      | T.Block_store.Archive -> Archive
      | T.Block_store.Full -> Full (Some { offset })
      | T.Block_store.Rolling -> Rolling (Some { offset })
  end

  let create ?history_mode ?history_offset chain_dir ~genesis_block =
    detach (fun () -> T.Block_store.create ?history_mode ?history_offset ~genesis:genesis_block chain_dir)

  (* Octez's [load chain_dir ~genesis_block ~readonly]. Without
     [genesis_block] it opens (read-write: creates) the store in
     [chain_dir] without checking its genesis; [history_mode] and
     [history_offset] then apply to a new store. *)
  let load ?(readonly = false) ?history_mode ?history_offset ?genesis_block chain_dir =
    detach (fun () ->
        match genesis_block with
        | Some g -> T.Block_store.load ~readonly ~genesis_hash:g.T.Block.hash chain_dir
        | None -> T.Block_store.open_ ~readonly ?history_mode ?history_offset chain_dir)

  let not_found what =
    Error { E.status = E.Not_found; message = Printf.sprintf "the block store holds no %s (no block)" what }

  let descriptor what read t =
    detach (fun () -> Result.bind (read t) (function Some d -> Ok d | None -> not_found what))

  (* Octez keeps the genesis block in memory; here it is read back. *)
  let genesis_block t =
    detach (fun () ->
        match T.Block_store.genesis t with
        | Error e -> Error e
        | Ok None -> not_found "genesis"
        | Ok (Some (hash, _)) -> (
            match T.Block_store.read t hash with
            | Ok (Some b) -> Ok b
            | Ok None -> not_found "genesis block"
            | Error e -> Error e))

  let savepoint t = descriptor "savepoint" T.Block_store.savepoint t
  let caboose t = descriptor "caboose" T.Block_store.caboose t
  let write_savepoint t d = detach (fun () -> T.Block_store.write_savepoint t d)
  let write_caboose t d = detach (fun () -> T.Block_store.write_caboose t d)

  let mem t (Block (h, offset)) =
    if offset = 0 then detach (fun () -> T.Block_store.mem t h)
    else Lwt.map (Result.map Option.is_some) (detach (fun () -> T.Block_store.read ~distance:offset ~metadata:false t h))

  let read_block ~read_metadata t (Block (h, offset)) =
    detach (fun () -> T.Block_store.read ~distance:offset ~metadata:read_metadata t h)

  let read_block_metadata t key =
    Lwt.map (Result.map (fun b -> Option.bind b (fun b -> b.T.Block.metadata))) (read_block ~read_metadata:true t key)

  (* Octez's [store_block block_store block resulting_context_hash], the
     hash (32 bytes) as an optional argument so that calls without it keep
     working; left out, the block has 32 zero bytes. *)
  let store_block ?flush ?resulting_context_hash t block =
    detach (fun () -> T.Block_store.store ?flush ?context:resulting_context_hash t block)

  (* Octez's [resulting_context_hash block_store
     ~fetch_expect_predecessor_context key] without the fetch: the hash is
     stored with cemented blocks too, so no successor's header is read.
     [None] when the block is unknown. *)
  let resulting_context_hash t (Block (h, distance)) =
    detach (fun () ->
        if distance = 0 then T.Block_store.resulting_context_hash t h
        else
          match T.Block_store.read ~distance ~metadata:false t h with
          | Ok (Some b) -> T.Block_store.resulting_context_hash t b.T.Block.hash
          | Ok None -> Ok None
          | Error e -> Error e)

  let flush t = detach (fun () -> T.Block_store.flush t)

  (* Octez's [merge_stores ~new_head ~new_head_metadata]: [head] is the
     new head, [chunk_ends] the cycles to cement (the last one is the
     head's last preserved block), [max_op_ttl] the new head's metadata's:
     that many blocks below the LPBL stay in the floating store with their
     metadata. *)
  let merge_stores t ~head ~chunk_ends ~max_op_ttl =
    detach (fun () -> T.Block_store.merge ~max_op_ttl t ~head ~chunk_ends)

  let await_merging t = detach (fun () -> T.Block_store.await_merge t)

  (* Never waits, as Octez's: answered on the scheduler's thread. *)
  let get_merge_status t =
    match T.Block_store.merge_status t with
    | Ok T.Block_store.Not_running -> Not_running
    | Ok T.Block_store.Running -> Running
    | Ok (T.Block_store.Merge_failed e) -> Merge_failed e
    | Error { E.status = E.Closed; _ } -> Not_running
    | Error e -> Merge_failed e

  let pp_merge_status fmt = function
    | Not_running -> Format.pp_print_string fmt "not running"
    | Running -> Format.pp_print_string fmt "running"
    | Merge_failed e -> Format.fprintf fmt "merge failed: %a" E.pp e

  let status t =
    Lwt.return (match get_merge_status t with Running -> Merging | Not_running | Merge_failed _ -> Idle)

  let history_mode t = Lwt.map (Result.map History_mode.of_tzstore) (detach (fun () -> T.Block_store.history t))

  (* Octez's [switch_history_mode ~current_head ~previous_history_mode
     ~new_history_mode]; the head's [max_op_ttl] (from its metadata in
     Octez) says how many blocks below its last preserved block stay.
     [previous_history_mode] must be the store's. *)
  let switch_history_mode ?(max_op_ttl = 0) t ~current_head ~previous_history_mode ~new_history_mode =
    detach (fun () ->
        match T.Block_store.history t with
        | Error e -> Error e
        | Ok (mode, offset)
          when let m, o = History_mode.to_tzstore previous_history_mode in
               m <> mode || (m <> T.Block_store.Archive && o <> offset) ->
            let name (m, o) =
              match m with
              | T.Block_store.Archive -> "archive"
              | T.Block_store.Full -> Printf.sprintf "full %d" o
              | T.Block_store.Rolling -> Printf.sprintf "rolling %d" o
            in
            Error
              {
                E.status = E.Inconsistent;
                message =
                  Printf.sprintf "switch_history_mode: previous_history_mode %s is not the store's (%s)"
                    (name (History_mode.to_tzstore previous_history_mode))
                    (name (mode, offset));
              }
        | Ok _ ->
            let mode, offset = History_mode.to_tzstore new_history_mode in
            T.Block_store.switch_history_mode ~max_op_ttl t ~head:current_head.T.Block.hash mode ~offset)

  (* Octez's [sync ~last_status t]: the handle catches up in place, so it
     is returned as is, with its status and a cleanup with nothing left to
     release. *)
  let sync ~last_status:_ t =
    let* r = detach (fun () -> T.Block_store.sync t) in
    match r with
    | Error e -> Lwt.return_error e
    | Ok _changed ->
        let+ status = status t in
        Ok (t, status, fun () -> Lwt.return_unit)

  let close t = detach (fun () -> T.Block_store.close t)
end
