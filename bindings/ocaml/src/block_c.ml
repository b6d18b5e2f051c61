(* Conversions between the C [tzs_block] struct and [Block.t]. *)

open Ctypes

let tzs_block = C.tzs_block

let invalid message = Error { Error.status = Error.Invalid_argument; message }

(* [with_hash what h f] runs [f h] if [h] has 32 bytes. *)
let with_hash what h f =
  if String.length h = Block.hash_size then f h
  else invalid (Printf.sprintf "%s must have %d bytes, got %d" what Block.hash_size (String.length h))

(* [found_hash f] runs [f out err] for a lookup filling 32 bytes at [out]
   (a block or context hash): [Ok (Some h)], or [Ok None] on
   TZS_NOT_FOUND. *)
let found_hash f =
  let out = Ffi.out_buffer Block.hash_size in
  Ffi.found (Ffi.call (f out)) |> Result.map (Option.map (fun () -> Ffi.string_of_buffer out Block.hash_size))

(* [with_context c f] runs [f c] if the resulting context hash [c] has 32
   bytes. *)
let with_context c f = with_hash "resulting context hash" c f

let hash_array s = CArray.of_list uint8_t (List.init 32 (fun i -> Unsigned.UInt8.of_int (Char.code s.[i])))
let string_of_hash a = String.init 32 (fun i -> Char.chr (Unsigned.UInt8.to_int (CArray.get a i)))

(* [with_block b f] runs [f p] with [p] pointing to a C copy of [b] (C
   memory, so the call may release the runtime lock). *)
let with_block (b : Block.t) f =
  with_hash "block hash" b.hash @@ fun _ ->
  with_hash "predecessor hash" b.predecessor @@ fun _ ->
  let c = make tzs_block in
  setf c C.block_hash (hash_array b.hash);
  setf c C.block_level b.level;
  setf c C.block_predecessor (hash_array b.predecessor);
  let buffer s field =
    let a = CArray.of_string s in
    let v = make C.tzs_bytes in
    setf v C.bytes_ptr (CArray.start a);
    setf v C.bytes_len (Unsigned.Size_t.of_int (String.length s));
    setf c field v;
    a
  in
  let contents = buffer b.contents C.block_contents in
  setf c C.block_has_metadata (Option.is_some b.metadata);
  let metadata = buffer (Option.value b.metadata ~default:"") C.block_metadata in
  let r = f (addr c) in
  (* The struct holds raw addresses of these arrays: keep them alive. *)
  ignore (Sys.opaque_identity (contents, metadata, c));
  r

let string_of_bytes v =
  Ffi.string_of_buffer (getf v C.bytes_ptr) (Unsigned.Size_t.to_int (getf v C.bytes_len))

(* Copies a library-filled block and frees its buffers. *)
let take c : Block.t =
  let b =
    {
      Block.hash = string_of_hash (getf c C.block_hash);
      level = getf c C.block_level;
      predecessor = string_of_hash (getf c C.block_predecessor);
      contents = string_of_bytes (getf c C.block_contents);
      metadata =
        (if getf c C.block_has_metadata then Some (string_of_bytes (getf c C.block_metadata)) else None);
    }
  in
  C.block_free (addr c);
  b

(* Splits a library-allocated list of 32-byte hashes and frees it. *)
let take_hashes v =
  let s = Ffi.take_bytes v in
  List.init (String.length s / 32) (fun i -> String.sub s (32 * i) 32)

(* [with_hashes l f] runs [f s n] with [l] concatenated into [s]. *)
let with_hashes l f =
  match List.find_opt (fun h -> String.length h <> Block.hash_size) l with
  | Some h ->
      invalid
        (Printf.sprintf "predecessor hashes must have %d bytes, got %d" Block.hash_size
           (String.length h))
  | None -> f (String.concat "" l) (Unsigned.Size_t.of_int (List.length l))

(* Borrowed reads (Reader). An empty view has a NULL pointer: it becomes
   one shared empty bigarray. *)
let empty_bigstring : Block.bigstring = Bigarray.Array1.create Bigarray.char Bigarray.c_layout 0

(* [bigstring ~keep v] is the bytes of the tzs_view [v], without a copy.
   The bigarray holds [keep] (the reader) in a finaliser's closure, so the
   GC frees the reader only once no such bigarray is reachable. *)
let bigstring ~keep v : Block.bigstring =
  let n = Unsigned.Size_t.to_int (getf v C.view_len) in
  if n = 0 then empty_bigstring
  else
    let b = bigarray_of_ptr array1 n Bigarray.char (getf v C.view_ptr) in
    Gc.finalise (fun _ -> ignore (Sys.opaque_identity keep)) b;
    b

let view ~keep c =
  {
    Block.View.hash = string_of_hash (getf c C.view_hash);
    level = getf c C.view_level;
    predecessor = string_of_hash (getf c C.view_predecessor);
    contents = bigstring ~keep (getf c C.view_contents);
    metadata =
      (if getf c C.view_has_metadata then Some (bigstring ~keep (getf c C.view_metadata)) else None);
  }

(* [read_view reader call] runs [call r out] (a call's result, as
   [Ffi.call]) for a borrowed read through [reader] ([r] its C pointer)
   filling the tzs_block_view [out]:
   [Ok (Some view)], or [Ok None] on TZS_NOT_FOUND (the reader then holds
   nothing). *)
let read_view reader call =
  let out = make C.tzs_block_view in
  Reader.use reader @@ fun r ->
  Ffi.found (call (from_voidp C.reader r) (addr out))
  |> Result.map (Option.map (fun () -> view ~keep:reader out))
