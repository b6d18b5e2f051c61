(* A smart-rollup node's stores, as Octez's rollup node declared them with
   src/lib_layer2_store/indexed_store.mli, on tzstore.lwt: the last
   finalized head (a singleton), L2 block hashes by level (indexable), the
   L2 blocks with their level as header (indexed file), and messages not
   yet included (removable). Prints what it reads back. *)

open Lwt.Syntax
open Tzstore_lwt.Indexed_store

let get = function Ok x -> x | Error e -> failwith (Tzstore.Error.to_string e)

module Hash = struct
  type t = string

  let encoded_size = 32
  let encode h = h
  let decode s off = String.sub s off 32
  let make n = Digest.to_hex (Digest.string (string_of_int n))
end

module Level = struct
  type t = int32

  let encoded_size = 4

  let encode l =
    let b = Bytes.create 4 in
    Bytes.set_int32_be b 0 l;
    Bytes.to_string b

  let decode s off = String.get_int32_be s off
end

module L2_block = struct
  type t = { level : int32; inbox : string list }

  let name = "l2_block"
  let encode { level; inbox } = Level.encode level ^ String.concat "\n" inbox

  let decode s =
    let body = String.sub s 4 (String.length s - 4) in
    { level = Level.decode s 0; inbox = (if body = "" then [] else String.split_on_char '\n' body) }

  module Header = Level

  let header b = b.level
end

module Head = struct
  type t = { hash : string; level : int32 }

  let name = "head"
  let encode { hash; level } = hash ^ Level.encode level
  let decode s = { hash = String.sub s 0 32; level = Level.decode s 32 }
end

module Last_finalized = Make_singleton (Head)

module Levels =
  Make_indexable
    (struct
      let name = "levels"
    end)
    (Level)
    (Hash)

module Blocks =
  Make_simple_indexed_file
    (struct
      let name = "l2_blocks"
    end)
    (Hash)
    (L2_block)

module Pending =
  Make_indexable_removable
    (struct
      let name = "pending_messages"
    end)
    (Hash)
    (Level)

let main dir =
  let p = Filename.concat dir in
  let* head = Last_finalized.load ~path:(p "head") Read_write in
  let head = get head in
  let* levels = Levels.load ~path:(p "levels") Read_write in
  let levels = get levels in
  let* blocks = Blocks.load ~path:(p "l2_blocks") Read_write in
  let blocks = get blocks in
  let* pending = Pending.load ~path:(p "pending") Read_write in
  let pending = get pending in
  (* Messages arrive, then ten L2 blocks include them. *)
  let* () =
    Lwt_list.iter_s
      (fun i -> Lwt.map get (Pending.add pending (Hash.make (1000 + i)) (Int32.of_int i)))
      (List.init 10 Fun.id)
  in
  let* () =
    Lwt_list.iter_s
      (fun i ->
        let level = Int32.of_int i and hash = Hash.make i in
        let msg = Hash.make (1000 + i) in
        let* r = Blocks.append blocks ~key:hash ~value:{ L2_block.level; inbox = [ msg ] } in
        get r;
        let* r = Levels.add levels level hash in
        get r;
        let* r = Pending.remove pending msg in
        get r;
        Lwt.map get (Last_finalized.write head { Head.hash; level }))
      (List.init 10 Fun.id)
  in
  let* h = Last_finalized.read head in
  let h = Option.get (get h) in
  Printf.printf "last finalized head: level %ld\n" h.Head.level;
  let* hash = Levels.find levels 7l in
  let* b = Blocks.read blocks (Option.get (get hash)) in
  let b, header = Option.get (get b) in
  Printf.printf "L2 block at level 7: header %ld, %d inbox message(s)\n" header (List.length b.L2_block.inbox);
  let* left = Pending.mem pending (Hash.make 1003) in
  Printf.printf "message 3 still pending: %b\n" (get left);
  let* () = Last_finalized.close head in
  let* () = Levels.close levels in
  let* () = Blocks.close blocks in
  Pending.close pending

let () =
  let dir = if Array.length Sys.argv > 1 then Sys.argv.(1) else "." in
  Lwt_main.run (main dir)
