(* Helpers shared by the test modules: counters, assertions, temporary
   directories. *)

open Tzstore

let passed = ref 0
let failed = ref 0

let check name cond =
  if cond then incr passed
  else (
    incr failed;
    Printf.eprintf "FAIL: %s\n%!" name)

let ok name = function
  | Ok x -> x
  | Error e -> failwith (name ^ ": " ^ Error.to_string e)

let expect_error name status = function
  | Ok _ ->
      check (name ^ ": expected " ^ Error.status_name status) false;
      ""
  | Error e ->
      check (name ^ ": got " ^ Error.to_string e) (e.Error.status = status);
      e.Error.message

let contains s sub =
  let n = String.length sub in
  let rec go i = i + n <= String.length s && (String.sub s i n = sub || go (i + 1)) in
  go 0

let fresh_dir =
  let counter = ref 0 in
  fun () ->
    incr counter;
    let d =
      Filename.concat (Filename.get_temp_dir_name ())
        (Printf.sprintf "tzstore-ocaml-%d-%d" (Unix.getpid ()) !counter)
    in
    Unix.mkdir d 0o755;
    d

let rec rm_rf p =
  if Sys.is_directory p then (
    Array.iter (fun f -> rm_rf (Filename.concat p f)) (Sys.readdir p);
    Unix.rmdir p)
  else Sys.remove p

let dirs = ref []

let dir () =
  let d = fresh_dir () in
  dirs := d :: !dirs;
  d

let path () = Filename.concat (dir ()) "single"

