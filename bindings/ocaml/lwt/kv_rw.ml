(* mirage-kv's RW shape over Tzstore.Kv (see the .mli). *)

open Lwt.Syntax
module K = Tzstore.Kv
module E = Tzstore.Error

type t = K.t
type key = string

type error =
  [ `Not_found of key | `Dictionary_expected of key | `Value_expected of key | `Store of E.t ]

type write_error =
  [ error
  | `No_space
  | `Already_present of key
  | `Rename_source_prefix of key * key
  | `Too_many_retries of int ]

let pp_error ppf = function
  | `Not_found k -> Format.fprintf ppf "key %s not found" k
  | `Dictionary_expected k -> Format.fprintf ppf "expected a dictionary at %s" k
  | `Value_expected k -> Format.fprintf ppf "expected a value at %s" k
  | `Store e -> Format.pp_print_string ppf (E.to_string e)

let pp_write_error ppf = function
  | #error as e -> pp_error ppf e
  | `No_space -> Format.pp_print_string ppf "no space left on device"
  | `Already_present k -> Format.fprintf ppf "key %s is already present" k
  | `Rename_source_prefix (s, d) -> Format.fprintf ppf "source %s is a prefix of destination %s" s d
  | `Too_many_retries n -> Format.fprintf ppf "batch failed after %d retries" n

let detach = Pool.detach

let read_error key (e : E.t) : [> error ] =
  match e.status with
  | E.Not_found -> `Not_found key
  | E.Dictionary_expected -> `Dictionary_expected key
  | E.Value_expected -> `Value_expected key
  | _ -> `Store e

let write_error ?dest ?(retries = 13) key (e : E.t) : write_error =
  match e.status with
  | E.No_space -> `No_space
  | E.Key_exists -> `Already_present (Option.value dest ~default:key)
  | E.Too_many_retries -> `Too_many_retries retries
  | E.Invalid_argument when dest <> None -> `Rename_source_prefix (key, Option.value dest ~default:"")
  | _ -> (read_error key e :> write_error)

let read key call = Lwt.map (Result.map_error (read_error key)) (detach call)

(* A read that answers None for an unbound key: mirage-kv's [`Not_found]. *)
let found key call =
  Lwt.map
    (function Ok (Some v) -> Ok v | Ok None -> Error (`Not_found key) | Error e -> Error (read_error key e))
    (detach call)

let write ?dest key call = Lwt.map (Result.map_error (write_error ?dest key)) (detach call)

let connect root =
  let* r = detach (fun () -> K.open_ root) in
  match r with Ok t -> Lwt.return t | Error e -> Lwt.fail_with ("connect " ^ root ^ ": " ^ E.to_string e)

let disconnect t = detach (fun () -> K.close t)
let exists t k = read k (fun () -> K.exists t k)
let get t k = found k (fun () -> K.get t k)
let get_partial t k ~offset ~length = found k (fun () -> K.get_partial t k ~offset ~length)

let list t k =
  let join name =
    let d = if String.length k > 0 && k.[String.length k - 1] = '/' then k else k ^ "/" in
    if k = "" || k = "/" then "/" ^ name else d ^ name
  in
  Lwt.map
    (Result.map (List.map (fun (name, kind) -> (join name, kind))))
    (found k (fun () -> K.list t k))

let last_modified t k = found k (fun () -> K.last_modified t k)
let digest t k = found k (fun () -> K.digest t k)
let size t k = found k (fun () -> K.size t k)
let set t k v = write k (fun () -> K.set t k v)
let set_partial t k ~offset v = write k (fun () -> K.set_partial t k ~offset v)
let remove t k = write k (fun () -> K.remove t k)

let rename t ~source ~dest =
  let prefix =
    let s = if String.length source > 0 && source.[0] = '/' then source else "/" ^ source in
    let d = if String.length dest > 0 && dest.[0] = '/' then dest else "/" ^ dest in
    String.length d > String.length s && String.sub d 0 (String.length s + 1) = s ^ "/"
  in
  if prefix then Lwt.return_error (`Rename_source_prefix (source, dest))
  else write ~dest source (fun () -> K.rename t ~source ~dest)

let allocate t k n = write k (fun () -> K.allocate t k n)

let batch t ?(retries = 13) f =
  Lwt.map
    (Result.map_error (write_error ~retries "/"))
    (detach (fun () -> K.batch ~retries t f))
