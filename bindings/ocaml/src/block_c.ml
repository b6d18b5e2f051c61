(* The C [tzs_block] struct and conversions to and from [Block.t]. *)

open Ctypes

type block_s

let tzs_block : block_s structure typ = structure "tzs_block"
let hash_f = field tzs_block "hash" (array 32 uint8_t)
let level_f = field tzs_block "level" int32_t
let predecessor_f = field tzs_block "predecessor" (array 32 uint8_t)
let contents_f = field tzs_block "contents" Ffi.tzs_bytes
let has_metadata_f = field tzs_block "has_metadata" bool
let metadata_f = field tzs_block "metadata" Ffi.tzs_bytes
let () = seal tzs_block
let c_block_free = Ffi.foreign "tzs_block_free" (ptr tzs_block @-> returning void)

let invalid message = Error { Error.status = Error.Invalid_argument; message }

(* [with_hash what h f] runs [f h] if [h] has 32 bytes. *)
let with_hash what h f =
  if String.length h = Block.hash_size then f h
  else invalid (Printf.sprintf "%s must have %d bytes, got %d" what Block.hash_size (String.length h))

let hash_array s = CArray.of_list uint8_t (List.init 32 (fun i -> Unsigned.UInt8.of_int (Char.code s.[i])))
let string_of_hash a = String.init 32 (fun i -> Char.chr (Unsigned.UInt8.to_int (CArray.get a i)))

(* [with_block b f] runs [f p] with [p] pointing to a C copy of [b] (C
   memory, so the call may release the runtime lock). *)
let with_block (b : Block.t) f =
  with_hash "block hash" b.hash @@ fun _ ->
  with_hash "predecessor hash" b.predecessor @@ fun _ ->
  let c = make tzs_block in
  setf c hash_f (hash_array b.hash);
  setf c level_f b.level;
  setf c predecessor_f (hash_array b.predecessor);
  let buffer s field =
    let a = CArray.of_string s in
    let v = make Ffi.tzs_bytes in
    setf v Ffi.bytes_ptr (CArray.start a);
    setf v Ffi.bytes_len (Unsigned.Size_t.of_int (String.length s));
    setf c field v;
    a
  in
  let contents = buffer b.contents contents_f in
  setf c has_metadata_f (Option.is_some b.metadata);
  let metadata = buffer (Option.value b.metadata ~default:"") metadata_f in
  let r = f (addr c) in
  (* The struct holds raw addresses of these arrays: keep them alive. *)
  ignore (Sys.opaque_identity (contents, metadata, c));
  r

let string_of_bytes v =
  let len = Unsigned.Size_t.to_int (getf v Ffi.bytes_len) in
  if len = 0 then "" else string_from_ptr (getf v Ffi.bytes_ptr) ~length:len

(* Copies a library-filled block and frees its buffers. *)
let take c : Block.t =
  let b =
    {
      Block.hash = string_of_hash (getf c hash_f);
      level = getf c level_f;
      predecessor = string_of_hash (getf c predecessor_f);
      contents = string_of_bytes (getf c contents_f);
      metadata = (if getf c has_metadata_f then Some (string_of_bytes (getf c metadata_f)) else None);
    }
  in
  c_block_free (addr c);
  b

(* Splits a library-allocated list of 32-byte hashes and frees it. *)
let take_hashes v =
  let s = string_of_bytes v in
  Ffi.c_bytes_free (addr v);
  List.init (String.length s / 32) (fun i -> String.sub s (32 * i) 32)

(* [with_hashes l f] runs [f s n] with [l] concatenated into [s]. *)
let with_hashes l f =
  match List.find_opt (fun h -> String.length h <> Block.hash_size) l with
  | Some h ->
      invalid
        (Printf.sprintf "predecessor hashes must have %d bytes, got %d" Block.hash_size
           (String.length h))
  | None -> f (String.concat "" l) (Unsigned.Size_t.of_int (List.length l))
