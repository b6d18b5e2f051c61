(* Tests of Tzstore.Block_store: options, a chain stored and read back by
   hash, distance and level (with and without metadata), not found, errors
   with their messages, merge + await_merge, stats, check, rolling history,
   read-only and close; and threads storing and reading while merges run. *)

open Tzstore
open Util

let hash_of n =
  String.init 32 (fun i ->
      Char.chr (if i < 3 then (n lsr (8 * i)) land 255 else ((n * 31) + (i * 7)) land 255))

(* Block n of a chain (0 is genesis, its own predecessor): contents hold a
   NUL byte, every third block has no metadata, block 4 has empty
   metadata. *)
let block_of n =
  {
    Block.hash = hash_of n;
    level = Int32.of_int n;
    predecessor = hash_of (max 0 (n - 1));
    contents = Printf.sprintf "block %d\000ops" n;
    metadata =
      (if n = 4 then Some ""
       else if n mod 3 = 0 then None
       else Some (String.make (100 + n) (Char.chr (n land 255))));
  }

let bare n = { (block_of n) with Block.metadata = None }

let open_rw ?(mode = Block_store.Archive) ?(offset = 1) d =
  ok "open" (Block_store.open_ ~no_fsync:true ~history_mode:mode ~history_offset:offset ~index_log_size:200 d)

let test_basics () =
  let d = Filename.concat (dir ()) "blocks" in
  let s = open_rw d in
  for i = 0 to 119 do
    ok "store" (Block_store.store s (block_of i))
  done;
  ok "store again" (Block_store.store s (block_of 5));
  check "mem" (Block_store.mem s (hash_of 119) = Ok true);
  check "mem missing" (Block_store.mem s (hash_of 4000) = Ok false);
  check "read" (Block_store.read s (hash_of 119) = Ok (Some (block_of 119)));
  check "empty metadata" (Block_store.read s (hash_of 4) = Ok (Some (block_of 4)));
  check "no metadata" (Block_store.read s (hash_of 3) = Ok (Some (bare 3)));
  check "distance 37" (Block_store.read ~distance:37 s (hash_of 119) = Ok (Some (block_of 82)));
  check "without metadata"
    (Block_store.read ~distance:37 ~metadata:false s (hash_of 119) = Ok (Some (bare 82)));
  check "down to genesis" (Block_store.read ~distance:119 s (hash_of 119) = Ok (Some (block_of 0)));
  check "past genesis" (Block_store.read ~distance:120 s (hash_of 119) = Ok None);
  check "unknown hash" (Block_store.read s (hash_of 4000) = Ok None);
  check "nothing cemented" (Block_store.read_by_level s 10l = Ok None);
  let msg =
    expect_error "orphan" Error.Inconsistent
      (Block_store.store s { (block_of 500) with Block.predecessor = hash_of 400 })
  in
  check "Inconsistent names the predecessor" (contains msg "predecessor");
  let msg = expect_error "second read-write open" Error.Locked (Block_store.open_ d) in
  check "Locked has a message" (msg <> "");
  ignore (expect_error "short hash" Error.Invalid_argument (Block_store.read s "short"));
  ignore (expect_error "negative distance" Error.Invalid_argument (Block_store.read ~distance:(-1) s (hash_of 1)));
  ignore
    (expect_error "ends not increasing" Error.Invalid_argument
       (Block_store.merge s ~head:(hash_of 119) ~chunk_ends:[ 39l; 19l ]));
  ignore
    (expect_error "no ends" Error.Invalid_argument (Block_store.merge s ~head:(hash_of 119) ~chunk_ends:[]));
  ignore
    (expect_error "unknown head" Error.Not_found
       (Block_store.merge s ~head:(hash_of 4000) ~chunk_ends:[ 19l ]));
  ignore
    (expect_error "bad zstd level" Error.Invalid_argument (Block_store.open_ ~zstd_level:99 (d ^ "-bad")));
  ignore
    (expect_error "read-only open of a missing store" Error.Not_found
       (Block_store.open_ ~readonly:true (d ^ "-missing")));
  ok "merge" (Block_store.merge s ~head:(hash_of 119) ~chunk_ends:[ 19l; 39l; 59l; 79l ]);
  for i = 120 to 139 do
    ok "store during merge" (Block_store.store s (block_of i))
  done;
  ok "await_merge" (Block_store.await_merge s);
  ok "await_merge again" (Block_store.await_merge s);
  (match Block_store.stats s with
  | Ok st ->
      check "cemented levels" (st.cemented_lowest = Some 0l && st.cemented_highest = Some 79l);
      (* 60 above the cemented top and the top itself, kept with its metadata. *)
      check "counts" (st.cemented_blocks = 80 && st.floating_blocks = 61);
      check "merge counters" (st.merges_done = 1 && (not st.merging) && st.bytes_on_disk > 0)
  | Error e -> check ("stats: " ^ Error.to_string e) false);
  check "read_by_level" (Block_store.read_by_level s 10l = Ok (Some (block_of 10)));
  check "read_by_level empty metadata" (Block_store.read_by_level s 4l = Ok (Some (block_of 4)));
  check "read_by_level no metadata" (Block_store.read_by_level s 3l = Ok (Some (bare 3)));
  check "read_by_level bare" (Block_store.read_by_level ~metadata:false s 10l = Ok (Some (bare 10)));
  check "level not cemented" (Block_store.read_by_level s 90l = Ok None);
  check "cemented by hash" (Block_store.read s (hash_of 10) = Ok (Some (block_of 10)));
  check "across the boundary" (Block_store.read ~distance:130 s (hash_of 139) = Ok (Some (block_of 9)));
  ok "check" (Block_store.check s);
  ok "check repair" (Block_store.check ~repair:true s);
  Block_store.close s;
  Block_store.close s;
  ignore (expect_error "read after close" Error.Closed (Block_store.read s (hash_of 1)));
  ignore (expect_error "stats after close" Error.Closed (Block_store.stats s));
  let ro = ok "open ro" (Block_store.open_ ~readonly:true d) in
  check "read-only reads" (Block_store.read ro (hash_of 139) = Ok (Some (block_of 139)));
  let msg = expect_error "read-only store" Error.Read_only (Block_store.store ro (block_of 140)) in
  check "Read_only has a message" (msg <> "");
  Block_store.close ro

let test_rolling () =
  let d = Filename.concat (dir ()) "rolling" in
  let s = open_rw ~mode:Block_store.Rolling ~offset:1 d in
  for i = 0 to 99 do
    ok "store" (Block_store.store s (block_of i))
  done;
  ok "merge" (Block_store.merge s ~head:(hash_of 99) ~chunk_ends:[ 19l; 39l; 59l; 79l ]);
  ok "await_merge" (Block_store.await_merge s);
  (match Block_store.stats s with
  | Ok st ->
      check "rolling keeps one chunk"
        (st.cemented_lowest = Some 60l && st.cemented_highest = Some 79l && st.cemented_blocks = 20)
  | Error e -> check ("stats: " ^ Error.to_string e) false);
  check "dropped level" (Block_store.read_by_level s 10l = Ok None);
  check "dropped hash" (Block_store.read s (hash_of 10) = Ok None);
  check "distance into dropped history" (Block_store.read ~distance:95 s (hash_of 99) = Ok None);
  check "kept ancestor" (Block_store.read ~distance:30 s (hash_of 99) = Ok (Some (block_of 69)));
  ok "check" (Block_store.check s);
  Block_store.close s

(* One thread stores a growing chain, three read, and this thread runs
   merges meanwhile: every block stored before a read is found, identical
   (archive mode keeps everything). *)
let test_threads_during_merges () =
  let d = Filename.concat (dir ()) "threads" in
  let s = open_rw d in
  let total = 600 in
  let stored = Atomic.make 0 and stop = Atomic.make false in
  let bad = Atomic.make 0 and reads = Atomic.make 0 in
  let report what = function
    | Error e ->
        Printf.eprintf "%s: %s\n%!" what (Error.to_string e);
        Atomic.incr bad
    | Ok _ -> Atomic.incr bad
  in
  let writer =
    Thread.create
      (fun () ->
        for i = 0 to total - 1 do
          (match Block_store.store s (block_of i) with Ok () -> () | r -> report "store" r);
          Atomic.set stored (i + 1)
        done)
      ()
  in
  let reader seed () =
    let x = ref seed in
    while not (Atomic.get stop) do
      let n = Atomic.get stored in
      if n = 0 then Thread.yield ()
      else (
        x := ((!x * 1103515245) + 12345) land 0x3fffffff;
        let i = (!x lsr 8) mod n in
        (match Block_store.read ~metadata:(seed <> 0) s (hash_of i) with
        | Ok (Some b) when b = if seed <> 0 then block_of i else bare i -> ()
        | r -> report (Printf.sprintf "read %d" i) r);
        (match Block_store.read ~distance:(i / 2) ~metadata:false s (hash_of i) with
        | Ok (Some b) when b = bare (i - (i / 2)) -> ()
        | r -> report (Printf.sprintf "read %d at distance %d" i (i / 2)) r);
        Atomic.incr reads)
    done
  in
  let readers = List.init 3 (fun seed -> Thread.create (reader seed) ()) in
  let merges = ref 0 in
  let end_ = ref 99 in
  while !end_ < total - 100 do
    while Atomic.get stored < !end_ + 50 do
      Thread.yield ()
    done;
    ok "merge" (Block_store.merge s ~head:(hash_of (!end_ + 40)) ~chunk_ends:[ Int32.of_int !end_ ]);
    incr merges;
    end_ := !end_ + 100
  done;
  ok "await_merge" (Block_store.await_merge s);
  Thread.join writer;
  while Atomic.get reads < 100 do
    Thread.yield ()
  done;
  Atomic.set stop true;
  List.iter Thread.join readers;
  check "no bad store or read in threads" (Atomic.get bad = 0);
  (match Block_store.stats s with
  | Ok st ->
      check "every merge done" (st.merges_done = !merges);
      check "cemented up to the last end" (st.cemented_highest = Some (Int32.of_int (99 + (100 * (!merges - 1)))));
      (* The cemented top is also kept floating: counted twice. *)
      check "every block kept" (st.cemented_blocks + st.floating_blocks = total + 1)
  | Error e -> check ("stats: " ^ Error.to_string e) false);
  ok "check" (Block_store.check s);
  Block_store.close s

(* Stores without flush are readable at once and durable after [flush];
   a read-only handle refuses both. *)
let test_unflushed_then_flush () =
  let d = Filename.concat (dir ()) "unflushed" in
  let s = open_rw d in
  for i = 0 to 49 do
    ok "store without flush" (Block_store.store ~flush:false s (block_of i))
  done;
  check "readable before the flush" (Block_store.read s (hash_of 49) = Ok (Some (block_of 49)));
  ok "flush" (Block_store.flush s);
  Block_store.close s;
  let ro = ok "open ro" (Block_store.open_ ~readonly:true d) in
  for i = 0 to 49 do
    check (Printf.sprintf "block %d after reopen" i) (Block_store.read ro (hash_of i) = Ok (Some (block_of i)))
  done;
  ignore (expect_error "flush read-only" Error.Read_only (Block_store.flush ro));
  ignore (expect_error "store read-only" Error.Read_only (Block_store.store ~flush:false ro (block_of 50)));
  Block_store.close ro

let run () =
  test_basics ();
  test_unflushed_then_flush ();
  test_rolling ();
  test_threads_during_merges ()
