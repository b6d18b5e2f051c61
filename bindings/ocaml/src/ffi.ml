(* The parts of the C API shared by every store: errors, byte buffers,
   flags. *)

open Ctypes

(* [call f] runs [f err] where [err] is a fresh [tzs_error **], and turns its
   status into a result (consuming the error object). *)
let call f =
  let err = allocate (ptr C.error) (from_voidp C.error null) in
  let st = Unsigned.UInt32.to_int (f err) in
  if st = 0 then Ok ()
  else
    let e = !@err in
    let message =
      if is_null e then ""
      else
        let m = C.error_message e in
        C.error_free e;
        m
    in
    Error { Error.status = Error.status_of_code st; message }

let string_of_buffer p n = if n = 0 then "" else string_from_ptr p ~length:n

(* Copies a library-filled [tzs_bytes] and frees it. *)
let take_bytes b =
  let s = string_of_buffer (getf b C.bytes_ptr) (Unsigned.Size_t.to_int (getf b C.bytes_len)) in
  C.bytes_free (addr b);
  s

(* [call_bytes f] runs [f out err] for a function filling a [tzs_bytes]:
   [Ok (Some s)] on success (copied, then freed), [Ok None] on
   TZS_NOT_FOUND. *)
let call_bytes f =
  let out = make C.tzs_bytes in
  match call (fun err -> f (addr out) err) with
  | Ok () -> Ok (Some (take_bytes out))
  | Error { Error.status = Error.Not_found; _ } -> Ok None
  | Error e -> Error e

(* C strings end at the first NUL byte: refuse paths holding one rather than
   open a truncated path. *)
let with_path path f =
  if String.contains path '\000' then
    Error
      { Error.status = Error.Invalid_argument; message = Printf.sprintf "path %S contains a NUL byte" path }
  else f path

(* The same for kv keys. *)
let with_key key f =
  if String.contains key '\000' then
    Error
      { Error.status = Error.Invalid_argument; message = Printf.sprintf "key %S contains a NUL byte" key }
  else f key

(* TZS_READONLY, TZS_NO_FSYNC, TZS_REMOVABLE *)
let flags ?(readonly = false) ?(no_fsync = false) ?(removable = false) () =
  Unsigned.UInt32.of_int
    ((if readonly then 1 else 0) lor (if no_fsync then 2 else 0) lor if removable then 4 else 0)

(* A C buffer of [n] bytes for a fixed-size output (at least one byte, as
   ctypes refuses empty allocations). *)
let out_buffer n = allocate_n char ~count:(max n 1)

(* Lookups: NOT_FOUND becomes [Ok None]. *)
let found = function
  | Ok x -> Ok (Some x)
  | Error { Error.status = Error.Not_found; _ } -> Ok None
  | Error e -> Error e

(* [open_handle ~what ~close f] runs [f out err] for a function writing a
   new handle to [out], and wraps it in a [Handle.t]. *)
let open_handle ?finalise ~what ~close t f =
  let out = allocate (ptr t) (from_voidp t null) in
  Result.map (fun () -> Handle.create ?finalise ~what ~close !@out) (call (f out))
