(* Tests of Tzstore.Kv: values and dictionaries, partial reads and writes,
   size, time and digest, rename, allocate, not found, errors with their
   messages, batches (commit, conflict and retry, too many retries, errors
   and exceptions discarding the batch), and threads incrementing a counter
   through batches. *)

open Tzstore
open Util

let root () =
  let d = Filename.concat (dir ()) "kv" in
  Unix.mkdir d 0o755;
  d

let test_store () =
  let r = root () in
  let kv = ok "open" (Kv.open_ ~no_fsync:true r) in
  let bin = "v\000\255" in
  ok "set" (Kv.set kv "a/b/c" bin);
  check "get" (Kv.get kv "a/b/c" = Ok (Some bin));
  check "leading slash" (Kv.get kv "/a/b/c" = Ok (Some bin));
  check "exists value" (Kv.exists kv "a/b/c" = Ok (Some `Value));
  check "exists dictionary" (Kv.exists kv "a/b" = Ok (Some `Dictionary));
  check "root" (Kv.exists kv "" = Ok (Some `Dictionary));
  check "size" (Kv.size kv "a/b/c" = Ok (Some 3));
  ok "set a/b/a" (Kv.set kv "a/b/a" "first");
  ok "set a/z" (Kv.set kv "a/z" "");
  check "list" (Kv.list kv "a" = Ok (Some [ ("b", `Dictionary); ("z", `Value) ]));
  check "list sorted" (Kv.list kv "a/b" = Ok (Some [ ("a", `Value); ("c", `Value) ]));
  check "empty value" (Kv.get kv "a/z" = Ok (Some ""));
  ok "set p" (Kv.set kv "p" "0123456789");
  check "get_partial" (Kv.get_partial kv "p" ~offset:2 ~length:3 = Ok (Some "234"));
  check "get_partial past the end" (Kv.get_partial kv "p" ~offset:8 ~length:100 = Ok (Some "89"));
  check "get_partial beyond" (Kv.get_partial kv "p" ~offset:50 ~length:3 = Ok (Some ""));
  ok "set_partial" (Kv.set_partial kv "p" ~offset:8 "XYZ");
  check "after set_partial" (Kv.get kv "p" = Ok (Some "01234567XYZ"));
  (match Kv.last_modified kv "p" with
  | Ok (Some (days, ps)) -> check "last_modified" (days > 19000 && ps >= 0L && ps < 86_400_000_000_000_000L)
  | _ -> check "last_modified" false);
  ok "set q" (Kv.set kv "q" "01234567XYZ");
  (match (Kv.digest kv "p", Kv.digest kv "q", Kv.digest kv "a") with
  | Ok (Some dp), Ok (Some dq), Ok (Some da) ->
      check "digest" (String.length dp = 32 && dp = dq && da <> dp)
  | _ -> check "digests" false);
  ok "rename" (Kv.rename kv ~source:"q" ~dest:"moved/q");
  check "renamed" (Kv.exists kv "q" = Ok None && Kv.get kv "moved/q" = Ok (Some "01234567XYZ"));
  ok "allocate" (Kv.allocate kv "zeros" 4);
  check "allocated" (Kv.get kv "zeros" = Ok (Some "\000\000\000\000"));
  let msg = expect_error "allocate bound" Error.Key_exists (Kv.allocate kv "zeros" 4) in
  check "Key_exists message" (msg <> "");
  (* Not found. *)
  check "get missing" (Kv.get kv "missing" = Ok None);
  check "exists missing" (Kv.exists kv "missing" = Ok None);
  check "size missing" (Kv.size kv "missing" = Ok None);
  check "list missing" (Kv.list kv "missing" = Ok None);
  check "time missing" (Kv.last_modified kv "missing" = Ok None);
  check "digest missing" (Kv.digest kv "missing" = Ok None);
  check "below a value" (Kv.exists kv "a/b/c/below" = Ok None);
  ignore (expect_error "rename missing" Error.Not_found (Kv.rename kv ~source:"missing" ~dest:"x"));
  (* Errors. *)
  let msg = expect_error "get dictionary" Error.Value_expected (Kv.get kv "a/b") in
  check "Value_expected message" (msg <> "");
  ignore (expect_error "set dictionary" Error.Value_expected (Kv.set kv "a/b" "x"));
  ignore (expect_error "set below a value" Error.Dictionary_expected (Kv.set kv "a/b/c/d" "x"));
  let msg = expect_error "escaping key" Error.Invalid_argument (Kv.set kv "../escape" "x") in
  check "Invalid_argument message" (msg <> "");
  ignore (expect_error "key with NUL" Error.Invalid_argument (Kv.get kv "a\000b"));
  ignore (expect_error "open missing" Error.Not_found (Kv.open_ (r ^ "-missing")));
  let ro = ok "open ro" (Kv.open_ ~readonly:true r) in
  check "read-only get" (Kv.get ro "p" = Ok (Some "01234567XYZ"));
  let msg = expect_error "read-only set" Error.Read_only (Kv.set ro "p" "x") in
  check "Read_only message" (msg <> "");
  Kv.close ro;
  (* Removal. *)
  ok "remove value" (Kv.remove kv "a/z");
  ok "remove dictionary" (Kv.remove kv "a");
  ok "remove unbound" (Kv.remove kv "never");
  check "removed" (Kv.exists kv "a" = Ok None && Kv.exists kv "a/b/c" = Ok None);
  Kv.close kv;
  Kv.close kv;
  ignore (expect_error "get after close" Error.Closed (Kv.get kv "p"))

let test_batches () =
  let r = root () in
  let kv = ok "open" (Kv.open_ ~no_fsync:true r) in
  ok "set p" (Kv.set kv "p" "old");
  let kept = ref None in
  let v =
    ok "batch"
      (Kv.batch kv (fun b ->
           kept := Some b;
           let ( let* ) = Result.bind in
           let* () = Kv.Batch.set b "batch/x" "1" in
           let* () = Kv.Batch.set b "batch/y" "2" in
           check "batch sees its writes" (Kv.Batch.get b "batch/x" = Ok (Some "1"));
           check "batch exists" (Kv.Batch.exists b "batch" = Ok (Some `Dictionary));
           check "batch list" (Kv.Batch.list b "batch" = Ok (Some [ ("x", `Value); ("y", `Value) ]));
           let* () = Kv.Batch.remove b "p" in
           Ok 42))
  in
  check "batch result" (v = 42);
  check "batch committed"
    (Kv.get kv "batch/x" = Ok (Some "1") && Kv.get kv "batch/y" = Ok (Some "2") && Kv.get kv "p" = Ok None);
  (match !kept with
  | Some b -> ignore (expect_error "batch used after commit" Error.Closed (Kv.Batch.set b "late" "x"))
  | None -> check "batch kept" false);
  (* A change by someone else after the batch read a key: conflict, rerun. *)
  let other = ok "open other" (Kv.open_ ~no_fsync:true r) in
  let runs = ref 0 in
  ok "conflicting batch"
    (Kv.batch kv (fun b ->
         incr runs;
         match Kv.Batch.get b "batch/x" with
         | Ok (Some v) ->
             if !runs = 1 then ok "concurrent set" (Kv.set other "batch/x" "changed");
             Kv.Batch.set b "batch/x" (v ^ "+1")
         | Ok None -> Ok ()
         | Error e -> Error e));
  check "reran once" (!runs = 2 && Kv.get kv "batch/x" = Ok (Some "changed+1"));
  (* Always conflicting: retries + 1 runs, then Too_many_retries. *)
  runs := 0;
  let msg =
    expect_error "too many retries" Error.Too_many_retries
      (Kv.batch ~retries:2 kv (fun b ->
           incr runs;
           ignore (Kv.Batch.get b "batch/y");
           ok "concurrent set" (Kv.set other "batch/y" (string_of_int !runs));
           Kv.Batch.set b "batch/z" "never"))
  in
  check "ran retries + 1 times" (!runs = 3 && msg <> "" && Kv.exists kv "batch/z" = Ok None);
  (* An error returned by f, or an exception, discards the batch. *)
  let e = { Error.status = Error.Inconsistent; message = "mine" } in
  check "error from f"
    (Kv.batch kv (fun b -> ignore (Kv.Batch.set b "batch/w" "never"); Error e) = Error e);
  check "exception from f"
    (match Kv.batch kv (fun b -> ignore (Kv.Batch.set b "batch/w" "never"); raise Exit) with
    | exception Exit -> true
    | _ -> false);
  check "nothing written" (Kv.exists kv "batch/w" = Ok None);
  Kv.close other;
  let ro = ok "open ro" (Kv.open_ ~readonly:true r) in
  ignore (expect_error "read-only batch" Error.Read_only (Kv.batch ro (fun _ -> Ok ())));
  Kv.close ro;
  Kv.close kv

(* Threads increment one counter through batches, on a shared handle and on
   their own: no increment is lost. *)
let test_threads () =
  let r = root () in
  let kv = ok "open" (Kv.open_ ~no_fsync:true r) in
  ok "set counter" (Kv.set kv "counter" "0");
  let per_thread = 15 and errors = Atomic.make 0 in
  let incr_counter b =
    match Kv.Batch.get b "counter" with
    | Ok (Some v) -> Kv.Batch.set b "counter" (string_of_int (int_of_string v + 1))
    | Ok None -> Ok ()
    | Error e -> Error e
  in
  let worker () =
    match Kv.open_ ~no_fsync:true r with
    | Error _ -> Atomic.incr errors
    | Ok mine ->
        for k = 1 to per_thread do
          let h = if k mod 2 = 0 then kv else mine in
          match Kv.batch ~retries:1000 h incr_counter with Ok () -> () | Error _ -> Atomic.incr errors
        done;
        Kv.close mine
  in
  let threads = List.init 4 (fun _ -> Thread.create worker ()) in
  List.iter Thread.join threads;
  check "no error in threads" (Atomic.get errors = 0);
  check "no lost increment" (Kv.get kv "counter" = Ok (Some (string_of_int (4 * per_thread))));
  Kv.close kv

let run () =
  test_store ();
  test_batches ();
  test_threads ()
