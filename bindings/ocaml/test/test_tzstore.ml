(* Tests of the OCaml binding: every Singleton call, its errors, the
   handle lifecycle, and one handle shared by several threads; the other
   stores' tests are in their own modules, run from here. *)

open Tzstore
open Util

let test_round_trip () =
  let p = path () in
  let s = ok "open" (Singleton.open_ ~no_fsync:true p) in
  check "unset value reads None" (Singleton.read s = Ok None);
  List.iter
    (fun v ->
      ok "write" (Singleton.write s v);
      check ("read back " ^ String.escaped v) (Singleton.read s = Ok (Some v)))
    [ "hello"; "\000bin\000\255"; "" ];
  ok "delete" (Singleton.delete s);
  check "deleted value reads None" (Singleton.read s = Ok None);
  check "deleting an unset value" (Singleton.delete s = Ok ());
  Singleton.close s

let test_errors () =
  let p = path () in
  let s = ok "open" (Singleton.open_ ~no_fsync:true p) in
  ok "write" (Singleton.write s "v1");
  let msg = expect_error "second read-write open" Error.Locked (Singleton.open_ p) in
  check "Locked has a message" (msg <> "");
  let ro = ok "open ro" (Singleton.open_ ~readonly:true p) in
  check "read-only reads" (Singleton.read ro = Ok (Some "v1"));
  let msg = expect_error "read-only write" Error.Read_only (Singleton.write ro "x") in
  check "Read_only message names the file" (contains msg p);
  ignore (expect_error "read-only delete" Error.Read_only (Singleton.delete ro));
  ok "write v2" (Singleton.write s "v2");
  ok "sync" (Singleton.sync ro);
  check "read-only sees v2 after sync" (Singleton.read ro = Ok (Some "v2"));
  ignore
    (expect_error "open in a missing directory" Error.Not_found
       (Singleton.open_ (Filename.concat (Filename.dirname p) "missing/x")));
  ignore
    (expect_error "path with a NUL byte" Error.Invalid_argument (Singleton.open_ (p ^ "\000x")));
  (match Singleton.write ro "x" with
  | Error e ->
      check "to_string" (contains (Error.to_string e) "TZS_READ_ONLY: ");
      check "get_ok raises"
        (match Error.get_ok (Error e) with
        | () -> false
        | exception Error.Tzstore e' -> e' = e)
  | Ok () -> check "read-only write fails" false);
  Singleton.close ro;
  Singleton.close s;
  Singleton.close s;
  ignore (expect_error "read after close" Error.Closed (Singleton.read s));
  ignore (expect_error "write after close" Error.Closed (Singleton.write s "x"));
  let s2 = ok "reopen after close" (Singleton.open_ p) in
  check "value is durable" (Singleton.read s2 = Ok (Some "v2"));
  Singleton.close s2

let test_statuses () =
  for code = 1 to 16 do
    let st = Error.status_of_code code in
    check "code round trip" (Error.code_of_status st = code);
    check "known name" (String.length (Error.status_name st) > 4 && st <> Error.Unknown code)
  done;
  check "unknown status" (Error.status_of_code 999 = Error.Unknown 999);
  check "version" (Tzstore.version () <> "")

(* Several threads share a read-write and a read-only handle; every read
   returns one of the written values. *)
let test_threads () =
  let p = path () in
  let s = ok "open" (Singleton.open_ ~no_fsync:true p) in
  let ro = ok "open ro" (Singleton.open_ ~readonly:true p) in
  ok "write" (Singleton.write s "t0-0");
  let errors = Atomic.make 0 in
  let worker i () =
    for n = 1 to 300 do
      let h =
        if i mod 2 = 0 then (
          (match Singleton.write s (Printf.sprintf "t%d-%d" i n) with
          | Ok () -> ()
          | Error _ -> Atomic.incr errors);
          s)
        else (
          (match Singleton.sync ro with Ok () -> () | Error _ -> Atomic.incr errors);
          ro)
      in
      match Singleton.read h with
      | Ok (Some v) when String.length v > 1 && v.[0] = 't' -> ()
      | _ -> Atomic.incr errors
    done
  in
  let threads = List.init 6 (fun i -> Thread.create (worker i) ()) in
  List.iter Thread.join threads;
  check "no error in threads" (Atomic.get errors = 0);
  Singleton.close ro;
  Singleton.close s

(* close waits for calls in progress; calls after it see Closed. *)
let test_close_while_in_use () =
  let p = path () in
  let s = ok "open" (Singleton.open_ ~no_fsync:true p) in
  ok "write" (Singleton.write s "v");
  let bad = Atomic.make 0 and started = Atomic.make 0 in
  let reader () =
    Atomic.incr started;
    let rec loop () =
      match Singleton.read s with
      | Ok (Some "v") -> loop ()
      | Error { Error.status = Error.Closed; _ } -> ()
      | _ -> Atomic.incr bad
    in
    loop ()
  in
  let threads = List.init 4 (fun _ -> Thread.create reader ()) in
  while Atomic.get started < 4 do
    Thread.yield ()
  done;
  Singleton.close s;
  List.iter Thread.join threads;
  check "readers saw only the value or Closed" (Atomic.get bad = 0)

(* A handle dropped without close is closed by the GC finaliser, releasing
   the lock. *)
let test_finaliser () =
  let p = path () in
  (fun () ->
    let s = ok "open" (Singleton.open_ ~no_fsync:true p) in
    ok "write" (Singleton.write s "v"))
    ();
  Gc.full_major ();
  Gc.full_major ();
  match Singleton.open_ p with
  | Ok s ->
      check "finalised handle released its lock" true;
      Singleton.close s
  | Error e -> check ("reopen after GC: " ^ Error.to_string e) false

let () =
  test_round_trip ();
  test_errors ();
  test_statuses ();
  test_threads ();
  test_close_while_in_use ();
  test_finaliser ();
  Test_index.run ();
  Test_floating.run ();
  Test_kv.run ();
  Test_block_store.run ();
  Test_block_chain.run ();
  Test_indexed_file.run ();
  Test_gc_filter.run ();
  Test_cemented.run ();
  Test_chunk_writer.run ();
  Test_context_hash.run ();
  Test_block_reader.run ();
  Test_value_reader.run ();
  List.iter rm_rf !dirs;
  Printf.printf "%d passed, %d failed\n" !passed !failed;
  if !failed > 0 then exit 1
