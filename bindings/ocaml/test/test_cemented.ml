(* Tests of Tzstore.Cemented: chunks cemented and read back by level and
   hash (with and without metadata), levels, hashes, chunk lists, not
   found, errors with their messages, iteration, GC by history mode,
   consistency check, read-only sync, close. *)

open Tzstore
open Util

let block_of = Test_block_store.block_of
let bare = Test_block_store.bare
let hash_of = Test_block_store.hash_of
let chain a b = List.init (b - a + 1) (fun i -> block_of (a + i))
let chunk a b = { Cemented.start_level = Int32.of_int a; end_level = Int32.of_int b }

let test_cemented () =
  let d = Filename.concat (dir ()) "cemented" in
  let c = ok "open" (Cemented.open_ ~no_fsync:true ~log_size:100 d) in
  check "empty" (Cemented.lowest_level c = Ok None && Cemented.highest_level c = Ok None);
  check "no chunk" (Cemented.chunks c = Ok []);
  ok "cement 0-19" (Cemented.cement c (chain 0 19));
  ok "cement 20-39" (Cemented.cement c (chain 20 39));
  ok "cement 40-59" (Cemented.cement ~write_metadata:false c (chain 40 59));
  check "lowest" (Cemented.lowest_level c = Ok (Some 0l));
  check "highest" (Cemented.highest_level c = Ok (Some 59l));
  check "chunks" (Cemented.chunks c = Ok [ chunk 0 19; chunk 20 39; chunk 40 59 ]);
  check "metadata chunks" (Cemented.metadata_chunks c = Ok [ chunk 0 19; chunk 20 39 ]);
  check "find_chunk" (Cemented.find_chunk c 25l = Ok (Some (chunk 20 39)));
  check "find_chunk missing" (Cemented.find_chunk c 60l = Ok None);
  for i = 0 to 39 do
    let l = Int32.of_int i in
    check (Printf.sprintf "read_by_level %d" i) (Cemented.read_by_level c l = Ok (Some (block_of i)));
    check "read_by_hash" (Cemented.read_by_hash c (hash_of i) = Ok (Some (block_of i)));
    check "level_of" (Cemented.level_of c (hash_of i) = Ok (Some l));
    check "hash_of" (Cemented.hash_of c l = Ok (Some (hash_of i)))
  done;
  check "cemented without metadata" (Cemented.read_by_level c 45l = Ok (Some (bare 45)));
  check "read without metadata" (Cemented.read_by_level ~metadata:false c 10l = Ok (Some (bare 10)));
  check "read_metadata" (Cemented.read_metadata c 10l = Ok (block_of 10).Block.metadata);
  check "no metadata given" (Cemented.read_metadata c 9l = Ok None);
  check "missing level" (Cemented.read_by_level c 60l = Ok None);
  check "missing hash" (Cemented.read_by_hash c (hash_of 60) = Ok None);
  check "missing level_of" (Cemented.level_of c (hash_of 60) = Ok None);
  check "missing hash_of" (Cemented.hash_of c 60l = Ok None);
  let msg = expect_error "gap" Error.Inconsistent (Cemented.cement c (chain 61 70)) in
  check "Inconsistent has a message" (msg <> "");
  ignore (expect_error "no block" Error.Invalid_argument (Cemented.cement c []));
  ignore (expect_error "short hash" Error.Invalid_argument (Cemented.read_by_hash c "x"));
  let msg = expect_error "second read-write open" Error.Locked (Cemented.open_ d) in
  check "Locked has a message" (msg <> "");
  ignore (expect_error "zstd level" Error.Invalid_argument (Cemented.set_zstd_level c 99));
  ok "zstd level 5" (Cemented.set_zstd_level c 5);
  ok "check" (Cemented.check_consistency c);
  ok "check with genesis" (Cemented.check_consistency ~genesis:(hash_of 0) c);
  let visited =
    ok "fold"
      (Cemented.fold c (chunk 20 39) ~init:20 ~f:(fun i b ->
           check (Printf.sprintf "fold %d" i) (b = block_of i);
           i + 1))
  in
  check "fold visits the chunk" (visited = Some 40);
  check "fold of a missing chunk" (Cemented.iter c (chunk 20 30) (fun _ -> ()) = Ok false);
  check "fold re-raises"
    (match Cemented.iter c (chunk 0 19) (fun _ -> raise Exit) with exception Exit -> true | _ -> false);
  let ro = ok "open ro" (Cemented.open_ ~readonly:true d) in
  check "read-only highest" (Cemented.highest_level ro = Ok (Some 59l));
  ignore (expect_error "read-only cement" Error.Read_only (Cemented.cement ro (chain 60 69)));
  ok "cement 60-79" (Cemented.cement c (chain 60 79));
  ok "sync" (Cemented.sync ro);
  check "read-only sees 70" (Cemented.read_by_level ro 70l = Ok (Some (block_of 70)));
  Cemented.close ro;
  ok "gc archive" (Cemented.gc c ~mode:Block_store.Archive ~offset:1);
  check "archive keeps all" (Result.map List.length (Cemented.chunks c) = Ok 4);
  ok "gc full" (Cemented.gc c ~mode:Block_store.Full ~offset:2);
  check "full keeps the last metadata" (Cemented.metadata_chunks c = Ok [ chunk 60 79 ]);
  check "full drops metadata" (Cemented.read_metadata c 10l = Ok None);
  ok "gc rolling" (Cemented.gc c ~mode:Block_store.Rolling ~offset:2);
  check "rolling keeps the last chunks" (Cemented.chunks c = Ok [ chunk 40 59; chunk 60 79 ]);
  check "rolling drops blocks" (Cemented.read_by_hash c (hash_of 10) = Ok None);
  ok "check after gc" (Cemented.check_consistency c);
  Cemented.close c;
  Cemented.close c;
  ignore (expect_error "read after close" Error.Closed (Cemented.read_by_level c 70l));
  let c = ok "reopen" (Cemented.open_ d) in
  check "durable" (Cemented.read_by_level c 79l = Ok (Some (block_of 79)));
  Cemented.close c;
  ignore
    (expect_error "read-only open of a missing store" Error.Not_found
       (Cemented.open_ ~readonly:true (d ^ "-missing")))

let run () = test_cemented ()
