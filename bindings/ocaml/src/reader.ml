open Ctypes
module R = C.Reader

(* The C reader takes one call at a time: [lock] serialises the reads and
   releases of several threads (a race in C would be undefined), and the
   handle makes calls after [close] fail with [Closed] and waits for the
   call in progress before freeing the reader. *)
type t = { h : C.reader_s structure ptr Handle.t; lock : Mutex.t }

let create () =
  Ffi.open_handle ~what:"reader" ~close:R.free C.reader R.new_
  |> Result.map (fun h -> { h; lock = Mutex.create () })

let locked t f =
  Mutex.lock t.lock;
  Fun.protect ~finally:(fun () -> Mutex.unlock t.lock) f

(* The C type of the reader stays out of the interface (C is private):
   Block_c.read_view casts the pointer back. *)
let use t f = Handle.use t.h (fun r -> locked t (fun () -> f (to_voidp r)))

(* A closed reader holds nothing: releasing it is a no-op. *)
let release t = ignore (Handle.use t.h (fun r -> locked t (fun () -> Ok (R.release r))))
let close t = Handle.close t.h
