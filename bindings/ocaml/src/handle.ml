(* The lifecycle of one C handle, shared by every store. Calls run through
   [use], which counts them; [close] makes new calls fail with [Closed],
   waits for the calls in progress (which may run without the runtime lock)
   and then closes the C handle once. A GC finaliser closes handles that
   were never closed: it runs only once the handle is unreachable, so no
   call is in progress. *)

type 'a t = {
  mutable ptr : 'a option;
  mutable users : int;
  m : Mutex.t;
  idle : Condition.t;
  close_c : 'a -> unit;
  finalise_c : 'a -> unit;
  what : string;
}

let finalise_handle t =
  match t.ptr with
  | Some p ->
      t.ptr <- None;
      t.finalise_c p
  | None -> ()

(* [finalise] is how the finaliser closes the C handle (default [close]):
   a finaliser runs on whichever thread the OCaml GC runs, possibly one
   inside a callback of this very handle. *)
let create ?finalise ~what ~close p =
  let finalise_c = Option.value finalise ~default:close in
  let t =
    { ptr = Some p; users = 0; m = Mutex.create (); idle = Condition.create (); close_c = close; finalise_c; what }
  in
  Gc.finalise finalise_handle t;
  t

let use t f =
  Mutex.lock t.m;
  match t.ptr with
  | None ->
      Mutex.unlock t.m;
      Error { Error.status = Error.Closed; message = t.what ^ " is closed" }
  | Some p ->
      t.users <- t.users + 1;
      Mutex.unlock t.m;
      Fun.protect
        ~finally:(fun () ->
          Mutex.lock t.m;
          t.users <- t.users - 1;
          if t.users = 0 then Condition.broadcast t.idle;
          Mutex.unlock t.m)
        (fun () -> f p)

(* [take t] ends [t] like [close] but hands the C handle over instead of
   closing it (e.g. to commit a batch, which frees it). *)
let take t =
  Mutex.lock t.m;
  let p = t.ptr in
  t.ptr <- None;
  while t.users > 0 do
    Condition.wait t.idle t.m
  done;
  Mutex.unlock t.m;
  p

let close t = Option.iter t.close_c (take t)
