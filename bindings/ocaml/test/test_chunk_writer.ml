(* Tests of streamed cementing (Tzstore.Cemented.begin_chunk and
   Chunk_writer) and of cement_metadata: a 100-block chunk pushed with
   resulting context hashes and read back; an abort, a forgotten writer and
   a failed push leave nothing; a commit after the store was closed; the
   metadata of a chunk cemented without it. *)

open Tzstore
open Util

let block_of = Test_block_store.block_of
let bare = Test_block_store.bare
let hash_of = Test_block_store.hash_of
let chunk a b = { Cemented.start_level = Int32.of_int a; end_level = Int32.of_int b }
let zeros = String.make 32 '\000'

(* The resulting context hash given to block n. *)
let context_of n = String.init 32 (fun i -> Char.chr ((n * 11 + i * 5 + 1) land 255))

(* Every file under [d], to show an abort leaves none behind. *)
let rec files d =
  Sys.readdir d |> Array.to_list |> List.sort compare
  |> List.concat_map (fun f ->
         let p = Filename.concat d f in
         if Sys.is_directory p then p :: files p else [ p ])

let push_range ?(context = true) w a b =
  for i = a to b do
    let context = if context then Some (context_of i) else None in
    ok (Printf.sprintf "push %d" i) (Cemented.Chunk_writer.push ?context w (block_of i))
  done

let test_streamed () =
  let d = Filename.concat (dir ()) "cemented" in
  let c = ok "open" (Cemented.open_ ~no_fsync:true d) in
  let w = ok "begin 0..99" (Cemented.begin_chunk c (chunk 0 99)) in
  push_range w 0 49;
  check "nothing visible before the commit" (Cemented.highest_level c = Ok None);
  push_range w 50 99;
  check "commit returns the chunk" (Cemented.Chunk_writer.commit w = Ok (chunk 0 99));
  check "one chunk" (Cemented.chunks c = Ok [ chunk 0 99 ]);
  check "with metadata" (Cemented.metadata_chunks c = Ok [ chunk 0 99 ]);
  let bad = ref 0 in
  for i = 0 to 99 do
    if Cemented.read_by_level c (Int32.of_int i) <> Ok (Some (block_of i)) then incr bad;
    if Cemented.resulting_context_hash c (hash_of i) <> Ok (Some (context_of i)) then incr bad
  done;
  check "the 100 blocks and their contexts read back" (!bad = 0);
  check "context of a block not cemented" (Cemented.resulting_context_hash c (hash_of 100) = Ok None);
  ignore (expect_error "context of a short hash" Error.Invalid_argument (Cemented.resulting_context_hash c "x"));
  ignore (expect_error "push after commit" Error.Closed (Cemented.Chunk_writer.push w (block_of 100)));
  ignore (expect_error "commit twice" Error.Closed (Cemented.Chunk_writer.commit w));
  Cemented.Chunk_writer.abort w;
  check "abort after commit keeps the chunk" (Cemented.highest_level c = Ok (Some 99l));
  ok "check" (Cemented.check_consistency c);
  (* An abort leaves no block and no file. *)
  let before = files d in
  let w = ok "begin 100..199" (Cemented.begin_chunk c (chunk 100 199)) in
  push_range w 100 150;
  Cemented.Chunk_writer.abort w;
  Cemented.Chunk_writer.abort w;
  ignore (expect_error "push after abort" Error.Closed (Cemented.Chunk_writer.push w (block_of 151)));
  ignore (expect_error "commit after abort" Error.Closed (Cemented.Chunk_writer.commit w));
  check "abort: nothing cemented" (Cemented.highest_level c = Ok (Some 99l));
  check "abort: block unknown" (Cemented.level_of c (hash_of 120) = Ok None);
  check "abort: no file left" (files d = before);
  (* Blocks pushed without a context have zeros. *)
  let w = ok "begin 100..149" (Cemented.begin_chunk ~write_metadata:false c (chunk 100 149)) in
  push_range ~context:false w 100 149;
  check "commit without contexts" (Cemented.Chunk_writer.commit w = Ok (chunk 100 149));
  check "zeros without a context" (Cemented.resulting_context_hash c (hash_of 120) = Ok (Some zeros));
  check "no metadata written" (Cemented.read_by_level c 121l = Ok (Some (bare 121)));
  (* A wrong block fails its push, then the commit; nothing stays. *)
  let before = files d in
  let w = ok "begin 150..159" (Cemented.begin_chunk c (chunk 150 159)) in
  push_range w 150 151;
  ignore (expect_error "a skipped level" Error.Inconsistent (Cemented.Chunk_writer.push w (block_of 153)));
  ignore (expect_error "commit after a failed push" Error.Invalid_argument (Cemented.Chunk_writer.commit w));
  let w = ok "begin 150..159 again" (Cemented.begin_chunk c (chunk 150 159)) in
  let forged = { (block_of 150) with Block.predecessor = hash_of 7 } in
  ignore (expect_error "a broken predecessor link" Error.Inconsistent (Cemented.Chunk_writer.push w forged));
  ignore (expect_error "its commit" Error.Invalid_argument (Cemented.Chunk_writer.commit w));
  let w = ok "begin 150..159 short" (Cemented.begin_chunk c (chunk 150 159)) in
  push_range w 150 155;
  ignore (expect_error "a short chunk" Error.Inconsistent (Cemented.Chunk_writer.commit w));
  check "failures: nothing cemented" (Cemented.highest_level c = Ok (Some 149l));
  check "failures: no file left" (files d = before);
  ignore (expect_error "a gap" Error.Inconsistent (Cemented.begin_chunk c (chunk 151 160)));
  ignore (expect_error "an overlap" Error.Inconsistent (Cemented.begin_chunk c (chunk 140 160)));
  ignore (expect_error "end below start" Error.Inconsistent (Cemented.begin_chunk c (chunk 160 150)));
  ignore
    (expect_error "a short context" Error.Invalid_argument
       (let w = ok "begin 150..159" (Cemented.begin_chunk c (chunk 150 159)) in
        let r = Cemented.Chunk_writer.push ~context:"ctx" w (block_of 150) in
        Cemented.Chunk_writer.abort w;
        r));
  (* A writer keeps the store alive: it commits after close, and the
     store's lock is released only then. *)
  let w = ok "begin 150..169" (Cemented.begin_chunk c (chunk 150 169)) in
  push_range w 150 169;
  Cemented.close c;
  ignore (expect_error "the lock is held by the writer" Error.Locked (Cemented.open_ d));
  check "commit after close" (Cemented.Chunk_writer.commit w = Ok (chunk 150 169));
  let c = ok "reopen" (Cemented.open_ ~no_fsync:true d) in
  check "committed after close: durable" (Cemented.read_by_level c 169l = Ok (Some (block_of 169)));
  check "its context" (Cemented.resulting_context_hash c (hash_of 160) = Ok (Some (context_of 160)));
  (* A writer dropped without commit or abort: the GC aborts it. *)
  let before = files d in
  (fun () ->
    let w = ok "begin 170..179" (Cemented.begin_chunk c (chunk 170 179)) in
    push_range w 170 172;
    Cemented.close c)
    ();
  Gc.full_major ();
  Gc.full_major ();
  (match Cemented.open_ ~no_fsync:true d with
  | Ok c ->
      check "a forgotten writer is aborted by the GC" (Cemented.highest_level c = Ok (Some 169l));
      check "... leaving no file" (files d = before);
      Cemented.close c
  | Error e -> check ("reopen after a forgotten writer: " ^ Error.to_string e) false);
  let ro = ok "open read-only" (Cemented.open_ ~readonly:true d) in
  ignore (expect_error "read-only begin" Error.Read_only (Cemented.begin_chunk ro (chunk 170 179)));
  Cemented.close ro

(* A writer is not tied to a thread: four threads take turns pushing the
   next level, the chunk commits whole. *)
let test_threads () =
  let d = Filename.concat (dir ()) "cemented-threads" in
  let c = ok "open" (Cemented.open_ ~no_fsync:true d) in
  let w = ok "begin 0..399" (Cemented.begin_chunk c (chunk 0 399)) in
  let next = ref 0 and m = Mutex.create () and errors = Atomic.make 0 in
  let worker () =
    let rec go () =
      Mutex.lock m;
      let i = !next in
      incr next;
      let r = if i < 400 then Some (Cemented.Chunk_writer.push ~context:(context_of i) w (block_of i)) else None in
      Mutex.unlock m;
      match r with
      | None -> ()
      | Some (Ok ()) -> go ()
      | Some (Error _) -> Atomic.incr errors
    in
    go ()
  in
  List.iter Thread.join (List.init 4 (fun _ -> Thread.create worker ()));
  check "no push failed" (Atomic.get errors = 0);
  check "commit" (Cemented.Chunk_writer.commit w = Ok (chunk 0 399));
  check "last block" (Cemented.read_by_level c 399l = Ok (Some (block_of 399)));
  Cemented.close c

let test_cement_metadata () =
  let d = Filename.concat (dir ()) "cemented-metadata" in
  let c = ok "open" (Cemented.open_ ~no_fsync:true d) in
  ok "cement 0..19 without metadata" (Cemented.cement ~write_metadata:false c (List.init 20 block_of));
  let w = ok "begin 20..39" (Cemented.begin_chunk ~write_metadata:false c (chunk 20 39)) in
  push_range w 20 39;
  ignore (ok "commit 20..39" (Cemented.Chunk_writer.commit w));
  check "no metadata chunk" (Cemented.metadata_chunks c = Ok []);
  check "no metadata read" (Cemented.read_metadata c 5l = Ok None);
  check "cement_metadata 0..19" (Cemented.cement_metadata c (List.init 20 block_of) = Ok (chunk 0 19));
  check "cement_metadata 20..39 (streamed chunk)"
    (Cemented.cement_metadata c (List.init 20 (fun i -> block_of (20 + i))) = Ok (chunk 20 39));
  check "metadata chunks" (Cemented.metadata_chunks c = Ok [ chunk 0 19; chunk 20 39 ]);
  let bad = ref 0 in
  for i = 0 to 39 do
    if Cemented.read_by_level c (Int32.of_int i) <> Ok (Some (block_of i)) then incr bad
  done;
  check "blocks read back with their metadata" (!bad = 0);
  ignore
    (expect_error "metadata already written" Error.Invalid_argument
       (Cemented.cement_metadata c (List.init 20 block_of)));
  ignore (expect_error "no block" Error.Invalid_argument (Cemented.cement_metadata c []));
  ignore (expect_error "a level not cemented" Error.Not_found (Cemented.cement_metadata c [ block_of 50 ]));
  Cemented.close c;
  let c = ok "reopen" (Cemented.open_ d) in
  check "metadata durable" (Cemented.read_metadata c 7l = Ok (block_of 7).Block.metadata);
  Cemented.close c

let run () =
  test_streamed ();
  test_threads ();
  test_cement_metadata ()
