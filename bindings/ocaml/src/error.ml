type status =
  | Not_found
  | Done
  | Invalid_argument
  | Io
  | Corrupted
  | Read_only
  | Locked
  | Conflict
  | Too_many_retries
  | Value_expected
  | Dictionary_expected
  | Key_exists
  | No_space
  | Inconsistent
  | Closed
  | Panic
  | Unknown of int

type t = { status : status; message : string }

(* Numbers and names are those of tzstore.h (stable, append-only). *)
let table =
  [
    (Not_found, 1, "TZS_NOT_FOUND");
    (Done, 2, "TZS_DONE");
    (Invalid_argument, 3, "TZS_INVALID_ARGUMENT");
    (Io, 4, "TZS_IO");
    (Corrupted, 5, "TZS_CORRUPTED");
    (Read_only, 6, "TZS_READ_ONLY");
    (Locked, 7, "TZS_LOCKED");
    (Conflict, 8, "TZS_CONFLICT");
    (Too_many_retries, 9, "TZS_TOO_MANY_RETRIES");
    (Value_expected, 10, "TZS_VALUE_EXPECTED");
    (Dictionary_expected, 11, "TZS_DICTIONARY_EXPECTED");
    (Key_exists, 12, "TZS_KEY_EXISTS");
    (No_space, 13, "TZS_NO_SPACE");
    (Inconsistent, 14, "TZS_INCONSISTENT");
    (Closed, 15, "TZS_CLOSED");
    (Panic, 16, "TZS_PANIC");
  ]

let status_of_code code =
  match List.find_opt (fun (_, c, _) -> c = code) table with
  | Some (s, _, _) -> s
  | None -> Unknown code

let code_of_status = function
  | Unknown c -> c
  | s -> (
      match List.find_opt (fun (s', _, _) -> s' = s) table with
      | Some (_, c, _) -> c
      | None -> assert false (* every other constructor is in [table] *))

let status_name = function
  | Unknown c -> Printf.sprintf "TZS_UNKNOWN(%d)" c
  | s -> (
      match List.find_opt (fun (s', _, _) -> s' = s) table with
      | Some (_, _, n) -> n
      | None -> assert false (* every other constructor is in [table] *))

let to_string { status; message } =
  if message = "" then status_name status else status_name status ^ ": " ^ message

let pp ppf e = Format.pp_print_string ppf (to_string e)

exception Tzstore of t

let () =
  Printexc.register_printer (function
    | Tzstore e -> Some ("Tzstore.Error.Tzstore(" ^ to_string e ^ ")")
    | _ -> None)

let get_ok = function Ok x -> x | Error e -> raise (Tzstore e)
