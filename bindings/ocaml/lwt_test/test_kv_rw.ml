(* Tzstore_lwt.Kv_rw, mirage-kv's RW shape: every function, and each error
   variant a mirage-kv user matches on. *)

open Lwt.Syntax
module Kv = Tzstore_lwt.Kv_rw

open Util

let run root =
  let* kv = Kv.connect root in
  let* r = Kv.set kv "/a/b" "hello world" in
  check "set" (r = Ok ());
  let* r = Kv.get kv "/a/b" in
  check "get" (r = Ok "hello world");
  let* r = Kv.get_partial kv "/a/b" ~offset:6 ~length:5 in
  check "get_partial" (r = Ok "world");
  let* r = Kv.exists kv "/a" in
  check "exists dictionary" (r = Ok (Some `Dictionary));
  let* r = Kv.exists kv "/nope" in
  check "exists absent" (r = Ok None);
  let* r = Kv.size kv "/a/b" in
  check "size" (r = Ok 11);
  let* r = Kv.digest kv "/a/b" in
  check "digest is 32 bytes" (match r with Ok d -> String.length d = 32 | Error _ -> false);
  let* r = Kv.last_modified kv "/a/b" in
  check "last_modified" (match r with Ok (d, _) -> d > 19000 | Error _ -> false);
  let* r = Kv.set kv "/a/c" "x" in
  check "set c" (r = Ok ());
  let* r = Kv.list kv "/a" in
  check "list gives full keys" (r = Ok [ ("/a/b", `Value); ("/a/c", `Value) ]);
  let* r = Kv.set_partial kv "/a/c" ~offset:1 "yz" in
  check "set_partial" (r = Ok ());
  let* r = Kv.get kv "/a/c" in
  check "after set_partial" (r = Ok "xyz");
  let* r = Kv.get kv "/missing" in
  check "get of an unbound key is `Not_found" (r = Error (`Not_found "/missing"));
  let* r = Kv.get kv "/a" in
  check "get of a dictionary is `Value_expected" (r = Error (`Value_expected "/a"));
  let* r = Kv.get kv "/a/b/c" in
  check "a value as a parent is `Dictionary_expected" (r = Error (`Dictionary_expected "/a/b/c"));
  let* r = Kv.allocate kv "/z" 4 in
  check "allocate" (r = Ok ());
  let* r = Kv.get kv "/z" in
  check "allocated zeros" (r = Ok "\000\000\000\000");
  let* r = Kv.allocate kv "/z" 4 in
  check "allocate twice is `Already_present" (r = Error (`Already_present "/z"));
  let* r = Kv.rename kv ~source:"/a" ~dest:"/a/inner" in
  check "rename into itself is `Rename_source_prefix" (r = Error (`Rename_source_prefix ("/a", "/a/inner")));
  let* r = Kv.rename kv ~source:"/a/c" ~dest:"/d" in
  check "rename" (r = Ok ());
  let* r = Kv.get kv "/d" in
  check "renamed value" (r = Ok "xyz");
  let* r = Kv.batch kv (fun b -> Tzstore.Kv.Batch.set b "/batched" "1") in
  check "batch" (r = Ok ());
  let* r = Kv.get kv "/batched" in
  check "batch committed" (r = Ok "1");
  let* r =
    Kv.batch kv ~retries:2 (fun _ ->
        Error { Tzstore.Error.status = Tzstore.Error.Conflict; message = "forced" })
  in
  check "a batch that keeps conflicting is `Too_many_retries" (r = Error (`Too_many_retries 2));
  let* r = Kv.remove kv "/a" in
  check "remove a dictionary" (r = Ok ());
  let* r = Kv.exists kv "/a/b" in
  check "removed" (r = Ok None);
  let* () = Kv.disconnect kv in
  let* r = Kv.get kv "/d" in
  check "a disconnected store is a `Store error"
    (match r with Error (`Store e) -> e.Tzstore.Error.status = Tzstore.Error.Closed | _ -> false);
  Lwt.return_unit

let () =
  let root =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "tzstore-kvrw-%d" (Unix.getpid ()))
  in
  Unix.mkdir root 0o755;
  Lwt_main.run (run root);
  ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote root)));
  finish "Kv_rw"
