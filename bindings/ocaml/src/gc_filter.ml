(* The OCaml side of a tzs_filter_fn (an index's filter and GC, an indexed
   file's GC filter), and the lifetime of the closures handed to the
   library.

   ctypes ties a C function pointer to its OCaml closure: once the closure
   is unreachable, the pointer may be collected. A synchronous call keeps
   its closure alive on its own stack. An asynchronous GC (wait = false)
   runs its filter after the call returned, so its closure is kept in
   [registry] until the library says it keeps no pointer to it: the GC
   ended (is_gc_finished returned true, await_gc or cancel_gc returned, a
   new GC started, or the handle was closed). Only closures whose GC
   started before such a call are dropped (a snapshot taken before it):
   one GC runs at a time, so those have ended; a GC started meanwhile by
   another thread keeps its closure.

   The registry is global, not a field of the handle: a handle dropped
   during its GC is closed by its finaliser, which waits for the GC, and
   the closure must not be finalised with the handle meanwhile (ctypes
   invalidates a closure's C pointer in the closure's own finaliser, which
   may run before the handle's).

   An exception raised by the user's filter must not unwind through C: it
   keeps that binding and every binding offered after it (the GC then
   removes nothing more), and is re-raised once the GC ended: by the call
   itself when it waited, otherwise by the next [await_gc] on the handle. *)

open Ctypes

type fn =
  unit ptr -> Unsigned.uint8 ptr -> Unsigned.size_t -> Unsigned.uint8 ptr -> Unsigned.size_t -> bool

type failure = exn * Printexc.raw_backtrace

type t = {
  mutable live : int list;  (* registry ids of this handle's asynchronous GCs *)
  pending : failure option Atomic.t;
      (* From an asynchronous GC's filter, which never waits for [m]: it
         may run while the thread holding [m] waits for its GC (a
         finaliser closing the handle). *)
}

let registry : (int, fn) Hashtbl.t = Hashtbl.create 8
let next_id = ref 0
let m = Mutex.create ()
let create () = { live = []; pending = Atomic.make None }

let locked f =
  Mutex.lock m;
  Fun.protect ~finally:(fun () -> Mutex.unlock m) f

(* Drops the closures of [ids] (under the lock). *)
let drop t ids =
  List.iter (Hashtbl.remove registry) ids;
  t.live <- List.filter (fun id -> not (List.mem id ids)) t.live

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
          if async then ignore (Atomic.compare_and_set t.pending None (Some failure));
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
  let before = locked (fun () -> t.live) in
  let r = call cb started in
  let started = !@started in
  (* A GC started: the ones started before it have ended. *)
  if r = Ok () && started then
    locked (fun () ->
        drop t before;
        if not wait then (
          Hashtbl.replace registry !next_id cb;
          t.live <- !next_id :: t.live;
          incr next_id));
  ignore (Sys.opaque_identity [ cb ]);
  if wait then reraise !raised;
  Result.map (fun () -> started) r

(* [ended t call] runs [call ()], after which every GC started before it
   has ended when [call] says so ([ended_when] of its result). *)
let ended t ~ended_when call =
  let before = locked (fun () -> t.live) in
  let r = call () in
  if ended_when r then locked (fun () -> drop t before);
  r

(* The handle was closed, which waited for its GC. This may run in the
   handle's finaliser, possibly on a thread inside [locked]: it never
   waits for the lock, and when it is taken the closures stay in the
   registry (a few words each, never called again). *)
let closed t =
  if Mutex.try_lock m then
    Fun.protect ~finally:(fun () -> Mutex.unlock m) (fun () -> drop t t.live)

(* The pending exception of an asynchronous filter, once. *)
let take_pending t = Atomic.exchange t.pending None
