(* A rollup-node-like set of stores built with tzstore.lwt's Octez functors
   (Indexed_store): a singleton head, an indexable level -> block hash map,
   a removable map of pending messages, an indexed file of blocks whose
   header is kept in the index, and a simple indexed file of commitments.
   Checks every operation, the read-only mode, GC, and the errors for values
   of the wrong size and for undecodable bytes. *)

open Lwt.Syntax
module S = Tzstore_lwt.Indexed_store
module Error = Tzstore.Error

open Util

module Hash = struct
  type t = string

  let encoded_size = 32
  let encode h = h
  let decode s off = String.sub s off 32
  let of_int n = Printf.sprintf "%032d" n
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

module Head = struct
  type t = { hash : string; level : int32 }

  let name = "head"
  let encode { hash; level } = hash ^ Level.encode level

  let decode s =
    if String.length s <> 36 then failwith "a head is 36 bytes";
    { hash = String.sub s 0 32; level = Level.decode s 32 }
end

module Block = struct
  type t = { level : int32; payload : string }

  let name = "block"
  let encode { payload; _ } = payload
  let decode payload = { level = -1l; payload }

  module Header = Level
end

module Commitment = struct
  type t = { inbox_level : int32; state : string }

  let name = "commitment"
  let encode { inbox_level; state } = Level.encode inbox_level ^ state
  let decode s = { inbox_level = Level.decode s 0; state = String.sub s 4 (String.length s - 4) }

  module Header = Level

  let header c = c.inbox_level
end

module Head_store = S.Make_singleton (Head)

module Levels =
  S.Make_indexable
    (struct
      let name = "levels"
    end)
    (Level)
    (Hash)

module Messages =
  S.Make_indexable_removable
    (struct
      let name = "messages"
    end)
    (Hash)
    (Level)

module Blocks =
  S.Make_indexed_file
    (struct
      let name = "blocks"
    end)
    (Hash)
    (Block)

module Commitments =
  S.Make_simple_indexed_file
    (struct
      let name = "commitments"
    end)
    (Hash)
    (Commitment)

let run root =
  let p x = Filename.concat root x in
  (* Singleton. *)
  let* head = Head_store.load ~path:(p "head") S.Read_write in
  let head = ok "load head" head in
  let* r = Head_store.read head in
  check "no head yet" (ok "read head" r = None);
  let h = { Head.hash = Hash.of_int 7; level = 7l } in
  let* r = Head_store.write head h in
  ok "write head" r;
  let* r = Head_store.read (Head_store.readonly head) in
  check "head read back" (ok "read head" r = Some h);
  (* Indexable. *)
  let* levels = Levels.load ~path:(p "levels") ~log_size:50 S.Read_write in
  let levels = ok "load levels" levels in
  let rec add i =
    if i > 200 then Lwt.return_unit
    else
      let* r = Levels.add ~flush:(i mod 20 = 0) levels (Int32.of_int i) (Hash.of_int i) in
      ok "add level" r;
      add (i + 1)
  in
  let* () = add 0 in
  let* r = Levels.find levels 150l in
  check "find a level" (ok "find" r = Some (Hash.of_int 150));
  let* r = Levels.mem levels 201l in
  check "absent level" (ok "mem" r = false);
  (* Removable. *)
  let* msgs = Messages.load ~path:(p "messages") S.Read_write in
  let msgs = ok "load messages" msgs in
  let* r = Messages.add msgs (Hash.of_int 1) 10l in
  ok "add message" r;
  let* r = Messages.add msgs (Hash.of_int 2) 20l in
  ok "add message" r;
  let* r = Messages.remove msgs (Hash.of_int 1) in
  ok "remove message" r;
  let* r = Messages.remove msgs (Hash.of_int 99) in
  ok "remove an absent message" r;
  let* r = Messages.find msgs (Hash.of_int 1) in
  check "removed message" (ok "find" r = None);
  let* r = Messages.find msgs (Hash.of_int 2) in
  check "kept message" (ok "find" r = Some 20l);
  (* A key of the wrong size is refused before reaching the store. *)
  let* r = Messages.add msgs "short" 1l in
  expect_error "a short key" Error.Invalid_argument r;
  (* Indexed file with an explicit header. *)
  let* blocks = Blocks.load ~path:(p "blocks") S.Read_write in
  let blocks = ok "load blocks" blocks in
  let rec append i =
    if i > 30 then Lwt.return_unit
    else
      let payload = String.make (100 + i) (Char.chr (65 + (i mod 26))) in
      let* r =
        Blocks.append blocks ~key:(Hash.of_int i) ~header:(Int32.of_int i)
          ~value:{ Block.level = Int32.of_int i; payload }
      in
      ok "append block" r;
      append (i + 1)
  in
  let* () = append 0 in
  let* r = Blocks.header blocks (Hash.of_int 12) in
  check "header from the index" (ok "header" r = Some 12l);
  let* r = Blocks.read blocks (Hash.of_int 12) in
  (match ok "read block" r with
  | Some (b, hd) -> check "block and header read back" (b.Block.payload = String.make 112 'M' && hd = 12l)
  | None -> check "block 12 missing" false);
  (* GC keeps the even levels. *)
  let* r = Blocks.gc ~async:false blocks (Filter (fun k _ -> int_of_string (String.trim k) mod 2 = 0)) in
  ok "gc" r;
  let* r = Blocks.mem blocks (Hash.of_int 13) in
  check "gc dropped an odd key" (ok "mem" r = false);
  let* r = Blocks.read blocks (Hash.of_int 14) in
  check "gc kept an even key" (Option.map snd (ok "read" r) = Some 14l);
  (* Simple indexed file: the header comes from the value. *)
  let* cs = Commitments.load ~path:(p "commitments") S.Read_write in
  let cs = ok "load commitments" cs in
  let c = { Commitment.inbox_level = 42l; state = "state hash" } in
  let* r = Commitments.append cs ~key:(Hash.of_int 42) ~value:c in
  ok "append commitment" r;
  let* r = Commitments.header cs (Hash.of_int 42) in
  check "computed header" (ok "header" r = Some 42l);
  let* r = Commitments.read cs (Hash.of_int 42) in
  check "commitment read back" (ok "read" r = Some (c, 42l));
  (* Undecodable bytes are an error naming the store, not None. *)
  let* raw = Tzstore_lwt.Singleton.open_ (p "bad-head") in
  let raw = ok "open raw singleton" raw in
  let* r = Tzstore_lwt.Singleton.write raw "not a head" in
  ok "write garbage" r;
  let* () = Tzstore_lwt.Singleton.close raw in
  let* bad = Head_store.load ~path:(p "bad-head") S.Read_only in
  let bad = ok "load bad head" bad in
  let* r = Head_store.read bad in
  expect_error "undecodable head" Error.Corrupted r;
  let* () = Head_store.close bad in
  (* Close the writers, then a read-only load sees everything. *)
  let* () = Head_store.close head in
  let* () = Levels.close levels in
  let* () = Messages.close msgs in
  let* () = Blocks.close blocks in
  let* () = Commitments.close cs in
  let* ro = Levels.load ~path:(p "levels") S.Read_only in
  let ro = ok "load levels read-only" ro in
  let* r = Levels.find ro 200l in
  check "read-only find" (ok "find" r = Some (Hash.of_int 200));
  let* () = Levels.close ro in
  let* ro = Head_store.load ~path:(p "head") S.Read_only in
  let ro = ok "load head read-only" ro in
  let* r = Head_store.read ro in
  check "read-only head" (ok "read" r = Some h);
  Head_store.close ro

let () =
  let root =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "tzstore-l2-%d" (Unix.getpid ()))
  in
  Unix.mkdir root 0o755;
  Lwt_main.run (run root);
  ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote root)));
  finish "Indexed_store"
