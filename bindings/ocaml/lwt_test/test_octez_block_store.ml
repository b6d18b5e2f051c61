(* Tzstore_lwt.Octez: Floating_block_store, Cemented_block_store and
   Block_store with Octez's names, used as an Octez node would, with Lwt
   callbacks in the folds. *)

open Lwt.Syntax
open Tzstore_lwt.Octez
module Error = Tzstore.Error

open Util
let hash_of n = String.init 32 (fun i -> Char.chr (if i < 2 then (n lsr (8 * i)) land 255 else (n + i) land 255))

let block_of n =
  {
    Tzstore.Block.hash = hash_of n;
    level = Int32.of_int n;
    predecessor = hash_of (max 0 (n - 1));
    contents = Printf.sprintf "contents %d" n;
    metadata = Some (Printf.sprintf "metadata %d" n);
  }

let floating root =
  let* fs = Floating_block_store.init ~chain_dir:(Filename.concat root "floating") ~readonly:false Floating_block_store.RW in
  let fs = ok "init floating" fs in
  let rec go i =
    if i = 20 then Lwt.return_unit
    else
      let preds = if i = 0 then [] else [ hash_of (i - 1) ] in
      let* r = Floating_block_store.append_block ~flush:(i = 19) fs preds (block_of i) in
      ok "append_block" r;
      go (i + 1)
  in
  let* () = go 0 in
  let* r = Floating_block_store.mem fs (hash_of 7) in
  check "mem" (ok "mem" r);
  let* r = Floating_block_store.find_predecessors fs (hash_of 7) in
  check "find_predecessors" (ok "find_predecessors" r = Some [ hash_of 6 ]);
  let* r = Floating_block_store.read_block fs (hash_of 7) in
  check "read_block" (ok "read_block" r = Some (block_of 7));
  (* An Lwt fold: a pause inside f shows f runs on the scheduler. *)
  let* r =
    Floating_block_store.fold_left_s
      (fun n b ->
        let* () = Lwt.pause () in
        Lwt.return_ok (n + Int32.to_int b.Tzstore.Block.level))
      0 fs
  in
  check "fold_left_s sums the levels" (ok "fold" r = 190);
  let* r =
    Floating_block_store.fold_left_with_pred_s
      (fun n (_, preds) -> Lwt.return_ok (n + List.length preds))
      0 fs
  in
  check "fold_left_with_pred_s" (ok "fold with preds" r = 19);
  (* An error from f stops the walk and is returned. *)
  let seen = ref 0 in
  let* r =
    Floating_block_store.iter_s
      (fun _ ->
        incr seen;
        if !seen = 5 then Lwt.return_error { Error.status = Error.Inconsistent; message = "stop" }
        else Lwt.return_ok ())
      fs
  in
  check "iter_s stops at f's error" (Result.is_error r && !seen = 5);
  Floating_block_store.close fs

let cemented root =
  let* cs = Cemented_block_store.init (Filename.concat root "cemented") in
  let cs = ok "init cemented" cs in
  let blocks = List.init 10 block_of in
  let* r = Cemented_block_store.cement_blocks cs ~write_metadata:true blocks in
  ok "cement_blocks" r;
  let* r = Cemented_block_store.cemented_blocks_files cs in
  check "one chunk" (ok "files" r = [ { Cemented_block_store.start_level = 0l; end_level = 9l } ]);
  let* r = Cemented_block_store.get_cemented_block_level cs (hash_of 4) in
  check "get_cemented_block_level" (ok "level" r = Some 4l);
  let* r = Cemented_block_store.get_cemented_block_hash cs 4l in
  check "get_cemented_block_hash" (ok "hash" r = Some (hash_of 4));
  let* r = Cemented_block_store.is_cemented cs (hash_of 11) in
  check "is_cemented" (ok "is_cemented" r = false);
  let* r = Cemented_block_store.get_cemented_block_by_level cs ~read_metadata:true 3l in
  check "by level" (ok "by level" r = Some (block_of 3));
  let* r = Cemented_block_store.read_block_metadata cs 3l in
  check "read_block_metadata" (ok "metadata" r = Some "metadata 3");
  let n = ref 0 in
  let* r =
    Cemented_block_store.iter_cemented_file
      (fun b ->
        if b.Tzstore.Block.level = Int32.of_int !n then incr n;
        Lwt.return_ok ())
      cs { Cemented_block_store.start_level = 0l; end_level = 9l }
  in
  ok "iter_cemented_file" r;
  check "iter_cemented_file in level order" (!n = 10);
  let* r = Cemented_block_store.iter_cemented_file (fun _ -> Lwt.return_ok ()) cs { start_level = 10l; end_level = 19l } in
  check "an unknown chunk is Not_found"
    (match r with Error e -> e.Error.status = Error.Not_found | Ok () -> false);
  let* r = Cemented_block_store.check_indexes_consistency cs in
  ok "check_indexes_consistency" r;
  Cemented_block_store.close cs

let block_store root =
  let* bs = Block_store.load ~history_mode:Tzstore.Block_store.Archive (Filename.concat root "blocks") in
  let bs = ok "load" bs in
  let rec go i =
    if i = 60 then Lwt.return_unit
    else
      let* r = Block_store.store_block ~flush:(i mod 10 = 9) bs (block_of i) in
      ok "store_block" r;
      go (i + 1)
  in
  let* () = go 0 in
  let* r = Block_store.read_block ~read_metadata:true bs (Block (hash_of 59, 10)) in
  check "read_block by distance" (ok "read_block" r = Some (block_of 49));
  let* r = Block_store.mem bs (Block (hash_of 59, 100)) in
  check "mem past genesis" (ok "mem" r = false);
  let* r = Block_store.merge_stores bs ~head:(hash_of 59) ~chunk_ends:[ 19l; 39l ] in
  ok "merge_stores" r;
  let* r = Block_store.await_merging bs in
  ok "await_merging" r;
  let* r = Block_store.read_block_metadata bs (Block (hash_of 20, 0)) in
  check "metadata of a cemented block" (ok "metadata" r = Some "metadata 20");
  Block_store.close bs

let () =
  let root =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "tzstore-octez-%d" (Unix.getpid ()))
  in
  Unix.mkdir root 0o755;
  Lwt_main.run
    (let* () = floating root in
     let* () = cemented root in
     block_store root);
  ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote root)));
  finish "Octez block stores"
