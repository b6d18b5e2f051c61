(* Tests of Tzstore.Block_store's chain bookkeeping, after Octez's
   test_block_store.ml (test_full_0_merge, test_rolling_0_merge): ten
   20-block cycles (levels 0..200) merged up to 180 with max_op_ttl 1 in
   FULL 0 and ROLLING 0; create/load with a genesis; savepoint and caboose
   reads and writes; history switches refused and accepted; merge status
   of a failed merge; a read-only handle following the writer with sync. *)

open Tzstore
open Util

let hash_of n = String.init 32 (fun i -> if i = 0 then Char.chr (n lsr 8) else if i = 1 then Char.chr (n land 255) else 'k')

let block_of n =
  {
    Block.hash = hash_of n;
    level = Int32.of_int n;
    predecessor = hash_of (max 0 (n - 1));
    contents = Printf.sprintf "contents %d" n;
    metadata = Some (Printf.sprintf "metadata %d" n);
  }

(* What the store holds of the block at a level. *)
type held = Absent | Without_metadata | With_metadata | Wrong

let held s n =
  match Block_store.read s (hash_of n) with
  | Ok None -> Absent
  | Ok (Some b) when b = block_of n -> With_metadata
  | Ok (Some b) when b = { (block_of n) with Block.metadata = None } -> Without_metadata
  | Ok (Some _) | Error _ -> Wrong

(* Levels 0..200 whose holding differs from [expected level]. *)
let mismatches s expected =
  List.filter (fun n -> held s n <> expected n) (List.init 201 Fun.id)

let check_levels name s expected =
  match mismatches s expected with
  | [] -> check name true
  | l -> check (Printf.sprintf "%s (wrong at %s)" name (String.concat "," (List.map string_of_int l))) false

(* Octez's chain: a store created with genesis 0, blocks 1..200, merged
   with chunk ends 20, 40, ..., 180 and max_op_ttl 1 (LPBL 180). *)
let merged mode d =
  let s =
    ok "create"
      (Block_store.create ~no_fsync:true ~history_mode:mode ~history_offset:0 ~genesis:(block_of 0) d)
  in
  for n = 1 to 200 do
    ok "store" (Block_store.store ~flush:false s (block_of n))
  done;
  ok "merge"
    (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of 200)
       ~chunk_ends:(List.init 9 (fun i -> Int32.of_int ((i + 1) * 20))));
  ok "await_merge" (Block_store.await_merge s);
  s

let descr n = Some (hash_of n, Int32.of_int n)

let test_full_0 root =
  let d = Filename.concat root "full" in
  let s = merged Block_store.Full d in
  check_levels "FULL 0 keeps every block, metadata from 179 up" s (fun n ->
      if n < 179 then Without_metadata else With_metadata);
  check "FULL 0 savepoint 179" (Block_store.savepoint s = Ok (descr 179));
  check "FULL 0 caboose 0" (Block_store.caboose s = Ok (descr 0));
  check "genesis" (Block_store.genesis s = Ok (descr 0));
  check "the cemented top keeps its metadata"
    (Block_store.read_by_level s 180l = Ok (Some (block_of 180)));
  check "history" (Block_store.history s = Ok (Block_store.Full, 0));
  check "merge status after a merge" (Block_store.merge_status s = Ok Block_store.Not_running);
  (* Savepoint and caboose writes, checked and durable. *)
  ignore
    (expect_error "caboose above the savepoint" Error.Invalid_argument
       (Block_store.write_caboose s (hash_of 190, 190l)));
  ok "write_savepoint" (Block_store.write_savepoint s (hash_of 190, 190l));
  check "savepoint written" (Block_store.savepoint s = Ok (descr 190));
  ignore
    (expect_error "savepoint at a wrong level" Error.Inconsistent
       (Block_store.write_savepoint s (hash_of 190, 191l)));
  ignore
    (expect_error "savepoint not stored" Error.Not_found
       (Block_store.write_savepoint s (hash_of 999, 999l)));
  ignore
    (expect_error "short hash" Error.Invalid_argument (Block_store.write_savepoint s ("short", 1l)));
  ok "write_caboose" (Block_store.write_caboose s (hash_of 10, 10l));
  check "caboose written" (Block_store.caboose s = Ok (descr 10));
  ok "write_caboose back" (Block_store.write_caboose s (hash_of 0, 0l));
  Block_store.close s;
  (* create refuses a populated directory; load checks the genesis. *)
  ignore
    (expect_error "create on a store" Error.Invalid_argument
       (Block_store.create ~genesis:(block_of 0) d));
  ignore
    (expect_error "load with another genesis" Error.Inconsistent
       (Block_store.load ~genesis_hash:(hash_of 7) d));
  ignore
    (expect_error "load of nothing" Error.Not_found
       (Block_store.load ~genesis_hash:(hash_of 0) (Filename.concat root "nothing")));
  let s = ok "load" (Block_store.load ~genesis_hash:(hash_of 0) d) in
  check "the savepoint write survived" (Block_store.savepoint s = Ok (descr 190));
  (* History switches: to ARCHIVE refused, naming both modes; FULL 0 to
     ROLLING 0 keeps the preserved blocks and above; ROLLING to FULL
     refused. *)
  let msg =
    expect_error "FULL to ARCHIVE" Error.Invalid_argument
      (Block_store.switch_history_mode ~max_op_ttl:1 s ~head:(hash_of 200) Block_store.Archive ~offset:0)
  in
  check "the refusal names the modes" (contains msg "full 0");
  ok "FULL 0 to ROLLING 0"
    (Block_store.switch_history_mode ~max_op_ttl:1 s ~head:(hash_of 200) Block_store.Rolling ~offset:0);
  check "history switched" (Block_store.history s = Ok (Block_store.Rolling, 0));
  check "caboose after the switch" (Block_store.caboose s = Ok (descr 179));
  check_levels "ROLLING 0 after the switch" s (fun n -> if n < 179 then Absent else With_metadata);
  ignore
    (expect_error "ROLLING to FULL" Error.Invalid_argument
       (Block_store.switch_history_mode ~max_op_ttl:1 s ~head:(hash_of 200) Block_store.Full ~offset:1));
  Block_store.close s;
  let s = ok "load after the switch" (Block_store.load ~genesis_hash:(hash_of 0) d) in
  check "the switch is persisted" (Block_store.history s = Ok (Block_store.Rolling, 0));
  Block_store.close s

let corrupt_last_floating_entry d =
  let cmd =
    Printf.sprintf
      "f=$(ls -d %s/floating/*/RW_floating_block_store 2>/dev/null | sort -V | tail -n 1); n=$(stat -c %%s \"$f\"); \
       printf '\\377\\377\\377\\377' | dd of=\"$f\" bs=1 seek=$((n - 200)) conv=notrunc status=none"
      (Filename.quote d)
  in
  Sys.command cmd = 0

let test_rolling_0 root =
  let d = Filename.concat root "rolling" in
  let s = merged Block_store.Rolling d in
  check_levels "ROLLING 0 drops the levels below 179" s (fun n ->
      if n < 179 then Absent else With_metadata);
  check "ROLLING 0 savepoint 179" (Block_store.savepoint s = Ok (descr 179));
  check "ROLLING 0 caboose 179" (Block_store.caboose s = Ok (descr 179));
  (match Block_store.stats s with
  | Ok st -> check "ROLLING 0 cements nothing" (st.Block_store.cemented_blocks = 0)
  | Error e -> check ("stats: " ^ Error.to_string e) false);
  (* A read-only handle follows the writer with sync. *)
  for n = 201 to 240 do
    ok "store" (Block_store.store s (block_of n))
  done;
  let r = ok "open read-only" (Block_store.open_ ~readonly:true d) in
  ignore (ok "sync" (Block_store.sync r));
  check "read-only sees the writer's blocks" (held r 240 = With_metadata && held r 179 = With_metadata);
  check "read-only sees the rolling GC" (held r 178 = Absent);
  ok "store 241" (Block_store.store s (block_of 241));
  check "not seen before sync" (held r 241 = Absent);
  check "sync: no manifest change" (Block_store.sync r = Ok false);
  check "seen after sync" (held r 241 = With_metadata);
  check "sync on a read-write handle" (Block_store.sync s = Ok false);
  ok "merge up to 220" (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of 241) ~chunk_ends:[ 220l ]);
  ok "await" (Block_store.await_merge s);
  check "sync sees the merge" (Block_store.sync r = Ok true);
  check "read-only savepoint moved" (Block_store.savepoint r = Ok (descr 219));
  check "read-only caboose moved" (Block_store.caboose r = Ok (descr 219));
  check "read-only reads above it" (held r 241 = With_metadata && held r 218 = Absent);
  Block_store.close r;
  (* A merge over a damaged floating entry fails; merge_status says so
     without waiting, with the merge's error. *)
  for n = 242 to 260 do
    ok "store" (Block_store.store s (block_of n))
  done;
  check "damage the RW floating store" (corrupt_last_floating_entry d);
  ok "merge over damage" (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of 260) ~chunk_ends:[ 240l ]);
  ignore (expect_error "the merge fails" Error.Corrupted (Block_store.await_merge s));
  (match Block_store.merge_status s with
  | Ok (Block_store.Merge_failed e) ->
      check "Merge_failed carries the merge's error" (e.Error.status = Error.Corrupted && e.Error.message <> "")
  | Ok _ -> check "merge_status: expected Merge_failed" false
  | Error e -> check ("merge_status: " ^ Error.to_string e) false);
  Block_store.close s;
  check "merge_status of a closed handle"
    (match Block_store.merge_status s with Error { Error.status = Error.Closed; _ } -> true | _ -> false)

let test_empty root =
  let s = ok "open" (Block_store.open_ ~no_fsync:true (Filename.concat root "empty")) in
  check "no genesis yet" (Block_store.genesis s = Ok None);
  check "no savepoint yet" (Block_store.savepoint s = Ok None);
  check "no caboose yet" (Block_store.caboose s = Ok None);
  ignore
    (expect_error "negative max_op_ttl" Error.Invalid_argument
       (Block_store.merge ~max_op_ttl:(-1) s ~head:(hash_of 0) ~chunk_ends:[ 0l ]));
  Block_store.close s

let run () =
  let root = dir () in
  test_empty root;
  test_full_0 root;
  test_rolling_0 root
