(* The GC operations of tzstore.lwt's Indexed_store functors, as Octez's
   indexed_store.mli declares them: gc ?async with Octez's Retain and
   Iterator and with a Filter (key and value for indexable stores, key and
   header for indexed files), wait_gc_completion, is_gc_finished,
   cancel_gc, a filter's exception reported as an error; and the same
   operations of Tzstore_lwt.Index and Tzstore_lwt.Indexed_file (filter,
   clear, try_merge, is_merging). *)

open Lwt.Syntax
module S = Tzstore_lwt.Indexed_store
module Error = Tzstore.Error
open Util

module Key = struct
  type t = int

  let encoded_size = 4
  let encode n = Printf.sprintf "%04d" n
  let decode s off = int_of_string (String.sub s off 4)
end

(* A level pointing to its predecessor: Iterator walks the chain. *)
module Pred = Key

module Chain =
  S.Make_indexable
    (struct
      let name = "chain"
    end)
    (Key)
    (Pred)

module Payload = struct
  type t = string

  let name = "payload"
  let encode s = s
  let decode s = s

  module Header = Key
end

module Payloads =
  S.Make_indexed_file
    (struct
      let name = "payloads"
    end)
    (Key)
    (Payload)

exception Boom

let rec wait_for flag =
  if Atomic.get flag then Lwt.return_unit
  else
    let* () = Lwt_unix.sleep 0.001 in
    wait_for flag

(* A filter blocked (on the library's thread) until [release] is set. *)
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

let present find keys =
  Lwt_list.filter_s (fun k -> Lwt.map (fun r -> ok "find" r <> None) (find k)) keys

let range a b = List.init (b - a) (fun i -> a + i)

let chain root =
  let* t = Chain.load ~path:(Filename.concat root "chain") ~log_size:32 S.Read_write in
  let t = ok "load" t in
  let fill () =
    Lwt_list.iter_s
      (fun n -> Lwt.map (ok "add") (Chain.add ~flush:(n = 99) t n (max 0 (n - 1))))
      (range 0 100)
  in
  let* () = fill () in
  (* Filter over key and value, asynchronous (Octez's default). *)
  let* r = Chain.gc t (Filter (fun k pred -> pred = max 0 (k - 1) && k >= 50)) in
  ok "gc Filter" r;
  let* r = Chain.wait_gc_completion t in
  ok "wait_gc_completion" r;
  check "is_gc_finished" (Chain.is_gc_finished t);
  let* kept = present (Chain.find t) (range 0 100) in
  check "Filter kept 50..99" (kept = range 50 100);
  (* Octez's Iterator: from 90 down the predecessors while above 80. *)
  let* r =
    Chain.gc ~async:false t
      (Iterator { first = 90; next = (fun _ pred -> Lwt.return (if pred > 80 then Some pred else None)) })
  in
  ok "gc Iterator" r;
  let* kept = present (Chain.find t) (range 0 100) in
  check "Iterator kept 81..90" (kept = range 81 91);
  (* Octez's Retain. *)
  let* r = Chain.gc ~async:false t (Retain [ 85; 86; 1000 ]) in
  ok "gc Retain" r;
  let* kept = present (Chain.find t) (range 0 100) in
  check "Retain kept 85, 86" (kept = [ 85; 86 ]);
  (* Cancelled while its filter is blocked: nothing removed. *)
  let* () = fill () in
  let filter, entered, release = gate (fun _ _ -> false) in
  let* r = Chain.gc t (Filter filter) in
  ok "gc to cancel" r;
  let* () = wait_for entered in
  check "not finished while it runs" (not (Chain.is_gc_finished t));
  let* r = Chain.gc t (Filter (fun _ _ -> false)) in
  ok "a second gc is ignored" r;
  let cancelled = Chain.cancel_gc t in
  let* () = Lwt_unix.sleep 0.05 in
  Atomic.set release true;
  let* r = cancelled in
  check "cancel_gc stopped it" (ok "cancel_gc" r = true);
  let* kept = present (Chain.find t) (range 0 100) in
  check "nothing removed by the cancelled gc or the ignored one" (kept = range 0 100);
  (* A filter's exception: an error, the bindings kept. *)
  let* r = Chain.gc ~async:false t (Filter (fun _ _ -> raise Boom)) in
  expect_error "a raising filter (sync)" Error.Invalid_argument r;
  let* r = Chain.gc t (Filter (fun _ _ -> raise Boom)) in
  ok "a raising filter (async) starts" r;
  let* r = Chain.wait_gc_completion t in
  expect_error "a raising filter (async) at wait_gc_completion" Error.Invalid_argument r;
  let* kept = present (Chain.find t) (range 0 100) in
  check "a raising filter removes nothing" (kept = range 0 100);
  let* () = Chain.close t in
  Lwt.return_unit

let payloads root =
  let* t = Payloads.load ~path:(Filename.concat root "payloads") S.Read_write in
  let t = ok "load" t in
  let* () =
    Lwt_list.iter_s
      (fun n -> Lwt.map (ok "append") (Payloads.append t ~key:n ~header:(n mod 5) ~value:(Printf.sprintf "payload %d" n)))
      (range 0 40)
  in
  (* Filter over key and header. *)
  let* r = Payloads.gc ~async:false t (Filter (fun k h -> h = k mod 5 && h <> 0)) in
  ok "gc Filter" r;
  let* kept = present (Payloads.header t) (range 0 40) in
  check "Filter kept the keys whose header is not 0" (kept = List.filter (fun n -> n mod 5 <> 0) (range 0 40));
  let* r = Payloads.read t 7 in
  check "kept value" (ok "read" r = Some ("payload 7", 2));
  (* Octez's Iterator over (value, header): from 39, down by the header. *)
  let* r =
    Payloads.gc t
      (Iterator
         { first = 39; next = (fun k (_, h) -> Lwt.return (if k - h - 1 > 20 then Some (k - h - 1) else None)) })
  in
  ok "gc Iterator" r;
  let* r = Payloads.wait_gc_completion t in
  ok "wait_gc_completion" r;
  check "is_gc_finished" (Payloads.is_gc_finished t);
  let* kept = present (Payloads.header t) (range 0 40) in
  (* 39 (h 4) -> 34 (h 4) -> 29 (h 4) -> 24 (h 4) -> 19: stop. *)
  check "Iterator kept its walk" (kept = [ 24; 29; 34; 39 ]);
  let* r = Payloads.cancel_gc t in
  check "cancel_gc with no GC" (ok "cancel_gc" r = false);
  Payloads.close t

(* Tzstore_lwt's Index and Indexed_file GC operations. *)
let plain root =
  let module I = Tzstore_lwt.Index in
  let* t = I.open_ ~no_fsync:true ~key_size:4 ~value_size:4 (Filename.concat root "index") in
  let t = ok "open" t in
  let* () =
    Lwt_list.iter_s (fun n -> Lwt.map (ok "add") (I.add t (Key.encode n) (Key.encode n))) (range 0 50)
  in
  let* r = I.filter t (fun k _ -> Key.decode k 0 < 10) in
  ok "filter" r;
  let* r = I.length t in
  check "filter kept 10" (ok "length" r = 10);
  let* r = I.gc t (fun k _ -> Key.decode k 0 < 5) in
  check "gc started" (ok "gc" r = true);
  let* r = I.await_gc t in
  ok "await_gc" r;
  check "is_gc_finished" (I.is_gc_finished t);
  let* r = I.length t in
  check "gc kept 5" (ok "length" r = 5);
  let* r = I.add t (Key.encode 77) (Key.encode 77) in
  ok "add" r;
  let* r = I.try_merge t in
  check "try_merge" (ok "try_merge" r = true);
  let* r = I.await_merge t in
  ok "await_merge" r;
  check "not merging" (not (I.is_merging t));
  let* r = I.cancel_gc t in
  check "cancel_gc with no GC" (ok "cancel_gc" r = false);
  let* r = I.clear t in
  ok "clear" r;
  let* r = I.length t in
  check "cleared" (ok "length" r = 0);
  let* () = I.close t in
  let module F = Tzstore_lwt.Indexed_file in
  let* f = F.open_ ~no_fsync:true ~key_size:4 ~header_size:4 (Filename.concat root "file") in
  let f = ok "open" f in
  let* () =
    Lwt_list.iter_s
      (fun n -> Lwt.map (ok "append") (F.append f (Key.encode n) ~header:(Key.encode (n mod 2)) "v"))
      (range 0 20)
  in
  let* r = F.gc_filter ~wait:true f (fun _ h -> h = Key.encode 1) in
  check "gc_filter started" (ok "gc_filter" r = true);
  check "gc_filter finished" (F.is_gc_finished f);
  let* r = F.mem f (Key.encode 2) in
  check "gc_filter dropped an even key" (ok "mem" r = false);
  let* r = F.cancel_gc f in
  check "cancel_gc with no GC" (ok "cancel_gc" r = false);
  F.close f

let () =
  let root =
    Filename.concat (Filename.get_temp_dir_name ()) (Printf.sprintf "tzstore-l2gc-%d" (Unix.getpid ()))
  in
  Unix.mkdir root 0o755;
  Lwt_main.run
    (let* () = chain root in
     let* () = payloads root in
     plain root);
  ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote root)));
  finish "Indexed_store GC"
