open Tzstore

let () =
  let dir = Filename.concat (if Array.length Sys.argv > 1 then Sys.argv.(1) else ".") "node" in
  let s =
    Error.get_ok
      (Block_store.open_ ~no_fsync:true ~history_mode:Block_store.Rolling ~history_offset:2 dir)
  in
  let hash n = String.make 31 '\xab' ^ String.make 1 (Char.chr n) in
  let block n =
    (* a chain: genesis is its own predecessor *)
    { Block.hash = hash n; level = Int32.of_int n; predecessor = hash (max 0 (n - 1));
      contents = Printf.sprintf "block %d" n; metadata = None }
  in
  for n = 0 to 29 do
    Error.get_ok (Block_store.store s (block n))
  done;
  (match Block_store.read s (hash 29) with
  | Ok (Some b) -> Printf.printf "head: level %ld\n" b.Block.level
  | Ok None -> print_endline "not found"
  | Error e -> prerr_endline (Error.to_string e));
  (match Block_store.read ~distance:10 s (hash 29) with
  | Ok (Some b) -> print_endline ("ancestor: " ^ b.Block.contents)
  | _ -> ());
  if Block_store.read s (hash 99) = Ok None then print_endline "not found";
  (match Block_store.store s { (block 50) with Block.predecessor = hash 49 } with
  | Error e -> print_endline ("error: " ^ Error.to_string e) (* TZS_INCONSISTENT: ... *)
  | Ok () -> ());
  Error.get_ok (Block_store.merge s ~head:(hash 29) ~chunk_ends:[ 9l; 19l ]);
  Error.get_ok (Block_store.await_merge s);
  (match Block_store.stats s with
  | Ok { cemented_highest = Some l; _ } -> Printf.printf "cemented up to %ld\n" l
  | _ -> ());
  Block_store.close s
