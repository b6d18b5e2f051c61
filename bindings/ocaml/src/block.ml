type hash = string

type t = {
  hash : hash;
  level : int32;
  predecessor : hash;
  contents : string;
  metadata : string option;
}

let hash_size = 32

type bigstring = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t

(* A copy of a bigstring (one memcpy). *)
let string_of_bigstring (b : bigstring) =
  let n = Bigarray.Array1.dim b in
  if n = 0 then "" else Ctypes.(string_from_ptr (bigarray_start array1 b) ~length:n)

type block = t

module View = struct
  type t = {
    hash : hash;
    level : int32;
    predecessor : hash;
    contents : bigstring;
    metadata : bigstring option;
  }

  let contents_string v = string_of_bigstring v.contents
  let metadata_string v = Option.map string_of_bigstring v.metadata

  let to_block v : block =
    {
      hash = v.hash;
      level = v.level;
      predecessor = v.predecessor;
      contents = contents_string v;
      metadata = metadata_string v;
    }
end
