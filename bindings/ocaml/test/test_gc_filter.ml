(* Tests of the layer-2 GC operations of Tzstore.Index (filter, gc,
   await_gc, is_gc_finished, cancel_gc, clear, try_merge, is_merging) and
   Tzstore.Indexed_file (gc_filter, is_gc_finished, cancel_gc): what the
   filter sees, what survives, an asynchronous GC whose filter runs on a
   library thread while the OCaml GC runs (its closure must stay alive),
   a refused second GC, a cancelled GC, exceptions in filters, calls
   refused inside a filter, read-only handles. *)

open Tzstore
open Util

let key n = Printf.sprintf "%04d" n
let value n = Printf.sprintf "value%03d" n
let num k = int_of_string k
let keys t = List.sort compare (ok "fold" (Index.fold t ~init:[] ~f:(fun acc k _ -> num k :: acc)))
let range a b = List.init (b - a) (fun i -> a + i)

exception Boom

(* A filter blocked until [release] is set, calling [f] once released;
   [entered] says it was called. *)
let gate f =
  let entered = Atomic.make false and release = Atomic.make false in
  let filter k v =
    Atomic.set entered true;
    while not (Atomic.get release) do
      Thread.delay 0.001
    done;
    f k v
  in
  (filter, entered, release)

let wait_for flag =
  while not (Atomic.get flag) do
    Thread.delay 0.001
  done

let fill t n =
  for i = 0 to n - 1 do
    ok "add" (Index.add ~flush:false t (key i) (value i))
  done;
  ok "flush" (Index.flush t)

let test_index () =
  let d = dir () in
  let t = ok "open" (Index.open_ ~no_fsync:true ~log_size:16 ~key_size:4 ~value_size:8 d) in
  fill t 100;
  (* filter: sees each binding with its value, keeps what it returns. *)
  let wrong = ref 0 and seen = ref 0 in
  ok "filter"
    (Index.filter t (fun k v ->
         incr seen;
         if v <> value (num k) then incr wrong;
         num k mod 2 = 0));
  check "filter saw every binding with its value" (!seen = 100 && !wrong = 0);
  check "filter kept the even keys" (keys t = List.filter (fun n -> n mod 2 = 0) (range 0 100));
  check "a filtered key is gone" (Index.find t (key 3) = Ok None);
  (* Inside a filter, reads work and writes are refused. *)
  let inside = ref [] in
  ok "filter calling the index"
    (Index.filter t (fun k _ ->
         if !inside = [] then
           inside := [ Index.find t k = Ok (Some (value (num k))); Index.add t (key 999) (value 999) |> Result.is_error ];
         true));
  check "reads inside a filter" (List.nth_opt !inside 0 = Some true);
  check "writes refused inside a filter" (List.nth_opt !inside 1 = Some true);
  (* An exception keeps that binding and the rest, and is re-raised. *)
  (match Index.filter t (fun k _ -> if num k = 50 then raise Boom else num k mod 4 = 0) with
  | _ -> check "filter re-raises" false
  | exception Boom -> check "filter re-raises" true);
  check "the binding that raised is kept" (Index.mem t (key 50) = Ok true);
  check "gc ~wait keeps what the filter keeps"
    (Index.gc ~wait:true t (fun k _ -> num k < 60) = Ok true && List.for_all (fun n -> n < 60) (keys t));
  let before = keys t in
  (* An asynchronous GC: its filter runs on a library thread after gc
     returned; the OCaml GC meanwhile must not collect it. *)
  let filter, entered, release = gate (fun k _ -> num k mod 8 = 0) in
  check "async gc started" (Index.gc t filter = Ok true);
  wait_for entered;
  Gc.full_major ();
  Gc.compact ();
  check "is_gc_finished while it runs" (not (Index.is_gc_finished t));
  check "is_merging while it runs" (Index.is_merging t);
  check "a second gc is ignored" (Index.gc t (fun _ _ -> false) = Ok false);
  Atomic.set release true;
  ok "await_gc" (Index.await_gc t);
  check "is_gc_finished after" (Index.is_gc_finished t);
  check "async gc kept what its filter kept" (keys t = List.filter (fun n -> n mod 8 = 0) before);
  (* A cancelled GC leaves the index as it was; a later GC runs. *)
  fill t 100;
  let filter, entered, release = gate (fun _ _ -> false) in
  check "gc to cancel started" (Index.gc t filter = Ok true);
  wait_for entered;
  let releaser = Thread.create (fun () -> Thread.delay 0.05; Atomic.set release true) () in
  check "cancel_gc stopped it" (Index.cancel_gc t = Ok true);
  Thread.join releaser;
  check "cancelled gc removed nothing" (keys t = range 0 100);
  check "cancel_gc with none running" (Index.cancel_gc t = Ok false);
  ok "await_gc after a cancel" (Index.await_gc t);
  (* An exception in an asynchronous filter: re-raised by await_gc. *)
  check "raising gc started" (Index.gc t (fun _ _ -> raise Boom) = Ok true);
  (match Index.await_gc t with
  | _ -> check "await_gc re-raises the filter's exception" false
  | exception Boom -> check "await_gc re-raises the filter's exception" true);
  check "the raising gc removed nothing" (keys t = range 0 100);
  ok "await_gc once" (Index.await_gc t);
  (* try_merge and is_merging. *)
  ok "add to the log" (Index.add t (key 500) (value 500));
  check "try_merge starts a merge" (Index.try_merge t = Ok true);
  ok "await_merge" (Index.await_merge t);
  check "not merging after" (not (Index.is_merging t));
  check "try_merge with an empty log" (Index.try_merge t = Ok false);
  check "merged binding" (Index.find t (key 500) = Ok (Some (value 500)));
  (* Read-only handles: no GC, no clear, never merging. *)
  let r = ok "open read-only" (Index.open_ ~readonly:true ~key_size:4 ~value_size:8 d) in
  ignore (expect_error "gc on read-only" Error.Read_only (Index.gc r (fun _ _ -> true)));
  ignore (expect_error "filter on read-only" Error.Read_only (Index.filter r (fun _ _ -> true)));
  ignore (expect_error "clear on read-only" Error.Read_only (Index.clear r));
  check "read-only is never merging" (not (Index.is_merging r));
  Index.close r;
  (* clear. *)
  ok "clear" (Index.clear t);
  check "cleared" (Index.length t = Ok 0 && Index.find t (key 0) = Ok None);
  ok "add after clear" (Index.add t (key 1) (value 1));
  check "usable after clear" (keys t = [ 1 ]);
  Index.close t;
  check "is_gc_finished on a closed handle" (Index.is_gc_finished t);
  ignore (expect_error "gc on a closed handle" Error.Closed (Index.gc t (fun _ _ -> true)))

(* Closing a handle, or dropping it, while an asynchronous GC runs: the
   close waits for the GC, whose filter must still be alive. *)
let test_close_during_gc () =
  let t = ok "open" (Index.open_ ~no_fsync:true ~key_size:4 ~value_size:8 (dir ())) in
  fill t 50;
  let filter, entered, release = gate (fun k _ -> num k < 10) in
  check "gc started before close" (Index.gc t filter = Ok true);
  wait_for entered;
  let releaser =
    Thread.create
      (fun () ->
        Thread.delay 0.02;
        Gc.compact ();
        Atomic.set release true)
      ()
  in
  Index.close t;
  Thread.join releaser;
  check "closed after its GC" (Index.is_gc_finished t);
  let d = dir () in
  (fun () ->
    let t = ok "open" (Index.open_ ~no_fsync:true ~key_size:4 ~value_size:8 d) in
    fill t 50;
    check "gc on a dropped handle" (Index.gc t (fun k _ -> num k < 10) = Ok true))
    ();
  Gc.full_major ();
  Gc.full_major ();
  let t = ok "reopen after the finaliser" (Index.open_ ~key_size:4 ~value_size:8 d) in
  check "the dropped handle's GC ran" (keys t = range 0 10);
  Index.close t;
  (* The finaliser of a handle dropped during its GC may run on the
     library thread that calls the GC's filter: forced here by a major GC
     inside the filter once the handle is dropped. Closing from there
     must not wait for itself. *)
  let d = dir () in
  let dropped = Atomic.make false and forced = Atomic.make false in
  (fun () ->
    let t = ok "open" (Index.open_ ~no_fsync:true ~key_size:4 ~value_size:8 d) in
    fill t 50;
    let filter k _ =
      if not (Atomic.get forced) then (
        wait_for dropped;
        Gc.full_major ();
        Atomic.set forced true);
      num k < 20
    in
    check "gc on a handle dropped during it" (Index.gc t filter = Ok true))
    ();
  Gc.full_major ();
  Atomic.set dropped true;
  wait_for forced;
  let rec reopen tries =
    match Index.open_ ~key_size:4 ~value_size:8 d with
    | Error { Error.status = Error.Locked; _ } when tries > 0 ->
        Thread.delay 0.01;
        reopen (tries - 1)
    | r -> r
  in
  let t = ok "reopen after a finaliser on the filter's thread" (reopen 500) in
  check "that GC ran" (keys t = range 0 20);
  Index.close t

let header n = Printf.sprintf "h%03d" (n mod 3)

let test_indexed_file () =
  let d = dir () in
  let t = ok "open" (Indexed_file.open_ ~no_fsync:true ~key_size:4 ~header_size:4 d) in
  let append n = ok "append" (Indexed_file.append ~flush:false t (key n) ~header:(header n) (value n)) in
  List.iter append (range 0 60);
  ok "flush" (Indexed_file.flush t);
  let stored () = List.filter (fun n -> Indexed_file.mem t (key n) = Ok true) (range 0 60) in
  (* The filter sees each key with its header. *)
  let wrong = ref 0 and seen = ref 0 in
  check "gc_filter ~wait"
    (Indexed_file.gc_filter ~wait:true t (fun k h ->
         incr seen;
         if h <> header (num k) then incr wrong;
         h <> "h000")
    = Ok true);
  check "gc_filter saw every key with its header" (!seen = 60 && !wrong = 0);
  check "gc_filter kept the keys whose header it kept"
    (stored () = List.filter (fun n -> n mod 3 <> 0) (range 0 60));
  check "kept values read back" (Indexed_file.read t (key 1) = Ok (Some (value 1)));
  check "dropped values are gone" (Indexed_file.read t (key 3) = Ok None);
  (* Asynchronous, with the OCaml GC running while the filter waits. *)
  let filter, entered, release = gate (fun k _ -> num k < 30) in
  check "async gc_filter started" (Indexed_file.gc_filter t filter = Ok true);
  wait_for entered;
  Gc.full_major ();
  Gc.compact ();
  check "not finished while it runs" (not (Indexed_file.is_gc_finished t));
  check "a second gc_filter is ignored" (Indexed_file.gc_filter t (fun _ _ -> false) = Ok false);
  append 100;
  Atomic.set release true;
  ok "await_gc" (Indexed_file.await_gc t);
  check "finished after" (Indexed_file.is_gc_finished t);
  check "async gc_filter kept its keys" (stored () = List.filter (fun n -> n mod 3 <> 0 && n < 30) (range 0 60));
  check "a value appended during the GC is kept" (Indexed_file.read t (key 100) = Ok (Some (value 100)));
  (* Cancelled: nothing removed. *)
  let before = stored () in
  let filter, entered, release = gate (fun _ _ -> false) in
  check "gc to cancel started" (Indexed_file.gc_filter t filter = Ok true);
  wait_for entered;
  let releaser = Thread.create (fun () -> Thread.delay 0.05; Atomic.set release true) () in
  check "cancel_gc stopped it" (Indexed_file.cancel_gc t = Ok true);
  Thread.join releaser;
  check "cancelled gc removed nothing" (stored () = before);
  check "values intact after a cancel" (Indexed_file.read t (key 1) = Ok (Some (value 1)));
  (* An exception with ~wait: re-raised, nothing removed after it. *)
  (match Indexed_file.gc_filter ~wait:true t (fun _ _ -> raise Boom) with
  | _ -> check "gc_filter ~wait re-raises" false
  | exception Boom -> check "gc_filter ~wait re-raises" true);
  check "the raising gc removed nothing" (stored () = before);
  let r = ok "open read-only" (Indexed_file.open_ ~readonly:true ~key_size:4 ~header_size:4 d) in
  ignore (expect_error "gc_filter on read-only" Error.Read_only (Indexed_file.gc_filter r (fun _ _ -> true)));
  Indexed_file.close r;
  Indexed_file.close t

let run () =
  test_index ();
  test_close_during_gc ();
  test_indexed_file ()
