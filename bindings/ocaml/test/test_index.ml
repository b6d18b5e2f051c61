(* Tests of Tzstore.Index: add (with background merges), find, not found,
   replace, remove, errors with their messages, snapshot folds, read-only
   sync, close, and threads reading while one adds. *)

open Tzstore
open Util

(* 8-byte keys holding NUL bytes, 16-byte values. *)
let key_of n = Printf.sprintf "%c%c%c\000\000\000\000\165" (Char.chr (n land 255)) (Char.chr ((n lsr 8) land 255)) (Char.chr ((n lsr 16) land 255))
let value_of ?(version = 0) n = String.init 16 (fun i -> Char.chr ((n * 13 + version * 101 + i) land 255))
let n = 600
let open_ix ?readonly ?removable ?log_size d =
  Index.open_ ?readonly ?removable ?log_size ~no_fsync:true ~key_size:8 ~value_size:16 d

let test_round_trip () =
  let d = Filename.concat (dir ()) "index" in
  (* A small log so that adds start background merges. *)
  let ix = ok "open" (open_ix ~log_size:100 d) in
  check "sizes" (Index.key_size ix = 8 && Index.value_size ix = 16);
  check "empty" (Index.length ix = Ok 0);
  for i = 0 to n - 1 do
    ok "add" (Index.add ~flush:(i mod 100 = 0) ix (key_of i) (value_of i))
  done;
  ok "await_merge" (Index.await_merge ix);
  check "length" (Index.length ix = Ok n);
  let all = ref true in
  for i = 0 to n - 1 do
    all := !all && Index.mem ix (key_of i) = Ok true && Index.find ix (key_of i) = Ok (Some (value_of i))
  done;
  check "every binding found" !all;
  ok "replace" (Index.add ix (key_of 7) (value_of ~version:1 7));
  check "replaced" (Index.find ix (key_of 7) = Ok (Some (value_of ~version:1 7)));
  check "mem missing" (Index.mem ix (key_of (n + 1)) = Ok false);
  check "find missing" (Index.find ix (key_of (n + 1)) = Ok None);
  let seen = Hashtbl.create n in
  ok "iter" (Index.iter ix (fun k v -> check "each key once" (not (Hashtbl.mem seen k)); Hashtbl.replace seen k v));
  check "iter visits every binding" (Hashtbl.length seen = n);
  check "iter sees the replaced value" (Hashtbl.find_opt seen (key_of 7) = Some (value_of ~version:1 7));
  check "fold re-raises" (match Index.iter ix (fun _ _ -> raise Exit) with exception Exit -> true | _ -> false);
  Index.close ix;
  let ix = ok "reopen" (Index.open_ ~key_size:8 ~value_size:16 d) in
  check "durable" (Index.find ix (key_of (n - 1)) = Ok (Some (value_of (n - 1))));
  Index.close ix

let test_errors () =
  let d = Filename.concat (dir ()) "index" in
  let ix = ok "open" (open_ix d) in
  ok "add" (Index.add ix (key_of 1) (value_of 1));
  let msg = expect_error "short key" Error.Invalid_argument (Index.add ix "short" (value_of 1)) in
  check "short key has a message" (msg <> "");
  ignore (expect_error "long value" Error.Invalid_argument (Index.add ix (key_of 2) (value_of 2 ^ "x")));
  ignore (expect_error "find long key" Error.Invalid_argument (Index.find ix "toolongkey"));
  let msg = expect_error "remove, not removable" Error.Invalid_argument (Index.remove ix (key_of 1)) in
  check "remove message" (msg <> "");
  ignore (expect_error "second read-write open" Error.Locked (open_ix d));
  ignore (expect_error "read-only open of a missing index" Error.Not_found (open_ix ~readonly:true (d ^ "-missing")));
  let ro = ok "open ro" (open_ix ~readonly:true d) in
  let msg = expect_error "read-only add" Error.Read_only (Index.add ro (key_of 2) (value_of 2)) in
  check "Read_only has a message" (msg <> "");
  ok "add 2" (Index.add ix (key_of 2) (value_of 2));
  ok "sync" (Index.sync ro);
  check "read-only sees key 2 after sync" (Index.find ro (key_of 2) = Ok (Some (value_of 2)));
  Index.close ro;
  Index.close ix;
  Index.close ix;
  ignore (expect_error "find after close" Error.Closed (Index.find ix (key_of 1)));
  ignore (expect_error "length after close" Error.Closed (Index.length ix));
  ignore
    (expect_error "other sizes" Error.Invalid_argument (Index.open_ ~key_size:8 ~value_size:32 d));
  (* Removable indexes. *)
  let r = Filename.concat (dir ()) "removable" in
  let rx = ok "open removable" (open_ix ~removable:true r) in
  for i = 0 to 9 do
    ok "add" (Index.add rx (key_of i) (value_of i))
  done;
  ok "remove" (Index.remove rx (key_of 3));
  ok "remove unbound" (Index.remove rx (key_of 99));
  check "removed" (Index.find rx (key_of 3) = Ok None && Index.length rx = Ok 9);
  Index.close rx;
  let rx = ok "reopen removable" (open_ix ~removable:true r) in
  check "removal is durable" (Index.mem rx (key_of 3) = Ok false && Index.mem rx (key_of 4) = Ok true);
  Index.close rx

(* Reader threads share the handle with a thread adding (and merging);
   every earlier binding stays visible, a new one is absent or complete. *)
let test_threads () =
  let d = Filename.concat (dir ()) "index" in
  let ix = ok "open" (open_ix ~log_size:100 d) in
  for i = 0 to n - 1 do
    ok "add" (Index.add ~flush:false ix (key_of i) (value_of i))
  done;
  let total = n + 400 in
  let stop = Atomic.make false and bad = Atomic.make 0 and reads = Atomic.make 0 in
  let reader seed () =
    let i = ref seed in
    while not (Atomic.get stop) do
      i := ((!i * 7) + 3) mod n;
      if Index.find ix (key_of !i) <> Ok (Some (value_of !i)) then Atomic.incr bad;
      let j = total - 1 - !i in
      (match Index.find ix (key_of j) with
      | Ok None -> ()
      | Ok (Some v) when v = value_of j -> ()
      | _ -> Atomic.incr bad);
      Atomic.incr reads
    done
  in
  let readers = List.init 3 (fun s -> Thread.create (reader s) ()) in
  let writer =
    Thread.create
      (fun () ->
        while Atomic.get reads < 3 do
          Thread.yield ()
        done;
        for i = n to total - 1 do
          if Index.add ~flush:false ix (key_of i) (value_of i) <> Ok () then Atomic.incr bad
        done;
        Atomic.set stop true)
      ()
  in
  Thread.join writer;
  List.iter Thread.join readers;
  check "no bad read in threads" (Atomic.get bad = 0);
  ok "await_merge" (Index.await_merge ix);
  check "every binding added" (Index.length ix = Ok total);
  Index.close ix

let run () =
  test_round_trip ();
  test_errors ();
  test_threads ()
