(* Stores a small chain in a block store and reads it back.
   Build: dune build ./chain.exe (with OCAMLPATH=PREFIX/lib/ocaml). Run: chain.exe DIR *)
open Tzstore

(* Block n's hash: 32 bytes of value n + 1. *)
let hash n = String.make 32 (Char.chr (n + 1))

let () =
  if Array.length Sys.argv <> 2 then (
    prerr_endline ("usage: " ^ Sys.argv.(0) ^ " DIR");
    exit 2);
  Printf.printf "tzstore %s\n" (Tzstore.version ());
  (* durable, full history *)
  let store = Error.get_ok (Block_store.open_ (Filename.concat Sys.argv.(1) "blocks")) in
  for n = 0 to 3 do
    (* genesis (its own predecessor) and three blocks *)
    let block =
      { Block.hash = hash n; level = Int32.of_int n; predecessor = hash (max 0 (n - 1));
        contents = Printf.sprintf "block %d" n; metadata = None }
    in
    Error.get_ok (Block_store.store store block)
  done;
  print_endline "stored levels 0..3";
  List.iter
    (fun distance ->
      match Block_store.read ~distance store (hash 3) with
      | Ok (Some b) ->
          Printf.printf "%d below the head: level %ld, %S\n" distance b.Block.level b.Block.contents
      | Ok None -> print_endline "not found"
      | Error e -> failwith (Error.to_string e))
    [ 0; 2 ];
  if Block_store.read store (String.make 32 '\x99') = Ok None then
    print_endline "unknown hash: not found";
  Block_store.close store
