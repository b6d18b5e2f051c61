(* Tests of resulting context hashes (Octez's [store_block block
   resulting_context_hash] and [find_info]): stored with blocks in a block
   store and read back through a merge and a reopen, zeros for blocks
   stored without one; the same for a floating store. *)

open Tzstore
open Util

let block_of = Test_block_store.block_of
let hash_of = Test_block_store.hash_of
let context_of = Test_chunk_writer.context_of
let zeros = String.make 32 '\000'

(* Every seventh block is stored without a context. *)
let context n = if n mod 7 = 3 then None else Some (context_of n)
let expected n = Some (Option.value (context n) ~default:zeros)

let mismatches read =
  List.filter (fun n -> read (hash_of n) <> Ok (expected n)) (List.init 61 Fun.id)

let test_block_store () =
  let d = Filename.concat (dir ()) "contexts" in
  let s = ok "open" (Block_store.open_ ~no_fsync:true ~history_mode:Block_store.Archive d) in
  for n = 0 to 60 do
    ok "store" (Block_store.store ?context:(context n) ~flush:(n = 60) s (block_of n))
  done;
  check "contexts before the merge" (mismatches (Block_store.resulting_context_hash s) = []);
  check "a block stored without a context has zeros"
    (Block_store.resulting_context_hash s (hash_of 3) = Ok (Some zeros));
  ok "merge" (Block_store.merge s ~head:(hash_of 60) ~chunk_ends:[ 20l; 40l ]);
  ok "await_merge" (Block_store.await_merge s);
  (match Block_store.stats s with
  | Ok st -> check "cemented up to 40" (st.cemented_highest = Some 40l)
  | Error e -> check ("stats: " ^ Error.to_string e) false);
  check "the 61 contexts after the merge" (mismatches (Block_store.resulting_context_hash s) = []);
  check "a cemented block without a context has zeros"
    (Block_store.resulting_context_hash s (hash_of 10) = Ok (Some zeros));
  check "unknown block" (Block_store.resulting_context_hash s (hash_of 99) = Ok None);
  ignore (expect_error "short hash" Error.Invalid_argument (Block_store.resulting_context_hash s "x"));
  ignore
    (expect_error "short context" Error.Invalid_argument
       (Block_store.store ~context:"ctx" s (block_of 61)));
  check "nothing stored with a short context" (Block_store.mem s (hash_of 61) = Ok false);
  Block_store.close s;
  ignore (expect_error "after close" Error.Closed (Block_store.resulting_context_hash s (hash_of 1)));
  let s = ok "reopen" (Block_store.open_ ~readonly:true d) in
  check "contexts after a reopen" (mismatches (Block_store.resulting_context_hash s) = []);
  Block_store.close s;
  (* The cemented part is the cemented store's own: Cemented reads it. *)
  let c = ok "open cemented" (Cemented.open_ ~readonly:true (Filename.concat d "cemented")) in
  check "cemented contexts"
    (List.for_all
       (fun n -> Cemented.resulting_context_hash c (hash_of n) = Ok (expected n))
       (List.init 41 Fun.id));
  Cemented.close c

let test_floating () =
  let d = Filename.concat (dir ()) "floating-contexts" in
  let f = ok "open" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  for n = 0 to 60 do
    let preds = if n = 0 then [] else [ hash_of (n - 1) ] in
    ok "append" (Floating.append ?context:(context n) f (block_of n) preds)
  done;
  check "floating contexts" (mismatches (Floating.resulting_context_hash f) = []);
  check "predecessors beside them" (Floating.find_predecessors f (hash_of 9) = Ok (Some [ hash_of 8 ]));
  check "unknown block" (Floating.resulting_context_hash f (hash_of 99) = Ok None);
  ignore
    (expect_error "short context" Error.Invalid_argument
       (Floating.append ~context:(String.make 31 'c') f (block_of 61) [ hash_of 60 ]));
  let ro = ok "open read-only" (Floating.open_ ~readonly:true ~kind:Floating.Rw d) in
  check "a read-only handle reads them" (mismatches (Floating.resulting_context_hash ro) = []);
  Floating.close ro;
  Floating.close f

let run () =
  test_block_store ();
  test_floating ()
