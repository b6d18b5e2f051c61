(* Tests of borrowed block reads (Tzstore.Reader, read_view): views equal
   the copying reads (block store by hash, distance and level, floating,
   cemented; with and without metadata; empty metadata); their bigarrays
   point into the store's map, not a copy; misses and errors; a view taken
   before a merge is unchanged after the merge retired its floating file
   and after a ROLLING GC deleted its chunk; a view outlives the store's
   close until its reader is released, and keeps its dropped reader from
   the GC; reader threads read views while blocks are stored and merged. *)

open Tzstore
open Util

let block_of = Test_block_store.block_of
let bare = Test_block_store.bare
let hash_of = Test_block_store.hash_of

(* The view as a block (a copy), or None. *)
let copied = Result.map (Option.map Block.View.to_block)

(* The address of a view's contents. *)
let address (v : Block.View.t) =
  Ctypes.(raw_address_of_ptr (to_voidp (bigarray_start array1 v.contents)))

let view name = function
  | Ok (Some v) -> v
  | Ok None -> failwith (name ^ ": not found")
  | Error e -> failwith (name ^ ": " ^ Error.to_string e)

(* Whether [v] holds exactly block [b], checked field by field (hashes
   copied, bytes read through the bigarrays). *)
let view_is (v : Block.View.t) (b : Block.t) =
  v.hash = b.hash && v.level = b.level && v.predecessor = b.predecessor
  && Block.string_of_bigstring v.contents = b.contents
  && Option.map Block.string_of_bigstring v.metadata = b.metadata
  && Block.View.contents_string v = b.contents
  && Block.View.metadata_string v = b.metadata

let open_rw = Test_block_store.open_rw

(* Checks that no level is listed in [wrong]. *)
let none_wrong name wrong =
  check
    (Printf.sprintf "%s (wrong: %s)" name (String.concat "," (List.map string_of_int wrong)))
    (wrong = [])

(* A block store with blocks 0..119, reopened so that its floating file is
   mapped, then merged up to 79: views equal the copies everywhere. *)
let test_block_store () =
  let d = Filename.concat (dir ()) "views" in
  let s = open_rw d in
  for i = 0 to 119 do
    ok "store" (Block_store.store ~flush:false s (block_of i))
  done;
  Block_store.close s;
  let s = open_rw d in
  let r = ok "reader" (Reader.create ()) in
  let bad = ref [] in
  for i = 0 to 119 do
    let h = hash_of i in
    List.iter
      (fun metadata ->
        let want = Block_store.read ~metadata s h in
        if copied (Block_store.read_view ~metadata r s h) <> want || want = Ok None then
          bad := i :: !bad)
      [ true; false ]
  done;
  none_wrong "floating views equal copies" !bad;
  let v = view "119" (Block_store.read_view r s (hash_of 119)) in
  check "field by field" (view_is v (block_of 119));
  (match Block_store.read_view r s (hash_of 4) with
  | Ok (Some { Block.View.metadata = Some m; _ }) -> check "empty metadata" (Bigarray.Array1.dim m = 0)
  | _ -> check "empty metadata read" false);
  (match Block_store.read_view r s (hash_of 3) with
  | Ok (Some v) -> check "no metadata" (v.metadata = None && view_is v (bare 3))
  | _ -> check "block 3 read" false);
  (match Block_store.read_view ~metadata:false r s (hash_of 5) with
  | Ok (Some v) -> check "read without metadata" (v.metadata = None && view_is v (bare 5))
  | _ -> check "block 5 read" false);
  let at ?metadata distance = copied (Block_store.read_view ~distance ?metadata r s (hash_of 119)) in
  check "distance 37" (at 37 = Ok (Some (block_of 82)));
  check "distance without metadata" (at ~metadata:false 37 = Ok (Some (bare 82)));
  check "down to genesis" (at 119 = Ok (Some (block_of 0)));
  check "past genesis" (Block_store.read_view ~distance:120 r s (hash_of 119) = Ok None);
  check "unknown hash" (Block_store.read_view r s (hash_of 4000) = Ok None);
  check "nothing cemented" (Block_store.read_by_level_view r s 10l = Ok None);
  ignore (expect_error "short hash" Error.Invalid_argument (Block_store.read_view r s "short"));
  ignore
    (expect_error "negative distance" Error.Invalid_argument
       (Block_store.read_view ~distance:(-1) r s (hash_of 1)));
  (* Borrowed: two readers' views of one mapped block share its bytes. *)
  let r2 = ok "reader 2" (Reader.create ()) in
  let v1 = view "50" (Block_store.read_view r s (hash_of 50)) in
  let v2 = view "50 again" (Block_store.read_view r2 s (hash_of 50)) in
  check "views share the map" (address v1 = address v2);
  ok "merge" (Block_store.merge s ~head:(hash_of 119) ~chunk_ends:[ 19l; 39l; 59l; 79l ]);
  ok "await_merge" (Block_store.await_merge s);
  let bad = ref [] in
  for i = 0 to 79 do
    let l = Int32.of_int i in
    List.iter
      (fun metadata ->
        let want = Block_store.read_by_level ~metadata s l in
        if copied (Block_store.read_by_level_view ~metadata r s l) <> want || want = Ok None then
          bad := i :: !bad;
        let by_hash = Block_store.read ~metadata s (hash_of i) in
        if copied (Block_store.read_view ~metadata r s (hash_of i)) <> by_hash then bad := i :: !bad)
      [ true; false ]
  done;
  none_wrong "cemented views equal copies" !bad;
  check "level not cemented" (Block_store.read_by_level_view r s 90l = Ok None);
  check "across the boundary"
    (copied (Block_store.read_view ~distance:100 r s (hash_of 119)) = Ok (Some (block_of 19)));
  let v1 = view "level 30" (Block_store.read_by_level_view ~metadata:false r s 30l) in
  let v2 = view "level 30 again" (Block_store.read_by_level_view ~metadata:false r2 s 30l) in
  check "cemented views share the chunk's map" (address v1 = address v2 && view_is v1 (bare 30));
  Reader.close r2;
  Reader.close r2;
  ignore
    (expect_error "read through a closed reader" Error.Closed
       (Block_store.read_view r2 s (hash_of 1)));
  Reader.release r2;
  Block_store.close s;
  ignore (expect_error "read a closed store" Error.Closed (Block_store.read_view r s (hash_of 1)));
  ignore
    (expect_error "by level from a closed store" Error.Closed
       (Block_store.read_by_level_view r s 1l));
  Reader.close r

let test_floating () =
  let d = Filename.concat (dir ()) "floating-views" in
  let f = ok "open" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  let n = Test_floating.n in
  for i = 0 to n - 1 do
    ok "append" Test_floating.(Floating.append ~flush:false f (block_of i) (preds_of i))
  done;
  let r = ok "reader" (Reader.create ()) in
  let check_all what f =
    let bad = ref 0 in
    for i = 0 to n - 1 do
      let h = Test_floating.hash_of i in
      match Floating.read_view r f h with
      | Ok (Some v)
        when view_is v (Test_floating.block_of i)
             && Floating.read_block f h = Ok (Some (Block.View.to_block v)) ->
          ()
      | _ -> incr bad
    done;
    check (what ^ ": floating views equal copies") (!bad = 0)
  in
  (* Blocks appended since open (not mapped yet: copied into the reader),
     then mapped after a reopen. *)
  check_all "appended" f;
  Floating.close f;
  let f = ok "reopen" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  check_all "reopened" f;
  check "missing" (Floating.read_view r f (Test_floating.hash_of 9999) = Ok None);
  ignore (expect_error "short hash" Error.Invalid_argument (Floating.read_view r f "short"));
  let v = view "7" (Floating.read_view r f (Test_floating.hash_of 7)) in
  Floating.close f;
  check "view outlives the floating store" (view_is v (Test_floating.block_of 7));
  ignore
    (expect_error "read after close" Error.Closed (Floating.read_view r f (Test_floating.hash_of 7)));
  Reader.close r

let test_cemented () =
  let d = Filename.concat (dir ()) "cemented-views" in
  let c = ok "open" (Cemented.open_ ~no_fsync:true ~log_size:100 d) in
  let chain a b = List.init (b - a + 1) (fun i -> block_of (a + i)) in
  ok "cement 0-19" (Cemented.cement c (chain 0 19));
  ok "cement 20-39" (Cemented.cement ~write_metadata:false c (chain 20 39));
  ok "cement 40-59" (Cemented.cement c (chain 40 59));
  let r = ok "reader" (Reader.create ()) in
  let bad = ref [] in
  for i = 0 to 59 do
    let l = Int32.of_int i in
    List.iter
      (fun metadata ->
        let want = Cemented.read_by_level ~metadata c l in
        if copied (Cemented.read_view_by_level ~metadata r c l) <> want || want = Ok None then
          bad := i :: !bad)
      [ true; false ]
  done;
  none_wrong "cemented views equal copies" !bad;
  check "with metadata" (view_is (view "10" (Cemented.read_view_by_level r c 10l)) (block_of 10));
  let v = view "10 bare" (Cemented.read_view_by_level ~metadata:false r c 10l) in
  check "without metadata" (view_is v (bare 10));
  check "chunk without metadata" (view_is (view "25" (Cemented.read_view_by_level r c 25l)) (bare 25));
  check "missing level" (Cemented.read_view_by_level r c 60l = Ok None);
  (* A view of chunk 0-19 held while a rolling GC deletes the chunk. *)
  let held = ok "reader held" (Reader.create ()) in
  let v = view "held 10" (Cemented.read_view_by_level held c 10l) in
  ok "gc rolling" (Cemented.gc c ~mode:Block_store.Rolling ~offset:1);
  check "chunk gone"
    (Cemented.read_by_level c 10l = Ok None && Cemented.read_view_by_level r c 10l = Ok None);
  check "held view unchanged after the GC" (view_is v (block_of 10));
  Cemented.close c;
  check "held view unchanged after close" (view_is v (block_of 10));
  Reader.close held;
  Reader.close r

(* ROLLING 1: views of a mapped floating block and of a cemented block,
   held across the merge that retires the floating file (its block then
   cemented and dropped by the GC), the merge whose GC deletes the chunk,
   and the store's close. *)
let test_merges_gc_close () =
  let d = Filename.concat (dir ()) "rolling-views" in
  let s = open_rw ~mode:Block_store.Rolling ~offset:1 d in
  for i = 0 to 100 do
    ok "store" (Block_store.store ~flush:false s (block_of i))
  done;
  Block_store.close s;
  let s = open_rw ~mode:Block_store.Rolling ~offset:1 d in
  let held_floating = ok "reader" (Reader.create ()) in
  let held_cemented = ok "reader" (Reader.create ()) in
  let r = ok "reader" (Reader.create ()) in
  let fv = view "floating 10" (Block_store.read_view held_floating s (hash_of 10)) in
  let fv_contents = fv.contents in
  ok "merge 1"
    (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of 100) ~chunk_ends:[ 20l; 40l; 60l; 80l ]);
  ok "await merge 1" (Block_store.await_merge s);
  check "block 10 dropped"
    (Block_store.read s (hash_of 10) = Ok None && Block_store.read_view r s (hash_of 10) = Ok None);
  check "floating view unchanged after the merge" (view_is fv (block_of 10));
  let cv =
    view "cemented 70" (Block_store.read_by_level_view ~metadata:false held_cemented s 70l)
  in
  check "cemented view" (view_is cv (bare 70));
  for i = 101 to 160 do
    ok "store" (Block_store.store ~flush:false s (block_of i))
  done;
  ok "merge 2"
    (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of 160) ~chunk_ends:[ 100l; 120l; 140l ]);
  ok "await merge 2" (Block_store.await_merge s);
  check "chunk 61-80 deleted" (Block_store.read_by_level s 70l = Ok None);
  check "by level view miss" (Block_store.read_by_level_view r s 70l = Ok None);
  check "cemented view unchanged after the GC" (view_is cv (bare 70));
  check "floating view unchanged" (view_is fv (block_of 10));
  let last = view "160" (Block_store.read_view r s (hash_of 160)) in
  Block_store.close s;
  check "views unchanged after close"
    (view_is last (block_of 160) && view_is cv (bare 70) && view_is fv (block_of 10)
   && Block.string_of_bigstring fv_contents = (block_of 10).contents);
  Reader.release held_cemented;
  Reader.release held_cemented;
  Reader.close held_cemented;
  Reader.close held_floating;
  (* A view whose reader is dropped (the store closed: the reader holds the
     map's last reference) stays readable: the GC keeps the reader. *)
  let s = open_rw ~mode:Block_store.Rolling ~offset:1 d in
  let contents =
    (fun () ->
      let r = ok "reader" (Reader.create ()) in
      (view "150" (Block_store.read_view r s (hash_of 150))).Block.View.contents)
      ()
  in
  Block_store.close s;
  Gc.full_major ();
  Gc.full_major ();
  check "a view keeps its reader from the GC"
    (Block.string_of_bigstring contents = (block_of 150).contents);
  Reader.close r

(* Two reader threads, each with its own reader, check views twice around
   a yield while this thread stores blocks and merges (ROLLING 1 keeps the
   blocks near the top). *)
let test_threads () =
  let d = Filename.concat (dir ()) "thread-views" in
  let s = open_rw ~mode:Block_store.Rolling ~offset:1 d in
  for i = 0 to 100 do
    ok "store" (Block_store.store ~flush:false s (block_of i))
  done;
  let top = Atomic.make 100 and running = Atomic.make true in
  let bad = Atomic.make 0 and reads = Atomic.make 0 in
  let reader seed () =
    match Reader.create () with
    | Error _ -> Atomic.incr bad
    | Ok r ->
        let x = ref seed in
        while Atomic.get running do
          x := ((!x * 1103515245) + 12345) land 0x3fffffff;
          let n = Atomic.get top - ((!x lsr 8) mod 30) in
          match Block_store.read_view r s (hash_of n) with
          | Ok (Some v) when view_is v (block_of n) ->
              Thread.yield ();
              if not (view_is v (block_of n)) then Atomic.incr bad;
              Atomic.incr reads
          | _ -> Atomic.incr bad
        done;
        Reader.close r
  in
  let threads = List.init 2 (fun i -> Thread.create (reader (i + 1)) ()) in
  let cemented = ref 0 in
  for n = 101 to 260 do
    ok "store" (Block_store.store ~flush:false s (block_of n));
    Atomic.set top n;
    if n mod 40 = 0 then (
      let ends =
        List.init ((n - 20 - !cemented) / 20) (fun i -> Int32.of_int (!cemented + (20 * (i + 1))))
      in
      cemented := n - 20;
      ok "merge" (Block_store.merge ~max_op_ttl:1 s ~head:(hash_of n) ~chunk_ends:ends);
      ok "await_merge" (Block_store.await_merge s))
  done;
  while Atomic.get reads < 100 do
    Thread.yield ()
  done;
  Atomic.set running false;
  List.iter Thread.join threads;
  check "no bad view in threads" (Atomic.get bad = 0);
  Block_store.close s

let run () =
  test_block_store ();
  test_floating ();
  test_cemented ();
  test_merges_gc_close ();
  test_threads ()
