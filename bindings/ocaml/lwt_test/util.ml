(* Counters and assertions shared by the tzstore.lwt tests (each prints
   "N passed, N failed" and exits non-zero on a failure). *)

let passed = ref 0
let failed = ref 0

let check name cond =
  if cond then incr passed
  else (
    incr failed;
    Printf.eprintf "FAIL: %s\n%!" name)

let ok name = function Ok x -> x | Error e -> failwith (name ^ ": " ^ Tzstore.Error.to_string e)

let expect_error name status r =
  match r with
  | Ok _ -> check (name ^ ": expected an error") false
  | Error e -> check (name ^ ": " ^ Tzstore.Error.to_string e) (e.Tzstore.Error.status = status)

let finish what =
  Printf.printf "%s: %d passed, %d failed\n" what !passed !failed;
  exit (if !failed = 0 then 0 else 1)
