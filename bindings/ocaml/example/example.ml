open Tzstore

let () =
  let dir = if Array.length Sys.argv > 1 then Sys.argv.(1) else "." in
  let ix = Error.get_ok (Index.open_ ~no_fsync:true ~key_size:4 ~value_size:8 (Filename.concat dir "index")) in
  ignore (Index.add ix "key1" "value--1");
  (match Index.find ix "key1" with
  | Ok (Some v) -> print_endline ("index: " ^ v)
  | Ok None -> print_endline "not found"
  | Error e -> prerr_endline (Error.to_string e));
  if Index.find ix "nope" = Ok None then print_endline "not found";
  (match Index.add ix "too long key" "value--2" with
  | Error e -> print_endline ("error: " ^ Error.to_string e) (* TZS_INVALID_ARGUMENT: ... *)
  | Ok () -> ());
  Index.close ix;
  let f = Error.get_ok (Floating.open_ ~no_fsync:true ~kind:Floating.Rw (Filename.concat dir "blocks")) in
  let h n = String.make 32 (Char.chr n) in
  let genesis = { Block.hash = h 1; level = 0l; predecessor = h 1; contents = "g"; metadata = None } in
  let b1 = { Block.hash = h 2; level = 1l; predecessor = h 1; contents = "b1"; metadata = Some "m" } in
  ignore (Floating.append f genesis []);
  ignore (Floating.append f b1 [ genesis.Block.hash ]) (* predecessors: the 2^i-th ancestors *);
  (match Floating.read_block f b1.Block.hash with
  | Ok (Some b) -> Printf.printf "block level %ld: %s\n" b.Block.level b.Block.contents
  | Ok None -> print_endline "block not found"
  | Error e -> prerr_endline (Error.to_string e));
  if Floating.read_block f (h 9) = Ok None then print_endline "block not found";
  Floating.close f
