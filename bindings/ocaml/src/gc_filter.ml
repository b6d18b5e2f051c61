(* The OCaml side of a tzs_filter_fn (an index's filter and GC, an indexed
   file's GC filter), and the lifetime of the closures handed to the
   library.

   ctypes ties a C function pointer to its OCaml closure: once the closure
   is unreachable, the pointer may be collected. A synchronous call keeps
   its closure alive on its own stack. An asynchronous GC (wait = false)
   runs its filter after the call returned, so the handle keeps it in
   [live] until the library says it keeps no pointer to it: the GC ended
   (is_gc_finished returned true, or await_gc or cancel_gc returned). Only
   closures whose GC started before such a call are dropped (a snapshot
   taken before it): one GC runs at a time, so those have ended; a GC
   started meanwhile by another thread keeps its closure.

   An exception raised by the user's filter must not unwind through C: it
   keeps that binding and every binding offered after it (the GC then
   removes nothing more), and is re-raised once the GC ended: by the call
   itself when it waited, otherwise by the next [await_gc] on the handle. *)

open Ctypes

type fn =
  unit ptr -> Unsigned.uint8 ptr -> Unsigned.size_t -> Unsigned.uint8 ptr -> Unsigned.size_t -> bool

type failure = exn * Printexc.raw_backtrace

type t = {
  m : Mutex.t;
  mutable live : (int * fn) list;
  mutable next_id : int;
  mutable pending : failure option;  (* from an asynchronous GC's filter *)
}

let create () = { m = Mutex.create (); live = []; next_id = 0; pending = None }

let locked t f =
  Mutex.lock t.m;
  Fun.protect ~finally:(fun () -> Mutex.unlock t.m) f

let string_of p n =
  Ffi.string_of_buffer (coerce (ptr uint8_t) (ptr char) p) (Unsigned.Size_t.to_int n)

(* The C callback for [f], and the first exception [f] raised (stored in
   [t.pending] as well when [async]). *)
let callback t ~async f =
  let raised = ref None in
  let cb _ctx key key_len value value_len =
    match !raised with
    | Some _ -> true
    | None -> (
        try f (string_of key key_len) (string_of value value_len)
        with e ->
          let failure = (e, Printexc.get_raw_backtrace ()) in
          raised := Some failure;
          if async then locked t (fun () -> if t.pending = None then t.pending <- Some failure);
          true)
  in
  (cb, raised)

let reraise = function Some (e, bt) -> Printexc.raise_with_backtrace e bt | None -> ()

(* [filter t f call] runs [call cb] (a filter that returns once done) and
   re-raises [f]'s exception. *)
let filter t f call =
  let cb, raised = callback t ~async:false f in
  let r = call cb in
  ignore (Sys.opaque_identity [ cb ]);
  reraise !raised;
  r

(* [gc t ~wait f call] runs [call cb started] for a function starting a GC
   that writes whether it started to [started]; returns that flag. *)
let gc t ~wait f call =
  let cb, raised = callback t ~async:(not wait) f in
  let started = allocate bool false in
  let r = call cb started in
  let started = !@started in
  if r = Ok () && started && not wait then
    locked t (fun () ->
        t.live <- (t.next_id, cb) :: t.live;
        t.next_id <- t.next_id + 1);
  ignore (Sys.opaque_identity [ cb ]);
  if wait then reraise !raised;
  Result.map (fun () -> started) r

(* [ended t call] runs [call ()], after which every GC started before it
   has ended when [call] says so ([ended_when] of its result). *)
let ended t ~ended_when call =
  let before = locked t (fun () -> List.map fst t.live) in
  let r = call () in
  if ended_when r then
    locked t (fun () -> t.live <- List.filter (fun (id, _) -> not (List.mem id before)) t.live);
  r

(* The pending exception of an asynchronous filter, once. *)
let take_pending t =
  locked t (fun () ->
      let p = t.pending in
      t.pending <- None;
      p)
