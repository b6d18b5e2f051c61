(* Tests of borrowed indexed-file reads (Tzstore.Indexed_file.read_view,
   read_view_with_header): views equal the copying reads for values
   present at open (the store reopened, so they are mapped) and for values
   appended since (copied into the reader), in a store with headers and in
   a header_in_value one; mapped values are borrowed (two readers' views
   share their bytes); misses, a wrong key size and closed handles; a view
   held across a compaction that drops its key and unlinks the old values
   file is unchanged; a view outlives the store's close until its reader is
   released, and keeps its dropped reader from the GC; one reader
   alternating block and value reads returns the right bytes each time;
   reader threads read views while values are appended and compacted. *)

open Tzstore
open Util

let key_of = Test_indexed_file.key_of
let header_of = Test_indexed_file.header_of

(* Value n: bigger than the header, with a NUL byte; value 0 is empty. *)
let value_of n = if n = 0 then "" else Printf.sprintf "value %d\000%s" n (String.make (n * 13) 'v')

let open_rw d = ok "open" (Indexed_file.open_ ~no_fsync:true ~log_size:16 ~key_size:8 ~header_size:5 d)
let str = Indexed_file.value_string

let append ?flush f i =
  ok "append" (Indexed_file.append ?flush f (key_of i) ~header:(header_of i) (value_of i))

(* The address of a (non-empty) view's first byte. *)
let address (b : Block.bigstring) = Ctypes.(raw_address_of_ptr (to_voidp (bigarray_start array1 b)))

let found name = function
  | Ok (Some v) -> v
  | Ok None -> failwith (name ^ ": not found")
  | Error e -> failwith (name ^ ": " ^ Error.to_string e)

(* Keys [0, n) of [f] read through [r]: each view (with and without the
   header) equals the copying reads; returns the keys that did not. *)
let compare_all r f keys =
  List.filter
    (fun i ->
      let k = key_of i in
      let want = Indexed_file.read f k and want_h = Indexed_file.read_with_header f k in
      let got = Indexed_file.read_view r f k |> Result.map (Option.map str) in
      let got_h =
        Indexed_file.read_view_with_header r f k |> Result.map (Option.map (fun (h, v) -> (h, str v)))
      in
      not
        (got = want && got_h = want_h && want = Ok (Some (value_of i))
        && want_h = Ok (Some (header_of i, value_of i))))
    keys

let none_wrong name wrong =
  check
    (Printf.sprintf "%s (wrong: %s)" name (String.concat "," (List.map string_of_int wrong)))
    (wrong = [])

let test_views () =
  let d = Filename.concat (dir ()) "value-views" in
  let f = open_rw d in
  let old = List.init 50 Fun.id in
  List.iter (append ~flush:false f) old;
  Indexed_file.close f;
  (* Reopened: the values file is mapped. *)
  let f = open_rw d in
  let r = ok "reader" (Reader.create ()) in
  none_wrong "views of values present at open equal copies" (compare_all r f old);
  let fresh = List.init 30 (fun i -> 50 + i) in
  List.iter (fun i -> append ~flush:(i mod 2 = 0) f i) fresh;
  none_wrong "views of values appended since equal copies" (compare_all r f fresh);
  none_wrong "old values still equal" (compare_all r f old);
  (* A replaced value: the view shows the new one. *)
  ok "replace" (Indexed_file.append f (key_of 7) ~header:"hnew!" "replaced");
  check "replaced value's view"
    (match Indexed_file.read_view_with_header r f (key_of 7) with
    | Ok (Some (h, v)) -> h = "hnew!" && str v = "replaced"
    | _ -> false);
  ok "restore" (Indexed_file.append f (key_of 7) ~header:(header_of 7) (value_of 7));
  (* Empty value: an empty bigarray. *)
  check "empty value"
    (match Indexed_file.read_view r f (key_of 0) with Ok (Some v) -> Bigarray.Array1.dim v = 0 | _ -> false);
  (* Borrowed: two readers' views of a mapped value share its bytes. *)
  let r2 = ok "reader 2" (Reader.create ()) in
  let v1 = found "20" (Indexed_file.read_view r f (key_of 20)) in
  let v2 = found "20 again" (Indexed_file.read_view r2 f (key_of 20)) in
  check "views share the map" (address v1 = address v2 && str v1 = value_of 20);
  (* Misses and errors. *)
  check "miss" (Indexed_file.read_view r f (key_of 900) = Ok None);
  check "miss with header" (Indexed_file.read_view_with_header r f (key_of 900) = Ok None);
  let msg = expect_error "short key" Error.Invalid_argument (Indexed_file.read_view r f "short") in
  check "message names the key" (contains msg "key");
  ignore
    (expect_error "long key" Error.Invalid_argument
       (Indexed_file.read_view_with_header r f (key_of 1 ^ "x")));
  (* The reader still works after errors. *)
  check "read after errors"
    (Result.map (Option.map str) (Indexed_file.read_view r f (key_of 3)) = Ok (Some (value_of 3)));
  Reader.close r2;
  ignore (expect_error "closed reader" Error.Closed (Indexed_file.read_view r2 f (key_of 1)));
  (* Read-only handle. *)
  ok "flush" (Indexed_file.flush f);
  let ro = ok "open ro" (Indexed_file.open_ ~readonly:true ~key_size:8 ~header_size:5 d) in
  none_wrong "read-only views equal copies" (compare_all r ro (old @ fresh));
  Indexed_file.close ro;
  Indexed_file.close f;
  ignore (expect_error "closed store" Error.Closed (Indexed_file.read_view r f (key_of 1)));
  Reader.close r

(* A header_in_value store: the header is the value's first bytes. *)
let test_header_in_value () =
  let d = Filename.concat (dir ()) "simple-views" in
  let f =
    ok "open" (Indexed_file.open_ ~no_fsync:true ~header_in_value:true ~key_size:8 ~header_size:4 d)
  in
  ok "append_value" (Indexed_file.append_value f (key_of 1) "HEADrest");
  let r = ok "reader" (Reader.create ()) in
  check "header_in_value view"
    (match Indexed_file.read_view_with_header r f (key_of 1) with
    | Ok (Some (h, v)) ->
        Indexed_file.read_with_header f (key_of 1) = Ok (Some (h, str v)) && h = "HEAD" && str v = "HEADrest"
    | _ -> false);
  Indexed_file.close f;
  Reader.close r

(* The store's generation directories (gen.N, each holding a values
   file): a compaction writes a new one and deletes the old. *)
let generations d =
  Sys.readdir d |> Array.to_list
  |> List.filter (fun n -> String.starts_with ~prefix:"gen." n && Sys.is_directory (Filename.concat d n))

(* Views held across a compaction that drops their keys (and unlinks the
   old values file), and across the store's close. *)
let test_gc_close () =
  let d = Filename.concat (dir ()) "gc-views" in
  let f = open_rw d in
  for i = 1 to 60 do
    ok "append" (Indexed_file.append ~flush:false f (key_of i) ~header:(header_of i) (value_of i))
  done;
  Indexed_file.close f;
  let f = open_rw d in
  let before = generations d in
  let held = ok "held" (Reader.create ()) and held_h = ok "held_h" (Reader.create ()) in
  let r = ok "reader" (Reader.create ()) in
  let v = found "held 11" (Indexed_file.read_view held f (key_of 11)) in
  let h, vh = found "held 13" (Indexed_file.read_view_with_header held_h f (key_of 13)) in
  (* Appended since open: in the reader's own buffer. *)
  ok "append 70" (Indexed_file.append f (key_of 70) ~header:(header_of 70) (value_of 70));
  let fresh_r = ok "fresh reader" (Reader.create ()) in
  let fresh = found "70" (Indexed_file.read_view fresh_r f (key_of 70)) in
  ok "gc" (Indexed_file.gc f ~keep:(fun k -> Char.code k.[7] mod 2 = 0));
  ok "await_gc" (Indexed_file.await_gc f);
  check "key 11 dropped"
    (Indexed_file.read f (key_of 11) = Ok None && Indexed_file.read_view r f (key_of 11) = Ok None);
  check "key 13 dropped" (Indexed_file.read_view_with_header r f (key_of 13) = Ok None);
  check "old values file deleted"
    (before <> [] && List.for_all (fun g -> not (List.mem g (generations d))) before);
  check "view unchanged after the GC" (str v = value_of 11);
  check "view with header unchanged after the GC" (h = header_of 13 && str vh = value_of 13);
  check "appended view unchanged after the GC" (str fresh = value_of 70);
  none_wrong "views after the GC equal copies" (compare_all r f (List.init 30 (fun i -> 2 * (i + 1)) @ [ 70 ]));
  (* Compacted again with gc_filter (drops 12), the held views still hold. *)
  ignore (ok "gc_filter" (Indexed_file.gc_filter ~wait:true f (fun k _ -> Char.code k.[7] <> 12)));
  check "key 12 dropped" (Indexed_file.read_view r f (key_of 12) = Ok None);
  check "views unchanged after a second GC" (str v = value_of 11 && str vh = value_of 13);
  let last = found "40" (Indexed_file.read_view r f (key_of 40)) in
  Indexed_file.close f;
  check "views survive the close"
    (str v = value_of 11 && str vh = value_of 13 && str fresh = value_of 70 && str last = value_of 40);
  Reader.release held;
  Reader.release held;
  Reader.close held;
  Reader.close held_h;
  Reader.close fresh_r;
  Reader.close r;
  (* A value whose reader is dropped (the store closed: the reader holds
     the map's last reference) stays readable: the GC keeps the reader. *)
  let f = open_rw d in
  let value =
    (fun () ->
      let r = ok "reader" (Reader.create ()) in
      found "20" (Indexed_file.read_view r f (key_of 20)))
      ()
  in
  Indexed_file.close f;
  Gc.full_major ();
  Gc.full_major ();
  check "a value keeps its reader from the GC" (str value = value_of 20)

(* One reader alternating block reads and value reads: each read's answer
   is right (a read of either kind ends the other's views, so each view
   is checked before the next read). *)
let test_alternate () =
  let bd = Filename.concat (dir ()) "alt-blocks" and vd = Filename.concat (dir ()) "alt-values" in
  let s = Test_block_store.open_rw bd in
  for i = 0 to 39 do
    ok "store" (Block_store.store ~flush:false s (Test_block_store.block_of i))
  done;
  let f = open_rw vd in
  for i = 1 to 40 do
    ok "append" (Indexed_file.append ~flush:false f (key_of i) ~header:(header_of i) (value_of i))
  done;
  Block_store.close s;
  Indexed_file.close f;
  let s = Test_block_store.open_rw bd and f = open_rw vd in
  (* Appended since open: half the values and blocks come from the
     reader's own buffer. *)
  for i = 40 to 79 do
    ok "store" (Block_store.store ~flush:false s (Test_block_store.block_of i))
  done;
  for i = 41 to 80 do
    ok "append" (Indexed_file.append ~flush:false f (key_of i) ~header:(header_of i) (value_of i))
  done;
  let r = ok "reader" (Reader.create ()) in
  let bad = ref [] in
  for i = 1 to 79 do
    (match Block_store.read_view r s (Test_block_store.hash_of i) with
    | Ok (Some v) when Block.View.to_block v = Test_block_store.block_of i -> ()
    | _ -> bad := i :: !bad);
    (match Indexed_file.read_view_with_header r f (key_of i) with
    | Ok (Some (h, v)) when h = header_of i && str v = value_of i -> ()
    | _ -> bad := -i :: !bad);
    (* A miss of either kind in between leaves the reader usable. *)
    if i mod 10 = 0 then (
      if Indexed_file.read_view r f (key_of 999) <> Ok None then bad := 1000 + i :: !bad;
      if Block_store.read_view r s (Test_block_store.hash_of 5000) <> Ok None then bad := 2000 + i :: !bad)
  done;
  none_wrong "alternating block and value views" !bad;
  (* A block view, then a value view through another reader: both held. *)
  let r2 = ok "reader 2" (Reader.create ()) in
  let b = found "block 30" (Block_store.read_view r s (Test_block_store.hash_of 30)) in
  let v = found "value 30" (Indexed_file.read_view r2 f (key_of 30)) in
  check "two readers hold a block and a value"
    (Block.View.to_block b = Test_block_store.block_of 30 && str v = value_of 30);
  Block_store.close s;
  Indexed_file.close f;
  check "both after the stores' close"
    (Block.View.to_block b = Test_block_store.block_of 30 && str v = value_of 30);
  Reader.close r;
  Reader.close r2

(* Two reader threads, each with its own reader, check value views twice
   around a yield while this thread appends values and compacts. *)
let test_threads () =
  let d = Filename.concat (dir ()) "thread-values" in
  let f = open_rw d in
  for i = 1 to 100 do
    ok "append" (Indexed_file.append ~flush:false f (key_of i) ~header:(header_of i) (value_of i))
  done;
  let top = Atomic.make 100 and running = Atomic.make true in
  let bad = Atomic.make 0 and reads = Atomic.make 0 in
  let reader seed () =
    match Reader.create () with
    | Error _ -> Atomic.incr bad
    | Ok r ->
        let x = ref seed in
        while Atomic.get running do
          x := ((!x * 1103515245) + 12345) land 0x3fffffff;
          (* The last 20 keys are never dropped by the GCs below. *)
          let n = Atomic.get top - ((!x lsr 8) mod 20) in
          (match Indexed_file.read_view r f (key_of n) with
          | Ok (Some v) when str v = value_of n ->
              Thread.yield ();
              if str v <> value_of n then Atomic.incr bad;
              Atomic.incr reads
          | _ -> Atomic.incr bad);
          Thread.yield ()
        done;
        Reader.close r
  in
  let threads = List.init 2 (fun i -> Thread.create (reader (i + 1)) ()) in
  for n = 101 to 300 do
    ok "append" (Indexed_file.append ~flush:false f (key_of n) ~header:(header_of n) (value_of n));
    Atomic.set top n;
    if n mod 50 = 0 then (
      let keep_from = n - 30 in
      ok "gc"
        (Indexed_file.gc f ~keep:(fun k ->
             (* key_of stores n mod 1000 in bytes 4..6 *)
             int_of_string (String.sub k 4 3) >= keep_from));
      ok "await_gc" (Indexed_file.await_gc f))
  done;
  while Atomic.get reads < 100 && Atomic.get bad = 0 do
    Thread.yield ()
  done;
  Atomic.set running false;
  List.iter Thread.join threads;
  check "no bad value view in threads" (Atomic.get bad = 0);
  Indexed_file.close f

let run () =
  test_views ();
  test_header_in_value ();
  test_gc_close ();
  test_alternate ();
  test_threads ()
