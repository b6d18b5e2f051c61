(* The loaded C library and the parts of its API shared by every store:
   errors, byte buffers, status names. *)

open Ctypes

(* The SONAME: the library's ABI version, which any compatible release
   installed under that name provides. *)
let soname = "libtzstore.so.0"

(* Where to look, in order: $TZSTORE_LIB, the libdir recorded at build
   time (when the file is there), then the loader's search by name. *)
let candidates () =
  match Sys.getenv_opt "TZSTORE_LIB" with
  | Some p when p <> "" -> [ p ]
  | _ -> (
      let by_name = [ soname ] in
      match Lib_path.libdir with
      | Some d when Sys.file_exists (Filename.concat d soname) -> Filename.concat d soname :: by_name
      | _ -> by_name)

let lib =
  let rec load errors = function
    | [] ->
        failwith
          (Printf.sprintf
             "tzstore: cannot load the C library (install it with scripts/install.sh PREFIX and \
              add PREFIX/lib to LD_LIBRARY_PATH, or set TZSTORE_LIB to the path of \
              libtzstore.so.0): %s"
             (String.concat "; " (List.rev errors)))
    | file :: rest -> (
        try Dl.dlopen ~filename:file ~flags:[ Dl.RTLD_NOW; Dl.RTLD_LOCAL ]
        with Dl.DL_error msg -> load (msg :: errors) rest)
  in
  load [] (candidates ())

(* Blocking calls pass ~release_runtime_lock:true so other OCaml threads
   run meanwhile; their arguments must then live outside the OCaml heap
   ([string] arguments are copied to C memory, [allocate]/[make] use C
   memory). *)
let foreign ?release_runtime_lock name t =
  Foreign.foreign ~from:lib ?release_runtime_lock name t

let status = uint32_t
let error_t = ptr void

type bytes_s

let tzs_bytes : bytes_s structure typ = structure "tzs_bytes"
let bytes_ptr = field tzs_bytes "ptr" (ptr char)
let bytes_len = field tzs_bytes "len" size_t
let () = seal tzs_bytes
let c_error_message = foreign "tzs_error_message" (error_t @-> returning string)
let c_error_free = foreign "tzs_error_free" (error_t @-> returning void)
let c_bytes_free = foreign "tzs_bytes_free" (ptr tzs_bytes @-> returning void)
let c_version = foreign "tzs_version" (void @-> returning string)

(* [call f] runs [f err] where [err] is a fresh [tzs_error **], and turns its
   status into a result (consuming the error object). *)
let call f =
  let err = allocate error_t null in
  let st = Unsigned.UInt32.to_int (f err) in
  if st = 0 then Ok ()
  else
    let e = !@err in
    let message =
      if is_null e then ""
      else
        let m = c_error_message e in
        c_error_free e;
        m
    in
    Error { Error.status = Error.status_of_code st; message }

(* [call_bytes f] runs [f out err] for a function filling a [tzs_bytes]:
   [Ok (Some s)] on success (copied, then freed), [Ok None] on
   TZS_NOT_FOUND. *)
let call_bytes f =
  let out = make tzs_bytes in
  match call (fun err -> f (addr out) err) with
  | Ok () ->
      let len = Unsigned.Size_t.to_int (getf out bytes_len) in
      let s = if len = 0 then "" else string_from_ptr (getf out bytes_ptr) ~length:len in
      c_bytes_free (addr out);
      Ok (Some s)
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

let string_of_buffer p n = if n = 0 then "" else string_from_ptr p ~length:n

(* Lookups: NOT_FOUND becomes [Ok None]. *)
let found = function
  | Ok x -> Ok (Some x)
  | Error { Error.status = Error.Not_found; _ } -> Ok None
  | Error e -> Error e
