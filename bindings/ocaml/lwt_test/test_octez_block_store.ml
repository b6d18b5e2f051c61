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

(* The resulting context hash of block n; every seventh block has none
   (32 zero bytes). *)
let context_of n = String.init 32 (fun i -> Char.chr ((n * 13 + i * 3 + 7) land 255))
let zeros = String.make 32 '\000'
let context n = if n mod 7 = 3 then None else Some (context_of n)
let expected n = Option.value (context n) ~default:zeros

let floating root =
  let* fs = Floating_block_store.init ~chain_dir:(Filename.concat root "floating") ~readonly:false Floating_block_store.RW in
  let fs = ok "init floating" fs in
  let rec go i =
    if i = 20 then Lwt.return_unit
    else
      let preds = if i = 0 then [] else [ hash_of (i - 1) ] in
      let* r =
        Floating_block_store.append_block ~flush:(i = 19) ?resulting_context_hash:(context i) fs preds
          (block_of i)
      in
      ok "append_block" r;
      go (i + 1)
  in
  let* () = go 0 in
  let* r = Floating_block_store.mem fs (hash_of 7) in
  check "mem" (ok "mem" r);
  let* r = Floating_block_store.find_predecessors fs (hash_of 7) in
  check "find_predecessors" (ok "find_predecessors" r = Some [ hash_of 6 ]);
  let* r = Floating_block_store.find_info fs (hash_of 7) in
  check "find_info"
    (ok "find_info" r = Some { Floating_block_store.predecessors = [ hash_of 6 ]; resulting_context_hash = context_of 7 });
  let* r = Floating_block_store.find_resulting_context_hash fs (hash_of 3) in
  check "appended without a context: zeros" (ok "find_resulting_context_hash" r = Some zeros);
  let* r = Floating_block_store.find_info fs (hash_of 99) in
  check "find_info of an unknown block" (ok "find_info" r = None);
  let* r = Floating_block_store.read_block_and_info fs (hash_of 8) in
  check "read_block_and_info"
    (ok "read_block_and_info" r
    = Some (block_of 8, { Floating_block_store.predecessors = [ hash_of 7 ]; resulting_context_hash = context_of 8 }));
  let* r =
    Floating_block_store.fold_left_with_info_s
      (fun n (b, info) ->
        let* () = Lwt.pause () in
        Lwt.return_ok
          (if info.Floating_block_store.resulting_context_hash = expected (Int32.to_int b.Tzstore.Block.level) then n + 1
           else n))
      0 fs
  in
  check "fold_left_with_info_s: every context" (ok "fold with info" r = 20);
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
  let* r =
    Cemented_block_store.cement_blocks cs ~write_metadata:true
      (Cemented_block_store.make_chunk_iterator blocks)
  in
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

(* A lazy reading sequence of the blocks a..b with their contexts: each
   element is made when cement_blocks asks for it, after a pause. *)
let reading_sequence ?(fail_at = -1) ?(raise_at = -1) ?(skip = -1) a b =
  Seq.map
    (fun n ->
      let* () = Lwt.pause () in
      if n = fail_at then Lwt.return_error { Error.status = Error.Io; message = "the source failed" }
      else if n = raise_at then Lwt.fail Exit
      else Lwt.return_ok (block_of n, context n))
    (Seq.filter (fun n -> n <> skip) (Seq.unfold (fun n -> if n > b then None else Some (n, n + 1)) a))

let streamed root =
  let module T = Tzstore_lwt.Cemented in
  let* cs = Cemented_block_store.init (Filename.concat root "streamed") in
  let cs = ok "init cemented" cs in
  let it a b = { Cemented_block_store.chunk_length = b - a + 1; reading_sequence = reading_sequence a b } in
  let* r = Cemented_block_store.cement_blocks cs ~write_metadata:true (it 0 99) in
  ok "cement_blocks 0..99 from a sequence" r;
  let* r = Cemented_block_store.cemented_blocks_files cs in
  check "one chunk of 100" (ok "files" r = [ { Cemented_block_store.start_level = 0l; end_level = 99l } ]);
  let* bad =
    Lwt_list.filter_s
      (fun n ->
        let* b = Cemented_block_store.get_cemented_block_by_level cs ~read_metadata:true (Int32.of_int n) in
        let+ c = T.resulting_context_hash cs (hash_of n) in
        not (b = Ok (Some (block_of n)) && c = Ok (Some (expected n))))
      (List.init 100 Fun.id)
  in
  check "the 100 blocks and their contexts read back" (bad = []);
  (* A failing source, an exception, a wrong block, a short sequence:
     each leaves nothing, and the writer's lock is released. *)
  let unchanged what =
    let+ r = Cemented_block_store.get_highest_cemented_level cs in
    check (what ^ ": nothing cemented") (ok "highest" r = Some 99l)
  in
  let* r =
    Cemented_block_store.cement_blocks cs ~write_metadata:true
      { (it 100 199) with reading_sequence = reading_sequence ~fail_at:150 100 199 }
  in
  expect_error "the source's error" Error.Io r;
  let* () = unchanged "a failing source" in
  let* r =
    Lwt.catch
      (fun () ->
        let+ _ =
          Cemented_block_store.cement_blocks cs ~write_metadata:true
            { (it 100 199) with reading_sequence = reading_sequence ~raise_at:120 100 199 }
        in
        false)
      (fun exn -> Lwt.return (exn = Exit))
  in
  check "an exception of the source is re-raised" r;
  let* () = unchanged "an exception" in
  let* r =
    Cemented_block_store.cement_blocks cs ~write_metadata:true
      { (it 100 199) with reading_sequence = reading_sequence ~skip:130 100 199 }
  in
  expect_error "a skipped level" Error.Inconsistent r;
  let* () = unchanged "a skipped level" in
  let* r =
    Cemented_block_store.cement_blocks cs ~write_metadata:true
      { (it 100 199) with reading_sequence = reading_sequence 100 149 }
  in
  expect_error "a sequence shorter than chunk_length" Error.Inconsistent r;
  let* () = unchanged "a short sequence" in
  let* r =
    Cemented_block_store.cement_blocks cs ~write_metadata:true { (it 100 199) with chunk_length = 0 }
  in
  expect_error "chunk_length 0" Error.Invalid_argument r;
  (* cement_blocks_metadata on a chunk cemented without metadata. *)
  let* r = Cemented_block_store.cement_blocks cs ~write_metadata:false (it 100 119) in
  ok "cement_blocks 100..119 without metadata" r;
  let* r = Cemented_block_store.read_block_metadata cs 105l in
  check "no metadata yet" (ok "read_block_metadata" r = None);
  let* r = Cemented_block_store.cement_blocks_metadata cs (List.init 20 (fun i -> block_of (100 + i))) in
  ok "cement_blocks_metadata" r;
  let* r = Cemented_block_store.read_block_metadata cs 105l in
  check "metadata written" (ok "read_block_metadata" r = Some "metadata 105");
  let* r = Cemented_block_store.cement_blocks_metadata cs [] in
  ok "cement_blocks_metadata of no block" r;
  (* The writer itself, through tzstore.lwt. *)
  let* w = T.begin_chunk cs { start_level = 120l; end_level = 129l } in
  let w = ok "begin_chunk" w in
  let* () =
    Lwt_list.iter_s
      (fun n ->
        let+ r = T.Chunk_writer.push ~context:(context_of n) w (block_of n) in
        ok "push" r)
      (List.init 10 (fun i -> 120 + i))
  in
  let* r = T.Chunk_writer.commit w in
  check "commit" (ok "commit" r = { start_level = 120l; end_level = 129l });
  let* () = T.Chunk_writer.abort w in
  let* r = T.resulting_context_hash cs (hash_of 125) in
  check "the writer's context" (ok "context" r = Some (context_of 125));
  let* w = T.begin_chunk cs { start_level = 130l; end_level = 139l } in
  let w = ok "begin_chunk" w in
  let* r = T.Chunk_writer.push w (block_of 130) in
  ok "push" r;
  let* () = T.Chunk_writer.abort w in
  let* r = Cemented_block_store.get_highest_cemented_level cs in
  check "abort leaves nothing" (ok "highest" r = Some 129l);
  let* r = Cemented_block_store.check_indexes_consistency cs in
  ok "check_indexes_consistency" r;
  Cemented_block_store.close cs

(* Resulting context hashes through Block_store: 61 blocks stored with
   them (some without), merged at [20; 40], all read back. *)
let contexts root =
  let* bs = Block_store.load ~history_mode:Tzstore.Block_store.Archive (Filename.concat root "contexts") in
  let bs = ok "load" bs in
  let* () =
    Lwt_list.iter_s
      (fun n ->
        let+ r = Block_store.store_block ?resulting_context_hash:(context n) bs (block_of n) in
        ok "store_block" r)
      (List.init 61 Fun.id)
  in
  let* r = Block_store.merge_stores bs ~head:(hash_of 60) ~chunk_ends:[ 20l; 40l ] ~max_op_ttl:0 in
  ok "merge_stores" r;
  let* r = Block_store.await_merging bs in
  ok "await_merging" r;
  let* bad =
    Lwt_list.filter_s
      (fun n ->
        let+ r = Block_store.resulting_context_hash bs (Block (hash_of n, 0)) in
        r <> Ok (Some (expected n)))
      (List.init 61 Fun.id)
  in
  check "the 61 contexts after the merge" (bad = []);
  let* r = Block_store.resulting_context_hash bs (Block (hash_of 60, 15)) in
  check "by distance" (ok "resulting_context_hash" r = Some (expected 45));
  let* r = Block_store.resulting_context_hash bs (Block (hash_of 60, 100)) in
  check "past genesis" (ok "resulting_context_hash" r = None);
  let* r = Block_store.resulting_context_hash bs (Block (hash_of 99, 0)) in
  check "unknown block" (ok "resulting_context_hash" r = None);
  Block_store.close bs

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
  let* r = Block_store.merge_stores bs ~head:(hash_of 59) ~chunk_ends:[ 19l; 39l ] ~max_op_ttl:0 in
  ok "merge_stores" r;
  let* r = Block_store.await_merging bs in
  ok "await_merging" r;
  let* r = Block_store.read_block_metadata bs (Block (hash_of 20, 0)) in
  check "metadata of a cemented block" (ok "metadata" r = Some "metadata 20");
  Block_store.close bs

(* Octez's test_full_0_merge and test_rolling_0_merge through the Octez
   names: ten 20-block cycles (levels 0..200) merged up to 180 with the new
   head's max_op_ttl 1. *)
let merged ~history_mode dir =
  let* bs =
    Block_store.create ~history_mode ~history_offset:0 dir ~genesis_block:(block_of 0)
  in
  let bs = ok "create" bs in
  let rec go n =
    if n > 200 then Lwt.return_unit
    else
      let* r = Block_store.store_block ~flush:(n = 200) bs (block_of n) in
      ok "store_block" r;
      go (n + 1)
  in
  let* () = go 1 in
  let* r =
    Block_store.merge_stores bs ~head:(hash_of 200) ~max_op_ttl:1
      ~chunk_ends:(List.init 9 (fun i -> Int32.of_int ((i + 1) * 20)))
  in
  ok "merge_stores" r;
  let* r = Block_store.await_merging bs in
  ok "await_merging" r;
  Lwt.return bs

(* The levels 0..200 whose block is not read back as [expect level] says:
   [`Absent], [`Bare] (no metadata) or [`Full]. *)
let mismatches bs expect =
  Lwt_list.filter_s
    (fun n ->
      let+ r = Block_store.read_block ~read_metadata:true bs (Block (hash_of n, 0)) in
      let got =
        match r with
        | Ok None -> `Absent
        | Ok (Some b) when b = block_of n -> `Full
        | Ok (Some b) when b = { (block_of n) with Tzstore.Block.metadata = None } -> `Bare
        | Ok (Some _) | Error _ -> `Wrong
      in
      got <> expect n)
    (List.init 201 Fun.id)

let descriptor n = (hash_of n, Int32.of_int n)

let chain root =
  let dir = Filename.concat root "full" in
  let* bs = merged ~history_mode:Tzstore.Block_store.Full dir in
  let* bad = mismatches bs (fun n -> if n < 179 then `Bare else `Full) in
  check "full 0: every block, metadata from 179" (bad = []);
  let* r = Block_store.savepoint bs in
  check "full 0: savepoint 179" (ok "savepoint" r = descriptor 179);
  let* r = Block_store.caboose bs in
  check "full 0: caboose 0" (ok "caboose" r = descriptor 0);
  let* r = Block_store.genesis_block bs in
  (* Below the savepoint: read back without its metadata. *)
  check "genesis_block" (ok "genesis_block" r = { (block_of 0) with Tzstore.Block.metadata = None });
  check "get_merge_status" (Block_store.get_merge_status bs = Block_store.Not_running);
  let* st = Block_store.status bs in
  check "status idle" (st = Block_store.Idle);
  let* r = Block_store.write_savepoint bs (descriptor 185) in
  ok "write_savepoint" r;
  let* r = Block_store.savepoint bs in
  check "savepoint written" (ok "savepoint" r = descriptor 185);
  let* r = Block_store.write_caboose bs (descriptor 190) in
  expect_error "caboose above the savepoint" Error.Invalid_argument r;
  let* r = Block_store.write_caboose bs (descriptor 5) in
  ok "write_caboose" r;
  let* r = Block_store.caboose bs in
  check "caboose written" (ok "caboose" r = descriptor 5);
  let* r = Block_store.write_caboose bs (descriptor 0) in
  ok "caboose back to genesis" r;
  let* r = Block_store.history_mode bs in
  check "history_mode" (ok "history_mode" r = Block_store.History_mode.Full (Some { offset = 0 }));
  (* Refused switches: to Archive; a wrong previous mode. *)
  let current_head = block_of 200 in
  let* r =
    Block_store.switch_history_mode ~max_op_ttl:1 bs ~current_head
      ~previous_history_mode:(Full (Some { offset = 0 })) ~new_history_mode:Archive
  in
  expect_error "full to archive" Error.Invalid_argument r;
  let* r =
    Block_store.switch_history_mode ~max_op_ttl:1 bs ~current_head ~previous_history_mode:Archive
      ~new_history_mode:(Rolling (Some { offset = 0 }))
  in
  expect_error "a wrong previous mode" Error.Inconsistent r;
  let* r =
    Block_store.switch_history_mode ~max_op_ttl:1 bs ~current_head
      ~previous_history_mode:(Full (Some { offset = 0 }))
      ~new_history_mode:(Rolling (Some { offset = 0 }))
  in
  ok "full 0 to rolling 0" r;
  let* r = Block_store.caboose bs in
  check "rolling 0 caboose after the switch" (ok "caboose" r = descriptor 179);
  let* bad = mismatches bs (fun n -> if n < 179 then `Absent else `Full) in
  check "rolling 0 after the switch" (bad = []);
  let* r =
    Block_store.switch_history_mode ~max_op_ttl:1 bs ~current_head
      ~previous_history_mode:(Rolling (Some { offset = 0 }))
      ~new_history_mode:(Full None)
  in
  expect_error "rolling to full" Error.Invalid_argument r;
  let* () = Block_store.close bs in
  (* create on a store, load with another genesis. *)
  let* r = Block_store.create dir ~genesis_block:(block_of 0) in
  expect_error "create on a populated directory" Error.Invalid_argument r;
  let* r = Block_store.load dir ~genesis_block:(block_of 3) ~readonly:false in
  expect_error "load with another genesis" Error.Inconsistent r;
  (* Rolling 0, and a read-only handle following the writer. *)
  let dir = Filename.concat root "rolling" in
  let* bs = merged ~history_mode:Tzstore.Block_store.Rolling dir in
  let* bad = mismatches bs (fun n -> if n < 179 then `Absent else `Full) in
  check "rolling 0: nothing below 179" (bad = []);
  let* r = Block_store.savepoint bs in
  check "rolling 0: savepoint 179" (ok "savepoint" r = descriptor 179);
  let* r = Block_store.caboose bs in
  check "rolling 0: caboose 179" (ok "caboose" r = descriptor 179);
  let* ro = Block_store.load dir ~genesis_block:(block_of 0) ~readonly:true in
  let ro = ok "load read-only" ro in
  let* r = Block_store.store_block bs (block_of 201) in
  ok "store 201" r;
  let* r = Block_store.mem ro (Block (hash_of 201, 0)) in
  check "not seen before sync" (ok "mem" r = false);
  let* r = Block_store.sync ~last_status:Block_store.Idle ro in
  let ro, status, cleanup = ok "sync" r in
  let* () = cleanup () in
  check "sync status" (status = Block_store.Idle);
  let* r = Block_store.mem ro (Block (hash_of 201, 0)) in
  check "seen after sync" (ok "mem" r = true);
  let* () = Block_store.close ro in
  (* A merge over a damaged floating entry: get_merge_status reports
     Merge_failed with the merge's error, as Octez's. *)
  let rec go n =
    if n > 230 then Lwt.return_unit
    else
      let* r = Block_store.store_block bs (block_of n) in
      ok "store_block" r;
      go (n + 1)
  in
  let* () = go 202 in
  let damage =
    Printf.sprintf
      "f=$(ls -d %s/floating/*/RW_floating_block_store 2>/dev/null | sort -V | tail -n 1); n=$(stat -c %%s \"$f\"); \
       printf '\\377\\377\\377\\377' | dd of=\"$f\" bs=1 seek=$((n - 200)) conv=notrunc status=none"
      (Filename.quote dir)
  in
  check "damage the RW floating store" (Sys.command damage = 0);
  let* r = Block_store.merge_stores bs ~head:(hash_of 230) ~chunk_ends:[ 210l ] ~max_op_ttl:1 in
  ok "merge_stores over damage" r;
  let* r = Block_store.await_merging bs in
  expect_error "the merge fails" Error.Corrupted r;
  (match Block_store.get_merge_status bs with
  | Block_store.Merge_failed e -> check "Merge_failed with the merge's error" (e.Error.status = Error.Corrupted)
  | Running | Not_running -> check "get_merge_status: expected Merge_failed" false);
  let* st = Block_store.status bs in
  check "status idle after a failed merge" (st = Block_store.Idle);
  Block_store.close bs

let () =
  let root =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "tzstore-octez-%d" (Unix.getpid ()))
  in
  Unix.mkdir root 0o755;
  Lwt_main.run
    (let* () = floating root in
     let* () = cemented root in
     let* () = streamed root in
     let* () = contexts root in
     let* () = block_store root in
     chain root);
  ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote root)));
  finish "Octez block stores"
