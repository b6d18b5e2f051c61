(** Blocks as the library sees them ([tzs_block]). *)

type hash = string
(** A block hash: exactly {!hash_size} bytes. Calls given a hash of another
    length return [Error {status = Invalid_argument; _}]. *)

type t = {
  hash : hash;
  level : int32;
  predecessor : hash;  (** the direct predecessor's hash *)
  contents : string;  (** header and operations, opaque to the library *)
  metadata : string option;
      (** [None] for a block stored without metadata; [Some ""] is empty
          metadata *)
}

val hash_size : int
(** 32. *)

(** {2 Borrowed blocks} *)

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t
(** Bytes outside the OCaml heap (a [Bigstringaf.t] / [Cstruct.buffer] /
    [Lwt_bytes.t] has this type). *)

val string_of_bigstring : bigstring -> string
(** A copy of the bytes (one [memcpy]). *)

type block = t

(** A block read through a {!Reader.t} without copying its contents or
    metadata ([tzs_block_view]): [read_view] of {!Block_store},
    {!Floating} and {!Cemented}.

    {b The bigarrays are borrowed.} [contents] and [metadata] point into
    memory the reader lends (the store's memory map, or the reader's own
    buffer). They are valid, and their bytes unchanged, only until the next
    read through the same reader (of a block or of an indexed file's value:
    {!Indexed_file.read_view}), its {!Reader.release} or its
    {!Reader.close}, whichever comes first; a merge, a GC or closing the
    store does not end them. Reading or writing them afterwards is
    undefined behaviour: they may point into unmapped memory (a
    segmentation fault) or into another block's bytes. Do not write into
    them at all (the map is read-only: a write faults). Keep the bytes
    beyond that with {!to_block}, {!contents_string} or
    {!metadata_string} (copies), or any bigstring copy
    ([Bigarray.Array1.blit] into an array of your own).

    The bigarrays keep their reader reachable, so the GC never frees a
    reader while they are: dropping the reader and keeping a view is safe
    until the view's own end above. A sub-array
    ([Bigarray.Array1.sub]) does not keep it reachable: keep the view or
    the reader meanwhile. *)
module View : sig
  type t = {
    hash : hash;  (** copied *)
    level : int32;
    predecessor : hash;  (** copied *)
    contents : bigstring;  (** borrowed *)
    metadata : bigstring option;
        (** borrowed; [None] for a block without metadata or a read without
            it, [Some] of an empty array for empty metadata *)
  }

  val to_block : t -> block
  (** A copy of the whole block, valid forever. *)

  val contents_string : t -> string
  (** A copy of [contents]. *)

  val metadata_string : t -> string option
  (** A copy of [metadata]. *)
end
