(* The cost of one [Tzstore.Index.find] call seen from OCaml: a present key
   (answered from the index, no I/O once the pages are cached), a miss, and
   a refused call (an error with a message).
   Usage: bench_find.exe DIR [CALLS] [KEYS] [ROUNDS]; prints the CPU ns
   per call of the fastest and the median of ROUNDS rounds of CALLS calls.
   The per-call cost is what the binding adds around the C call (argument
   conversion, the runtime lock, the result's allocation) plus the C
   lookup itself. *)

open Tzstore

let key_size = 32
let value_size = 8
let key i = Printf.sprintf "%032d" i
let value i = Printf.sprintf "%08d" (i land 0xffffff)

(* CPU time of this process (the lookups run on this thread; the library's
   background merges are over before the rounds start), so that other
   processes on a loaded machine count less than in wall-clock time. *)
let cpu () =
  let t = Unix.times () in
  t.Unix.tms_utime +. t.Unix.tms_stime

(* ns per call of each of [rounds] rounds of [calls] calls, sorted. *)
let rounds_per_call ~rounds calls f =
  List.init rounds (fun _ ->
      Gc.full_major ();
      let t0 = cpu () in
      for i = 0 to calls - 1 do
        f i
      done;
      (cpu () -. t0) *. 1e9 /. float_of_int calls)
  |> List.sort compare

let () =
  let arg i default = if Array.length Sys.argv > i then int_of_string Sys.argv.(i) else default in
  if Array.length Sys.argv < 2 then (
    prerr_endline "usage: bench_find.exe DIR [CALLS] [KEYS] [ROUNDS]";
    exit 2);
  let dir = Filename.concat Sys.argv.(1) "index" in
  let calls = arg 2 1_000_000 and nkeys = arg 3 10_000 and rounds = max 1 (arg 4 5) in
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
  for i = 0 to nkeys - 1 do
    find present true i
  done;
  (* A key one byte short: the library answers INVALID_ARGUMENT with a
     message, which the binding reads and frees (two more C calls). *)
  let short = String.make (key_size - 1) 'k' in
  let refused _ =
    match Index.find ix short with
    | Error { Error.status = Error.Invalid_argument; _ } -> ()
    | _ -> failwith "find: a short key was not refused"
  in
  let hit = rounds_per_call ~rounds calls (find present true) in
  let miss = rounds_per_call ~rounds calls (find absent false) in
  let error = rounds_per_call ~rounds calls refused in
  let best l = List.hd l and median l = List.nth l (List.length l / 2) in
  Printf.printf
    "index find, %d keys, %d rounds of %d calls, CPU ns/call (best, median): present %.0f %.0f, \
     absent %.0f %.0f, error %.0f %.0f\n"
    nkeys rounds calls (best hit) (median hit) (best miss) (median miss) (best error)
    (median error);
  Index.close ix
