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
