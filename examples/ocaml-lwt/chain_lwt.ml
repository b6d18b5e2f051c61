(* Stores a small chain as an Octez node would, in Lwt: the block store with
   Octez's names (Tzstore_lwt.Octez), and the head kept in a layer-2
   singleton made by a functor, as Octez's indexed_store.mli declares them.
   Build: dune build ./chain_lwt.exe (with OCAMLPATH=PREFIX/lib/ocaml).
   Run: chain_lwt.exe DIR *)
open Lwt.Syntax
open Tzstore_lwt.Octez

(* Block n's hash: 32 bytes of value n + 1. *)
let hash n = String.make 32 (Char.chr (n + 1))

let get = function Ok x -> x | Error e -> failwith (Tzstore.Error.to_string e)

(* The head, encoded as its hash and level. *)
module Head = Indexed_store.Make_singleton (struct
  type t = string * int32

  let name = "head"
  let encode (h, l) = h ^ Int32.to_string l
  let decode s = (String.sub s 0 32, Int32.of_string (String.sub s 32 (String.length s - 32)))
end)

let main dir =
  Printf.printf "tzstore %s\n" (Tzstore.version ());
  let* store = Block_store.load (Filename.concat dir "blocks") in
  let store = get store in
  let* head = Head.load ~path:(Filename.concat dir "head") Indexed_store.Read_write in
  let head = get head in
  let rec store_from n =
    if n > 3 then Lwt.return_unit
    else
      (* genesis (its own predecessor) and three blocks, each durable *)
      let block =
        { Tzstore.Block.hash = hash n; level = Int32.of_int n; predecessor = hash (max 0 (n - 1));
          contents = Printf.sprintf "block %d" n; metadata = None }
      in
      let* r = Block_store.store_block store block in
      get r;
      let* r = Head.write head (hash n, Int32.of_int n) in
      get r;
      store_from (n + 1)
  in
  let* () = store_from 0 in
  print_endline "stored levels 0..3";
  let* h = Head.read head in
  let head_hash, _ = Option.get (get h) in
  let* () =
    Lwt_list.iter_s
      (fun distance ->
        let* r = Block_store.read_block ~read_metadata:false store (Block (head_hash, distance)) in
        (match get r with
        | Some b ->
            Printf.printf "%d below the head: level %ld, %S\n" distance b.Tzstore.Block.level
              b.Tzstore.Block.contents
        | None -> print_endline "not found");
        Lwt.return_unit)
      [ 0; 2 ]
  in
  let* r = Block_store.read_block ~read_metadata:false store (Block (String.make 32 '\x99', 0)) in
  if get r = None then print_endline "unknown hash: not found";
  let* () = Head.close head in
  Block_store.close store

let () =
  if Array.length Sys.argv <> 2 then (
    prerr_endline ("usage: " ^ Sys.argv.(0) ^ " DIR");
    exit 2);
  Lwt_main.run (main Sys.argv.(1))
