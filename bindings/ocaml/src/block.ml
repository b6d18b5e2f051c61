type hash = string

type t = {
  hash : hash;
  level : int32;
  predecessor : hash;
  contents : string;
  metadata : string option;
}

let hash_size = 32
