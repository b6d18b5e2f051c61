(* The OCaml side of a tzs_filter_fn (an index's filter and GC, an indexed
   file's GC filter), and the lifetime of the closures handed to the
   library.

   The filter handed to the library is the C function of filter_stubs.c
   (a ctypes callback costs about 25 times more per binding), with a ctx
   naming a global root that holds the OCaml closure. A synchronous call
   frees the root when it returns. An asynchronous GC (wait = false) runs
   its filter after the call returned, so its root stays in [t.live]
   until the library says it keeps no pointer to it: the GC ended
   (is_gc_finished returned true, await_gc or cancel_gc returned, a new GC
   started, or the handle was closed). Only roots whose GC started before
   such a call are freed (a snapshot taken before it): one GC runs at a
   time, so those have ended; a GC started meanwhile by another thread
   keeps its root. A global root is never collected, so a handle dropped
   during its GC (whose finaliser closes it, waiting for the GC) still
   finds its filter.

   An exception raised by the user's filter must not unwind through C: it
   keeps that binding and every binding offered after it (the GC then
   removes nothing more), and is re-raised once the GC ended: by the call
   itself when it waited, otherwise by the next [await_gc] on the handle. *)

open Ctypes

type failure = exn * Printexc.raw_backtrace

external filter_fn_address : unit -> nativeint = "tzstore_filter_fn_address"
external ctx_new : (string -> string -> bool) -> nativeint = "tzstore_filter_ctx_new"
external ctx_free : nativeint -> unit = "tzstore_filter_ctx_free"

(* filter_stubs.c registers library threads with the runtime, which needs
   the threads library initialised: linking Thread does it. *)
let () = ignore (Thread.self ())
let filter_fn = coerce (ptr void) C.filter_fn (ptr_of_raw_address (filter_fn_address ()))

type t = {
  mutable live : nativeint list;  (* the roots of this handle's asynchronous GCs *)
  pending : failure option Atomic.t;
      (* From an asynchronous GC's filter, which never waits for [m]: it
         may run while the thread holding [m] waits for its GC (a
         finaliser closing the handle). *)
}

let m = Mutex.create ()
let create () = { live = []; pending = Atomic.make None }

let locked f =
  Mutex.lock m;
  Fun.protect ~finally:(fun () -> Mutex.unlock m) f

(* Frees the roots of [ctxs] (under the lock). *)
let drop t ctxs =
  List.iter ctx_free ctxs;
  t.live <- List.filter (fun c -> not (List.mem c ctxs)) t.live

(* A root holding the closure the C filter calls for [f], and the first
   exception [f] raised (stored in [t.pending] as well when [async]). *)
let callback t ~async f =
  let raised = ref None in
  let cb key value =
    match !raised with
    | Some _ -> true
    | None -> (
        try f key value
        with e ->
          let failure = (e, Printexc.get_raw_backtrace ()) in
          raised := Some failure;
          if async then ignore (Atomic.compare_and_set t.pending None (Some failure));
          true)
  in
  (ctx_new cb, raised)

let ctx_ptr ctx = ptr_of_raw_address ctx

let reraise = function Some (e, bt) -> Printexc.raise_with_backtrace e bt | None -> ()

(* [filter t f call] runs [call fn ctx] (a filter that returns once done)
   and re-raises [f]'s exception. *)
let filter t f call =
  let ctx, raised = callback t ~async:false f in
  let r = Fun.protect ~finally:(fun () -> ctx_free ctx) (fun () -> call filter_fn (ctx_ptr ctx)) in
  reraise !raised;
  r

(* [gc t ~wait f call] runs [call fn ctx started] for a function starting
   a GC that writes whether it started to [started]; returns that flag. *)
let gc t ~wait f call =
  let ctx, raised = callback t ~async:(not wait) f in
  let started = allocate bool false in
  let before = locked (fun () -> t.live) in
  let r =
    match call filter_fn (ctx_ptr ctx) started with
    | r -> r
    | exception e ->
        ctx_free ctx;
        raise e
  in
  let started = !@started in
  (* A GC started: the ones started before it have ended. *)
  if r = Ok () && started then locked (fun () -> drop t before);
  if r = Ok () && started && not wait then locked (fun () -> t.live <- ctx :: t.live)
  else ctx_free ctx;
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

(* How a finaliser closes a handle ([close], which waits for the GC): a
   finaliser may run on the library thread calling this handle's filter,
   where waiting for the GC would wait for itself. While an asynchronous
   GC may run, the close therefore runs on a thread of its own. *)
let finalise t close p = if t.live = [] then close p else ignore (Thread.create close p)

(* The pending exception of an asynchronous filter, once. *)
let take_pending t = Atomic.exchange t.pending None
