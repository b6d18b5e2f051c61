(* Tests of Tzstore.Floating: a chain appended with predecessor lists, read
   back byte-identical (with and without metadata), not found, errors with
   their messages, iteration, read-only sync, close, and threads reading
   while one appends. *)

open Tzstore
open Util

let hash_of n =
  String.init 32 (fun i -> Char.chr (if i < 4 then (n lsr (8 * i)) land 255 else (n * 31 + i * 7) land 255))

(* Block n of a chain (0 is genesis): contents hold NUL bytes, every third
   block has no metadata, block 4 has empty metadata. *)
let block_of n =
  {
    Block.hash = hash_of n;
    level = Int32.of_int n;
    predecessor = hash_of (max 0 (n - 1));
    contents = Printf.sprintf "block %d\000ops\255" n;
    metadata =
      (if n = 4 then Some "" else if n mod 3 = 0 then None else Some (String.make (100 + n) (Char.chr (n land 255))));
  }

(* Entry i is the 2^i-th ancestor, as far as the chain goes (at most 12). *)
let preds_of n =
  let rec go i d = if i = 12 || n - d < 0 then [] else hash_of (n - d) :: go (i + 1) (d * 2) in
  go 0 1

let n = 40

let test_round_trip () =
  let d = Filename.concat (dir ()) "floating" in
  let f = ok "open" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  check "empty" (Floating.length f = Ok 0);
  for i = 0 to n - 1 do
    ok "append" (Floating.append ~flush:(i mod 10 = 0) f (block_of i) (preds_of i))
  done;
  ok "append again" (Floating.append f (block_of 5) (preds_of 5));
  check "length" (Floating.length f = Ok n);
  for i = 0 to n - 1 do
    let h = hash_of i in
    check "mem" (Floating.mem f h = Ok true);
    check (Printf.sprintf "read_block %d" i) (Floating.read_block f h = Ok (Some (block_of i)));
    check "find_predecessors" (Floating.find_predecessors f h = Ok (Some (preds_of i)));
    check "read_block_and_predecessors"
      (Floating.read_block_and_predecessors f h = Ok (Some (block_of i, preds_of i)))
  done;
  (match Floating.read_block f (hash_of 0) with
  | Ok (Some b) -> check "no metadata" (b.Block.metadata = None)
  | _ -> check "genesis readable" false);
  (match Floating.read_block f (hash_of 4) with
  | Ok (Some b) -> check "empty metadata" (b.Block.metadata = Some "")
  | _ -> check "block 4 readable" false);
  let missing = hash_of 9999 in
  check "mem missing" (Floating.mem f missing = Ok false);
  check "read missing" (Floating.read_block f missing = Ok None);
  check "preds missing" (Floating.find_predecessors f missing = Ok None);
  check "read+preds missing" (Floating.read_block_and_predecessors f missing = Ok None);
  (* Iteration in append order. *)
  let visited =
    ok "fold"
      (Floating.fold f ~init:0 ~f:(fun i b preds ->
           check (Printf.sprintf "fold %d" i) (b = block_of i && preds = preds_of i);
           i + 1))
  in
  check "fold visits every block" (visited = n);
  (* An exception raised by the callback frees the iterator and propagates. *)
  check "fold re-raises"
    (match Floating.iter f (fun _ _ -> raise Exit) with exception Exit -> true | _ -> false);
  Floating.close f;
  let f = ok "reopen" (Floating.open_ ~kind:Floating.Rw d) in
  check "durable" (Floating.read_block f (hash_of (n - 1)) = Ok (Some (block_of (n - 1))));
  Floating.close f

let test_errors () =
  let d = Filename.concat (dir ()) "floating" in
  let f = ok "open" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  ok "genesis" (Floating.append f (block_of 0) []);
  let msg =
    expect_error "13 predecessors" Error.Invalid_argument
      (Floating.append f (block_of 1) (List.init 13 (fun _ -> hash_of 0)))
  in
  check "message names the limit" (contains msg "12");
  ignore (expect_error "short hash" Error.Invalid_argument (Floating.read_block f "short"));
  ignore
    (expect_error "short block hash" Error.Invalid_argument
       (Floating.append f { (block_of 1) with Block.hash = "x" } []));
  ignore (expect_error "short predecessor" Error.Invalid_argument (Floating.append f (block_of 1) [ "x" ]));
  let msg = expect_error "second read-write open" Error.Locked (Floating.open_ ~kind:Floating.Rw d) in
  check "Locked has a message" (msg <> "");
  ignore
    (expect_error "read-only open of a missing store" Error.Not_found
       (Floating.open_ ~readonly:true ~kind:Floating.Ro (d ^ "-missing")));
  (* Other kinds coexist in the same directory. *)
  let tmp = ok "open rw_tmp" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw_tmp d) in
  check "other kind is empty" (Floating.mem tmp (hash_of 0) = Ok false);
  Floating.close tmp;
  ok "flush" (Floating.flush f);
  let ro = ok "open ro" (Floating.open_ ~readonly:true ~kind:Floating.Rw d) in
  let msg = expect_error "read-only append" Error.Read_only (Floating.append ro (block_of 1) (preds_of 1)) in
  check "Read_only has a message" (msg <> "");
  ok "append 1" (Floating.append f (block_of 1) (preds_of 1));
  ok "sync" (Floating.sync ro);
  check "read-only sees block 1 after sync" (Floating.read_block ro (hash_of 1) = Ok (Some (block_of 1)));
  Floating.close ro;
  Floating.close f;
  Floating.close f;
  ignore (expect_error "read after close" Error.Closed (Floating.read_block f (hash_of 0)));
  ignore (expect_error "length after close" Error.Closed (Floating.length f));
  ignore (expect_error "fold after close" Error.Closed (Floating.iter f (fun _ _ -> ())))

(* Reader threads share the handle with a thread appending; every block
   stored before they start reads back identical, and a block appended
   meanwhile is either absent or complete. *)
let test_threads () =
  let d = Filename.concat (dir ()) "floating" in
  let f = ok "open" (Floating.open_ ~no_fsync:true ~kind:Floating.Rw d) in
  for i = 0 to n - 1 do
    ok "append" (Floating.append ~flush:false f (block_of i) (preds_of i))
  done;
  let total = n + 300 in
  let stop = Atomic.make false and bad = Atomic.make 0 and reads = Atomic.make 0 in
  let reader seed () =
    let i = ref seed in
    while not (Atomic.get stop) do
      i := ((!i * 7) + 3) mod n;
      (match Floating.read_block f (hash_of !i) with
      | Ok (Some b) when b = block_of !i -> ()
      | _ -> Atomic.incr bad);
      let j = total - 1 - !i in
      (match Floating.read_block_and_predecessors f (hash_of j) with
      | Ok None -> ()
      | Ok (Some (b, p)) when b = block_of j && p = preds_of j -> ()
      | _ -> Atomic.incr bad);
      Atomic.incr reads
    done
  in
  let readers = List.init 3 (fun s -> Thread.create (reader s) ()) in
  let writer =
    Thread.create
      (fun () ->
        (* Append only once the readers run, so that both overlap. *)
        while Atomic.get reads < 3 do
          Thread.yield ()
        done;
        for i = n to total - 1 do
          match Floating.append ~flush:false f (block_of i) (preds_of i) with
          | Ok () -> ()
          | Error _ -> Atomic.incr bad
        done;
        Atomic.set stop true)
      ()
  in
  Thread.join writer;
  List.iter Thread.join readers;
  check "no bad read in threads" (Atomic.get bad = 0);
  check "every block appended" (Floating.length f = Ok total);
  Floating.close f

let run () =
  test_round_trip ();
  test_errors ();
  test_threads ()
