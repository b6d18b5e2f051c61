(* The cost of one [Tzstore.Index.find] call seen from OCaml: a present key
   (answered from the index, no I/O once the pages are cached) and a miss.
   Usage: bench_find.exe DIR [CALLS] [KEYS]; prints ns per call for each.
   The per-call cost is what the binding adds around the C call (argument
   conversion, the runtime lock, the result's allocation) plus the C
   lookup itself. *)

open Tzstore

let key_size = 32
let value_size = 8
let key i = Printf.sprintf "%032d" i
let value i = Printf.sprintf "%08d" (i land 0xffffff)

let time_per_call calls f =
  Gc.full_major ();
  let t0 = Unix.gettimeofday () in
  for i = 0 to calls - 1 do
    f i
  done;
  (Unix.gettimeofday () -. t0) *. 1e9 /. float_of_int calls

let () =
  let arg i default = if Array.length Sys.argv > i then int_of_string Sys.argv.(i) else default in
  if Array.length Sys.argv < 2 then (
    prerr_endline "usage: bench_find.exe DIR [CALLS] [KEYS]";
    exit 2);
  let dir = Filename.concat Sys.argv.(1) "index" in
  let calls = arg 2 2_000_000 and nkeys = arg 3 10_000 in
  let ix = Error.get_ok (Index.open_ ~no_fsync:true ~key_size ~value_size dir) in
  for i = 0 to nkeys - 1 do
    Error.get_ok (Index.add ~flush:false ix (key i) (value i))
  done;
  Error.get_ok (Index.flush ix);
  Error.get_ok (Index.await_merge ix);
  (* Keys made up front: the loops measure the call, not the formatting. *)
  let present = Array.init nkeys key in
  let absent = Array.init nkeys (fun i -> key (nkeys + i)) in
  let find keys expect i =
    match Index.find ix keys.(i mod nkeys) with
    | Ok r when Option.is_some r = expect -> ()
    | Ok _ -> failwith "find: unexpected answer"
    | Error e -> failwith (Error.to_string e)
  in
  (* One untimed pass warms the page cache and the allocator. *)
  ignore (time_per_call (min calls nkeys) (find present true));
  let hit = time_per_call calls (find present true) in
  let miss = time_per_call calls (find absent false) in
  Printf.printf "index find, %d keys, %d calls each: present %.0f ns/call, absent %.0f ns/call\n"
    nkeys calls hit miss;
  Index.close ix
